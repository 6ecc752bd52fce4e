"""Target groups whose members live in Redis (docs/redis.md): registration under load,
deregistration with draining, stickiness across it, and Redis going away."""
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import Program, http_request, wait_until
from lb_fixtures import LbTestCase, app_yaml


def dynamic_yaml(redis_url, delay="10s", sticky=False):
    return app_yaml(workers=2, redis_url=redis_url, targets_from="redis",
                    group_lines=[f"deregistration_delay: {delay}",
                                 f"stickiness: {{enabled: {'true' if sticky else 'false'}}}"])


def connections_to(port):
    """Established IPv4 connections whose far end is 127.0.0.1:port (from /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                count += 1
    return count


class Load:
    """Bounded background load: threads doing requests until stopped (at most 30 s)."""

    def __init__(self, addr, threads=3, path="/"):
        self.addr, self.path = addr, path
        self.failures, self.served = [], []  # served: (monotonic time, task id)
        self.done = threading.Event()
        self.pool = ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self.run) for _ in range(threads)]

    def run(self):
        deadline = time.monotonic() + 30
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                status, headers, _ = http_request(self.addr, path=self.path)
                if status != 200:
                    self.failures.append(status)
                else:
                    self.served.append((time.monotonic(), headers.get("x-task-id")))
            except OSError as e:
                self.failures.append(repr(e))

    def stop(self):
        self.done.set()
        for f in self.futures:
            f.result(timeout=35)
        self.pool.shutdown()
        return self.failures


class DynamicTargetsTest(LbTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()

    def gantry_targets(self, *args):
        proc = self.run_program("gantry", ["targets", *args, "--redis", self.redis.url])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def target(self, lb, addr):
        for t in lb.targets()["target_groups"][0]["targets"]:
            if t["address"] == addr:
                return t
        return None

    def test_a_target_registered_under_load_serves_once_it_passes_its_first_check(self):
        first, newcomer = self.start_backends(2, ids=["first", "newcomer"])
        self.gantry_targets("register", "app", first)
        lb = self.start_lb(dynamic_yaml(self.redis.url))
        wait_until(lambda: (self.target(lb, first) or {}).get("state") == "healthy",
                   message="the first target to be healthy")
        load = Load(lb.listeners[0])
        wait_until(lambda: len(load.served) > 50, message="load to run")
        self.gantry_targets("register", "app", newcomer)
        wait_until(lambda: (self.target(lb, newcomer) or {}).get("state") == "healthy",
                   message="the newcomer to pass its check")
        healthy_at = self.target(lb, newcomer)["since"] / 1000.0  # wall clock
        wait_until(lambda: any(task == "newcomer" for _, task in load.served),
                   message="the newcomer to serve")
        first_served = next(t for t, task in load.served if task == "newcomer")
        # Convert the monotonic instant to wall clock through the current offset.
        first_served_wall = first_served - time.monotonic() + time.time()
        self.assertEqual(load.stop(), [])
        self.assertLess(first_served_wall - healthy_at, 0.1,
                        "served within 100 ms of passing its first check")
        health = json.loads(self.redis.command("HGET", "gantry:health:app", newcomer))
        self.assertEqual(health["state"], "healthy")

    def test_deregistering_drains_the_requests_in_flight(self):
        keeper, leaver = self.start_backends(2, ids=["keeper", "leaver"])
        for b in (keeper, leaver):
            self.gantry_targets("register", "app", b)
        lb = self.start_lb(dynamic_yaml(self.redis.url, delay="10s"))
        for b in (keeper, leaver):
            wait_until(lambda: (self.target(lb, b) or {}).get("state") == "healthy",
                       message=f"{b} healthy")
        # Hold 2-second requests on the leaver: connect to it through the lb until two land.
        pool = ThreadPoolExecutor(8)
        slow = [pool.submit(http_request, lb.listeners[0], path="/?latency=2s") for _ in range(6)]
        wait_until(lambda: self.target(lb, leaver)["outstanding"] >= 2,
                   message="slow requests in flight on the leaver")
        self.gantry_targets("deregister", "app", leaver)
        wait_until(lambda: self.target(lb, leaver)["state"] == "draining", timeout=2,
                   message="the leaver to drain")
        after = {http_request(lb.listeners[0])[1]["x-task-id"] for _ in range(20)}
        self.assertEqual(after, {"keeper"})  # no new request reaches it
        results = [f.result(timeout=10) for f in slow]
        self.assertEqual([r[0] for r in results], [200] * 6)  # every one in flight completed
        pool.shutdown()
        # Drained as soon as nothing is in flight, long before the 10 s delay.
        wait_until(lambda: self.redis.command("HGET", "gantry:drained:app", leaver) is not None,
                   timeout=3, message="the drained mark in Redis")
        health = json.loads(self.redis.command("HGET", "gantry:health:app", leaver))
        self.assertEqual((health["state"], health["reason"]), ("unused", "Target.NotRegistered"))
        wait_until(lambda: self.target(lb, leaver) is None, message="the leaver out of the routes")
        # Its pooled connections went with it: nothing of the lb's stays connected to it.
        port = int(leaver.rpartition(":")[2])
        wait_until(lambda: connections_to(port) == 0, timeout=3,
                   message="the lb's connections to the leaver to close")
        self.assertIn(f"target app {leaver}: draining -> unused", lb.program.log())

    def test_a_sticky_client_moves_when_its_target_is_deregistered(self):
        a, b = self.start_backends(2, ids=["a", "b"])
        for t in (a, b):
            self.gantry_targets("register", "app", t)
        lb = self.start_lb(dynamic_yaml(self.redis.url, delay="1s", sticky=True))
        for t in (a, b):
            wait_until(lambda: (self.target(lb, t) or {}).get("state") == "healthy",
                       message=f"{t} healthy")
        _, headers, _ = http_request(lb.listeners[0])
        cookie = headers["set-cookie"].split(";")[0]
        mine = headers["x-task-id"]
        served = {http_request(lb.listeners[0], headers={"Cookie": cookie})[1]["x-task-id"]
                  for _ in range(100)}
        self.assertEqual(served, {mine})
        self.gantry_targets("deregister", "app", a if mine == "a" else b)
        wait_until(lambda: http_request(lb.listeners[0], headers={"Cookie": cookie})[1]
                   ["x-task-id"] != mine, timeout=3, message="the client to move")
        _, headers, _ = http_request(lb.listeners[0], headers={"Cookie": cookie})
        self.assertNotEqual(headers["set-cookie"].split(";")[0], cookie)

    def test_redis_going_away_fails_no_request_and_changes_flow_when_it_returns(self):
        one, two = self.start_backends(2, ids=["one", "two"])
        self.gantry_targets("register", "app", one)
        lb = self.start_lb(dynamic_yaml(self.redis.url))
        wait_until(lambda: (self.target(lb, one) or {}).get("state") == "healthy",
                   message="one healthy")
        load = Load(lb.listeners[0])
        wait_until(lambda: len(load.served) > 50, message="load to run")
        port = self.redis.port
        # A Redis that comes back with its data, as gantry up's does (append-only file): here
        # an RDB snapshot taken just before it goes.
        self.assertEqual(self.redis.command("SAVE"), "OK")
        self.redis.stop()
        wait_until(lambda: "redis: connection lost" in lb.program.log(), timeout=10,
                   message="the lb to notice")
        served_before = len(load.served)
        wait_until(lambda: len(load.served) > served_before + 100, message="serving without Redis")
        # Redis again on the same port, from the same directory: it loads the snapshot.
        restarted = Program(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", self.tmp, "--save", "", "--appendonly", "no"],
                            os.path.join(self.tmp, "redis-again.log"), ready_fd=False)
        self.programs.append(restarted)
        wait_until(lambda: self.redis.command("PING") == "PONG", message="redis back")
        wait_until(lambda: "redis: connected" in lb.program.log().split("connection lost")[-1],
                   timeout=10, message="the lb to reconnect")
        self.assertEqual(self.redis.command("HGET", "gantry:targets:app", one), "1")
        self.gantry_targets("register", "app", two)
        wait_until(lambda: (self.target(lb, two) or {}).get("state") == "healthy", timeout=5,
                   message="a target registered after the restart to serve")
        wait_until(lambda: any(task == "two" for _, task in load.served[-200:]),
                   message="two to take requests")
        self.assertEqual(load.stop(), [])
