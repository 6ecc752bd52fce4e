"""gantry-core end to end, with the real AWS CLI, real demo processes and a real gantry-lb in front
of them: the acceptance script of the core issue, then every action of the API through the CLI."""
import json
import os
import signal
import threading
import time
import http.client

from core_fixtures import CoreTestCase, demo_taskdef, task_pids
from harness import http_request, split_addr, wait_until
from lb_fixtures import FAST_CHECK, Lb, LbTestCase

TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/6d0ecf831eec9f09"

LB_SECTION = f"""\
lb:
  workers: 1
  admin: 127.0.0.1:0
  listeners:
    - name: web
      listen: 127.0.0.1:0
      default_action: {{type: forward, target_group: web}}
  target_groups:
    - name: web
      targets_from: redis
      health_check: {FAST_CHECK}
      deregistration_delay: 10s
"""


class Load:
    """Keep-alive GET requests through the balancer from one thread until stopped (bounded in count
    and time); counts answers by outcome."""

    def __init__(self, addr, max_requests=200000, max_seconds=60):
        self.addr = addr
        self.ok = 0
        self.failed = []
        self.served_by = set()
        self.stop_event = threading.Event()
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        host, port = split_addr(self.addr)
        conn = None
        for i in range(self.max_requests):
            if self.stop_event.is_set() or time.monotonic() > self.deadline:
                break
            try:
                if conn is None or i % 50 == 0:  # new connections now and then, too
                    if conn:
                        conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    self.ok += 1
                    self.served_by.add(resp.getheader("X-Served-By"))
                else:
                    self.failed.append(f"status {resp.status}")
            except (OSError, http.client.HTTPException) as e:
                self.failed.append(repr(e))
                conn = None
        if conn:
            conn.close()

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=30)
        return self.ok, self.failed


class CoreServiceTest(CoreTestCase, LbTestCase):
    def start_stack(self):
        self.redis = self.start_redis()
        core = self.start_core(extra_yaml=LB_SECTION, clusters=())
        path = self.write_file("lb.yaml", f'redis: {{url: "{self.redis.url}"}}\n' + LB_SECTION)
        program = self.start_program("gantry-lb", ["-c", path])
        return core, Lb(program, program.wait_ready(), path)

    def healthy_targets(self, lb):
        return sorted(t["address"] for group in lb.targets()["target_groups"]
                      for t in group["targets"] if t["state"] == "healthy")

    def running_tasks(self, core):
        return [t for t in core.tasks("demo", serviceName="web") if t["lastStatus"] == "RUNNING"]

    def test_aws_cli_script_with_gantry_lb_in_front(self):
        core, lb = self.start_stack()
        listener = lb.listeners[0]
        # A cluster, a task definition from a file in ECS's own format, a service of 3 tasks.
        cluster = core.aws("ecs", "create-cluster", "--cluster-name", "demo")["cluster"]
        self.assertEqual(cluster["clusterArn"], "arn:aws:ecs:us-east-1:000000000000:cluster/demo")
        taskdef = self.write_file("taskdef.json", json.dumps(demo_taskdef(family="web")))
        td = core.aws("ecs", "register-task-definition", "--cli-input-json",
                      f"file://{taskdef}")["taskDefinition"]
        self.assertEqual((td["revision"], td["status"]), (1, "ACTIVE"))
        svc = core.aws("ecs", "create-service", "--cluster", "demo", "--service-name", "web",
                       "--task-definition", "web", "--desired-count", "3", "--load-balancers",
                       f"targetGroupArn={TG_ARN},containerName=web,containerPort=8080")["service"]
        self.assertEqual((svc["desiredCount"], svc["status"]), (3, "ACTIVE"))
        core.wait_running("web", 3, cluster="demo", timeout=20)
        proc = core.aws_run("ecs", "wait", "services-stable", "--cluster", "demo", "--services",
                            "web")
        self.assertEqual(proc.returncode, 0, proc.stderr)

        # The 3 demo processes answer through gantry-lb.
        tasks = self.running_tasks(core)
        ports = sorted(b["hostPort"] for t in tasks for b in t["containers"][0]["networkBindings"])
        addrs = sorted(f"127.0.0.1:{p}" for p in ports)
        self.assertEqual(sorted(self.redis.command("HKEYS", "gantry:targets:web")), addrs)
        wait_until(lambda: self.healthy_targets(lb) == addrs, timeout=15,
                   message="3 healthy targets in gantry-lb")
        ids = set()
        for _ in range(30):
            status, headers, _ = http_request(listener)
            self.assertEqual(status, 200)
            ids.add(headers["x-task-id"])
        self.assertEqual(ids, {t["taskArn"].rsplit("/", 1)[1] for t in tasks})

        # Scale in to 1 under load: two tasks drain and stop, no request fails.
        load = Load(listener)
        wait_until(lambda: load.ok > 100, message="load flowing")
        core.aws("ecs", "update-service", "--cluster", "demo", "--service", "web",
                 "--desired-count", "1")
        wait_until(lambda: len(core.tasks("demo", serviceName="web", desiredStatus="STOPPED"))
                   == 2 and all(t["lastStatus"] == "STOPPED" for t in
                                core.tasks("demo", serviceName="web", desiredStatus="STOPPED")),
                   timeout=30, message="two tasks stopped")
        served_before = load.ok
        wait_until(lambda: load.ok > served_before + 100, message="load still flowing")
        ok, failed = load.stop()
        self.assertEqual(failed, [], f"{len(failed)} failed of {ok + len(failed)}")
        self.assertGreater(len(load.served_by), 1, "the load reached the stopping tasks too")
        [remaining] = self.running_tasks(core)
        self.assertEqual(len(task_pids(os.path.join(self.tmp, "run"))), 1)
        messages = [e["message"] for e in core.service("web", "demo")["events"]]
        self.assertIn(f"(service web) deregistered 2 targets in (target-group {TG_ARN})", messages)
        self.assertTrue(any(m.startswith("(service web) has stopped 2 running tasks:")
                            for m in messages), messages)
        for t in core.tasks("demo", serviceName="web", desiredStatus="STOPPED"):
            self.assertEqual(t["stopCode"], "ServiceSchedulerInitiated")

        # kill -9 the last task's process: a replacement is RUNNING and registered within 5 s.
        pid = int(remaining["containers"][0]["runtimeId"])
        os.kill(pid, signal.SIGKILL)

        def replaced():
            tasks = self.running_tasks(core)
            if len(tasks) != 1 or tasks[0]["taskArn"] == remaining["taskArn"]:
                return None
            port = tasks[0]["containers"][0]["networkBindings"][0]["hostPort"]
            members = self.redis.command("HKEYS", "gantry:targets:web")
            return members == [f"127.0.0.1:{port}"] and tasks[0]
        replacement = wait_until(replaced, timeout=5, interval=0.05,
                                 message="a replacement RUNNING and registered")
        port = replacement["containers"][0]["networkBindings"][0]["hostPort"]

        def answers():  # RUNNING means started, not yet listening (ECS's health checks tell)
            try:
                return http_request(f"127.0.0.1:{port}")[0] == 200
            except OSError:
                return False
        wait_until(answers, message="the replacement answering")
        killed = core.ok("DescribeTasks", {"cluster": "demo", "tasks": [remaining["taskArn"]]})
        killed = killed["tasks"][0]
        self.assertEqual((killed["lastStatus"], killed["stopCode"], killed["stoppedReason"]),
                         ("STOPPED", "EssentialContainerExited",
                          "Essential container in task exited"))
        self.assertEqual(killed["containers"][0]["exitCode"], 137)

        # Delete the service: no process left, no target left.
        deleted = core.aws("ecs", "delete-service", "--cluster", "demo", "--service", "web",
                           "--force")["service"]
        self.assertEqual(deleted["status"], "DRAINING")
        wait_until(lambda: core.service("web", "demo")["status"] == "INACTIVE", timeout=20,
                   message="the service INACTIVE")
        self.assertEqual(task_pids(os.path.join(self.tmp, "run")), [])
        self.assertEqual(self.redis.command("HKEYS", "gantry:targets:web"), [])
        self.assertEqual(core.aws("ecs", "list-services", "--cluster", "demo")["serviceArns"], [])

    def test_every_action_through_the_aws_cli(self):
        core = self.start_core(clusters=())
        aws = core.aws
        self.assertEqual(aws("ecs", "list-clusters")["clusterArns"], [])
        aws("ecs", "create-cluster", "--cluster-name", "c1")
        again = aws("ecs", "create-cluster", "--cluster-name", "c1")["cluster"]  # idempotent
        self.assertEqual(again["status"], "ACTIVE")
        described = aws("ecs", "describe-clusters", "--clusters", "c1", "nope")
        self.assertEqual([c["clusterName"] for c in described["clusters"]], ["c1"])
        self.assertEqual(described["failures"][0]["reason"], "MISSING")

        # 12 revisions, listed through the CLI's own pagination (nextToken, pages of 5).
        taskdef = self.write_file("td.json", json.dumps(demo_taskdef(family="fam")))
        for _ in range(12):
            aws("ecs", "register-task-definition", "--cli-input-json", f"file://{taskdef}")
        arns = aws("ecs", "list-task-definitions", "--family-prefix", "fam", "--page-size",
                   "5")["taskDefinitionArns"]
        self.assertEqual([a.rsplit(":", 1)[1] for a in arns], [str(i) for i in range(1, 13)])
        one_page = aws("ecs", "list-task-definitions", "--max-items", "5")
        self.assertEqual(len(one_page["taskDefinitionArns"]), 5)
        self.assertIn("NextToken", one_page)
        latest = aws("ecs", "describe-task-definition", "--task-definition", "fam")
        self.assertEqual(latest["taskDefinition"]["revision"], 12)
        inactive = aws("ecs", "deregister-task-definition", "--task-definition", "fam:12")
        self.assertEqual(inactive["taskDefinition"]["status"], "INACTIVE")
        latest = aws("ecs", "describe-task-definition", "--task-definition", "fam")
        self.assertEqual(latest["taskDefinition"]["revision"], 11)
        self.assertEqual(aws("ecs", "list-task-definition-families")["families"], ["fam"])
        inactive_list = aws("ecs", "list-task-definitions", "--status", "INACTIVE")
        self.assertEqual(len(inactive_list["taskDefinitionArns"]), 1)

        # One-off tasks.
        run = aws("ecs", "run-task", "--cluster", "c1", "--task-definition", "fam:3", "--count",
                  "2", "--started-by", "me", "--overrides",
                  json.dumps({"containerOverrides": [
                      {"name": "web", "environment": [{"name": "TASK_ID", "value": "ovr"}]}]}))
        self.assertEqual(len(run["tasks"]), 2)
        self.assertEqual(run["failures"], [])
        arns = [t["taskArn"] for t in run["tasks"]]
        wait_until(lambda: all(t["lastStatus"] == "RUNNING" for t in
                               aws("ecs", "describe-tasks", "--cluster", "c1", "--tasks",
                                   *arns)["tasks"]), timeout=20, message="two RUNNING tasks")
        listed = aws("ecs", "list-tasks", "--cluster", "c1", "--family", "fam", "--started-by",
                     "me")["taskArns"]
        self.assertEqual(sorted(listed), sorted(arns))
        task = aws("ecs", "describe-tasks", "--cluster", "c1", "--tasks", arns[0])["tasks"][0]
        port = task["containers"][0]["networkBindings"][0]["hostPort"]
        self.assertEqual(http_request(f"127.0.0.1:{port}")[1]["x-task-id"], "ovr")
        stopped = aws("ecs", "stop-task", "--cluster", "c1", "--task", arns[0], "--reason",
                      "enough")["task"]
        self.assertEqual(stopped["desiredStatus"], "STOPPED")
        wait_until(lambda: aws("ecs", "describe-tasks", "--cluster", "c1", "--tasks",
                               arns[0])["tasks"][0]["lastStatus"] == "STOPPED",
                   timeout=20, message="the task STOPPED")
        done = aws("ecs", "describe-tasks", "--cluster", "c1", "--tasks", arns[0])["tasks"][0]
        self.assertEqual((done["stoppedReason"], done["stopCode"]), ("enough", "UserInitiated"))
        self.assertEqual(aws("ecs", "list-tasks", "--cluster", "c1", "--desired-status",
                             "STOPPED")["taskArns"], [arns[0]])

        # The container instance: this machine, with what the running task reserves.
        [instance_arn] = aws("ecs", "list-container-instances", "--cluster",
                             "c1")["containerInstanceArns"]
        [instance] = aws("ecs", "describe-container-instances", "--cluster", "c1",
                         "--container-instances", instance_arn)["containerInstances"]
        resources = {r["name"]: r for r in instance["registeredResources"]}
        remaining = {r["name"]: r for r in instance["remainingResources"]}
        self.assertEqual(resources["MEMORY"]["integerValue"] - remaining["MEMORY"]["integerValue"],
                         64)
        self.assertEqual(instance["runningTasksCount"], 1)

        # Services: create, list, update, describe, delete, on a second cluster.
        aws("ecs", "create-cluster", "--cluster-name", "c2")
        aws("ecs", "create-service", "--cluster", "c2", "--service-name", "s",
            "--task-definition", "fam:1", "--desired-count", "1")
        self.assertEqual(len(aws("ecs", "list-services", "--cluster", "c2")["serviceArns"]), 1)
        updated = aws("ecs", "update-service", "--cluster", "c2", "--service", "s",
                      "--desired-count", "2")["service"]
        self.assertEqual(updated["desiredCount"], 2)
        core.wait_running("s", 2, cluster="c2", timeout=20)
        proc = core.aws_run("ecs", "delete-service", "--cluster", "c2", "--service", "s")
        self.assertEqual(proc.returncode, 254)  # desiredCount > 0 without --force
        self.assertIn("InvalidParameterException", proc.stderr)
        aws("ecs", "delete-service", "--cluster", "c2", "--service", "s", "--force")
        proc = core.aws_run("ecs", "delete-cluster", "--cluster", "c1")
        self.assertIn("ClusterContainsTasksException", proc.stderr)  # the other task runs
        aws("ecs", "stop-task", "--cluster", "c1", "--task", arns[1])
        wait_until(lambda: core.aws_run("ecs", "delete-cluster", "--cluster",
                                        "c1").returncode == 0,
                   timeout=30, interval=0.5, message="c1 deletable")
        self.assertEqual(aws("ecs", "describe-clusters", "--clusters",
                             "c1")["clusters"][0]["status"], "INACTIVE")
