"""gantry-metrics and DOCKER tasks, against a real dockerd (docker_fixtures.py: the machine's, else
a private one; skipped with the reason when dockerd cannot run), a real gantry-core and a real
redis-server: CPU and memory utilisation read through dockerd's stats API against the tasks'
reservations, tasks stopping, and a dockerd that is silent or absent (no pass stalls, no
datapoint, never a zero), or not needed at all (no DOCKER task: nothing talks to it). Every wait
polls with a deadline."""
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import docker_fixtures
from docker_fixtures import DockerTestCase, docker_taskdef, stop_private_daemon
from harness import wait_until
from core_fixtures import demo_taskdef
from test_gantry_metrics import (Metrics, last_second, read_points, rss_anon_mib, series_id,
                                 task_id)

HOLD_REPO = "gantry-test-hold"
HOLD_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The init of a pid namespace gets only the signals it handles. */
static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 0;
    /* volatile: a buffer never read again is one the compiler may never write */
    volatile char *p = malloc((size_t)(mib > 0 ? mib : 1) << 20);
    if (!p)
        return 2;
    for (size_t i = 0; i < (size_t)mib << 20; i += 4096)
        p[i] = 1;
    signal(SIGTERM, on_term);
    printf("held %ld MiB\n", mib);
    fflush(stdout);
    for (;;)
        pause();
}
"""


def tearDownModule():
    stop_private_daemon()  # not kept running through the rest of the suite


class _Hold:
    ref = None


def hold_image(api):
    """An image whose entrypoint, /bin/gantry-hold MIB, touches MIB of memory and keeps it until
    SIGTERM (the demo image's helpers exit at once). Imported once per run."""
    if _Hold.ref:
        return _Hold.ref
    with tempfile.TemporaryDirectory(prefix="gantry-hold-") as work:
        src, out = os.path.join(work, "hold.c"), os.path.join(work, "gantry-hold")
        with open(src, "w") as f:
            f.write(HOLD_C)
        proc = subprocess.run(["gcc", "-static", "-O2", "-o", out, src], capture_output=True,
                              text=True, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"cannot build gantry-hold:\n{proc.stderr}")
        tar = docker_fixtures._rootfs_tar([("gantry-hold", out)])
    tag = hashlib.sha256(tar).hexdigest()[:16]
    ref = f"{HOLD_REPO}:{tag}"
    if api.request("GET", f"/images/{ref}/json")[0] != 200:
        changes = urllib.parse.quote('ENTRYPOINT ["/bin/gantry-hold"]')
        status, data = api.request(
            "POST", f"/images/create?fromSrc=-&repo={HOLD_REPO}&tag={tag}&changes={changes}",
            body=tar, headers={"Content-Type": "application/x-tar"}, timeout=120)
        if status != 200 or b'"error"' in data:
            raise AssertionError(f"docker import failed: {status} {data[-500:]!r}")
    _Hold.ref = ref
    return ref


class CpuLoad(threading.Thread):
    """Keeps a demo app burning `cores` of CPU through requests: GET /?cpu=20ms burns 20 ms of the
    app's CPU time, sent whenever the CPU asked for falls behind cores x the time elapsed. A debt
    over 0.2 s (the app starved by other processes, or held by its CFS quota) is forgiven, as
    test_gantry_metrics' BURN_HALF_CORE does."""
    CHUNK_MS = 20

    def __init__(self, addr, cores=0.5):
        super().__init__(daemon=True)
        self.host, self.port = addr
        self.cores = cores
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        started, asked = time.monotonic(), 0.0
        try:
            while not self.stopping.is_set():
                debt = self.cores * (time.monotonic() - started) - asked
                if debt > 0.2:
                    asked += debt - 0.2
                if debt <= 0:
                    self.stopping.wait(0.01)
                    continue
                conn.request("GET", f"/?cpu={self.CHUNK_MS}ms&size=1")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise AssertionError(f"demo app: {resp.status}")
                asked += self.CHUNK_MS / 1000
        except Exception as e:  # reported by the test, not lost in a thread
            self.error = e
        finally:
            conn.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=15)


class SilentDaemon:
    """A unix socket that accepts connections and never answers: a hung dockerd."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = []
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closing.is_set():
            try:
                self.accepted.append(self.sock.accept()[0])
            except (socket.timeout, OSError):
                pass

    def close(self):
        self.closing.set()
        self.thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class MetricsDockerTest(DockerTestCase):
    def start_metrics(self, socket_path):
        config = self.write_file("metrics.yaml", self.metrics_yaml(socket_path))
        program = self.start_program("gantry-metrics", ["-c", config])
        self.addCleanup(self.check_clean_exit, program)
        return Metrics(program, program.wait_ready()[0], self.redis)

    def metrics_yaml(self, socket_path):
        """gantry-metrics reads dockerd's socket from gantry-core's own key."""
        return (f'redis: {{url: "{self.redis.url}", connect_timeout: 500ms}}\n'
                f"metrics:\n  admin: 127.0.0.1:0\ncore:\n  docker_socket: {socket_path}\n")

    def reconfigure(self, metrics, socket_path):
        with open(metrics.program.argv[2], "w") as f:
            f.write(self.metrics_yaml(socket_path))
        before = metrics.program.log().count("configuration reloaded")
        metrics.program.signal(signal.SIGHUP)
        wait_until(lambda: metrics.program.log().count("configuration reloaded") > before,
                   message="the reload")

    def check_clean_exit(self, program):
        status = program.stop()
        log = program.log()
        self.assertEqual(status, 0, log)
        self.assertNotIn("Sanitizer", log)
        self.assertNotIn("runtime error", log)

    def run_task(self, core, family):
        doc = core.ok("RunTask", {"taskDefinition": family})
        self.assertEqual(doc["failures"], [])
        return self.wait_running(core, doc["tasks"][0]["taskArn"])

    def wait_running(self, core, arn):
        return wait_until(lambda: (t := self.task(core, arn))["lastStatus"] == "RUNNING" and t,
                          timeout=20, message="the task RUNNING")

    def task(self, core, arn):
        return core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]

    def serving(self, task):
        """The demo app's address, once it accepts connections."""
        addr = ("127.0.0.1", task["containers"][0]["networkBindings"][0]["hostPort"])

        def accepts():
            try:
                socket.create_connection(addr, timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(accepts, message=f"the demo app listening on {addr}")
        return addr

    def load(self, task, cores=0.5):
        load = CpuLoad(self.serving(task), cores)
        load.start()
        self.addCleanup(load.stop)
        return load

    def ecs(self, name, **dims):
        return series_id("AWS/ECS", name, ClusterName="default", **dims)

    def insights(self, name, **dims):
        return series_id("ECS/ContainerInsights", name, ClusterName="default", **dims)

    def test_cpu_and_memory_against_the_reservations(self):
        """Half a core is 100% of a 512-unit DOCKER task (task-level cpu: NanoCpus, a quota of
        half a core) and 50% of a 1024-unit service task (a container-level reservation; its quota
        a whole core); 40 MiB held in a task that reserves 64 MiB (memoryReservation, its hard
        limit 128) is 40 MiB and more of 64."""
        self.redis = self.start_redis()
        core = self.start_core(core_yaml=self.docker_yaml())
        core.ok("RegisterTaskDefinition", docker_taskdef("dburn512", cpu=512))
        core.ok("RegisterTaskDefinition", docker_taskdef("dburn1024", extra={"cpu": 1024}))
        core.ok("RegisterTaskDefinition", docker_taskdef(
            "dhold", image=hold_image(self.docker), command=["40"], port=None, memory=128,
            extra={"memoryReservation": 64}))
        core.ok("CreateService", {"serviceName": "burner", "taskDefinition": "dburn1024",
                                  "desiredCount": 1})
        metrics = self.start_metrics(self.docker.socket_path)
        small = self.run_task(core, "dburn512")
        hold = self.run_task(core, "dhold")
        core.wait_running("burner", 1, timeout=20)
        [big] = [t for t in core.tasks(serviceName="burner") if t["lastStatus"] == "RUNNING"]
        # The 512-unit task is asked for a little more than its quota, which holds it to half a
        # core: asked for exactly half, it idles whenever the loader is ahead, and a CFS period's
        # quota left unused is lost (it read 93% on a machine busy with other tests).
        loads = [self.load(small, cores=0.6), self.load(big)]
        since = int(time.time()) + 2  # the loads' first second is not the steady state

        pct, seen = metrics.average(self.ecs("CPUUtilization", TaskId=task_id(small["taskArn"])),
                                    since=since)
        print(f"\n  DOCKER, 512 units, half a core: CPUUtilization {pct:.1f}% {seen}")
        self.assertAlmostEqual(pct, 100, delta=10, msg=f"512 units, half a core: {seen}")
        dims = {"ServiceName": "burner", "TaskId": task_id(big["taskArn"])}
        pct, seen = metrics.average(self.ecs("CPUUtilization", **dims), since=since)
        print(f"  DOCKER, 1024 units, half a core: CPUUtilization {pct:.1f}% {seen}")
        self.assertAlmostEqual(pct, 50, delta=5, msg=f"1024 units, half a core: {seen}")
        pct, seen = metrics.average(self.ecs("CPUUtilization", ServiceName="burner"), since=since)
        self.assertAlmostEqual(pct, 50, delta=5, msg=f"the service's: {seen}")
        units, seen = metrics.average(self.insights("CpuUtilized", **dims), since=since)
        self.assertAlmostEqual(units, 512, delta=51, msg=f"CPU units used: {seen}")
        reserved, _ = metrics.average(self.insights("CpuReserved", ServiceName="burner"),
                                      seconds=2)
        self.assertEqual(reserved, 1024)
        for load in loads:
            self.assertIsNone(load.error)

        # Memory: the helper's anonymous memory, read from /proc as the truth, over 64 MiB.
        pid = self.docker.inspect(hold["containers"][0]["runtimeId"])["State"]["Pid"]
        truth = rss_anon_mib(pid)
        hold_dims = {"TaskId": task_id(hold["taskArn"])}
        pct, seen = metrics.average(self.ecs("MemoryUtilization", **hold_dims), seconds=3)
        print(f"  DOCKER, 40 MiB held of 64 reserved: MemoryUtilization {pct:.1f}% "
              f"(RssAnon {truth:.1f} MiB) {seen}")
        self.assertGreaterEqual(pct, 62.5)
        self.assertAlmostEqual(pct, truth / 64 * 100, delta=5, msg=f"RssAnon {truth:.1f} MiB")
        mib, _ = metrics.average(self.insights("MemoryUtilized", **hold_dims), seconds=3)
        self.assertAlmostEqual(mib, truth, delta=3)
        reserved, _ = metrics.average(self.insights("MemoryReserved", **hold_dims), seconds=2)
        self.assertEqual(reserved, 64)

        # /metrics shows them as any task's; one stats stream per container.
        labelled, plain = metrics.scrape()
        small_labels = frozenset({("cluster", "default"), ("task", task_id(small["taskArn"]))})
        self.assertGreater(labelled[("gantry_ecs_cpu_utilization_percent", small_labels)], 50)
        self.assertEqual(labelled[("gantry_ecs_cpu_reserved_units", small_labels)], 512)
        self.assertEqual(plain["gantry_metrics_docker_streams"], 3)
        self.assertLess(plain["gantry_metrics_last_sample_duration_seconds"], 0.2)

        # A stopped task gets no datapoint from then on, and its stream goes.
        for load in loads:
            load.stop()
        core.ok("StopTask", {"task": hold["taskArn"]})
        wait_until(lambda: self.task(core, hold["taskArn"])["lastStatus"] == "STOPPED",
                   timeout=20, message="the task STOPPED")
        metrics.wait_passes(1)
        memory = self.insights("MemoryUtilized", **hold_dims)
        stopped_at = last_second(self.redis, memory)
        metrics.wait_passes(2)
        self.assertEqual(last_second(self.redis, memory), stopped_at)
        self.assertEqual(metrics.scrape()[1]["gantry_metrics_docker_streams"], 2)

    def test_dockerd_silent_absent_or_not_needed(self):
        """No DOCKER task: dockerd is not asked anything. A silent dockerd (hung) or none at the
        socket: passes keep their pace and the DOCKER task gets no datapoint, never a zero; the
        socket right again (SIGHUP): its datapoints come."""
        silent = SilentDaemon(os.path.join(self.tmp, "silent.sock"))
        self.addCleanup(silent.close)
        self.redis = self.start_redis()
        core = self.start_core(core_yaml=self.docker_yaml())
        core.ok("RegisterTaskDefinition", demo_taskdef("pdemo"))
        core.ok("RegisterTaskDefinition", docker_taskdef("ddemo"))
        metrics = self.start_metrics(silent.path)
        process = self.run_task(core, "pdemo")
        wait_until(lambda: last_second(
            self.redis, self.insights("MemoryUtilized", TaskId=task_id(process["taskArn"]))),
            message="the PROCESS task's datapoints")
        metrics.wait_passes(2)
        self.assertEqual(silent.accepted, [], "no DOCKER task: nothing talks to dockerd")
        self.assertEqual(metrics.scrape()[1]["gantry_metrics_docker_streams"], 0)

        docker = self.run_task(core, "ddemo")
        memory = self.insights("MemoryUtilized", TaskId=task_id(docker["taskArn"]))
        wait_until(lambda: silent.accepted, message="a stats stream to the silent dockerd")
        self.assert_paced_without_datapoints(metrics, memory)

        self.reconfigure(metrics, os.path.join(self.tmp, "nothing.sock"))
        self.assert_paced_without_datapoints(metrics, memory)
        log = metrics.program.log()
        self.assertEqual(log.count("cannot reach dockerd at"), 1, log)
        self.assertIn("nothing.sock: connect: No such file or directory", log)

        self.reconfigure(metrics, self.docker.socket_path)
        wait_until(lambda: last_second(self.redis, memory), timeout=10,
                   message="the DOCKER task's datapoints once dockerd answers")
        cpu = self.ecs("CPUUtilization", TaskId=task_id(docker["taskArn"]))
        wait_until(lambda: last_second(self.redis, cpu), timeout=10,
                   message="its CPU datapoints")
        self.assertEqual(metrics.scrape()[1]["gantry_metrics_tasks"], 2)

    def assert_paced_without_datapoints(self, metrics, series):
        """Three passes within about three seconds, each short, none writing the series."""
        started, wall = time.monotonic(), int(time.time())
        metrics.wait_passes(3, timeout=6)
        self.assertLess(time.monotonic() - started, 4.5, "a pass waited for dockerd")
        _, plain = metrics.scrape()
        self.assertLess(plain["gantry_metrics_last_sample_duration_seconds"], 0.2)
        self.assertEqual(plain["gantry_metrics_tasks"], 1, "the PROCESS task only")
        self.assertEqual(read_points(self.redis, series, wall - 60, int(time.time()) + 1), {},
                         "no datapoint, never a zero")
