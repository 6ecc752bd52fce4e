"""gantry-core when things go wrong around it: a restart with tasks to retire, a service whose
tasks cannot run, Redis losing its data, a service name used again, records damaged in Redis.
Each case is a bug a review found."""
import json
import os
import signal
import time

from core_fixtures import CoreTestCase, demo_taskdef, task_pids
from harness import wait_until


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class CoreResilienceTest(CoreTestCase):
    def test_a_restart_with_tasks_to_adopt_leaves_the_core_idle(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", {"family": "sleeper", "containerDefinitions": [
            {"name": "main", "image": "x", "command": ["/bin/sleep", "60"], "memory": 16}]})
        arn = core.ok("RunTask", {"taskDefinition": "sleeper"})["tasks"][0]["taskArn"]
        wait_until(lambda: core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]["lastStatus"]
                   == "RUNNING", message="the task RUNNING")
        core.program.signal(signal.SIGKILL)
        core.program.wait()
        core = self.start_core(name="core2.yaml")
        wait_until(lambda: "re-adopted 1 running container process(es)" in core.program.log(),
                   message="the old task re-adopted")
        self.assertEqual(core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]["lastStatus"],
                         "RUNNING")
        # An idle watcher started before it was initialised once made every loop iteration run
        # a reconcile: 100% of a core. Idle, gantry-core uses next to nothing.
        before, started = cpu_ticks(core.program.pid), time.monotonic()
        wait_until(lambda: time.monotonic() - started > 2, interval=0.2, message="2 s")
        used = (cpu_ticks(core.program.pid) - before) / os.sysconf("SC_CLK_TCK")
        self.assertLess(used / (time.monotonic() - started), 0.3, "gantry-core is spinning")

    def test_a_service_whose_tasks_cannot_run_backs_off(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", {"family": "broken", "containerDefinitions": [
            {"name": "main", "image": "x", "command": ["/bin/false"], "memory": 16}]})
        core.ok("CreateService", {"serviceName": "broken", "taskDefinition": "broken",
                                  "desiredCount": 1})
        wanted = "(service broken) is unable to consistently start tasks successfully."
        wait_until(lambda: any(e["message"].startswith(wanted)
                               for e in core.service("broken")["events"]),
                   message="the throttle event")
        stopped = lambda: len(core.tasks(serviceName="broken", desiredStatus="STOPPED"))
        first, started = stopped(), time.monotonic()
        wait_until(lambda: time.monotonic() - started > 3, interval=0.2, message="3 s")
        # backing off 1, 2, 4 s...: a few more tasks in 3 s, not hundreds
        self.assertLessEqual(stopped() - first, 3)
        deployment = core.service("broken")["deployments"][0]
        self.assertGreaterEqual(deployment["failedTasks"], 4)

    def test_redis_losing_its_data_gets_everything_written_again(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef())
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "demo",
                                  "desiredCount": 2, "loadBalancers": [
                                      {"targetGroupArn": "tg", "containerName": "web",
                                       "containerPort": 8080}]})
        core.wait_running("web", 2)
        members = sorted(self.redis.command("HKEYS", "gantry:targets:tg"))
        self.assertEqual(len(members), 2)
        self.assertEqual(self.redis.command("FLUSHALL"), "OK")
        wait_until(lambda: sorted(self.redis.command("HKEYS", "gantry:targets:tg")) == members,
                   message="the targets registered again")
        wait_until(lambda: self.redis.command("HEXISTS", "gantry:ecs:services:default", "web")
                   == 1 and self.redis.command("HLEN", "gantry:ecs:tasks:default") == 2,
                   message="the service and its tasks written again")
        self.assertIn("demo", self.redis.command("HKEYS", "gantry:ecs:families"))
        self.assertGreater(self.redis.command("LLEN", "gantry:ecs:events:default:web"), 0)

    def test_a_service_created_again_under_its_name_stays_in_redis(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef())
        core.ok("CreateService", {"serviceName": "s1", "taskDefinition": "demo",
                                  "desiredCount": 0})
        core.ok("DeleteService", {"service": "s1"})
        wait_until(lambda: core.service("s1")["status"] == "INACTIVE", message="s1 INACTIVE")
        core.ok("CreateService", {"serviceName": "s1", "taskDefinition": "demo",
                                  "desiredCount": 1})
        core.wait_running("s1", 1)
        stored = json.loads(self.redis.command("HGET", "gantry:ecs:services:default", "s1"))
        self.assertEqual((stored["status"], stored["desiredCount"]), ("ACTIVE", 1))
        core.program.stop()
        core = self.start_core(name="core2.yaml")
        self.assertEqual(core.service("s1")["status"], "ACTIVE")

    def test_damaged_task_records_cannot_reach_outside_the_run_dir(self):
        core = self.start_core("  stopped_task_retention: 1s\n")
        core.ok("RegisterTaskDefinition", {"family": "one", "containerDefinitions": [
            {"name": "main", "image": "x", "command": ["/bin/true"], "memory": 16}]})
        arn = core.ok("RunTask", {"taskDefinition": "one"})["tasks"][0]["taskArn"]
        wait_until(lambda: core.ok("DescribeTasks", {"tasks": [arn]})["tasks"][0]["lastStatus"]
                   == "STOPPED", message="a task has run (run/tasks exists)")
        core.program.stop()
        victim = os.path.join(self.tmp, "victim_" + "a" * 19)
        os.mkdir(victim)
        record = json.loads(self.redis.command("HGET", "gantry:ecs:tasks:default",
                                               arn.rsplit("/", 1)[1]))
        bad_id = "../../" + os.path.basename(victim)
        self.assertEqual(len(bad_id), 32)
        record["taskArn"] = record["taskArn"].rsplit("/", 1)[0] + "/" + bad_id
        record["stoppedAt"] = 1.0
        record["_gantry"]["processes"] = [{"name": "main", "pid": 1, "startTicks": 1,
                                           "running": True}]
        record["lastStatus"] = "RUNNING"  # retire would signal its processes
        self.redis.command("HSET", "gantry:ecs:tasks:default", bad_id, json.dumps(record))
        core = self.start_core("  stopped_task_retention: 1s\n", name="core2.yaml")
        wait_until(lambda: "unreadable; forgotten" in core.program.log(),
                   message="the damaged record refused")
        wait_until(lambda: self.redis.command("HEXISTS", "gantry:ecs:tasks:default", bad_id) == 0,
                   message="the damaged record removed")
        self.assertTrue(os.path.isdir(victim))
        os.kill(1, 0)  # still there: nothing signalled pid 1's group
