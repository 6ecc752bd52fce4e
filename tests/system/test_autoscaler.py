"""gantry-autoscaler end to end: a real gantry-core service scaled out and back in by a target
tracking policy, on a bounded synthetic metric and on real requests through gantry-lb; scaling
activities in Redis; a refused reload keeps the running policies."""
import json
import signal
import subprocess
import threading
import time

from core_fixtures import CoreTestCase, demo_taskdef
from harness import binary, http_request, wait_until
from lb_fixtures import Lb, LbTestCase
from test_core_service import LB_SECTION, TG_ARN

TARGET = """\
  scalable_targets:
    - ServiceNamespace: ecs
      ResourceId: service/default/web
      ScalableDimension: ecs:service:DesiredCount
      MinCapacity: 1
      MaxCapacity: {max}
"""

CUSTOM_POLICY = """\
  policies:
    - PolicyName: load-tracking
      ServiceNamespace: ecs
      ResourceId: service/default/web
      ScalableDimension: ecs:service:DesiredCount
      PolicyType: TargetTrackingScaling
      TargetTrackingScalingPolicyConfiguration:
        TargetValue: 50
        CustomizedMetricSpecification:
          MetricName: Load
          Namespace: Custom
          Dimensions: [{Name: Service, Value: web}]
          Statistic: Average
        ScaleOutCooldown: 1
        ScaleInCooldown: 1
"""

REQUESTS_POLICY = """\
  policies:
    - PolicyName: requests-tracking
      ServiceNamespace: ecs
      ResourceId: service/default/web
      ScalableDimension: ecs:service:DesiredCount
      PolicyType: TargetTrackingScaling
      TargetTrackingScalingPolicyConfiguration:
        TargetValue: 600
        PredefinedMetricSpecification:
          PredefinedMetricType: ALBRequestCountPerTarget
          ResourceLabel: app/gantry-lb/50dc6c495c0c9188/targetgroup/web/6d0ecf831eec9f09
        ScaleOutCooldown: 1
        ScaleInCooldown: 1
"""

SETTINGS = """\
autoscaler:
  ecs_endpoint: {endpoint}
  period: 1s
  scale_out_datapoints: 2
  scale_out_periods: 2
  scale_in_datapoints: 3
"""


class Writer:
    """Writes the Custom Load metric of service web every 200 ms (bounded in time): `total` load
    shared by the service's running tasks, as a per-task metric such as CPU would be."""

    def __init__(self, redis_url, total, core=None, max_seconds=60):
        self.redis_url = redis_url
        self.total = total
        self.core = core
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            running = self.core.service("web")["runningCount"] if self.core else 1
            value = self.total / max(running, 1)
            subprocess.run([binary("gantry"), "metrics", "put", "Load", str(value),
                            "--dimension", "Service=web", "--redis", self.redis_url],
                           check=True, timeout=10, stdin=subprocess.DEVNULL)
            time.sleep(0.2)

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=15)


class RateLoad:
    """GET requests through the balancer at about `rate` per second from one thread, bounded."""

    def __init__(self, addr, rate, max_seconds=60):
        self.addr = addr
        self.rate = rate
        self.ok = 0
        self.failed = []
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        start = time.monotonic()
        sent = 0
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            due = start + sent / self.rate
            if time.monotonic() < due:
                time.sleep(due - time.monotonic())
            try:
                status, _, _ = http_request(self.addr)
                if status == 200:
                    self.ok += 1
                else:
                    self.failed.append(status)
            except OSError as e:
                self.failed.append(repr(e))
            sent += 1

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=15)
        return self.ok, self.failed


class AutoscalerTest(CoreTestCase, LbTestCase):
    def start_autoscaler(self, core, policy, max_capacity=4, name="autoscaler.yaml"):
        text = (f'redis: {{url: "{self.redis.url}"}}\n'
                + SETTINGS.format(endpoint=core.url) + TARGET.format(max=max_capacity) + policy)
        path = self.write_file(name, text)
        program = self.start_program("gantry-autoscaler", ["-c", path])
        program.wait_ready()
        return program, path

    def activities(self):
        items = self.redis.command("LRANGE", "gantry:autoscaling:activities:service/default/web",
                                   "0", "-1")
        return [json.loads(i) for i in items]

    def desired(self, core):
        return core.service("web")["desiredCount"]

    def test_target_tracking_scales_a_service_out_and_back_in(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "web",
                                  "desiredCount": 1})
        core.wait_running("web", 1, timeout=20)
        autoscaler, _ = self.start_autoscaler(core, CUSTOM_POLICY)

        # three times the target: ceil(1 * 150 / 50) = 3 tasks, then 50 each: steady
        writer = Writer(self.redis.url, 150, core)
        start = time.monotonic()
        wait_until(lambda: self.desired(core) == 3, timeout=20, message="scaled out to 3")
        out_seconds = time.monotonic() - start
        core.wait_running("web", 3, timeout=20)
        time.sleep(3)  # at the target (within the tolerance): no further action
        writer.stop()
        [activity] = self.activities()
        self.assertEqual(activity["Description"], "Setting desired count to 3.")
        self.assertEqual(activity["StatusCode"], "Successful")
        self.assertEqual(activity["ResourceId"], "service/default/web")
        self.assertIn("load-tracking", activity["Cause"])
        self.assertLessEqual(activity["StartTime"], activity["EndTime"])

        # no data: no action, whatever the last datapoints said (the windows empty out first,
        # so that the next writer's datapoints are not averaged with these)
        time.sleep(4)
        self.assertEqual(self.desired(core), 3)
        self.assertEqual(len(self.activities()), 1)

        # a fifth of the target: ceil(3 * 10 / 50) = 1 task
        writer = Writer(self.redis.url, 30, core)
        wait_until(lambda: self.desired(core) == 1, timeout=20, message="scaled in to 1")
        writer.stop()
        core.wait_running("web", 1, timeout=40)
        newest = self.activities()[0]
        self.assertEqual(newest["Description"], "Setting desired count to 1.")
        self.assertEqual(len(self.activities()), 2)
        # 2 datapoints of 1 s plus the metrics' 2 s lag: the decision came within seconds
        self.assertLess(out_seconds, 10)
        self.assertIsNone(autoscaler.proc.poll())

    def test_requests_through_the_lb_scale_the_service_out_and_in(self):
        self.redis = self.start_redis()
        core = self.start_core(extra_yaml=LB_SECTION)
        path = self.write_file("lb.yaml", f'redis: {{url: "{self.redis.url}"}}\n' + LB_SECTION)
        program = self.start_program("gantry-lb", ["-c", path])
        lb = Lb(program, program.wait_ready(), path)
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {
            "serviceName": "web", "taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "web",
                               "containerPort": 8080}]})
        core.wait_running("web", 1, timeout=20)
        wait_until(lambda: any(t["state"] == "healthy" for g in lb.targets()["target_groups"]
                               for t in g["targets"]), message="a healthy target")
        self.start_autoscaler(core, REQUESTS_POLICY, max_capacity=3)
        # 30 requests/s on one target = 1800 per minute: 3 times the 600 target
        load = RateLoad(lb.listeners[0], 30, max_seconds=40)
        wait_until(lambda: self.desired(core) == 3, timeout=25, message="scaled out to 3")
        core.wait_running("web", 3, timeout=20)
        ok, failed = load.stop()
        self.assertEqual(failed, [])
        self.assertGreater(ok, 100)
        # no request: 0 per target, below the target: back to the minimum
        wait_until(lambda: self.desired(core) == 1, timeout=25, message="scaled in to 1")
        descriptions = [a["Description"] for a in self.activities()]
        self.assertEqual(descriptions[-1], "Setting desired count to 3.")
        self.assertEqual(descriptions[0], "Setting desired count to 1.")

    def test_a_refused_reload_keeps_the_running_policies(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "web",
                                  "desiredCount": 1})
        autoscaler, path = self.start_autoscaler(core, CUSTOM_POLICY)
        good = open(path).read()
        with open(path, "w") as f:
            f.write(good.replace("TargetValue: 50", "TargetValue: fifty"))
        autoscaler.signal(signal.SIGHUP)
        wait_until(lambda: "configuration refused" in autoscaler.log() or
                   "refused" in autoscaler.log(), message="the reload refused")
        self.assertRegex(autoscaler.log(), rf"{path}:\d+:\d+: ")
        writer = Writer(self.redis.url, 150)
        wait_until(lambda: self.desired(core) == 3, timeout=20,
                   message="the old policy still scales")
        writer.stop()

    def test_capacity_outside_min_max_is_brought_inside_at_once(self):
        core = self.start_core()
        core.ok("RegisterTaskDefinition", demo_taskdef(family="web"))
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "web",
                                  "desiredCount": 6})
        self.start_autoscaler(core, CUSTOM_POLICY, max_capacity=4)
        wait_until(lambda: self.desired(core) == 4, timeout=10, message="clamped to 4")
        self.assertEqual(self.activities()[0]["Description"], "Setting desired count to 4.")

    def test_check_refuses_a_bad_policy_with_its_position(self):
        path = self.write_file("bad.yaml", SETTINGS.format(endpoint="http://127.0.0.1:1")
                               + TARGET.format(max=4)
                               + CUSTOM_POLICY.replace("TargetValue: 50", "TargetValue: -1"))
        proc = subprocess.run([binary("gantry-autoscaler"), "--check", "-c", path],
                              capture_output=True, text=True, timeout=10)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertRegex(proc.stderr, rf"{path}:\d+:\d+: 'autoscaler.policies\[0\]': ")
        self.assertIn("TargetValue", proc.stderr)
