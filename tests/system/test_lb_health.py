"""gantry-lb target health: active checks and ALB's states, passive marking and retries,
fail-open, slow start. Real demo-app targets (POST /health/fail flips their check)."""
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import free_port, http_request, wait_until
from lb_fixtures import LbTestCase, app_yaml

def lb_yaml(targets, interval="200ms", timeout="150ms", healthy=2, unhealthy=2, workers=1,
            extra_group="", extra_lb=""):
    check = (f"{{path: /health, interval: {interval}, timeout: {timeout}, "
             f"healthy_threshold: {healthy}, unhealthy_threshold: {unhealthy}}}")
    return app_yaml(targets, workers=workers, health_check=check,
                    group_lines=[extra_group] if extra_group else (),
                    lb_lines=[extra_lb] if extra_lb else ())


class HealthTestCase(LbTestCase):
    def states(self, lb):
        group = lb.targets()["target_groups"][0]
        return {t["address"]: (t["state"], t["reason"]) for t in group["targets"]}

    def wait_state(self, lb, addr, state, timeout=5.0):
        """Waits for addr to be in state; returns every target's (state, reason)."""
        def reached():
            states = self.states(lb)
            return states if states[addr][0] == state else None
        return wait_until(reached, timeout=timeout, message=f"{addr} to be {state}")

    def flip(self, addr, healthy):
        status, _, _ = http_request(addr, method="POST", path="/health/ok" if healthy
                                    else "/health/fail")
        self.assertEqual(status, 200)

    def served_by(self, lb, n):
        return [http_request(lb.listeners[0])[1]["x-task-id"] for _ in range(n)]


class ActiveChecksTest(HealthTestCase):
    def test_a_failing_check_takes_the_target_out_and_passing_checks_bring_it_back(self):
        t0, t1 = self.start_backends(2)
        lb = self.start_lb(lb_yaml([t0, t1]))
        self.wait_state(lb, t0, "healthy")
        self.wait_state(lb, t1, "healthy")
        self.flip(t0, healthy=False)
        self.assertEqual(self.wait_state(lb, t0, "unhealthy")[t0][1],
                         "Target.ResponseCodeMismatch")
        self.assertEqual(set(self.served_by(lb, 20)), {"t1"})
        self.assertEqual(lb.metric('gantry_lb_healthy_hosts{target_group="app"}'), 1)
        self.assertEqual(lb.metric('gantry_lb_unhealthy_hosts{target_group="app"}'), 1)
        self.flip(t0, healthy=True)
        self.wait_state(lb, t0, "healthy")
        self.assertEqual(set(self.served_by(lb, 20)), {"t0", "t1"})
        self.assertIn("target app " + t0 + ": unhealthy -> healthy", lb.program.log())

    def test_alb_default_checks_make_a_serving_target_healthy(self):
        # No health_check section at all: ALB's defaults (GET /, status 200), first check at once.
        (t0,) = self.start_backends(1)
        lb = self.start_lb(app_yaml([t0], health_check=None))
        self.wait_state(lb, t0, "healthy")
        self.assertEqual(lb.metric('gantry_lb_healthy_hosts{target_group="app"}'), 1)

    def test_every_target_failing_fails_open(self):
        t0, t1 = self.start_backends(2)
        lb = self.start_lb(lb_yaml([t0, t1]))
        for t in (t0, t1):
            self.wait_state(lb, t, "healthy")
            self.flip(t, healthy=False)
        for t in (t0, t1):
            self.wait_state(lb, t, "unhealthy")
        # As ALB: with no healthy target, every target gets requests rather than none.
        self.assertEqual(set(self.served_by(lb, 20)), {"t0", "t1"})
        self.assertEqual(lb.metric('gantry_lb_healthy_hosts{target_group="app"}'), 0)
        self.assertEqual(lb.metric('gantry_lb_unhealthy_hosts{target_group="app"}'), 2)

    def test_a_check_that_takes_too_long_is_a_timeout(self):
        (slow,) = self.start_backends(1, env={"LATENCY": "2s"})
        lb = self.start_lb(lb_yaml([slow], interval="400ms", timeout="200ms"))
        self.assertEqual(self.wait_state(lb, slow, "unhealthy")[slow][1], "Target.Timeout")

    def test_checks_run_once_per_process_not_per_worker(self):
        hits = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b""):
                    pass
                if b"/health" in head:
                    hits.append(time.monotonic())
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close"
                                 b"\r\n\r\nok")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        addr = f"127.0.0.1:{server.server_address[1]}"
        self.start_lb(lb_yaml([addr], interval="200ms", workers=2))
        wait_until(lambda: len(hits) >= 2, message="two checks")
        start = hits[1]
        wait_until(lambda: hits[-1] - start >= 1.0, message="a second of checks")
        in_window = [h for h in hits if start <= h <= start + 1.0]
        # One checker: about 6 in a second at 200 ms. One per worker would make about 12.
        self.assertLessEqual(len(in_window), 8, in_window)
        self.assertGreaterEqual(len(in_window), 4, in_window)


class PassiveHealthTest(HealthTestCase):
    def test_a_refused_target_is_marked_down_at_once_and_the_request_retried(self):
        good, checked = self.start_backends(2)
        # A target whose checks (on another port) pass but whose traffic port refuses: healthy
        # until a request finds it closed.
        dead = f"127.0.0.1:{free_port()}"
        check_port = checked.rpartition(":")[2]
        yaml = app_yaml([dead, good],
                        health_check=f'{{path: /health, port: "{check_port}", interval: 30s}}')
        lb = self.start_lb(yaml)
        group = lambda: {t["address"]: t for t in lb.targets()["target_groups"][0]["targets"]}
        wait_until(lambda: group()[dead]["state"] == "healthy", message="the dead one to pass")
        statuses = [http_request(lb.listeners[0])[0] for _ in range(10)]
        self.assertEqual(statuses, [200] * 10)  # the refused request went to the other target
        self.assertEqual((group()[dead]["state"], group()[dead]["reason"]),
                         ("unhealthy", "Target.ConnectionFailed"))
        self.assertGreaterEqual(lb.metric('gantry_lb_retries_total{target_group="app"}'), 1)
        self.assertEqual(lb.metric('gantry_lb_errors_total{listener="web",kind="502"}'), 0)

    def test_kill_9_under_load_fails_no_request_and_the_target_comes_back(self):
        backends = self.start_backends(4)
        victim = backends[2]
        # A GET in flight on the target when it dies can only be sent again elsewhere with
        # retry_idempotent (it may have reached it): zero failed requests needs it.
        lb = self.start_lb(lb_yaml(backends, interval="500ms", timeout="300ms",
                                   extra_lb="retry_idempotent: true"))
        for b in backends:
            self.wait_state(lb, b, "healthy")
        lb_text = lb.program.log()
        self.assertNotIn("unhealthy", lb_text)
        failures, done = [], threading.Event()

        def load():
            conn = None
            deadline = time.monotonic() + 20  # bounded, whatever happens
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    status, _, _ = http_request(lb.listeners[0])
                    if status != 200:
                        failures.append(status)
                except OSError as e:
                    failures.append(repr(e))
            return conn

        pool = ThreadPoolExecutor(4)
        futures = [pool.submit(load) for _ in range(4)]
        wait_until(lambda: lb.metric('gantry_lb_target_requests_total{target_group="app"}') > 200,
                   message="load to run")
        victim_program = next(p for p in self.programs
                              if p.ready_line and victim in p.ready_line)
        victim_program.proc.kill()
        killed = time.monotonic()
        self.wait_state(lb, victim, "unhealthy", timeout=2.0)
        marked = time.monotonic() - killed
        wait_until(lambda: lb.metric('gantry_lb_target_requests_total{target_group="app"}') > 600,
                   message="load to go on")
        # Start it again on the same port: healthy after healthy_threshold passes, then served.
        port = victim.rpartition(":")[2]
        self.start_program("gantry-demo-app", env={"PORT": port, "TASK_ID": "t2"}).wait_ready()
        self.wait_state(lb, victim, "healthy", timeout=5.0)
        wait_until(lambda: "t2" in self.served_by(lb, 8), message="the target to serve again")
        done.set()
        for f in futures:
            f.result(timeout=25)
        pool.shutdown()
        self.assertEqual(failures, [])
        self.assertLess(marked, 0.5 + 0.5, "marked unhealthy within one check interval")

    def test_idempotent_requests_are_retried_only_when_allowed(self):
        def close_at_once(sock):
            sock.recv(65536)
            sock.close()

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.addCleanup(listener.close)

        def serve():
            while True:
                try:
                    s, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=close_at_once, args=(s,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        closer = f"127.0.0.1:{listener.getsockname()[1]}"
        (good,) = self.start_backends(1)
        for allowed, expected_get in ((False, {502, 200}), (True, {200})):
            extra = f"retry_idempotent: {'true' if allowed else 'false'}"
            yaml = app_yaml([closer, good], health_check="{enabled: false}", lb_lines=[extra])
            lb = self.start_lb(yaml, name=f"lb-{allowed}.yaml")
            gets = {http_request(lb.listeners[0])[0] for _ in range(10)}
            posts = {http_request(lb.listeners[0], method="POST", body=b"x")[0]
                     for _ in range(10)}
            self.assertTrue(gets <= expected_get and 200 in gets, (allowed, gets))
            if not allowed:
                self.assertIn(502, gets)  # round robin sends some to the closer
            self.assertIn(502, posts)  # a POST the target may have seen is never sent again
            lb.program.stop()


class SlowStartTest(HealthTestCase):
    def test_a_newly_healthy_target_ramps_up(self):
        t0, t1 = self.start_backends(2)
        lb = self.start_lb(lb_yaml([t0, t1], extra_group="slow_start: 3s"))
        self.wait_state(lb, t0, "healthy")
        self.wait_state(lb, t1, "healthy")
        # Both started their ramp when the lb started: t0 must be past it to compare against.
        since = next(t["since"] for t in lb.targets()["target_groups"][0]["targets"]
                     if t["address"] == t0)
        wait_until(lambda: time.time() * 1000 - since > 3200, timeout=6,
                   message="t0's ramp to end")
        self.flip(t1, healthy=False)
        self.wait_state(lb, t1, "unhealthy")
        self.flip(t1, healthy=True)
        self.wait_state(lb, t1, "healthy")
        # Within the first 0.6 s of a 3 s ramp, t1 takes each request it is picked for with a
        # probability under 0.2: its share stays far below the half it will have afterwards.
        start = time.monotonic()
        served = []
        while time.monotonic() - start < 0.6:
            served += self.served_by(lb, 10)
        share = served.count("t1") / len(served)
        self.assertLess(share, 0.2, (share, len(served)))
        self.assertGreater(len(served), 20)
        # Once the ramp is over, round robin shares equally again.
        wait_until(lambda: self.served_by(lb, 40).count("t1") == 20, timeout=6,
                   message="an even split after the ramp")
