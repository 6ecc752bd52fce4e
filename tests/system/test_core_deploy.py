"""Rolling deployments through gantry-core with a real gantry-lb in front and load flowing: the
100/200 rolling update, the circuit breaker with rollback, and tasks replaced for failing the lb's
health checks."""
import os
import threading
import time

from core_fixtures import CoreTestCase, demo_taskdef, task_pids
from harness import http_request, wait_until
from lb_fixtures import Lb, LbTestCase
from test_core_service import LB_SECTION, TG_ARN, Load


class HealthySampler:
    """Counts gantry-lb's healthy targets every 20 ms (bounded in time) and keeps the lowest."""

    def __init__(self, lb, max_seconds=90):
        self.lb = lb
        self.lowest = None
        self.samples = 0
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            groups = self.lb.targets()["target_groups"]
            healthy = sum(t["state"] == "healthy" for g in groups for t in g["targets"])
            self.lowest = healthy if self.lowest is None else min(self.lowest, healthy)
            self.samples += 1
            time.sleep(0.02)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=10)
        return self.lowest


class CoreDeployTest(CoreTestCase, LbTestCase):
    def start_stack(self):
        self.redis = self.start_redis()
        core = self.start_core(extra_yaml=LB_SECTION)
        path = self.write_file("lb.yaml", f'redis: {{url: "{self.redis.url}"}}\n' + LB_SECTION)
        program = self.start_program("gantry-lb", ["-c", path])
        return core, Lb(program, program.wait_ready(), path)

    # A grace period of 10 s: a machine slowed down (the ASan build) can make a healthy target
    # miss the lb's 150 ms health checks for a moment, and such a blip must not replace a task
    # the test counts on. The test of that replacement sets its own.
    def create_service(self, core, count, breaker=None, grace=10):
        request = {"serviceName": "web", "taskDefinition": "web", "desiredCount": count,
                   "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "web",
                                      "containerPort": 8080}]}
        if breaker:
            request["deploymentConfiguration"] = {"deploymentCircuitBreaker": breaker}
        if grace is not None:
            request["healthCheckGracePeriodSeconds"] = grace
        return core.ok("CreateService", request)["service"]

    def healthy(self, lb):
        return sorted(t["address"] for g in lb.targets()["target_groups"] for t in g["targets"]
                      if t["state"] == "healthy")

    def running(self, core):
        return [t for t in core.tasks(serviceName="web") if t["lastStatus"] == "RUNNING"]

    def wait_healthy(self, core, lb, count):
        def all_healthy():
            addrs = sorted(f"127.0.0.1:{b['hostPort']}" for t in self.running(core)
                           for b in t["containers"][0]["networkBindings"])
            return len(addrs) == count and self.healthy(lb) == addrs
        wait_until(all_healthy, timeout=20, message=f"{count} healthy targets")

    def test_rolling_deployment_under_load_keeps_four_healthy_targets(self):
        core, lb = self.start_stack()
        rev1 = core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))["taskDefinition"]
        self.create_service(core, 4)
        core.wait_running("web", 4, timeout=20)
        self.wait_healthy(core, lb, 4)
        old = {t["taskArn"] for t in self.running(core)}
        rev2 = core.ok("RegisterTaskDefinition",
                       demo_taskdef(family="web", env={"VERSION": "2"}))["taskDefinition"]

        load = Load(lb.listeners[0], max_seconds=90)
        wait_until(lambda: load.ok > 100, message="load flowing")
        sampler = HealthySampler(lb)
        svc = core.ok("UpdateService", {"service": "web",
                                        "taskDefinition": rev2["taskDefinitionArn"]})["service"]
        deployments = svc["deployments"]
        self.assertEqual([d["status"] for d in deployments], ["PRIMARY", "ACTIVE"])
        self.assertEqual(deployments[0]["taskDefinition"], rev2["taskDefinitionArn"])
        self.assertEqual(deployments[0]["rolloutState"], "IN_PROGRESS")
        self.assertEqual(deployments[1]["taskDefinition"], rev1["taskDefinitionArn"])
        self.assertEqual(svc["taskDefinition"], rev2["taskDefinitionArn"])
        seen_states = set()

        def completed():
            s = core.service("web")
            seen_states.update(d["rolloutState"] for d in s["deployments"] if
                               d["status"] == "PRIMARY")
            running = self.running(core)
            return (len(s["deployments"]) == 1
                    and s["deployments"][0]["rolloutState"] == "COMPLETED"
                    and len(running) == 4
                    and all(t["taskDefinitionArn"] == rev2["taskDefinitionArn"] for t in running)
                    and s)
        svc = wait_until(completed, timeout=60, interval=0.1, message="the deployment completed")
        self.assertIn("IN_PROGRESS", seen_states)
        self.wait_healthy(core, lb, 4)
        served = load.ok
        wait_until(lambda: load.ok > served + 100, message="load still flowing")
        lowest = sampler.stop()
        ok, failed = load.stop()
        self.assertEqual(failed, [], f"{len(failed)} failed of {ok + len(failed)}")
        self.assertGreaterEqual(sampler.samples, 3)  # it ran during the deployment
        self.assertGreaterEqual(lowest, 4, "fewer than 4 healthy targets during the deployment")
        self.assertFalse(old & {t["taskArn"] for t in self.running(core)})
        for arn in old:
            [task] = core.ok("DescribeTasks", {"tasks": [arn]})["tasks"]
            self.assertEqual(task["lastStatus"], "STOPPED")
            self.assertIn("Scaling activity initiated by (deployment", task["stoppedReason"])
        messages = [e["message"] for e in svc["events"]]
        dep_id = svc["deployments"][0]["id"]
        self.assertIn(f"(service web) (deployment {dep_id}) deployment completed.", messages)
        self.assertTrue(any("has begun draining connections" in m for m in messages))
        # nothing but the four tasks left on the machine
        wait_until(lambda: len(task_pids(self.tmp + "/run")) == 4, message="4 task processes")

    def test_failing_revision_trips_the_breaker_and_rolls_back(self):
        core, lb = self.start_stack()
        rev1 = core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))["taskDefinition"]
        self.create_service(core, 4, breaker={"enable": True, "rollback": True})
        core.wait_running("web", 4, timeout=20)
        self.wait_healthy(core, lb, 4)
        old = {t["taskArn"] for t in self.running(core)}
        bad = core.ok("RegisterTaskDefinition",
                      demo_taskdef(family="web", command=["/bin/false"]))["taskDefinition"]

        load = Load(lb.listeners[0], max_seconds=90)
        wait_until(lambda: load.ok > 100, message="load flowing")
        bad_id = core.ok("UpdateService", {"service": "web", "taskDefinition":
                                           bad["taskDefinitionArn"]})["service"]["deployments"][0]["id"]
        failed_event = (f"(service web) (deployment {bad_id}) deployment failed: tasks failed "
                        "to start.")

        def rolled_back():
            s = core.service("web")
            primary = s["deployments"][0]
            return (failed_event in [e["message"] for e in s["events"]]
                    and primary["taskDefinition"] == rev1["taskDefinitionArn"]
                    and primary["rolloutState"] == "COMPLETED" and len(s["deployments"]) == 1
                    and s)
        svc = wait_until(rolled_back, timeout=60, interval=0.1, message="rolled back")
        served = load.ok
        wait_until(lambda: load.ok > served + 100, message="load still flowing")
        ok, failed = load.stop()
        self.assertEqual(failed, [], f"{len(failed)} failed of {ok + len(failed)}")
        self.assertEqual(svc["taskDefinition"], rev1["taskDefinitionArn"])
        self.assertNotEqual(svc["deployments"][0]["id"], bad_id)
        # the revision-1 tasks served throughout: kept, not replaced
        self.assertEqual({t["taskArn"] for t in self.running(core)}, old)
        messages = [e["message"] for e in svc["events"]]
        self.assertTrue(any("rolling back to deployment" in m for m in messages), messages)
        bad_tasks = [t for t in core.tasks(desiredStatus="STOPPED")
                     if t["taskDefinitionArn"] == bad["taskDefinitionArn"]]
        self.assertGreaterEqual(len(bad_tasks), 3)  # ECS's threshold for 4 tasks
        self.assertTrue(all(t["lastStatus"] == "STOPPED" for t in bad_tasks))

    def test_a_revision_that_dies_after_a_few_seconds_never_completes(self):
        # No load balancer, no health check, minimumHealthyPercent 0: a task that crashes 2 s in
        # must not let its deployment complete (it only counts once alive 10 s).
        core = self.start_core()
        rev1 = core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        rev1 = rev1["taskDefinition"]
        core.ok("CreateService", {
            "serviceName": "web", "taskDefinition": "web", "desiredCount": 2,
            "deploymentConfiguration": {"minimumHealthyPercent": 0, "maximumPercent": 100,
                                        "deploymentCircuitBreaker": {"enable": True,
                                                                     "rollback": True}}})
        core.wait_running("web", 2, timeout=20)
        wait_until(lambda: core.service("web")["deployments"][0]["rolloutState"] == "COMPLETED",
                   message="the first deployment completed")
        bad = core.ok("RegisterTaskDefinition", demo_taskdef(
            family="web", command=["/bin/sh", "-c", "sleep 2; exit 1"]))
        bad = bad["taskDefinition"]
        core.ok("UpdateService", {"service": "web", "taskDefinition": bad["taskDefinitionArn"]})
        states = set()

        def back():
            s = core.service("web")
            for d in s["deployments"]:
                if d["taskDefinition"] == bad["taskDefinitionArn"]:
                    states.add(d["rolloutState"])
            primary = s["deployments"][0]
            return (primary["taskDefinition"] == rev1["taskDefinitionArn"] and
                    primary["rolloutState"] == "COMPLETED" and s)
        wait_until(back, timeout=60, interval=0.1, message="rolled back to revision 1")
        self.assertNotIn("COMPLETED", states)
        core.wait_running("web", 2, timeout=20)

    def test_max_percent_holds_to_the_last_task(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {
            "serviceName": "web", "taskDefinition": "web", "desiredCount": 4,
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}})
        core.wait_running("web", 4, timeout=20)
        rev2 = core.ok("RegisterTaskDefinition", demo_taskdef(
            family="web", env={"VERSION": "2"}))["taskDefinition"]
        run_dir = self.tmp + "/run"
        most = [0]
        stop = threading.Event()

        def groups():
            # a task's container is its own process group; counting groups, not processes, leaves
            # out helpers of a process (the ASan build's leak checker clones a tracer at exit)
            found = set()
            for pid in task_pids(run_dir):
                try:
                    found.add(os.getpgid(pid))
                except ProcessLookupError:
                    pass
            return len(found)

        def sample():
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                most[0] = max(most[0], groups())
                time.sleep(0.01)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        core.ok("UpdateService", {"service": "web", "taskDefinition": rev2["taskDefinitionArn"]})
        wait_until(lambda: (lambda r: len(r) == 4 and all(
            t["taskDefinitionArn"] == rev2["taskDefinitionArn"] for t in r))(self.running(core)),
            timeout=60, message="every task on revision 2")
        stop.set()
        sampler.join(timeout=10)
        self.assertEqual(most[0], 4, "more tasks running than maximumPercent allows")

    def test_a_failing_revision_is_throttled_without_the_breaker(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "web",
                                  "desiredCount": 1})
        core.wait_running("web", 1, timeout=20)
        bad = core.ok("RegisterTaskDefinition", demo_taskdef(
            family="web", command=["/bin/false"]))["taskDefinition"]
        core.ok("UpdateService", {"service": "web", "taskDefinition": bad["taskDefinitionArn"]})
        wanted = "(service web) is unable to consistently start tasks successfully."
        wait_until(lambda: any(e["message"].startswith(wanted)
                               for e in core.service("web")["events"]),
                   message="the throttle event")
        started = time.monotonic()
        first = len(core.tasks(desiredStatus="STOPPED"))
        wait_until(lambda: time.monotonic() - started > 3, interval=0.2, message="3 s")
        # backing off 1, 2, 4 s...: a few more tasks in 3 s, not dozens
        self.assertLessEqual(len(core.tasks(desiredStatus="STOPPED")) - first, 3)

    def test_without_rollback_a_failed_deployment_stops_and_the_old_tasks_stay(self):
        core, lb = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 2, breaker={"enable": True, "rollback": False})
        core.wait_running("web", 2, timeout=20)
        old = {t["taskArn"] for t in self.running(core)}
        bad = core.ok("RegisterTaskDefinition",
                      demo_taskdef(family="web", command=["/bin/false"]))["taskDefinition"]
        core.ok("UpdateService", {"service": "web", "taskDefinition": bad["taskDefinitionArn"]})
        svc = wait_until(lambda: (s := core.service("web"))["deployments"][0]["rolloutState"]
                         == "FAILED" and s, timeout=30, message="the deployment FAILED")
        self.assertEqual(svc["deployments"][0]["taskDefinition"], bad["taskDefinitionArn"])

        def bad_tasks():
            return [t for status in ("RUNNING", "STOPPED") for t in
                    core.tasks(desiredStatus=status)
                    if t["taskDefinitionArn"] == bad["taskDefinitionArn"]]
        settled = wait_until(lambda: (ts := bad_tasks()) and
                             all(t["lastStatus"] == "STOPPED" for t in ts) and ts,
                             message="the failed revision's tasks stopped")
        time.sleep(2)  # the breaker must hold: no task of the failed revision starts again
        self.assertEqual(len(bad_tasks()), len(settled))
        self.assertEqual(core.service("web")["deployments"][0]["rolloutState"], "FAILED")
        self.assertEqual({t["taskArn"] for t in self.running(core)}, old)

    def test_force_new_deployment_replaces_every_task(self):
        core, lb = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 2)
        core.wait_running("web", 2, timeout=20)
        self.wait_healthy(core, lb, 2)
        old = {t["taskArn"] for t in self.running(core)}
        svc = core.ok("UpdateService", {"service": "web", "forceNewDeployment": True})["service"]
        self.assertEqual(len(svc["deployments"]), 2)
        wait_until(lambda: len(core.service("web")["deployments"]) == 1 and
                   len(self.running(core)) == 2 and
                   not old & {t["taskArn"] for t in self.running(core)},
                   timeout=40, message="every task replaced")

    def test_update_service_refuses_a_revision_without_the_balanced_port(self):
        core, lb = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 1)
        other = core.ok("RegisterTaskDefinition",
                        demo_taskdef(family="web", port=9090))["taskDefinition"]
        status, doc = core.call("UpdateService", {"service": "web",
                                                  "taskDefinition": other["taskDefinitionArn"]})
        self.assertEqual(status, 400)
        self.assertEqual(doc["__type"], "InvalidParameterException")
        self.assertIn("did not have a container port 8080", doc["message"])
        self.assertEqual(len(core.service("web")["deployments"]), 1)

    def test_a_task_failing_the_lb_health_checks_is_replaced(self):
        core, lb = self.start_stack()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        self.create_service(core, 2, grace=1)
        core.wait_running("web", 2, timeout=20)
        self.wait_healthy(core, lb, 2)
        victim = self.running(core)[0]
        port = victim["containers"][0]["networkBindings"][0]["hostPort"]
        status, _, _ = http_request(f"127.0.0.1:{port}", method="POST", path="/health/fail")
        self.assertEqual(status, 200)
        start = time.monotonic()
        [task] = wait_until(lambda: [t for t in core.ok("DescribeTasks", {"tasks": [
            victim["taskArn"]]})["tasks"] if t["desiredStatus"] == "STOPPED"], timeout=15,
            message="the unhealthy task stopped")
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(task["stoppedReason"],
                         f"Task failed ELB health checks in (target-group {TG_ARN})")
        self.wait_healthy(core, lb, 2)
        self.assertNotIn(victim["taskArn"], {t["taskArn"] for t in self.running(core)})
        messages = [e["message"] for e in core.service("web")["events"]]
        self.assertTrue(any(f"(task {victim['taskArn'].rsplit('/', 1)[1]}) failed ELB health "
                            "checks" in m for m in messages), messages)
