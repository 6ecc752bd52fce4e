"""gantry-core's tasks as processes and its scheduler, through the raw API: the environment and
the log files, exit codes and stop reasons, SIGTERM then SIGKILL, placement that waits for
resources, cgroup limits, restarts of gantry-core, and the declared state of the config."""
import json
import os
import signal
import time

from core_fixtures import CoreTestCase, demo_taskdef, task_pids
from harness import binary, http_request, wait_until

SH = "/bin/sh"


def shell_taskdef(family, script, memory=32, **container):
    c = {"name": "main", "image": "busybox", "command": [SH, "-c", script], "memory": memory}
    c.update(container)
    return {"family": family, "containerDefinitions": [c]}


class CoreTasksTest(CoreTestCase):
    def run_task(self, core, family, **extra):
        doc = core.ok("RunTask", {"taskDefinition": family, **extra})
        self.assertEqual(doc["failures"], [])
        return doc["tasks"][0]["taskArn"]

    def task(self, core, arn):
        return core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]

    def wait_status(self, core, arn, status, timeout=10):
        return wait_until(lambda: (t := self.task(core, arn))["lastStatus"] == status and t,
                          timeout=timeout, message=f"task {status}")

    def log_of(self, arn, container="main"):
        path = os.path.join(self.tmp, "run", "tasks", arn.rsplit("/", 1)[1], f"{container}.log")
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    def test_environment_ports_work_dir_and_log_file(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", shell_taskdef(
            "env", 'echo "port=$PORT p80=$PORT_80 p81=$PORT_81 host=$HOST id=$GANTRY_TASK_ID '
                   'x=$X pwd=$(pwd)"; echo oops >&2; exec sleep 60',
            portMappings=[{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}],
            environment=[{"name": "X", "value": "from-td"}]))
        arn = self.run_task(core, "env", overrides={"containerOverrides": [
            {"name": "main", "environment": [{"name": "X", "value": "overridden"}]}]})
        task = self.wait_status(core, arn, "RUNNING")
        task_id = arn.rsplit("/", 1)[1]
        bindings = task["containers"][0]["networkBindings"]
        ports = {b["containerPort"]: b["hostPort"] for b in bindings}
        self.assertEqual(set(ports), {80, 81})
        self.assertNotEqual(ports[80], ports[81])
        log = wait_until(lambda: "oops" in self.log_of(arn) and self.log_of(arn),
                         message="the log file")
        work = os.path.join(self.tmp, "run", "tasks", task_id, "work")
        self.assertIn(f"port={ports[80]} p80={ports[80]} p81={ports[81]} host=127.0.0.1 "
                      f"id={task_id} x=overridden pwd={work}", log)
        self.assertEqual(len(task_pids(os.path.join(self.tmp, "run"))), 1)
        pid = int(task["containers"][0]["runtimeId"])
        self.assertEqual(os.getpgid(pid), pid, "each container leads its own process group")

    def test_exit_codes_and_stop_reasons(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", shell_taskdef("exit3", "exit 3"))
        core.ok("RegisterTaskDefinition", {"family": "missing", "containerDefinitions": [
            {"name": "main", "image": "x", "command": ["/nonexistent/program"], "memory": 32}]})
        arn = self.run_task(core, "exit3")
        task = self.wait_status(core, arn, "STOPPED")
        self.assertEqual((task["stopCode"], task["stoppedReason"], task["containers"][0]["exitCode"]),
                         ("EssentialContainerExited", "Essential container in task exited", 3))
        arn = self.run_task(core, "missing")
        task = self.wait_status(core, arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertTrue(task["stoppedReason"].startswith("CannotStartContainerError:"), task)
        self.assertIn("/nonexistent/program", task["stoppedReason"])
        self.assertNotIn("exitCode", task["containers"][0])

    def test_stop_sends_sigterm_then_sigkill_after_stop_timeout(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", shell_taskdef(
            "stubborn", "trap 'echo got-term' TERM; while :; do sleep 0.1; done", stopTimeout=1))
        core.ok("RegisterTaskDefinition", shell_taskdef("polite", "exec sleep 60"))
        stubborn, polite = self.run_task(core, "stubborn"), self.run_task(core, "polite")
        self.wait_status(core, stubborn, "RUNNING")
        self.wait_status(core, polite, "RUNNING")
        core.ok("StopTask", {"task": polite})
        task = self.wait_status(core, polite, "STOPPED")
        self.assertEqual(task["containers"][0]["exitCode"], 128 + signal.SIGTERM)
        started = time.monotonic()
        core.ok("StopTask", {"task": stubborn, "reason": "test"})
        task = self.wait_status(core, stubborn, "STOPPED")
        self.assertGreaterEqual(time.monotonic() - started, 0.9, "SIGKILL before stopTimeout")
        self.assertEqual(task["containers"][0]["exitCode"], 128 + signal.SIGKILL)
        self.assertIn("got-term", self.log_of(stubborn))
        self.assertEqual(task["stoppedReason"], "test")

    def test_a_task_that_does_not_fit_stays_pending_until_resources_free_up(self):
        core = self.start_core("  instance_memory: 100m\n")
        core.ok("RegisterTaskDefinition", demo_taskdef(memory=64))
        core.ok("CreateService", {"serviceName": "big", "taskDefinition": "demo",
                                  "desiredCount": 2})
        svc = wait_until(lambda: (s := core.service("big"))["runningCount"] == 1
                         and s["pendingCount"] == 1 and s, message="one running, one pending")
        [pending] = [t for t in core.tasks(serviceName="big") if t["lastStatus"] == "PENDING"]
        self.assertNotIn("containerInstanceArn", pending)
        instance = core.ok("ListContainerInstances")["containerInstanceArns"][0]
        wanted = ("(service big) was unable to place a task because no container instance met "
                  "all of its requirements. The closest matching (container-instance "
                  f"{instance.rsplit('/', 1)[1]}) has insufficient memory available.")
        self.assertTrue(any(e["message"].startswith(wanted) for e in svc["events"]),
                        svc["events"])
        [running] = [t for t in core.tasks(serviceName="big") if t["lastStatus"] == "RUNNING"]
        core.ok("StopTask", {"task": running["taskArn"]})
        self.wait_status(core, pending["taskArn"], "RUNNING")

    def test_cgroup_limits_of_a_task(self):
        core = self.start_core()
        if "cgroup v1" not in core.program.log() and "cgroup v2" not in core.program.log():
            self.skipTest("no cgroup available: " + core.program.log().splitlines()[0])
        td = shell_taskdef("limited", "exec sleep 60", memory=48)
        td["cpu"] = "256"
        core.ok("RegisterTaskDefinition", td)
        arn = self.run_task(core, "limited")
        pid = int(self.wait_status(core, arn, "RUNNING")["containers"][0]["runtimeId"])
        task_id = arn.rsplit("/", 1)[1]
        with open(f"/proc/{pid}/cgroup") as f:
            cgroups = f.read()
        self.assertIn(f"/gantry/{task_id}", cgroups)
        limits = {}
        for line in cgroups.splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                with open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes") as f:
                    limits["memory"] = int(f.read())
            if "cpu" in controllers.split(","):
                with open(f"/sys/fs/cgroup/cpu{path}/cpu.cfs_quota_us") as f:
                    limits["quota"] = int(f.read())
        self.assertEqual(limits, {"memory": 48 * 1024 * 1024, "quota": 25000})

    def test_declared_state_is_applied_at_start_idempotently_and_on_sighup(self):
        declared = f"""\
  task_definitions:
    - family: declared
      containerDefinitions:
        - name: web
          image: gantry/demo-app
          command: ["{binary("gantry-demo-app")}"]
          memory: 32
          portMappings: [{{containerPort: 8080}}]
  services:
    - serviceName: svc
      taskDefinition: declared
      desiredCount: 2
"""
        core = self.start_core(declared)
        core.wait_running("svc", 2)
        core.program.stop()
        core = self.start_core(declared, name="core2.yaml")
        core.wait_running("svc", 2)
        families = core.ok("ListTaskDefinitions", {"familyPrefix": "declared"})
        self.assertEqual(len(families["taskDefinitionArns"]), 1, "no new revision")
        text = open(core.config_path).read().replace("desiredCount: 2", "desiredCount: 3")
        with open(core.config_path, "w") as f:
            f.write(text)
        core.program.signal(signal.SIGHUP)
        core.wait_running("svc", 3)
        # an autoscaler (or an operator) changes the count: a reload of the same file keeps it,
        # and so does a restart
        core.ok("UpdateService", {"service": "svc", "desiredCount": 1})
        core.wait_running("svc", 1)
        core.program.signal(signal.SIGHUP)
        wait_until(lambda: core.program.log().count("configuration reloaded") >= 2,
                   message="the second reload")
        self.assertEqual(core.service("svc")["desiredCount"], 1)
        core.program.signal(signal.SIGKILL)
        core.program.wait()
        core = self.start_core(declared.replace("desiredCount: 2", "desiredCount: 3"),
                               name="core3.yaml")
        core.wait_running("svc", 1)
        self.assertEqual(core.service("svc")["desiredCount"], 1)
        # the file's count changes: it is applied
        text = open(core.config_path).read().replace("desiredCount: 3", "desiredCount: 2")
        with open(core.config_path, "w") as f:
            f.write(text)
        core.program.signal(signal.SIGHUP)
        core.wait_running("svc", 2)
        with open(core.config_path, "w") as f:
            f.write(text.replace("memory: 32", "memory: lots"))
        core.program.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in core.program.log(), message="the refusal")
        self.assertIn(f"{core.config_path}:", core.program.log().split("reload refused")[1])
        self.assertEqual(core.service("svc")["desiredCount"], 2)

    def test_check_refuses_a_bad_declared_task_definition_with_its_line(self):
        path = self.write_file("bad.yaml", """\
core:
  task_definitions:
    - family: ok
      containerDefinitions: [{name: a, image: i, memory: 32}]
    - family: "not ok"
      containerDefinitions: [{name: a, image: i, memory: 32}]
""")
        proc = self.run_program("gantry-core", ["--check", "-c", path])
        self.assertEqual(proc.returncode, 1)
        self.assertTrue(proc.stderr.startswith(f"{path}:5:7: 'core.task_definitions[1]': "),
                        proc.stderr)
        self.assertIn("family", proc.stderr)
