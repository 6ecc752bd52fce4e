"""The DOCKER launch type end to end, against a real dockerd (docker_fixtures.py: the machine's,
else a private one; skipped with the reason when dockerd cannot run): a service behind a real
gantry-lb, RunTask and StopTask, exit codes, a missing image, a daemon that is down, and a
gantry-core killed with -9 that finds its containers again."""
import os
import signal
import time

from docker_fixtures import DockerTestCase, docker_taskdef, stop_private_daemon
from harness import http_request, wait_until
from lb_fixtures import Lb
from test_core_service import LB_SECTION as SERVICE_LB_SECTION, TG_ARN

# the target group of test_core_service, drained faster: containers take their time to stop
LB_SECTION = SERVICE_LB_SECTION.replace("deregistration_delay: 10s", "deregistration_delay: 1s")
MIB = 1024 * 1024


def tearDownModule():
    stop_private_daemon()  # not kept running through the rest of the suite


def task_id(task):
    return task["taskArn"].rsplit("/", 1)[1]


class DockerTasksBase(DockerTestCase):
    def start_stack(self, with_lb=False):
        self.redis = self.start_redis()
        core = self.start_core(core_yaml=self.docker_yaml(),
                               extra_yaml=LB_SECTION if with_lb else "")
        if not with_lb:
            return core, None
        path = self.write_file("lb.yaml", f'redis: {{url: "{self.redis.url}"}}\n' + LB_SECTION)
        program = self.start_program("gantry-lb", ["-c", path])
        return core, Lb(program, program.wait_ready(), path)

    def run_task(self, core, family, **extra):
        doc = core.ok("RunTask", {"taskDefinition": family, **extra})
        self.assertEqual(doc["failures"], [])
        return doc["tasks"][0]["taskArn"]

    def task(self, core, arn):
        return core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]

    def wait_status(self, core, arn, status, timeout=15):
        return wait_until(lambda: (t := self.task(core, arn))["lastStatus"] == status and t,
                          timeout=timeout, message=f"task {status}")

    def running(self, core, service):
        return [t for t in core.tasks(serviceName=service) if t["lastStatus"] == "RUNNING"]

    def log_of(self, task, container="web"):
        path = os.path.join(self.run_dir(), "tasks", task_id(task), f"{container}.log")
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return None


class CoreDockerTest(DockerTasksBase):
    def test_service_behind_gantry_lb_scale_in_and_delete(self):
        core, lb = self.start_stack(with_lb=True)
        core.ok("RegisterTaskDefinition", docker_taskdef(cpu=256, health=True))
        started = time.monotonic()
        core.ok("CreateService", {
            "serviceName": "web", "taskDefinition": "dweb", "desiredCount": 3,
            "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "web",
                               "containerPort": 8080}]})
        core.wait_running("web", 3, timeout=30)
        print(f"\n  3 DOCKER tasks RUNNING {time.monotonic() - started:.2f}s after CreateService")
        tasks = self.running(core, "web")
        ids = {task_id(t) for t in tasks}
        self.assertEqual({t["launchType"] for t in tasks}, {"DOCKER"},
                         "requiresCompatibilities [DOCKER] picks the DOCKER launch type")

        # dockerd runs one container per task, labelled with its cluster, service and task.
        containers = self.ours(running_only=True)
        self.assertEqual(len(containers), 3, containers)
        self.assertEqual({c["Labels"]["gantry.task"] for c in containers}, ids)
        self.assertEqual({(c["Labels"]["gantry.cluster"], c["Labels"]["gantry.service"],
                           c["Labels"]["gantry.container"]) for c in containers},
                         {("default", "web", "web")})
        self.assertEqual({c["Id"] for c in containers},
                         {t["containers"][0]["runtimeId"] for t in tasks})
        task = tasks[0]
        info = self.docker.inspect(task["containers"][0]["runtimeId"])
        host = info["HostConfig"]
        port = task["containers"][0]["networkBindings"][0]["hostPort"]
        self.assertEqual((host["NetworkMode"], host["NanoCpus"], host["Memory"]),
                         ("host", 256 * 10**9 // 1024, 64 * MIB))
        self.assertIn(f"PORT={port}", info["Config"]["Env"])
        self.assertIn(f"GANTRY_TASK_ID={task_id(task)}", info["Config"]["Env"])
        self.assertEqual(info["Config"]["Healthcheck"]["Test"],
                         ["CMD", "/bin/gantry-demo-app", "--probe", "/health"])
        self.assertEqual(info["Name"], f"/gantry-{task_id(task)}-web")

        # Requests through gantry-lb reach every task.
        addrs = sorted(f"127.0.0.1:{b['hostPort']}" for t in tasks
                       for b in t["containers"][0]["networkBindings"])
        wait_until(lambda: sorted(t["address"] for g in lb.targets()["target_groups"]
                                  for t in g["targets"] if t["state"] == "healthy") == addrs,
                   timeout=15, message="3 healthy targets in gantry-lb")
        seen = set()
        for _ in range(30):
            status, headers, _ = http_request(lb.listeners[0])
            self.assertEqual(status, 200)
            seen.add(headers["x-task-id"])
        self.assertEqual(seen, ids)

        # dockerd's health checks (the definition's healthCheck) reach the tasks.
        wait_until(lambda: all(t["healthStatus"] == "HEALTHY" for t in self.running(core, "web")),
                   timeout=20, message="every task HEALTHY by dockerd's health check")

        # Scale in: two tasks drain, stop (the demo app exits 0 on SIGTERM) and their containers
        # go, their logs saved where `gantry logs` reads them.
        core.ok("UpdateService", {"service": "web", "desiredCount": 1})
        stopped = wait_until(
            lambda: [t for t in core.tasks(serviceName="web", desiredStatus="STOPPED")
                     if t["lastStatus"] == "STOPPED"] if len(self.ours()) == 1 else None,
            timeout=20, message="two tasks stopped and their containers removed")
        self.assertEqual(len(stopped), 2)
        self.assertEqual([t["containers"][0]["exitCode"] for t in stopped], [0, 0])
        self.assertIsNotNone(self.log_of(stopped[0]), "the stopped container's log file")
        [left] = self.ours(running_only=True)
        self.assertIn(left["Labels"]["gantry.task"], ids)

        # DeleteService: every container goes.
        core.ok("DeleteService", {"service": "web", "force": True})
        wait_until(lambda: not self.ours() and all(
            t["lastStatus"] == "STOPPED" for t in core.tasks(serviceName="web",
                                                               desiredStatus="STOPPED")),
            timeout=20, message="every container removed after DeleteService")

    def test_run_task_stop_task_stop_timeout_and_oom(self):
        core, _ = self.start_stack()
        core.ok("RegisterTaskDefinition", docker_taskdef(family="plain", requires_docker=False,
                                                         extra={"environment": [
                                                             {"name": "X", "value": "from-td"}]}))
        core.ok("RegisterTaskDefinition", docker_taskdef(
            family="stubborn", port=None, entrypoint=["/bin/gantry-exit", "--ignore-term"],
            extra={"stopTimeout": 2}))
        core.ok("RegisterTaskDefinition", docker_taskdef(
            family="hungry", port=None, memory=32, entrypoint=["/bin/gantry-exit", "--alloc",
                                                               "512"]))
        plain = self.run_task(core, "plain", launchType="DOCKER", overrides={
            "containerOverrides": [{"name": "web", "environment": [{"name": "X",
                                                                    "value": "overridden"}]}]})
        stubborn = self.run_task(core, "stubborn")
        hungry = self.run_task(core, "hungry")

        task = self.wait_status(core, plain, "RUNNING")
        self.assertEqual(task["launchType"], "DOCKER")
        port = task["containers"][0]["networkBindings"][0]["hostPort"]
        status, headers, _ = http_request(f"127.0.0.1:{port}")
        self.assertEqual((status, headers["x-task-id"]), (200, task_id(task)))
        info = self.docker.inspect(task["containers"][0]["runtimeId"])
        self.assertIn("X=overridden", info["Config"]["Env"])
        core.ok("StopTask", {"task": plain})
        task = self.wait_status(core, plain, "STOPPED")
        self.assertEqual((task["stopCode"], task["stoppedReason"],
                          task["containers"][0]["exitCode"]),
                         ("UserInitiated", "Task stopped by user", 0))
        self.assertIsNone(self.docker.inspect(task["containers"][0]["runtimeId"]),
                          "a stopped task's container is removed")

        # SIGTERM ignored: SIGKILL after the definition's stopTimeout.
        self.wait_status(core, stubborn, "RUNNING")
        started = time.monotonic()
        core.ok("StopTask", {"task": stubborn, "reason": "test"})
        task = self.wait_status(core, stubborn, "STOPPED")
        self.assertGreaterEqual(time.monotonic() - started, 1.9, "SIGKILL before stopTimeout")
        self.assertEqual((task["containers"][0]["exitCode"], task["stoppedReason"]),
                         (128 + signal.SIGKILL, "test"))
        self.assertIn("ignoring SIGTERM", self.log_of(task) or "")

        # Past its memory limit, dockerd's OOM killer: ECS's reason.
        task = self.wait_status(core, hungry, "STOPPED")
        self.assertEqual(task["containers"][0]["exitCode"], 128 + signal.SIGKILL)
        self.assertEqual(task["containers"][0].get("reason"),
                         "OutOfMemoryError: Container killed due to memory usage")
        self.assertEqual(self.ours(), [])

    def test_container_exit_code_and_replacement(self):
        core, _ = self.start_stack()
        core.ok("RegisterTaskDefinition", docker_taskdef(
            family="quitter", port=None, entrypoint=["/bin/gantry-exit"],
            command=["3", "goodbye"]))
        core.ok("CreateService", {"serviceName": "quitter", "taskDefinition": "quitter",
                                  "desiredCount": 1})
        stopped = wait_until(
            lambda: [t for t in core.tasks(serviceName="quitter", desiredStatus="STOPPED")
                     if t["lastStatus"] == "STOPPED"], message="a task STOPPED")[0]
        self.assertEqual((stopped["stopCode"], stopped["stoppedReason"],
                          stopped["containers"][0]["exitCode"]),
                         ("EssentialContainerExited", "Essential container in task exited", 3))
        log = self.log_of(stopped)
        self.assertIn("stdout: exiting with 3", log)
        self.assertIn("stderr: goodbye", log)
        # The service replaces it.
        wait_until(lambda: len({task_id(t) for t in core.tasks(serviceName="quitter")} |
                               {task_id(t) for t in core.tasks(serviceName="quitter",
                                                               desiredStatus="STOPPED")}) >= 2,
                   message="a replacement task")
        core.ok("DeleteService", {"service": "quitter", "force": True})

    def test_missing_image_is_a_stopped_reason(self):
        core, _ = self.start_stack()
        core.ok("RegisterTaskDefinition", docker_taskdef(family="ghost",
                                                         image="gantry-test-missing:none"))
        arn = self.run_task(core, "ghost")
        task = self.wait_status(core, arn, "STOPPED")
        self.assertEqual(task["stopCode"], "TaskFailedToStart")
        self.assertTrue(task["stoppedReason"].startswith("CannotPullContainerError: "), task)
        self.assertIn("gantry-test-missing:none", task["stoppedReason"])
        self.assertIn("does not pull", task["stoppedReason"])
        self.assertEqual(self.ours(), [])
        self.assertEqual(core.call("ListClusters")[0], 200)
        self.assertIsNone(core.program.proc.poll(), "gantry-core keeps running")

    def test_kill_9_and_restart_finds_containers_again(self):
        core, _ = self.start_stack()
        core.ok("RegisterTaskDefinition", docker_taskdef())
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "dweb",
                                  "desiredCount": 2})
        core.wait_running("web", 2, timeout=30)
        before = {task_id(t): t["containers"][0]["runtimeId"] for t in self.running(core, "web")}
        survivor, victim = sorted(before)
        started_at = self.docker.inspect(before[survivor])["State"]["StartedAt"]

        core.program.signal(signal.SIGKILL)
        core.program.wait()
        self.assertEqual({c["Id"] for c in self.ours(running_only=True)}, set(before.values()),
                         "containers outlive gantry-core")
        # While it is down: one container dies, and one with our labels belongs to no task.
        self.docker.kill(before[victim])
        orphan = self.docker.run(self.image, f"gantry-test-orphan-{os.getpid()}", {
            "gantry.core": self.run_dir(), "gantry.cluster": "default", "gantry.service": "web",
            "gantry.task": "0" * 32, "gantry.container": "web"},
            entrypoint=["/bin/gantry-exit", "--ignore-term"])

        restarted = time.monotonic()
        core = self.start_core(core_yaml=self.docker_yaml(), name="core-again.yaml")
        victim_task = wait_until(
            lambda: [t for t in core.tasks(desiredStatus="STOPPED")
                     if task_id(t) == victim and t["lastStatus"] == "STOPPED"],
            message="the killed container's task STOPPED")[0]
        self.assertEqual(victim_task["containers"][0]["exitCode"], 128 + signal.SIGKILL)
        self.assertEqual(victim_task["stoppedReason"], "Essential container in task exited")
        wait_until(lambda: self.docker.inspect(orphan) is None, message="the orphan removed")
        core.wait_running("web", 2, timeout=20)
        print(f"\n  restart: steady again {time.monotonic() - restarted:.2f}s after start")

        now = {task_id(t): t["containers"][0]["runtimeId"] for t in self.running(core, "web")}
        self.assertEqual(now[survivor], before[survivor], "the survivor is the same task")
        self.assertEqual(self.docker.inspect(before[survivor])["State"]["StartedAt"], started_at,
                         "its container was never restarted")
        self.assertEqual(len(now), 2)
        self.assertNotIn(victim, now)
        containers = self.ours()
        self.assertEqual(sorted(c["Id"] for c in containers), sorted(now.values()),
                         "one container per task, none duplicated, none left behind")


class CoreDockerDownTest(DockerTasksBase):
    needs_daemon = False  # needs no dockerd: this is the one that is not there

    def test_daemon_down_is_a_stopped_reason(self):
        self.redis = self.start_redis()
        nobody = os.path.join(self.tmp, "nobody.sock")
        core = self.start_core(core_yaml=f"  docker_socket: {nobody}\n")
        core.ok("RegisterTaskDefinition", docker_taskdef(image="gantry-test-demo:any"))
        for _ in range(2):  # the second within the client's backoff: the same reason
            arn = self.run_task(core, "dweb")
            task = self.wait_status(core, arn, "STOPPED")
            self.assertEqual(task["stopCode"], "TaskFailedToStart")
            self.assertIn(f"cannot reach dockerd at {nobody}", task["stoppedReason"])
            self.assertIn("No such file or directory", task["stoppedReason"])
        self.assertEqual(core.call("ListClusters")[0], 200)
        self.assertIsNone(core.program.proc.poll(), "gantry-core keeps running")
