"""gantry-lb's metrics in the metric store: CloudWatch's AWS/ApplicationELB set, one datapoint per
series and second, read back straight from Redis (the hashes gantry:m:s:ID:MINUTE documented in
metrics/store.h), with a real redis-server, real demo backends and a real gantry-lb under a
bounded load."""
import http.client
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import Program, split_addr, wait_until
from lb_fixtures import LbTestCase, app_yaml

NAMESPACE = "AWS/ApplicationELB"
CODES = [f"HTTPCode_Target_{c}XX_Count" for c in (2, 3, 4, 5)]


def series_id(metric, group=None, target=None, lb="gantry-lb"):
    """The canonical id of metrics/series.h: dimensions sorted by name."""
    dims = [("LoadBalancer", lb)]
    if group:
        dims.append(("TargetGroup", group))
    if target:
        dims.append(("Target", target))
    return f"{NAMESPACE}|{metric}|" + ",".join(f"{k}={v}" for k, v in sorted(dims))


def read_series(redis, sid, start, end):
    """The seconds [start, end] of a series: ({second: (sum, count, min, max)},
    {second: {bucket: count}}). A second without a field is missing data: absent here."""
    points, hists = {}, {}
    for minute in range(start - start % 60, end + 1, 60):
        reply = redis.command("HGETALL", f"gantry:m:s:{sid}:{minute}")
        if reply is None:
            raise AssertionError("redis does not answer HGETALL")
        for field, value in zip(reply[::2], reply[1::2]):
            is_hist = field.startswith("h")
            second = minute + int(field[1:] if is_hist else field)
            if not start <= second <= end:
                continue
            if is_hist:
                hists[second] = {int(b): int(c) for b, c in (p.split(":") for p in value.split())}
                continue
            parts = [float(x) for x in value.split()]
            points[second] = (parts[0], 1.0, parts[0], parts[0]) if len(parts) == 1 else tuple(parts)
    return points, hists


def sums(points):
    return sum(p[0] for p in points.values())


class Load:
    """Bounded load: `threads` keep-alive clients, `rate` requests a second in all, until stopped
    (at most 40 s). Counts what the clients got."""

    def __init__(self, addr, threads=4, rate=100, path="/"):
        self.addr, self.path = addr, path
        self.interval = threads / rate
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.pool = ThreadPoolExecutor(threads)
        self.futures = [self.pool.submit(self.run) for _ in range(threads)]

    def request(self, conn):
        conn.request("GET", self.path)
        resp = conn.getresponse()
        resp.read()
        with self.lock:
            if resp.status == 200:
                self.ok += 1
            else:
                self.failures.append(resp.status)

    def run(self):
        host, port = split_addr(self.addr)
        conn = None
        deadline = time.monotonic() + 40
        next_at = time.monotonic()
        while not self.done.is_set() and time.monotonic() < deadline:
            # pacing, not synchronisation: the load must stay bounded
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += self.interval
            try:
                conn = conn or http.client.HTTPConnection(host, port, timeout=5)
                self.request(conn)
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                conn.close()
                conn = None
        if conn:
            conn.close()

    def stop(self):
        self.done.set()
        for f in self.futures:
            f.result(timeout=45)
        self.pool.shutdown()
        return self.failures


def wait_for_second(redis, sid, second, timeout=10):
    """Polls until the datapoint of `second` is in Redis (written at second + 1)."""
    wait_until(lambda: second in read_series(redis, sid, second, second)[0], timeout=timeout,
               message=f"the datapoint of second {second} of {sid}")


def wait_past(second):
    """Until the wall clock is in a later second (the load must start after a quiet one)."""
    wait_until(lambda: time.time() >= second + 1, timeout=3, message=f"second {second} to end")


class LbMetricsTest(LbTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()

    def start_app(self, backends, **kwargs):
        lb = self.start_lb(app_yaml(backends, workers=2, redis_url=self.redis.url, **kwargs))
        wait_until(lambda: all(t["state"] == "healthy"
                               for t in lb.targets()["target_groups"][0]["targets"]),
                   message="the targets to be healthy")
        wait_until(lambda: lb.metric("gantry_lb_metrics_datapoints_written_total") > 0,
                   message="the first datapoints written")
        return lb

    def quiet_second(self):
        """A second just flushed with no traffic; the load may start once it has ended."""
        second = int(time.time())
        wait_for_second(self.redis, series_id("RequestCount", "app"), second)
        return second

    def test_counts_add_up_to_what_the_lb_and_the_clients_counted(self):
        backends = self.start_backends(2)
        lb = self.start_app(backends)
        first = self.quiet_second()
        load = Load(lb.listeners[0], threads=4, rate=100)
        wait_until(lambda: load.ok >= 1000, timeout=30, message="1000 requests")
        self.assertEqual(load.stop(), [])
        last = int(time.time()) + 1  # a whole second after the load
        group = series_id("RequestCount", "app")
        wait_for_second(self.redis, group, last)
        points, _ = read_series(self.redis, group, first, last)
        # every second is there, the quiet ones as 0
        self.assertEqual(sorted(points), list(range(first, last + 1)))
        self.assertEqual(points[first][0], 0)
        self.assertEqual(points[last][0], 0)
        self.assertGreater(sum(1 for p in points.values() if p[0] > 0), 5)
        # the store, the lb's own counter and the clients agree
        lb_count = lb.metric('gantry_lb_target_requests_total{target_group="app"}')
        self.assertEqual(sums(points), load.ok)
        self.assertEqual(lb_count, load.ok)
        elb, _ = read_series(self.redis, series_id("RequestCount"), first, last)
        self.assertEqual(sums(elb), load.ok)
        ok, _ = read_series(self.redis, series_id(CODES[0], "app"), first, last)
        self.assertEqual(sums(ok), load.ok)
        # the targets' counts add up to the group's, second by second
        per_target = [read_series(self.redis, series_id("RequestCount", "app", t), first, last)[0]
                      for t in backends]
        for second in range(first, last + 1):
            self.assertEqual(sum(p[second][0] for p in per_target), points[second][0], second)
        self.assertTrue(all(sums(p) > 0 for p in per_target))
        # the gauges and RequestCountPerTarget (2 healthy targets)
        healthy, _ = read_series(self.redis, series_id("HealthyHostCount", "app"), first, last)
        self.assertEqual({p[0] for p in healthy.values()}, {2})
        per, _ = read_series(self.redis, series_id("RequestCountPerTarget", "app"), first, last)
        self.assertAlmostEqual(sums(per), load.ok / 2)
        # the balancer's own errors: none; bytes and connections: some
        for metric in ("HTTPCode_ELB_4XX_Count", "HTTPCode_ELB_5XX_Count"):
            self.assertEqual(sums(read_series(self.redis, series_id(metric), first, last)[0]), 0)
        for metric in ("ProcessedBytes", "NewConnectionCount"):
            self.assertGreater(sums(read_series(self.redis, series_id(metric), first, last)[0]), 0)
        self.assertEqual(lb.metric("gantry_lb_metrics_datapoints_dropped_total"), 0)
        self.assertNotIn("error", lb.program.log())

    def test_two_balancers_writing_to_one_redis_sum(self):
        backends = self.start_backends(2)
        one = self.start_app(backends)
        two = self.start_app(backends)
        first = self.quiet_second()
        loads = [Load(one.listeners[0], threads=2, rate=60), Load(two.listeners[0], threads=2,
                                                                   rate=30)]
        wait_until(lambda: loads[1].ok >= 200, timeout=30, message="200 requests on the second")
        for load in loads:
            self.assertEqual(load.stop(), [])
        last = int(time.time()) + 1
        group = series_id("RequestCount", "app")
        wait_for_second(self.redis, group, last)
        wait_until(lambda: read_series(self.redis, group, last, last)[0][last][1] == 2,
                   message="both balancers' datapoints of the last second")
        points, _ = read_series(self.redis, group, first, last)
        self.assertEqual(sums(points), loads[0].ok + loads[1].ok)
        self.assertEqual(one.metric('gantry_lb_target_requests_total{target_group="app"}')
                         + two.metric('gantry_lb_target_requests_total{target_group="app"}'),
                         loads[0].ok + loads[1].ok)
        # each second: the sum of both writers' samples, 2 of them
        self.assertTrue(all(p[1] == 2 for s, p in points.items() if s > first), points)
        targets = sum(sums(read_series(self.redis, series_id("RequestCount", "app", t), first,
                                       last)[0]) for t in backends)
        self.assertEqual(targets, loads[0].ok + loads[1].ok)
        healthy, _ = read_series(self.redis, series_id("HealthyHostCount", "app"), first + 1, last)
        self.assertEqual({p[0] for p in healthy.values()}, {4})  # 2 each

    def restart_redis(self, port):
        """redis-server again on the same port and directory: it loads the snapshot it saved."""
        again = Program(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
                         self.tmp, "--save", "", "--appendonly", "no"],
                        os.path.join(self.tmp, "redis-again.log"), ready_fd=False)
        self.programs.append(again)
        wait_until(lambda: self.redis.command("PING") == "PONG", message="redis back")

    def test_redis_down_is_a_gap_of_missing_datapoints_never_zeros(self):
        backends = self.start_backends(2)
        lb = self.start_app(backends)
        group = series_id("RequestCount", "app")
        load = Load(lb.listeners[0], threads=2, rate=50)
        started = int(time.time()) + 1
        wait_for_second(self.redis, group, started + 1)
        # A Redis that comes back with its data (gantry up's has an append-only file): here a
        # snapshot saved as it shuts down.
        down = time.time()
        try:
            self.redis.command("SHUTDOWN", "SAVE")
        except RuntimeError:  # it closes the connection without a reply
            pass
        self.redis.program.wait()
        wait_until(lambda: "metrics: connection to" in lb.program.log(), message="the lb to notice")
        served = load.ok
        wait_until(lambda: time.time() > down + 4.5 and load.ok > served + 50, timeout=15,
                   message="four seconds served without Redis")
        up = time.time()
        self.restart_redis(self.redis.port)
        wait_until(lambda: "metrics: writing to" in lb.program.log().split("connection to")[-1],
                   timeout=10, message="the lb to write again")
        resumed = int(time.time()) + 1
        wait_for_second(self.redis, group, resumed + 1)
        self.assertEqual(load.stop(), [])  # the proxy never failed a request
        points, _ = read_series(self.redis, group, started, resumed + 1)
        before = range(started, int(down) - 1)
        gap = range(int(down) + 1, int(up) - 1)
        self.assertGreaterEqual(len(gap), 2)
        for second in before:
            self.assertIn(second, points)
            self.assertGreater(points[second][0], 0, second)
        for second in gap:  # missing, not 0
            self.assertNotIn(second, points)
        self.assertIn(resumed, points)
        self.assertIn(resumed + 1, points)
        self.assertGreater(points[resumed + 1][0], 0)
        self.assertGreater(lb.metric("gantry_lb_metrics_datapoints_dropped_total"), 0)
        self.assertGreater(lb.metric("gantry_lb_metrics_datapoints_written_total"), 0)

    def gantry_metrics_get(self, metric, stat, start, end, **dims):
        """A statistic over the seconds [start, end] as `gantry metrics get` (the store's
        reader, the autoscaler's) reads it; None when the window has no datapoint."""
        dims = {"LoadBalancer": "gantry-lb", **dims}
        args = ["metrics", "get", metric, "--stat", stat, "--window", f"{end + 1 - start}s",
                "--end", str(end + 1), "--redis", self.redis.url]
        for name, value in dims.items():
            args += ["--dimension", f"{name}={value}"]
        proc = self.run_program("gantry", args)
        if proc.returncode == 3:
            return None
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return float(proc.stdout)

    def test_target_response_time_p50_and_average_of_a_50ms_backend(self):
        backends = self.start_backends(2, env={"LATENCY": "50ms"})
        lb = self.start_app(backends)
        first = self.quiet_second()
        load = Load(lb.listeners[0], threads=4, rate=50)
        wait_until(lambda: load.ok >= 300, timeout=30, message="300 requests")
        self.assertEqual(load.stop(), [])
        last = int(time.time()) + 1
        wait_for_second(self.redis, series_id("RequestCount", "app"), last)
        # every response is in the histograms and in the value datapoints, once
        points, hists = read_series(self.redis, series_id("TargetResponseTime", "app"), first,
                                    last)
        self.assertEqual(sum(sum(h.values()) for h in hists.values()), load.ok)
        self.assertEqual(sum(p[1] for p in points.values()), load.ok)
        self.assertTrue(all(p[2] <= p[0] / p[1] <= p[3] for p in points.values()), points)
        # read back as the autoscaler reads it: p50 and Average within 10 % of 50 ms
        for dims in [{"TargetGroup": "app"}] + [{"TargetGroup": "app", "Target": t}
                                                for t in backends]:
            stats = {stat: self.gantry_metrics_get("TargetResponseTime", stat, first, last,
                                                   **dims)
                     for stat in ("p50", "Average", "SampleCount")}
            self.assertLess(abs(stats["p50"] - 0.05), 0.005, (dims, stats))
            self.assertLess(abs(stats["Average"] - 0.05), 0.005, (dims, stats))
        self.assertEqual(self.gantry_metrics_get("TargetResponseTime", "SampleCount", first,
                                                 last, TargetGroup="app"), load.ok)
        # a quiet second has no response time: missing, not 0
        self.assertIsNone(self.gantry_metrics_get("TargetResponseTime", "Average", first, first,
                                                  TargetGroup="app"))

    def test_reload_keeps_counting_and_a_removed_target_stops_being_written(self):
        backends = self.start_backends(3)
        lb = self.start_app(backends[:2])
        first = self.quiet_second()
        load = Load(lb.listeners[0], threads=2, rate=50)
        wait_until(lambda: load.ok >= 100, timeout=30, message="100 requests")
        # backends[1] leaves, backends[2] joins
        self.reload_lb(lb, app_yaml([backends[0], backends[2]], workers=2,
                                    redis_url=self.redis.url))
        wait_until(lambda: backends[2] in [t["address"] for t in
                                          lb.targets()["target_groups"][0]["targets"]
                                          if t["state"] == "healthy"],
                   message="the new target healthy")
        joined = int(time.time()) + 1
        wait_for_second(self.redis, series_id("RequestCount", "app"), joined + 2)
        # the balancer is renamed: its series change name
        self.reload_lb(lb, app_yaml([backends[0], backends[2]], workers=2,
                                    redis_url=self.redis.url, lb_lines=["name: edge"]))
        renamed = int(time.time()) + 1
        edge = series_id("RequestCount", "app", lb="edge")
        wait_for_second(self.redis, edge, renamed + 1)
        self.assertEqual(load.stop(), [])
        last = int(time.time()) + 1
        wait_for_second(self.redis, edge, last)
        # one count across the reloads: nothing lost, nothing twice
        before, _ = read_series(self.redis, series_id("RequestCount", "app"), first, last)
        after, _ = read_series(self.redis, edge, first, last)
        self.assertEqual(sums(before) + sums(after), load.ok)
        self.assertEqual(lb.metric('gantry_lb_target_requests_total{target_group="app"}'),
                         load.ok)
        # every second under one name or the other: the old one up to the rename
        switch = max(before) + 1
        self.assertEqual(sorted(before), list(range(first, switch)))
        self.assertEqual(sorted(after), list(range(switch, last + 1)))
        self.assertLessEqual(switch, renamed)
        # the removed target is no longer written (a second later: a keep-alive connection idle
        # at the reload still takes its next request by the old routes); the new one is, zeros
        # included
        gone, _ = read_series(self.redis, series_id("RequestCount", "app", backends[1]),
                              joined + 1, last)
        self.assertEqual(gone, {})
        new, _ = read_series(self.redis, series_id("RequestCount", "app", backends[2]), joined,
                             last)
        self.assertEqual(sorted(new), list(range(joined, switch)))
        self.assertGreater(sums(new), 0)

    def test_without_redis_nothing_is_written_or_logged(self):
        backends = self.start_backends(1)
        lb = self.start_lb(app_yaml(backends, workers=2))
        wait_until(lambda: lb.targets()["target_groups"][0]["targets"][0]["state"] == "healthy",
                   message="the target healthy")
        start = time.time()
        wait_until(lambda: time.time() > start + 2.5, message="a few ticks")
        self.assertEqual(lb.metric("gantry_lb_metrics_datapoints_written_total"), 0)
        self.assertEqual(lb.metric("gantry_lb_metrics_datapoints_dropped_total"), 0)
        self.assertNotIn("metrics", lb.program.log())
        self.assertEqual(self.redis.command("KEYS", "gantry:m:*"), [])
        lb.program.stop(signal.SIGTERM)
