"""gantry-metrics against a real gantry-core, real tasks and a real redis-server: CPU and memory
utilisation of tasks and services read back from the metric store (gantry:m:s:ID:MINUTE hashes,
read here by a small reader of metrics/store.h's format), tasks coming and going, Redis going away
and coming back, damaged task records, the admin endpoint, --check and SIGHUP. Every wait polls
with a deadline; "a few passes later" is counted on the daemon's own samples counter."""
import json
import os
import re
import signal
import time

from core_fixtures import CoreTestCase
from harness import DEFAULT_TIMEOUT, Program, http_request, wait_until

# Half a core, steadily: busy while the CPU time used is behind half the time elapsed, asleep
# (10 ms) while ahead. A loop of 50 ms busy (wall time) then 50 ms asleep gets less than half a
# core whenever another process takes the CPU during its busy part (this machine has 2 cores,
# shared with other test runs); this one catches up, a debt of at most 0.2 s.
BURN_HALF_CORE = ("import time\n"
                  "w0, c0 = time.monotonic(), time.process_time()\n"
                  "while True:\n"
                  "  debt = 0.5 * (time.monotonic() - w0) - (time.process_time() - c0)\n"
                  "  if debt > 0.2: c0 -= debt - 0.2\n"
                  "  if debt <= 0: time.sleep(0.01)\n")
ALLOC_40_MIB = ("import time\n"
                "b = bytearray(40 * 1024 * 1024)\n"
                "print('allocated', flush=True)\n"
                "time.sleep(600)\n")
SLEEP = "import time\ntime.sleep(600)\n"


def python_taskdef(family, script, cpu=None, memory=64, container_cpu=None):
    """A one-container task running python3 -c SCRIPT; cpu: the task-level reservation (a CFS
    quota); container_cpu: the container's (a weight, no quota)."""
    container = {"name": "main", "image": "python", "command": ["python3", "-c", script],
                 "memory": memory, "essential": True}
    if container_cpu is not None:
        container["cpu"] = container_cpu
    td = {"family": family, "containerDefinitions": [container]}
    if cpu is not None:
        td["cpu"] = str(cpu)
    return td


def series_id(ns, name, **dims):
    """metrics/series.h: "NS|Name|K=V,K=V", dimensions sorted by name."""
    return f"{ns}|{name}|" + ",".join(f"{k}={v}" for k, v in sorted(dims.items()))


def parse_point(text):
    """A stored datapoint: "SUM" (one sample) or "SUM COUNT MIN MAX"; (sum, count)."""
    parts = text.split()
    return (float(parts[0]), 1.0) if len(parts) == 1 else (float(parts[0]), float(parts[1]))


def read_points(redis, sid, start, end):
    """{second: (sum, count)} of the 1-second datapoints of [start, end)."""
    points = {}
    for minute in range(start - start % 60, end, 60):
        reply = redis.command("HGETALL", f"gantry:m:s:{sid}:{minute}") or []
        for field, value in zip(reply[::2], reply[1::2]):
            if field.isdigit() and start <= minute + int(field) < end:
                points[minute + int(field)] = parse_point(value)
    return points


def last_second(redis, sid):
    """gantry:m:series: the last second written to the series, or None."""
    value = redis.command("ZSCORE", "gantry:m:series", sid)
    return int(value) if value else None


def task_id(arn):
    return arn.rsplit("/", 1)[1]


def rss_anon_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no RssAnon for {pid}")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def pids_in_group(pgrp):
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getpgid(int(entry)) == pgrp:
                pids.append(int(entry))
        except OSError:
            pass
    return pids


PROM_LINE = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)$')


def parse_prometheus(text):
    """{(name, frozenset of labels): value} of the labelled samples, {name: value} of the rest."""
    labelled, plain = {}, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = PROM_LINE.match(line)
        if m:
            labels = frozenset(re.findall(r'([a-z]+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            labelled[(m.group(1), labels)] = float(m.group(3))
        else:
            name, value = line.split()
            plain[name] = float(value)
    return labelled, plain


class Metrics:
    def __init__(self, program, addr, redis):
        self.program = program
        self.addr = addr
        self.redis = redis

    def scrape(self):
        status, headers, body = http_request(self.addr, path="/metrics")
        if status != 200:
            raise AssertionError(f"/metrics: {status} {body!r}")
        return parse_prometheus(body.decode())

    def samples(self):
        return self.scrape()[1]["gantry_metrics_samples_total"]

    def wait_passes(self, n, timeout=DEFAULT_TIMEOUT):
        """Waits until n more passes have run."""
        target = self.samples() + n
        wait_until(lambda: self.samples() >= target, timeout=timeout, interval=0.1,
                   message=f"{n} more passes")

    def average(self, sid, seconds=5, timeout=20, since=0):
        """The average of the series over its last `seconds` 1-second datapoints (from the
        second `since` on), waiting for that many (the first seconds of a task, still starting,
        are not among them: the window ends now)."""
        def window():
            now = int(time.time())
            points = read_points(self.redis, sid, max(now - seconds - 1, since), now + 1)
            if len(points) < seconds:
                return None
            recent = sorted(points)[-seconds:]
            return (sum(points[s][0] for s in recent) / sum(points[s][1] for s in recent),
                    [points[s][0] / points[s][1] for s in recent])
        return wait_until(window, timeout=timeout, interval=0.2,
                          message=f"{seconds} datapoints of {sid}")


class GantryMetricsTest(CoreTestCase):
    def start_metrics(self, extra="", args=(), redis_url=None):
        config = self.write_file(
            "metrics.yaml",
            f'redis: {{url: "{redis_url or self.redis.url}", connect_timeout: 500ms}}\n'
            "metrics:\n  admin: 127.0.0.1:0\n" + extra)
        program = self.start_program("gantry-metrics", ["-c", config, *args])
        self.addCleanup(self.check_clean_exit, program)
        addr = program.wait_ready()[0]
        return Metrics(program, addr, self.redis)

    def check_clean_exit(self, program):
        """SIGTERM stops it with status 0, and (under ASan) without a sanitizer report."""
        status = program.stop()
        log = program.log()
        self.assertEqual(status, 0, log)
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)

    def run_task(self, core, family):
        doc = core.ok("RunTask", {"taskDefinition": family})
        self.assertEqual(doc["failures"], [])
        arn = doc["tasks"][0]["taskArn"]
        wait_until(lambda: self.task(core, arn)["lastStatus"] == "RUNNING",
                   message=f"{family} RUNNING")
        return arn

    def task(self, core, arn):
        return core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]

    def task_pid(self, core, arn):
        return int(self.task(core, arn)["containers"][0]["runtimeId"])

    def service_task(self, core, service):
        core.wait_running(service, 1)
        [t] = [t for t in core.tasks(serviceName=service) if t["lastStatus"] == "RUNNING"]
        return t["taskArn"]

    def ecs(self, name, **dims):
        return series_id("AWS/ECS", name, **dims)

    def insights(self, name, **dims):
        return series_id("ECS/ContainerInsights", name, **dims)

    # --- CPU ---

    def test_cpu_utilisation_against_the_reservation(self):
        """Half a core is 100% of a 512-unit task and 50% of a 1024-unit one. The 512-unit task
        runs under a CFS quota of exactly half a core (task-level cpu): the loop's 50% duty cycle
        stays within it. The 1024-unit service task reserves its CPU at the container level (a
        weight, no quota), as the demo service does."""
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("burn512", BURN_HALF_CORE, cpu=512))
        core.ok("RegisterTaskDefinition",
                python_taskdef("burn1024", BURN_HALF_CORE, container_cpu=1024))
        core.ok("CreateService", {"serviceName": "burner", "taskDefinition": "burn1024",
                                  "desiredCount": 1})
        metrics = self.start_metrics()
        small = task_id(self.run_task(core, "burn512"))
        big = task_id(self.service_task(core, "burner"))
        since = int(time.time()) + 2  # the interpreters' start is not part of the steady state

        pct, seen = metrics.average(self.ecs("CPUUtilization", ClusterName="default",
                                             TaskId=small), since=since)
        self.assertAlmostEqual(pct, 100, delta=10, msg=f"512 units, half a core: {seen}")
        pct, seen = metrics.average(self.ecs("CPUUtilization", ClusterName="default",
                                             ServiceName="burner", TaskId=big), since=since)
        self.assertAlmostEqual(pct, 50, delta=5, msg=f"1024 units, half a core: {seen}")
        pct, seen = metrics.average(self.ecs("CPUUtilization", ClusterName="default",
                                             ServiceName="burner"), since=since)
        self.assertAlmostEqual(pct, 50, delta=5, msg=f"the service's: {seen}")
        units, seen = metrics.average(self.insights("CpuUtilized", ClusterName="default",
                                                    ServiceName="burner", TaskId=big),
                                      since=since)
        self.assertAlmostEqual(units, 512, delta=51, msg=f"CPU units used: {seen}")
        reserved, _ = metrics.average(self.insights("CpuReserved", ClusterName="default",
                                                    ServiceName="burner"), seconds=2)
        self.assertEqual(reserved, 1024)
        reserved, _ = metrics.average(self.insights("CpuReserved", ClusterName="default",
                                                    TaskId=small), seconds=2)
        self.assertEqual(reserved, 512)

    def test_a_new_task_gets_no_cpu_datapoint_before_it_has_a_delta(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("idle", SLEEP, cpu=256))
        metrics = self.start_metrics()
        tid = task_id(self.run_task(core, "idle"))
        memory = self.insights("MemoryUtilized", ClusterName="default", TaskId=tid)
        cpu = self.ecs("CPUUtilization", ClusterName="default", TaskId=tid)
        wait_until(lambda: last_second(self.redis, memory), message="the first sample")
        metrics.wait_passes(3)
        first = min(read_points(self.redis, memory, int(time.time()) - 30, int(time.time()) + 1))
        cpu_points = read_points(self.redis, cpu, first - 5, int(time.time()) + 1)
        self.assertNotIn(first, cpu_points, "the first sample has no CPU delta: no datapoint")
        self.assertTrue(cpu_points, "the later samples have one")
        self.assertLess(max(s / n for s, n in cpu_points.values()), 20, "a sleeping task")

    def test_without_cgroups_the_process_groups_are_measured(self):
        """gantry-core without cgroups: each container's process group (here a shell and the
        python it runs) is what the task uses; memory is the processes' resident sets."""
        core = self.start_core(core_yaml="  cgroups: false\n")
        core.ok("RegisterTaskDefinition", {
            "family": "shell", "cpu": "1024", "containerDefinitions": [{
                "name": "main", "image": "sh", "memory": 128,
                "command": ["/bin/sh", "-c", 'python3 -c "$BURN"; exit 1'],  # a child, no exec
                "environment": [{"name": "BURN", "value": BURN_HALF_CORE}]}]})
        metrics = self.start_metrics()
        arn = self.run_task(core, "shell")
        since = int(time.time()) + 2
        dims = {"ClusterName": "default", "TaskId": task_id(arn)}
        pct, seen = metrics.average(self.ecs("CPUUtilization", **dims), since=since)
        self.assertAlmostEqual(pct, 50, delta=5, msg=f"half a core in the shell's child: {seen}")
        leader = self.task_pid(core, arn)
        rss = sum(rss_mib(pid) for pid in pids_in_group(leader))
        mib, seen = metrics.average(self.insights("MemoryUtilized", **dims), seconds=2,
                                    since=since)
        self.assertAlmostEqual(mib, rss, delta=3, msg=f"the group's RSS {rss:.1f} MiB: {seen}")

    # --- memory ---

    def test_memory_utilisation_against_the_reservation(self):
        """40 MiB allocated in a 64 MiB task: its anonymous memory (the 40 MiB and the
        interpreter's own few MiB, which the test reads from /proc as the truth) over 64 MiB."""
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("alloc", ALLOC_40_MIB, memory=64))
        core.ok("CreateService", {"serviceName": "alloc", "taskDefinition": "alloc",
                                  "desiredCount": 1})
        metrics = self.start_metrics()
        arn = self.service_task(core, "alloc")
        pid = self.task_pid(core, arn)
        log = os.path.join(self.tmp, "run", "tasks", task_id(arn), "main.log")
        wait_until(lambda: os.path.exists(log) and "allocated" in open(log).read(),
                   message="the 40 MiB allocated")
        truth, since = rss_anon_mib(pid), int(time.time()) + 1
        dims = {"ClusterName": "default", "ServiceName": "alloc", "TaskId": task_id(arn)}
        pct, seen = metrics.average(self.ecs("MemoryUtilization", **dims), seconds=3,
                                    since=since)
        self.assertAlmostEqual(pct, 62.5, delta=15, msg=f"40 MiB of 64 and more: {seen}")
        self.assertGreaterEqual(pct, 62.5)
        self.assertAlmostEqual(pct, truth / 64 * 100, delta=5, msg=f"RssAnon {truth:.1f} MiB")
        mib, _ = metrics.average(self.insights("MemoryUtilized", **dims), seconds=3,
                                 since=since)
        self.assertAlmostEqual(mib, truth, delta=3)
        reserved, _ = metrics.average(self.insights("MemoryReserved", **dims), seconds=2)
        self.assertEqual(reserved, 64)
        pct_service, _ = metrics.average(
            self.ecs("MemoryUtilization", ClusterName="default", ServiceName="alloc"), seconds=3,
            since=since)
        self.assertAlmostEqual(pct_service, pct, delta=3, msg="one task: the service's is its")

    # --- tasks coming and going ---

    def test_stopped_tasks_stop_being_written_and_new_ones_start(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("sleeper", SLEEP))
        metrics = self.start_metrics()
        first = self.run_task(core, "sleeper")
        first_series = self.insights("MemoryUtilized", ClusterName="default",
                                     TaskId=task_id(first))
        wait_until(lambda: last_second(self.redis, first_series), message="the first task's data")
        core.ok("StopTask", {"task": first})
        wait_until(lambda: self.task(core, first)["lastStatus"] == "STOPPED",
                   message="the task STOPPED")
        metrics.wait_passes(1)
        stopped_at = last_second(self.redis, first_series)
        second = self.run_task(core, "sleeper")
        started = time.monotonic()
        second_series = self.insights("MemoryUtilized", ClusterName="default",
                                      TaskId=task_id(second))
        wait_until(lambda: last_second(self.redis, second_series), timeout=5,
                   message="the new task's datapoints")
        self.assertLess(time.monotonic() - started, 5)
        metrics.wait_passes(3)
        self.assertEqual(last_second(self.redis, first_series), stopped_at,
                         "a stopped task gets no new datapoints")
        self.assertGreater(last_second(self.redis, second_series), stopped_at)
        labelled, plain = metrics.scrape()
        tasks = {dict(labels).get("task") for (name, labels) in labelled
                 if name == "gantry_ecs_memory_utilized_mib"}
        self.assertEqual(tasks, {task_id(second)})
        self.assertEqual(plain["gantry_metrics_tasks"], 1)

    # --- Redis ---

    def restart_redis_on_same_port(self):
        port = self.redis.port
        self.redis.program.stop()
        program = Program(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
                           self.tmp, "--save", "", "--appendonly", "no"],
                          os.path.join(self.tmp, "redis-again.log"), ready_fd=False)
        self.programs.append(program)
        self.redis.program = program
        wait_until(lambda: self.redis.command("PING") == "PONG", message="redis back")

    def test_redis_stopped_and_restarted(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("sleeper", SLEEP))
        core.ok("CreateService", {"serviceName": "svc", "taskDefinition": "sleeper",
                                  "desiredCount": 1})
        metrics = self.start_metrics()
        tid = task_id(self.service_task(core, "svc"))
        series = self.insights("MemoryUtilized", ClusterName="default", ServiceName="svc",
                               TaskId=tid)
        wait_until(lambda: last_second(self.redis, series), message="datapoints")

        self.redis.program.stop()
        metrics.wait_passes(4)
        _, plain = metrics.scrape()
        self.assertEqual(plain["gantry_metrics_redis_up"], 0)
        self.assertGreater(plain["gantry_metrics_datapoints_dropped_total"], 0)
        self.assertEqual(plain["gantry_metrics_tasks"], 1, "the known task is still sampled")
        self.assertEqual(http_request(metrics.addr, path="/healthz")[0], 200)
        log = metrics.program.log()
        self.assertEqual(log.count("datapoints are dropped until it answers again"), 1, log)

        self.restart_redis_on_same_port()  # empty: gantry-core writes its state again
        wait_until(lambda: last_second(self.redis, series), timeout=20,
                   message="datapoints after Redis came back")
        self.assertIsNone(metrics.program.proc.poll())
        wait_until(lambda: "answers again" in metrics.program.log(), message="the end logged")
        self.assertEqual(metrics.scrape()[1]["gantry_metrics_redis_up"], 1)

    def test_damaged_task_records_are_skipped(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("sleeper", SLEEP))
        metrics = self.start_metrics()
        good = task_id(self.run_task(core, "sleeper"))
        key = "gantry:ecs:tasks:default"
        record = json.loads(self.redis.command("HGET", key, good))
        damaged = {
            "0" * 31 + "a": "{not json",
            "0" * 31 + "b": json.dumps({**record, "cpu": 512}),
            "0" * 31 + "c": json.dumps({**record, "_gantry": {**record["_gantry"], "processes": [
                {"name": "main", "pid": 1, "startTicks": 1, "running": True}]}}),
            "0" * 31 + "d": json.dumps({**record, "_gantry": "x"}),
            "0" * 31 + "e": json.dumps([1, 2]),
            "not-a-task-id": json.dumps(record),
        }
        # the pid of a live process that is not the task's (wrong start time): not sampled
        impostor = {**record, "_gantry": {**record["_gantry"], "processes": [
            {"name": "main", "pid": metrics.program.pid, "startTicks": 12345, "running": True}]}}
        for field, value in damaged.items():
            self.redis.command("HSET", key, field, value)
        self.redis.command("HSET", key, "0" * 31 + "f", json.dumps(impostor))
        self.redis.command("HSET", "gantry:ecs:clusters", "bad cluster name", "{}")
        self.redis.command("HSET", "gantry:ecs:clusters", "other", "{}")
        self.redis.command("SET", "gantry:ecs:tasks:other", "not a hash")
        metrics.wait_passes(3)
        labelled, plain = metrics.scrape()
        self.assertIsNone(metrics.program.proc.poll())
        self.assertGreaterEqual(plain["gantry_metrics_records_skipped"], len(damaged) + 2)
        self.assertEqual(plain["gantry_metrics_tasks"], 1, labelled)
        self.assertIn(("gantry_ecs_memory_utilized_mib",
                       frozenset({("cluster", "default"), ("task", good)})), labelled)
        self.assertIn("damaged task record", metrics.program.log())

    # --- the admin endpoint, the command line, reload ---

    def test_admin_endpoint_serves_the_latest_values(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", python_taskdef("burn", BURN_HALF_CORE, cpu=512))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "burn",
                                  "desiredCount": 1})
        metrics = self.start_metrics()
        tid = task_id(self.service_task(core, "web"))
        task_labels = frozenset({("cluster", "default"), ("service", "web"), ("task", tid)})
        service_labels = frozenset({("cluster", "default"), ("service", "web")})

        def scraped():
            labelled, plain = metrics.scrape()
            key = ("gantry_ecs_cpu_utilization_percent", task_labels)
            return key in labelled and (labelled, plain)
        labelled, plain = wait_until(scraped, message="a CPU value on /metrics")
        self.assertGreater(labelled[("gantry_ecs_cpu_utilization_percent", task_labels)], 50)
        for name in ("memory_utilization_percent", "cpu_utilized_units", "cpu_reserved_units",
                     "memory_utilized_mib", "memory_reserved_mib"):
            self.assertIn((f"gantry_ecs_{name}", task_labels), labelled)
            self.assertIn((f"gantry_ecs_service_{name}", service_labels), labelled)
        self.assertEqual(labelled[("gantry_ecs_cpu_reserved_units", task_labels)], 512)
        self.assertEqual(labelled[("gantry_ecs_memory_reserved_mib", task_labels)], 64)
        for counter in ("gantry_metrics_samples_total", "gantry_metrics_datapoints_written_total",
                        "gantry_metrics_datapoints_dropped_total",
                        "gantry_metrics_last_sample_duration_seconds"):
            self.assertIn(counter, plain)
        self.assertGreater(plain["gantry_metrics_datapoints_written_total"], 0)
        self.assertEqual(plain["gantry_metrics_redis_up"], 1)
        status, headers, body = http_request(metrics.addr, path="/metrics")
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4")
        self.assertIn("# TYPE gantry_ecs_cpu_utilization_percent gauge", body.decode())
        self.assertEqual(http_request(metrics.addr, path="/healthz")[:1], (200,))
        self.assertEqual(http_request(metrics.addr, path="/nope")[0], 404)
        self.assertEqual(http_request(metrics.addr, method="POST", path="/metrics")[0], 405)

    def test_check_names_file_line_and_column(self):
        good = self.write_file("good.yaml", "metrics:\n  sample_interval: 500ms\n")
        proc = self.run_program("gantry-metrics", ["--check", "-c", good])
        self.assertEqual((proc.returncode, proc.stdout), (0, "configuration OK\n"), proc.stderr)
        bad = self.write_file("bad.yaml", "metrics:\n  sample_interval: often\n")
        proc = self.run_program("gantry-metrics", ["--check", "-c", bad])
        self.assertEqual(proc.returncode, 1)
        self.assertTrue(proc.stderr.startswith(
            f"{bad}:2:20: invalid value 'often' for 'metrics.sample_interval'"), proc.stderr)
        proc = self.run_program("gantry-metrics", ["--check", "--admin", "nowhere"])
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--admin 'nowhere'", proc.stderr)
        proc = self.run_program("gantry-metrics", ["--listen", "127.0.0.1:1"])
        self.assertEqual(proc.returncode, 2, "gantry-metrics takes no --listen")

    def test_sighup_reload_and_sigterm(self):
        self.redis = self.start_redis()
        metrics = self.start_metrics(extra="  sample_interval: 1s\n")
        config = metrics.program.argv[2]
        with open(config) as f:
            good = f.read()
        with open(config, "w") as f:
            f.write(good + "  retention: forever\n")
        metrics.program.signal(signal.SIGHUP)
        wait_until(lambda: "the running configuration stays" in metrics.program.log(),
                   message="the reload refused")
        self.assertRegex(metrics.program.log(), re.escape(config) + r":\d+:\d+: invalid value")
        metrics.wait_passes(1)
        with open(config, "w") as f:
            f.write(good.replace("sample_interval: 1s", "sample_interval: 200ms"))
        metrics.program.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in metrics.program.log(),
                   message="the reload")
        before, started = metrics.samples(), time.monotonic()
        wait_until(lambda: metrics.samples() >= before + 5, timeout=3, interval=0.05,
                   message="passes every 200 ms")
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(metrics.program.stop(), 0)
        self.assertIn("stopped", metrics.program.log())
