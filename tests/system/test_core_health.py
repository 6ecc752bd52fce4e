"""Container health checks of gantry-core's PROCESS tasks, end to end: real probes (the demo app's
--probe mode, CMD-SHELL lines) against real demo processes; healthStatus of containers and tasks
in DescribeTasks; an unhealthy task stopped and replaced by its service within interval x retries
(plus the replacement's first interval to be HEALTHY); hanging probes killed at their timeout;
startPeriod; and the probe mode itself. ECS's smallest interval is 5 s, so the waits here are
bounded by it, never slept through."""
import os
import socket
import time

from core_fixtures import CoreTestCase, demo_taskdef
from harness import GantryTestCase, binary, free_port, http_request, wait_until

INTERVAL = 5  # ECS's minimum
SLACK = 3     # seconds beyond the rule's bound: process starts, the reconcile pass, polling


def check(command, interval=INTERVAL, retries=2, timeout=2, start_period=None):
    hc = {"command": command, "interval": interval, "timeout": timeout, "retries": retries}
    if start_period is not None:
        hc["startPeriod"] = start_period
    return {"healthCheck": hc}


def demo_probe_check(**kw):
    return check(["CMD", binary("gantry-demo-app"), "--probe", "/health"], **kw)


def task_id(task):
    return task["taskArn"].rsplit("/", 1)[1]


def port_of(task):
    return task["containers"][0]["networkBindings"][0]["hostPort"]


def processes_named(directory, name):
    """PIDs whose executable is `name` (comm) and whose working directory is under directory."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if comm == name and (cwd == directory or cwd.startswith(directory + "/")):
            found.append(int(entry))
    return found


class CoreHealthTest(CoreTestCase):
    def describe(self, core, arns):
        doc = core.ok("DescribeTasks", {"tasks": list(arns)})
        return {t["taskArn"]: t for t in doc["tasks"]}

    def task(self, core, arn):
        return self.describe(core, [arn])[arn]

    def run_task(self, core, family):
        doc = core.ok("RunTask", {"taskDefinition": family})
        self.assertEqual(doc["failures"], [])
        return doc["tasks"][0]["taskArn"]

    def task_dir(self, arn):
        return os.path.join(self.tmp, "run", "tasks", arn.rsplit("/", 1)[1])

    def test_unhealthy_task_is_replaced_by_its_service(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition",
                demo_taskdef(family="web", extra_container=demo_probe_check(retries=2)))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "web",
                                  "desiredCount": 2})
        core.wait_running("web", 2)

        def all_healthy():
            tasks = [t for t in core.tasks(serviceName="web") if t["lastStatus"] == "RUNNING"]
            return len(tasks) == 2 and all(
                t["healthStatus"] == "HEALTHY" and t["containers"][0]["healthStatus"] == "HEALTHY"
                for t in tasks) and tasks
        # the first probe comes one interval after the start, as Docker's
        victim, other = wait_until(all_healthy, timeout=INTERVAL + SLACK, interval=0.1,
                                   message="both tasks HEALTHY")

        status, _, _ = http_request(f"127.0.0.1:{port_of(victim)}", "POST", "/health/fail")
        self.assertEqual(status, 200)
        failed_at = time.monotonic()

        def replaced():
            if self.task(core, victim["taskArn"])["desiredStatus"] != "STOPPED":
                return None
            new = [t for t in core.tasks(serviceName="web")  # desiredStatus RUNNING ones
                   if t["taskArn"] not in (victim["taskArn"], other["taskArn"])
                   and t["lastStatus"] == "RUNNING"]
            return new and new[0]
        bound = INTERVAL * 2 + SLACK  # interval x retries
        replacement = wait_until(replaced, timeout=bound, interval=0.1,
                                 message="the unhealthy task stopping and a replacement RUNNING")
        self.assertLessEqual(time.monotonic() - failed_at, bound)

        healthy = wait_until(
            lambda: (t := self.task(core, replacement["taskArn"]))["healthStatus"] == "HEALTHY"
            and t, timeout=INTERVAL * 3 + SLACK - (time.monotonic() - failed_at), interval=0.1,
            message="the replacement HEALTHY")
        self.assertLessEqual(time.monotonic() - failed_at, INTERVAL * 3 + SLACK)
        self.assertEqual(healthy["containers"][0]["healthStatus"], "HEALTHY")

        stopped = wait_until(
            lambda: (t := self.task(core, victim["taskArn"]))["lastStatus"] == "STOPPED" and t,
            message="the unhealthy task STOPPED")
        self.assertEqual((stopped["stoppedReason"], stopped["stopCode"]),
                         ("Task failed container health checks", "ServiceSchedulerInitiated"))
        self.assertEqual(stopped["healthStatus"], "UNHEALTHY")
        self.assertEqual(stopped["containers"][0]["healthStatus"], "UNHEALTHY")
        # the other task was never touched
        kept = self.task(core, other["taskArn"])
        self.assertEqual((kept["lastStatus"], kept["desiredStatus"], kept["healthStatus"]),
                         ("RUNNING", "RUNNING", "HEALTHY"))
        messages = [e["message"] for e in core.service("web")["events"]]
        self.assertIn(f"(service web) (task {task_id(victim)}) failed container health checks.",
                      messages)
        self.assertIn("failed its health checks: the task stops", core.program.log())
        # the probe's failure, as the demo app wrote it, is in gantry-core's log line
        self.assertIn("503 Service Unavailable", core.program.log())

    def test_shell_checks_timeouts_start_period_and_no_check(self):
        core = self.start_core()
        shell = lambda line, **kw: check(["CMD-SHELL", line], **kw)  # noqa: E731
        core.ok("RegisterTaskDefinition", demo_taskdef(family="pass", extra_container=shell(
            'echo "port=$PORT id=$GANTRY_TASK_ID pwd=$(pwd)"; exit 0', retries=1)))
        core.ok("RegisterTaskDefinition", demo_taskdef(family="fail", extra_container=shell(
            "echo probe-says-no; exit 1", retries=1)))
        core.ok("RegisterTaskDefinition", demo_taskdef(family="startup", extra_container=shell(
            "exit 1", retries=1, start_period=8)))
        core.ok("RegisterTaskDefinition", demo_taskdef(family="missing", extra_container=check(
            ["CMD", "no-such-program-for-gantry"], retries=1)))
        core.ok("RegisterTaskDefinition", demo_taskdef(family="nocheck"))
        # a hanging probe on a non-essential container: it fails and is killed, the task runs on
        hang = demo_taskdef(family="hang")
        side = dict(hang["containerDefinitions"][0], name="side", essential=False,
                    portMappings=[{"containerPort": 9090}],
                    **shell("sleep 30", retries=1, timeout=2))
        hang["containerDefinitions"].append(side)
        core.ok("RegisterTaskDefinition", hang)

        arns = {f: self.run_task(core, f)
                for f in ("pass", "fail", "startup", "missing", "nocheck", "hang")}
        started = time.monotonic()
        for arn in arns.values():
            wait_until(lambda: self.task(core, arn)["lastStatus"] == "RUNNING",
                       message="tasks RUNNING")

        # CMD-SHELL exit 0: HEALTHY, the probe ran with the container's environment in the
        # task's work directory, its output in NAME.health; a task without a check: UNKNOWN
        passed = wait_until(
            lambda: (t := self.task(core, arns["pass"]))["healthStatus"] == "HEALTHY" and t,
            timeout=INTERVAL + SLACK, interval=0.1, message="the passing task HEALTHY")
        self.assertEqual(passed["containers"][0]["healthStatus"], "HEALTHY")
        with open(os.path.join(self.task_dir(arns["pass"]), "web.health")) as f:
            self.assertEqual(f.read().strip(),
                             f"port={port_of(passed)} id={task_id(passed)} "
                             f"pwd={os.path.join(self.task_dir(arns['pass']), 'work')}")

        # CMD-SHELL exit 1 with retries 1: UNHEALTHY at the first probe, the task stops
        failed = wait_until(
            lambda: (t := self.task(core, arns["fail"]))["lastStatus"] == "STOPPED" and t,
            timeout=INTERVAL + SLACK, interval=0.1, message="the failing task STOPPED")
        self.assertEqual((failed["healthStatus"], failed["containers"][0]["healthStatus"]),
                         ("UNHEALTHY", "UNHEALTHY"))
        self.assertEqual((failed["stoppedReason"], failed["stopCode"]),
                         ("Task failed container health checks", "ServiceSchedulerInitiated"))
        self.assertIn("is UNHEALTHY (the last failure: exit status 1: probe-says-no)",
                      core.program.log())

        # sleep 30 with timeout 2: a failure at 2 s, the probe killed (no sleep left); only a
        # non-essential container has a check, so the task is UNKNOWN and runs on
        hang_task = wait_until(
            lambda: (t := self.task(core, arns["hang"]))["containers"][1]["healthStatus"]
            == "UNHEALTHY" and t, timeout=INTERVAL + 2 + SLACK, interval=0.1,
            message="the hanging probe's container UNHEALTHY")
        self.assertEqual((hang_task["lastStatus"], hang_task["desiredStatus"],
                          hang_task["healthStatus"], hang_task["containers"][0]["healthStatus"]),
                         ("RUNNING", "RUNNING", "UNKNOWN", "UNKNOWN"))
        # a sleep 30 that ends within a few seconds was killed (were the next probe already
        # running, it too would be killed at its 2 s timeout)
        wait_until(lambda: not processes_named(self.task_dir(arns["hang"]), "sleep"),
                   timeout=3, message="the hanging probe killed")
        self.assertIn("no answer within 2s", core.program.log())

        # a program that does not exist: a failed probe like any other
        missing = wait_until(
            lambda: (t := self.task(core, arns["missing"]))["desiredStatus"] == "STOPPED" and t,
            timeout=INTERVAL + SLACK, interval=0.1, message="the task without its program stopping")
        self.assertEqual(missing["stoppedReason"], "Task failed container health checks")
        self.assertIn("cannot run 'no-such-program-for-gantry'", core.program.log())

        # startPeriod 8 s: the failure at 5 s does not count (UNKNOWN, RUNNING)...
        startup_dir = self.task_dir(arns["startup"])
        wait_until(lambda: os.path.exists(os.path.join(startup_dir, "web.health")),
                   timeout=INTERVAL + SLACK, interval=0.1, message="the first startPeriod probe")
        during = self.task(core, arns["startup"])
        self.assertEqual((during["lastStatus"], during["desiredStatus"], during["healthStatus"],
                          during["containers"][0]["healthStatus"]),
                         ("RUNNING", "RUNNING", "UNKNOWN", "UNKNOWN"))
        # ... the one at 10 s does
        after = wait_until(
            lambda: (t := self.task(core, arns["startup"]))["desiredStatus"] == "STOPPED" and t,
            timeout=INTERVAL + SLACK, interval=0.1, message="the startPeriod task stopping")
        self.assertEqual(after["stoppedReason"], "Task failed container health checks")
        self.assertGreaterEqual(after["stoppingAt"] - after["startedAt"], 8)

        nocheck = self.task(core, arns["nocheck"])
        self.assertEqual((nocheck["lastStatus"], nocheck["healthStatus"],
                          nocheck["containers"][0]["healthStatus"]), ("RUNNING", "UNKNOWN", "UNKNOWN"))
        self.assertLess(time.monotonic() - started, 30)

    def test_stop_kills_a_probe_in_flight(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="slow", extra_container=check(
            ["CMD-SHELL", "sleep 40"], timeout=30, retries=1)))
        arn = self.run_task(core, "slow")
        work = os.path.join(self.task_dir(arn), "work")
        wait_until(lambda: processes_named(work, "sleep"), timeout=INTERVAL + SLACK,
                   interval=0.1, message="the probe running")
        core.ok("StopTask", {"task": arn})
        wait_until(lambda: self.task(core, arn)["lastStatus"] == "STOPPED",
                   message="the task STOPPED")
        wait_until(lambda: not processes_named(work, "sleep"), timeout=2,
                   message="the probe in flight killed with its task")
        self.assertEqual(self.task(core, arn)["healthStatus"], "UNKNOWN")


class DemoProbeTest(GantryTestCase):
    """gantry-demo-app --probe PATH: the health-check client the tests and images use."""

    def probe(self, *args, env=None):
        started = time.monotonic()
        proc = self.run_program("gantry-demo-app", ["--probe", *args],
                                env={"HOST": "127.0.0.1", "PORT": "", **(env or {})})
        return proc.returncode, proc.stderr.strip(), time.monotonic() - started

    def test_probe_mode(self):
        program = self.start_program("gantry-demo-app", env={"PORT": "0"})
        addr = program.wait_ready()[0]
        port = addr.rsplit(":", 1)[1]
        self.assertEqual(self.probe("/health", env={"PORT": port})[:2], (0, ""))
        self.assertEqual(self.probe("/health", "--port", port, env={"PORT": "1"})[:2], (0, ""))
        self.assertEqual(self.probe("/", env={"PORT": port, "HOST": "localhost"})[:2], (0, ""))

        http_request(addr, "POST", "/health/fail")
        code, err, _ = self.probe("/health", env={"PORT": port})
        self.assertEqual((code, err), (1, f"gantry-demo-app: probe http://127.0.0.1:{port}/health:"
                                          " answered: 503 Service Unavailable"))
        http_request(addr, "POST", "/health/ok")
        self.assertEqual(self.probe("/health", env={"PORT": port})[0], 0)

        closed = str(free_port())
        code, err, _ = self.probe("/health", "--port", closed)
        self.assertEqual(code, 1)
        self.assertIn("connect: Connection refused", err)
        self.assertEqual(len(err.splitlines()), 1)

    def test_probe_gives_up_after_two_seconds(self):
        with socket.socket() as listener:  # accepts (the kernel does), never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            code, err, took = self.probe("/health", "--port", str(listener.getsockname()[1]))
        self.assertEqual(code, 1)
        self.assertIn("no answer within 2 s", err)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 4)

    def test_probe_usage_errors(self):
        for args, message in ((["--probe", "health"], "starting with '/'"),
                              (["--probe", "/a b"], "no spaces"),
                              (["--port", "80"], "--port goes with --probe")):
            proc = self.run_program("gantry-demo-app", args)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(message, proc.stderr)
        proc = self.run_program("gantry-demo-app", ["--probe", "/", "--port", "x"])
        self.assertEqual(proc.returncode, 1)
        self.assertIn("--port 'x' is invalid", proc.stderr)
        self.assertIn("--probe PATH", self.run_program("gantry-demo-app", ["--help"]).stdout)
