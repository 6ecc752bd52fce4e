"""`gantry metrics put|get` and the listing against a real redis-server: the statistics of known
datapoints, writers summing into one second, missing data (exit 3), windows over gaps and minute
keys, the namespace inference, the keys' expiry after metrics.retention, reads through the
1-minute rollups, what the listing shows, and every error as one line with its exit status.
Datapoints are put at explicit past seconds (--time) and read with an explicit --end, so no test
depends on when in a second or a minute it runs."""
import os
import re
import subprocess
import time

from harness import GantryTestCase, binary, free_port

ALB_DIMS = ("--dimension", "TargetGroup=web", "--dimension", "LoadBalancer=gantry-lb")
ALB_ID = "LoadBalancer=gantry-lb,TargetGroup=web"


def minute_of(t):
    return t - t % 60


def hour_of(t):
    return t - t % 3600


class MetricsCliTest(GantryTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.now = int(time.time())

    def gantry(self, *args, redis=True):
        """bin/gantry metrics ARGS (--redis to the test's server unless redis is False); never a
        sanitizer report."""
        extra = ("--redis", self.redis.url) if redis else ()
        proc = self.run_program("gantry", ("metrics", *args, *extra))
        self.assertNotIn("Sanitizer", proc.stderr, proc.stderr)
        self.assertNotIn("runtime error", proc.stderr, proc.stderr)
        return proc

    def put(self, *args, redis=True):
        proc = self.gantry("put", *args, redis=redis)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        return proc

    def get(self, *args, redis=True):
        """The value get prints (its only line), or fails the test."""
        proc = self.gantry("get", *args, redis=redis)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        self.assertEqual(proc.stderr, "")
        self.assertRegex(proc.stdout, r"^\S+\n$")
        return proc.stdout.strip()

    def assert_missing(self, *args, redis=True):
        proc = self.gantry("get", *args, redis=redis)
        self.assertEqual(proc.returncode, 3, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("no datapoint in the window", proc.stderr)
        return proc.stderr

    def assert_error(self, status, args, message, redis=True):
        """The command fails with `status`, one line on stderr containing message, no stdout."""
        proc = self.run_program("gantry", ("metrics", *args,
                                           *(("--redis", self.redis.url) if redis else ())))
        self.assertEqual(proc.returncode, status, f"{args}: {proc.stdout}{proc.stderr}")
        self.assertEqual(proc.stdout, "", args)
        self.assertEqual(len(proc.stderr.splitlines()), 1, f"{args}: {proc.stderr}")
        self.assertIn(message, proc.stderr, args)
        self.assertNotIn("Sanitizer", proc.stderr)

    def config(self, text):
        return self.write_file("gantry.yaml", f"redis:\n  url: {self.redis.url}\n{text}")

    # --- put and get ---

    def test_put_then_get_every_statistic(self):
        t0 = self.now - 200
        for i in range(1, 11):  # 1..10 at consecutive seconds
            self.put("Latency", str(i), "--time", str(t0 + i), *ALB_DIMS, "--namespace", "App")
        # the dimensions in the other order name the same series
        window = ("--namespace", "App", "--dimension", "LoadBalancer=gantry-lb", "--dimension",
                  "TargetGroup=web", "--end", str(t0 + 11), "--window", "10s")
        expected = {"Sum": "55", "Average": "5.5", "Minimum": "1", "Maximum": "10",
                    "SampleCount": "10"}
        for stat, value in expected.items():
            with self.subTest(stat=stat):
                self.assertEqual(self.get("Latency", *window, "--stat", stat), value)
        self.assertEqual(self.get("Latency", *window), "5.5")  # Average by default

        # --verbose: the value, then the datapoints
        proc = self.gantry("get", "Latency", *window, "--verbose")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        value, detail = proc.stdout.splitlines()
        self.assertEqual(value, "5.5")
        self.assertRegex(detail, rf"^10 datapoints \(10 samples\) in \[{t0 + 1}, {t0 + 11}\) of "
                                 rf"App\|Latency\|{ALB_ID}$")

        # narrower windows: [t0+1, t0+6) holds 1..5, [t0+10, t0+11) the last one
        self.assertEqual(self.get("Latency", *window[:6], "--end", str(t0 + 6), "--window",
                                  "5s", "--stat", "Sum"), "15")
        self.assertEqual(self.get("Latency", *window[:6], "--end", str(t0 + 11), "--window",
                                  "1", "--stat", "Maximum"), "10")
        # what was written, as docs/metrics.md describes it
        key = f"gantry:m:s:App|Latency|{ALB_ID}:{minute_of(t0 + 1)}"
        self.assertEqual(self.redis.command("HGET", key, str(t0 + 1 - minute_of(t0 + 1))), "1")
        self.assertEqual(self.redis.command("ZSCORE", "gantry:m:series", f"App|Latency|{ALB_ID}"),
                         str(t0 + 10))

        # percentiles need histograms, which put does not write: missing data, with the reason
        stderr = self.assert_missing("Latency", *window, "--stat", "p99")
        self.assertIn("percentiles need latency histograms", stderr)

    def test_values_count_and_negative_numbers(self):
        t = self.now - 100
        self.put("Temp", "-3.5", "--time", str(t))
        self.put("Temp", "2", "--time", str(t + 1), "--count", "3")  # 2 observed three times
        window = ("--end", str(t + 2), "--window", "2s")
        self.assertEqual(self.get("Temp", *window, "--stat", "Sum"), "2.5")
        self.assertEqual(self.get("Temp", *window, "--stat", "SampleCount"), "4")
        self.assertEqual(self.get("Temp", *window, "--stat", "Minimum"), "-3.5")
        self.assertEqual(self.get("Temp", *window, "--stat", "Average"), "0.625")
        # 15 significant digits: the sum's rounding does not show; options before the operands
        self.put("--time", str(t), "Ratio", "0.1")
        self.put("--time", str(t), "Ratio", "0.2")
        self.assertEqual(self.get("--stat", "Sum", *window, "Ratio"), "0.3")
        for i in range(10):
            self.put("Cpu", "51.2", "--time", str(t - i))
        self.assertEqual(self.get("Cpu", "--end", str(t + 1), "--window", "10s"), "51.2")
        self.put("Big", "123456789.125", "--time", str(t))
        self.assertEqual(self.get("Big", *window), "123456789.125")
        self.put("Tiny", "0.000001", "--time", str(t))
        self.assertEqual(self.get("Tiny", *window), "1e-06")
        # after `--`, a name starting with '-' is a name
        redis = ("--redis", self.redis.url)
        self.put("--time", str(t), *redis, "--", "-x", "1", redis=False)
        self.assertEqual(self.get("--end", str(t + 1), *redis, "--", "-x", redis=False), "1")

    def test_two_writers_sum_into_one_second(self):
        t = self.now - 100
        self.put("Hits", "3", "--time", str(t))
        self.put("Hits", "4", "--time", str(t))
        window = ("--end", str(t + 1), "--window", "1s")
        self.assertEqual(self.get("Hits", *window, "--stat", "Sum"), "7")
        self.assertEqual(self.get("Hits", *window, "--stat", "SampleCount"), "2")
        self.assertEqual(self.get("Hits", *window, "--stat", "Minimum"), "3")
        self.assertEqual(self.get("Hits", *window, "--stat", "Maximum"), "4")
        self.assertEqual(self.get("Hits", *window, "--stat", "Average"), "3.5")
        key = f"gantry:m:s:Custom|Hits|:{minute_of(t)}"
        self.assertEqual(self.redis.command("HGET", key, str(t - minute_of(t))), "7 2 3 4")

        # eight writers at once: the Lua merge is atomic, nothing is lost
        procs = [subprocess.Popen([binary("gantry"), "metrics", "put", "Burst", str(i), "--time",
                                   str(t), "--redis", self.redis.url], cwd=self.tmp,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i in range(1, 9)]
        for p in procs:
            out, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.get("Burst", *window, "--stat", "Sum"), "36")
        self.assertEqual(self.get("Burst", *window, "--stat", "SampleCount"), "8")
        self.assertEqual(self.get("Burst", *window, "--stat", "Maximum"), "8")

    def test_missing_data_exits_3(self):
        t = self.now - 100
        self.assert_missing("Nothing", "--end", str(t), "--window", "1m")
        self.put("Once", "5", "--time", str(t))
        # the window is [end - window, end): the second `end` itself is outside it
        self.assert_missing("Once", "--end", str(t), "--window", "1m")
        self.assert_missing("Once", "--end", str(t + 61), "--window", "1m")
        self.assertEqual(self.get("Once", "--end", str(t + 1), "--window", "1s"), "5")
        self.assertEqual(self.get("Once", "--end", str(t + 60), "--window", "1m"), "5")
        # another series of the same name is another series
        self.assert_missing("Once", "--dimension", "A=b", "--end", str(t + 1))
        self.assert_missing("Once", "--namespace", "Other", "--end", str(t + 1))
        # the default end is now, the default window 60s
        self.put("Recent", "9", "--time", str(self.now - 5))
        self.assertEqual(self.get("Recent"), "9")

    def test_window_spanning_a_gap(self):
        # two datapoints at the end of a minute, one three minutes later: the window reads four
        # minute keys, the two between them absent
        t0 = minute_of(self.now - 600) + 58
        for t, v in ((t0, 1), (t0 + 1, 2), (t0 + 125, 4)):
            self.put("Gappy", str(v), "--time", str(t))
        everything = ("--end", str(t0 + 126), "--window", "126s")
        self.assertEqual(self.get("Gappy", *everything, "--stat", "Sum"), "7")
        self.assertEqual(self.get("Gappy", *everything, "--stat", "SampleCount"), "3")
        proc = self.gantry("get", "Gappy", *everything, "--verbose")
        self.assertRegex(proc.stdout.splitlines()[1], r"^3 datapoints \(3 samples\)")
        # the gap alone holds nothing; the windows on each side of it one part each
        self.assert_missing("Gappy", "--end", str(t0 + 125), "--window", "123s")
        self.assertEqual(self.get("Gappy", "--end", str(t0 + 125), "--window", "125s",
                                  "--stat", "Sum"), "3")
        self.assertEqual(self.get("Gappy", "--end", str(t0 + 126), "--window", "125s",
                                  "--stat", "Sum"), "6")

    def test_namespace_inference(self):
        t = self.now - 100
        cases = [("RequestCount", "AWS/ApplicationELB"), ("HTTPCode_Target_5XX_Count",
                                                          "AWS/ApplicationELB"),
                 ("HTTPCode_ELB_4XX_Count", "AWS/ApplicationELB"),
                 ("TargetResponseTime", "AWS/ApplicationELB"),
                 ("UnHealthyHostCount", "AWS/ApplicationELB"),
                 ("RequestCountPerTarget", "AWS/ApplicationELB"),
                 ("CPUUtilization", "AWS/ECS"), ("MemoryUtilization", "AWS/ECS"),
                 ("CpuUtilized", "ECS/ContainerInsights"),
                 ("MemoryReserved", "ECS/ContainerInsights"), ("queue_depth", "Custom")]
        for i, (name, ns) in enumerate(cases):
            with self.subTest(name=name):
                self.put(name, str(i + 1), "--namespace", ns, "--time", str(t),
                         "--dimension", "ServiceName=web")
                self.assertEqual(self.get(name, "--dimension", "ServiceName=web", "--end",
                                          str(t + 1)), str(i + 1))
        series = self.redis.command("ZRANGE", "gantry:m:series", "0", "-1")
        self.assertEqual(sorted(series), sorted(f"{ns}|{name}|ServiceName=web"
                                                for name, ns in cases))
        # put's own default is Custom, whatever the name: get then needs --namespace Custom
        self.put("RequestCount", "5", "--time", str(t))
        self.assertIn("Custom|RequestCount|", self.redis.command("ZRANGE", "gantry:m:series", "0", "-1"))
        self.assert_missing("RequestCount", "--end", str(t + 1))
        self.assertEqual(self.get("RequestCount", "--namespace", "Custom", "--end", str(t + 1)),
                         "5")
        # the name is matched exactly
        self.put("requestcount", "6", "--time", str(t))
        self.assertEqual(self.get("requestcount", "--end", str(t + 1)), "6")

    # --- retention and rollups ---

    def test_keys_expire_after_the_retention(self):
        t = self.now - 30
        # the default retention (1h) and rollup retention (1d)
        self.put("Kept", "1", "--time", str(t))
        ttl = self.redis.command("TTL", f"gantry:m:s:Custom|Kept|:{minute_of(t)}")
        self.assertGreater(ttl, 3600 - 60)
        self.assertLessEqual(ttl, 3600 + 60)
        rttl = self.redis.command("TTL", f"gantry:m:r:Custom|Kept|:{hour_of(t)}")
        self.assertGreater(rttl, 86400)
        self.assertLessEqual(rttl, 86400 + 3600)
        # the configured ones
        config = self.config("metrics:\n  retention: 2m\n  rollup_retention: 2h\n")
        self.put("Short", "1", "--time", str(t), "-c", config, redis=False)
        ttl = self.redis.command("TTL", f"gantry:m:s:Custom|Short|:{minute_of(t)}")
        self.assertGreater(ttl, 0)
        self.assertLessEqual(ttl, 120 + 60)
        rttl = self.redis.command("TTL", f"gantry:m:r:Custom|Short|:{hour_of(t)}")
        self.assertGreater(rttl, 7200 - 60)
        self.assertLessEqual(rttl, 7200 + 3600)

    def test_older_than_retention_reads_the_rollups(self):
        config = self.config("metrics:\n  retention: 1m\n")
        t = self.now - 300
        self.put("Old", "7", "--time", str(t), "-c", config, redis=False)
        self.put("Old", "3", "--time", str(t), "-c", config, redis=False)
        rollup = f"gantry:m:r:Custom|Old|:{hour_of(t)}"
        self.assertEqual(self.redis.command("HGET", rollup, str((minute_of(t) - hour_of(t)) // 60)),
                         "10 2 3 7")
        window = ("-c", config, "--window", "10m")
        self.assertEqual(self.get("Old", *window, "--stat", "Sum", redis=False), "10")
        self.assertEqual(self.get("Old", *window, "--stat", "SampleCount", redis=False), "2")
        self.assertEqual(self.get("Old", *window, "--stat", "Maximum", redis=False), "7")
        proc = self.gantry("get", "Old", *window, "--verbose", redis=False)
        self.assertRegex(proc.stdout.splitlines()[1], r"^1 datapoint \(2 samples\)")
        # with the default retention (1h), the same window reads the 1-second datapoints
        self.assertEqual(self.get("Old", "--window", "10m", "--stat", "Sum"), "10")
        # the rollup it read: without it the datapoint is gone for the 1m retention only
        self.redis.command("DEL", rollup)
        self.assert_missing("Old", *window, redis=False)
        self.assertEqual(self.get("Old", "--window", "10m", "--stat", "Sum"), "10")

    def test_rollups_stop_at_the_windows_end(self):
        """A window that ends before a datapoint older than the retention must not see it (the
        rollup part of metric_read_window is bounded by the retention's split, not by end)."""
        config = self.config("metrics:\n  retention: 1m\n")
        t = self.now - 300
        self.put("Later", "7", "--time", str(t), "-c", config, redis=False)
        # [t - 200, t - 100): a minute and more before the datapoint
        self.assert_missing("Later", "-c", config, "--end", str(t - 100), "--window", "100s",
                            redis=False)

    # --- the listing ---

    def test_listing_groups_series_with_their_natural_statistic(self):
        t = self.now - 5
        self.put("RequestCount", "600", *ALB_DIMS, "--namespace", "AWS/ApplicationELB",
                 "--time", str(t))
        self.put("HealthyHostCount", "2", *ALB_DIMS, "--namespace", "AWS/ApplicationELB",
                 "--time", str(t))
        self.put("ProcessedBytes", "6144000", *ALB_DIMS, "--namespace", "AWS/ApplicationELB",
                 "--time", str(t))
        self.put("CPUUtilization", "51.2", "--namespace", "AWS/ECS", "--dimension",
                 "ServiceName=web", "--dimension", "ClusterName=prod", "--time", str(t))
        self.put("queue_depth", "42", "--time", str(t))
        # the load balancer and one of its targets, a custom series with two dimensions
        self.put("ActiveConnectionCount", "120", "--dimension", "LoadBalancer=gantry-lb",
                 "--namespace", "AWS/ApplicationELB", "--time", str(t))
        self.put("RequestCount", "60", *ALB_DIMS, "--dimension", "Target=127.0.0.1:9001",
                 "--namespace", "AWS/ApplicationELB", "--time", str(t))
        self.put("jobs", "3", "--dimension", "B=2", "--dimension", "A=1", "--time", str(t))
        # gantry-lb's latency histograms, as it writes them: 90 samples in bucket 100 (octave
        # 12: 4.1 to 8.2 ms), 10 in bucket 130 (octave 16: 66 to 131 ms)
        latency_id = f"AWS/ApplicationELB|TargetResponseTime|{ALB_ID}"
        self.redis.command("HSET", f"gantry:m:s:{latency_id}:{minute_of(t)}",
                           f"h{t - minute_of(t)}", "100:90 130:10")
        self.redis.command("ZADD", "gantry:m:series", str(t), latency_id)
        # a series with no datapoint in the window, and a hostile id
        self.put("Stale", "1", "--time", str(t - 3000))
        self.redis.command("ZADD", "gantry:m:series", str(t), "Custom|evil\x1b[2J|")

        proc = self.gantry("--window", "1m")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = proc.stdout
        self.assertRegex(out, rf"^last 1m to \d\d:\d\d:\d\d \(local time\), Redis at "
                              rf"{re.escape(self.redis.url)}\n\n")
        blocks = out.split("\n\n")[1:]
        titles = [b.splitlines()[0] for b in blocks]
        # from the load balancer to its groups to their targets; the most specific dimension
        # names a block, what it belongs to follows
        self.assertEqual(titles, [
            "AWS/ApplicationELB  LoadBalancer=gantry-lb",
            "AWS/ApplicationELB  TargetGroup=web (LoadBalancer=gantry-lb)",
            "AWS/ApplicationELB  Target=127.0.0.1:9001 (TargetGroup=web, LoadBalancer=gantry-lb)",
            "AWS/ECS  ServiceName=web (ClusterName=prod)",
            "Custom",
            "Custom  A=1 (B=2)"])
        self.assertRegex(blocks[0], r"(?m)^  ActiveConnectionCount\s+120\.0$")  # a level
        self.assertRegex(blocks[2], r"(?m)^  RequestCount\s+1\.0/s$")
        self.assertRegex(blocks[5], r"(?m)^  jobs\s+3\.0$")
        alb = blocks[1].splitlines()[1:]
        self.assertEqual([line.split()[0] for line in alb],
                         ["RequestCount", "TargetResponseTime", "ProcessedBytes",
                          "HealthyHostCount"])
        self.assertRegex(alb[0], r"^  RequestCount\s+10\.0/s$")
        self.assertRegex(alb[2], r"^  ProcessedBytes\s+100\.0 KiB/s$")
        self.assertRegex(alb[3], r"^  HealthyHostCount\s+2\.0$")
        p50, p99 = map(float, re.fullmatch(r"  TargetResponseTime\s+p50 (\S+) ms  p99 (\S+) ms",
                                           alb[1]).groups())
        self.assertTrue(4.0 <= p50 < 8.3, p50)
        self.assertTrue(65 <= p99 < 132, p99)
        # the listing's percentiles are get's (in seconds, like the values), shown in ms
        for stat, shown in (("p50", p50), ("p99", p99)):
            s = float(self.get("TargetResponseTime", *ALB_DIMS, "--stat", stat, "--window", "1m"))
            self.assertEqual(f"{s * 1000:.1f}", f"{shown:.1f}")
        self.assertRegex(blocks[3], r"(?m)^  CPUUtilization\s+51\.2 %$")
        custom = blocks[4].splitlines()[1:]
        self.assertEqual(len(custom), 3, blocks[4])
        self.assertRegex(blocks[4], r"(?m)^  Stale\s+-$")
        self.assertRegex(blocks[4], r"(?m)^  queue_depth\s+42\.0$")
        self.assertRegex(blocks[4], r"(?m)^  evil\\x1b\[2J\s+-$")
        self.assertNotIn("\x1b", out)
        # the values are aligned: every value starts in one column
        lines = [line for line in out.splitlines() if line.startswith("  ")]
        columns = {len(re.match(r"  \S+\s+", line).group(0)) for line in lines}
        self.assertEqual(len(columns), 1, out)

    def test_listing_of_an_empty_store_and_the_redis_it_finds(self):
        proc = self.gantry()
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, f"no metric series in Redis at {self.redis.url} (nothing "
                                      "has written metrics yet)\n")
        # redis.url of the configuration
        self.put("X", "1", "--time", str(self.now - 2))
        config = self.config("")
        proc = self.gantry("-c", config, redis=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout, r"(?m)^  X\s+1\.0$")
        # the Redis `gantry up` runs: up.run_dir/redis.sock (here the test server's socket)
        config = self.write_file("up.yaml", f"up:\n  run_dir: {self.tmp}\n")
        proc = self.gantry("-c", config, redis=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"Redis at unix:{self.tmp}/redis.sock", proc.stdout)
        self.assertRegex(proc.stdout, r"(?m)^  X\s+1\.0$")

    # --- errors ---

    def test_redis_unreachable_is_one_line_and_exit_1(self):
        down = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
        for args in (("put", "X", "1"), ("get", "X"), ()):
            with self.subTest(args=args):
                self.assert_error(1, (*args, "--redis", down), f"cannot reach Redis at {down}",
                                  redis=False)
        # a Redis that goes away between two commands
        self.put("X", "1")
        self.redis.program.stop()
        self.assert_error(1, ("get", "X"), "cannot reach Redis")

    def test_invalid_values_exit_1(self):
        cases = [
            (("put", "X", "1", "--dimension", "TargetGroup"), "expected NAME=VALUE"),
            (("get", "X", "--dimension", "=web"), "expected NAME=VALUE"),
            (("get", "X", "--dimension", "TargetGroup="), "expected NAME=VALUE"),
            (("get", "X", "--dimension", "A=b", "--dimension", "A=c"), "given twice"),
            (("get", "X", "--dimension", "A=b|c"), "holds '|'"),
            (("put", "a|b", "1"), "holds '|'"),
            (("put", "X", "1", "--namespace", ""), "empty"),
            (("put", "X" * 256, "1"), "longer than 255"),
            (("get", "X", *[f"--dimension=d{i}=v" for i in range(9)]), "at most 8"),
            (("get", "X", "--stat", "p0"), "--stat 'p0'"),
            (("get", "X", "--stat", "p100.1"), "--stat 'p100.1'"),
            (("get", "X", "--stat", "average"), "--stat 'average'"),
            (("get", "X", "--window", "500ms"), "--window '500ms'"),
            (("get", "X", "--window", "1500ms"), "--window '1500ms'"),
            (("get", "X", "--window", "0s"), "--window '0s'"),
            (("get", "X", "--window", "366d"), "--window '366d'"),
            (("--window", "soon"), "--window 'soon'"),
            (("get", "X", "--end", "yesterday"), "--end 'yesterday'"),
            (("put", "X", "abc"), "VALUE 'abc'"),
            (("put", "X", "nan"), "VALUE 'nan'"),
            (("put", "X", "1e999"), "VALUE '1e999'"),
            (("put", "X", "1", "--time", "-5"), "--time '-5'"),
            (("put", "X", "1", "--count", "0"), "--count '0'"),
            (("put", "X", "1e308", "--count", "10"), "too large"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_error(1, args, message)
        self.assertEqual(self.redis.command("KEYS", "gantry:m:*"), [])

    def test_usage_errors_exit_2(self):
        cases = [
            (("frobnicate",), "unknown command 'frobnicate'"),
            (("put", "X"), "put takes a metric name and a value"),
            (("put", "X", "1", "2"), "put takes a metric name and a value"),
            (("get",), "get takes one metric name"),
            (("get", "X", "Y"), "get takes one metric name"),
            (("put", "X", "1", "--stat", "Sum"), "--stat is an option of get only"),
            (("get", "X", "--count", "2"), "--count is an option of put only"),
            (("get", "X", "--time", "2"), "--time is an option of put only"),
            (("--verbose",), "--verbose is an option of get only"),
            (("--namespace", "A"), "--namespace is an option of put and get only"),
            (("put", "X", "1", "--window", "1m"), "--window is an option of get and the listing"),
            (("get", "X", "--bogus"), "unknown option"),
            (("get", "X", "--redis", "http://nope"), "--redis 'http://nope'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_error(2, args, message, redis=False)

    def test_help(self):
        proc = self.run_program("gantry", ("metrics", "--help"))
        self.assertEqual(proc.returncode, 0)
        for text in ("gantry metrics put NAME VALUE", "gantry metrics get NAME", "--dimension",
                     "--window", "--stat", "exit status 3", "Exit status"):
            self.assertIn(text, proc.stdout)
        proc = self.run_program("gantry", ("--help",))
        self.assertRegex(proc.stdout, r"(?m)^  metrics\s+")
