"""Crash-safe restart: gantry-core killed with SIGKILL and started again on the same Redis re-adopts
its running processes, notices those that died meanwhile, never signals a pid that is no longer
its process, kills processes it started but never recorded, and resumes a deployment in
progress."""
import json
import os
import signal
import subprocess
import threading
import time

from core_fixtures import CoreTestCase, demo_taskdef, task_pids
from harness import binary, wait_until
from lb_fixtures import Lb, LbTestCase
from test_core_service import LB_SECTION, TG_ARN, Load


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class TargetWatcher:
    """Samples the target group's members in Redis every 10 ms (bounded) and keeps every address
    that was ever missing from it."""

    def __init__(self, redis, addrs, max_seconds=60):
        self.redis = redis
        self.addrs = set(addrs)
        self.missing = set()
        self.error = None
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            try:
                members = set(self.redis.command("HKEYS", "gantry:targets:web"))
            except Exception as e:  # reported by stop(), never lost in the thread
                self.error = e
                return
            self.missing |= self.addrs - members
            time.sleep(0.01)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=10)
        if self.error:
            raise AssertionError(f"the target watcher failed: {self.error!r}")
        return self.missing


class CoreRestartTest(CoreTestCase, LbTestCase):
    def start_stack(self, name="core.yaml"):
        self.redis = getattr(self, "redis", None) or self.start_redis()
        core = self.start_core(extra_yaml=LB_SECTION, name=name)
        return core

    def start_lb(self):
        path = self.write_file("lb.yaml", f'redis: {{url: "{self.redis.url}"}}\n' + LB_SECTION)
        program = self.start_program("gantry-lb", ["-c", path])
        return Lb(program, program.wait_ready(), path)

    def create_service(self, core, count, grace=10):  # no replacement for a health-check blip
        core.ok("CreateService", {
            "serviceName": "web", "taskDefinition": "web", "desiredCount": count,
            "healthCheckGracePeriodSeconds": grace,
            "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "web",
                               "containerPort": 8080}]})

    def running(self, core, **filters):
        return {t["taskArn"]: t for t in core.tasks(**filters) if t["lastStatus"] == "RUNNING"}

    def crash(self, core):
        core.program.signal(signal.SIGKILL)
        core.program.wait()

    def test_kill_9_in_steady_state_re_adopts_every_task(self):
        core = self.start_stack()
        lb = self.start_lb()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 3)
        core.wait_running("web", 3, timeout=20)
        [single] = core.ok("RunTask", {"taskDefinition": "web"})["tasks"]
        wait_until(lambda: single["taskArn"] in self.running(core), message="the RunTask task")
        before = {arn: int(t["containers"][0]["runtimeId"]) for arn, t in
                  self.running(core).items()}
        addrs = set(self.redis.command("HKEYS", "gantry:targets:web"))
        self.assertEqual(len(addrs), 3)
        load = Load(lb.listeners[0], max_seconds=60)
        wait_until(lambda: load.ok > 100, message="load flowing")
        watcher = TargetWatcher(self.redis, addrs)

        self.crash(core)
        for pid in before.values():
            self.assertTrue(alive(pid), "a crash of gantry-core does not take its tasks along")
        core = self.start_stack(name="core2.yaml")
        core.wait_running("web", 3, timeout=20)
        time.sleep(1)  # a few reconcile passes (200 ms each) must leave the adopted tasks alone
        after = {arn: int(t["containers"][0]["runtimeId"]) for arn, t in
                 self.running(core).items()}
        self.assertEqual(after, before, "the same tasks with the same processes")
        for pid in before.values():
            self.assertTrue(alive(pid))
        served = load.ok
        wait_until(lambda: load.ok > served + 100, message="load still flowing")
        missing = watcher.stop()
        ok, failed = load.stop()
        self.assertEqual(missing, set(), "no target was deregistered")
        self.assertEqual(failed, [], f"{len(failed)} failed of {ok + len(failed)}")
        self.assertIn("re-adopted 4 running container process(es)", core.program.log())
        self.assertEqual(len(task_pids(os.path.join(self.tmp, "run"))), 4)

        # a re-adopted process that exits is noticed and its task replaced
        victim = next(arn for arn in before if arn != single["taskArn"])
        os.kill(before[victim], signal.SIGKILL)
        [task] = wait_until(lambda: [t for t in core.ok("DescribeTasks", {"tasks": [victim]})
                                     ["tasks"] if t["lastStatus"] == "STOPPED"],
                            message="the killed task STOPPED")
        self.assertEqual(task["stopCode"], "EssentialContainerExited")
        self.assertIn("re-adopted", task["containers"][0]["reason"])
        core.wait_running("web", 3, timeout=20)
        # and StopTask still reaches an adopted process
        core.ok("StopTask", {"task": single["taskArn"]})
        wait_until(lambda: not alive(before[single["taskArn"]]), message="the single task gone")

    def test_tasks_that_died_while_the_core_was_down_are_replaced(self):
        core = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 2)
        core.wait_running("web", 2, timeout=20)
        before = {arn: int(t["containers"][0]["runtimeId"]) for arn, t in
                  self.running(core).items()}
        self.crash(core)
        dead_arn, dead_pid = next(iter(before.items()))
        os.kill(dead_pid, signal.SIGKILL)
        wait_until(lambda: not alive(dead_pid), message="the task's process gone")
        dead_addr = [a for a in self.redis.command("HKEYS", "gantry:targets:web")]
        core = self.start_stack(name="core2.yaml")
        core.wait_running("web", 2, timeout=20)
        running = self.running(core)
        self.assertNotIn(dead_arn, running)
        self.assertEqual(len(running), 2)
        [task] = core.ok("DescribeTasks", {"tasks": [dead_arn]})["tasks"]
        self.assertEqual(task["lastStatus"], "STOPPED")
        self.assertEqual(task["containers"][0]["reason"],
                         "exited while gantry-core was not running")
        port = task["containers"][0]["networkBindings"][0]["hostPort"]
        wait_until(lambda: f"127.0.0.1:{port}" not in
                   self.redis.command("HKEYS", "gantry:targets:web"),
                   message="the dead task's target deregistered")
        self.assertEqual(len(dead_addr), 2)
        self.assertEqual(len(task_pids(os.path.join(self.tmp, "run"))), 2)

    def test_a_reused_pid_is_never_signalled(self):
        core = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 1)
        core.wait_running("web", 1, timeout=20)
        [(arn, task)] = self.running(core).items()
        self.crash(core)
        # The task's process dies and an unrelated process (its own process group, as a task's
        # would be) takes its place in the record: the pid matches, the start time does not.
        os.kill(int(task["containers"][0]["runtimeId"]), signal.SIGKILL)
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
        self.addCleanup(stranger.kill)
        task_id = arn.rsplit("/", 1)[1]
        record = json.loads(self.redis.command("HGET", "gantry:ecs:tasks:default", task_id))
        record["_gantry"]["processes"][0]["pid"] = stranger.pid
        self.redis.command("HSET", "gantry:ecs:tasks:default", task_id, json.dumps(record))
        core = self.start_stack(name="core2.yaml")
        [task] = wait_until(lambda: [t for t in core.ok("DescribeTasks", {"tasks": [arn]})
                                     ["tasks"] if t["lastStatus"] == "STOPPED"],
                            message="the task noticed as gone")
        core.wait_running("web", 1, timeout=20)
        self.assertTrue(alive(stranger.pid), "the unrelated process was signalled")
        self.assertIsNone(stranger.poll())

    def test_a_process_started_but_never_recorded_is_killed(self):
        core = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.crash(core)
        # What a core killed between starting a task and writing it to Redis leaves behind: a
        # process in its own group with a pid file, and no task record.
        orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
        self.addCleanup(orphan.kill)
        task_dir = os.path.join(self.tmp, "run", "tasks", "0123456789abcdef0123456789abcdef")
        os.makedirs(task_dir)
        with open(os.path.join(task_dir, "web.pid"), "w") as f:
            f.write(f"{orphan.pid} {start_ticks(orphan.pid)}\n")
        # and a pid file naming an unrelated process with another start time: left alone
        stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
        self.addCleanup(stranger.kill)
        other_dir = os.path.join(self.tmp, "run", "tasks", "fedcba9876543210fedcba9876543210")
        os.makedirs(other_dir)
        with open(os.path.join(other_dir, "web.pid"), "w") as f:
            f.write(f"{stranger.pid} {start_ticks(stranger.pid) + 1}\n")
        self.start_stack(name="core2.yaml")
        wait_until(lambda: orphan.poll() is not None, message="the orphan killed")
        self.assertEqual(orphan.returncode, -signal.SIGKILL)
        self.assertIsNone(stranger.poll())

    def test_kill_9_during_a_deployment_resumes_it(self):
        core = self.start_stack()
        lb = self.start_lb()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 4, grace=30)
        core.wait_running("web", 4, timeout=20)
        # revision 2 takes a while to become healthy in the lb (its demo app listens after 3 s),
        # so the deployment is caught in progress
        rev2 = core.ok("RegisterTaskDefinition", demo_taskdef(
            family="web", command=["/bin/sh", "-c", "sleep 3; exec " +
                                   binary("gantry-demo-app")]))["taskDefinition"]
        core.ok("UpdateService", {"service": "web", "taskDefinition": rev2["taskDefinitionArn"]})
        wait_until(lambda: len(self.running(core)) > 4, message="new tasks started")
        svc = core.service("web")
        self.assertEqual(len(svc["deployments"]), 2)
        self.crash(core)
        core = self.start_stack(name="core2.yaml")

        def done():
            s = core.service("web")
            running = self.running(core)
            return (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] ==
                    "COMPLETED" and len(running) == 4 and
                    all(t["taskDefinitionArn"] == rev2["taskDefinitionArn"]
                        for t in running.values()))
        wait_until(done, timeout=40, message="the deployment completed after the restart")
        wait_until(lambda: len(task_pids(os.path.join(self.tmp, "run"))) == 4,
                   message="exactly 4 task processes")
        self.assertEqual(len(self.redis.command("HKEYS", "gantry:targets:web")), 4)
