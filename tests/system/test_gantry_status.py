"""`gantry status` and `gantry logs` against a real gantry-core on a private redis-server:
status reads the core's state in Redis (docs/core.md) and gantry-lb's health records
(docs/redis.md), written here by hand where gantry-lb would write them; logs reads the tasks'
log files under core.run_dir. Malformed values, a Redis that is down or stalls, ambiguous
prefixes, FIFOs and large files are covered too."""
import json
import os
import re
import socket
import subprocess
import time

from core_fixtures import CoreTestCase, demo_taskdef
from harness import DEFAULT_TIMEOUT, binary, free_port, wait_until

ACCOUNT_ARN = "arn:aws:ecs:us-east-1:000000000000"
STEADY = "has reached a steady state."


def health(state, reason=""):
    return json.dumps({"state": state, "reason": reason, "since": int(time.time() * 1000)})


def line_with(text, needle):
    """The one line of text containing needle."""
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, f"{len(lines)} lines with {needle!r} in:\n{text}"
    return lines[0]


def shell_container(name, script, essential=True):
    return {"name": name, "image": "sh", "command": ["/bin/sh", "-c", script], "memory": 16,
            "essential": essential}


class GantryStatusTest(CoreTestCase):
    def gantry(self, *args, cwd=None, timeout=DEFAULT_TIMEOUT):
        """bin/gantry ARGS (text output); never a sanitizer report."""
        proc = subprocess.run([binary("gantry"), *args], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd or self.tmp, stdin=subprocess.DEVNULL)
        self.assertNotIn("Sanitizer", proc.stderr, proc.stderr)
        self.assertNotIn("runtime error", proc.stderr, proc.stderr)
        return proc

    def status(self, *args):
        proc = self.gantry("status", "--redis", self.redis.url, *args)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        return proc.stdout

    def start_web(self, cluster="prod"):
        """gantry-core with no declared cluster, then through the API: a cluster, the demo task
        definition and a service 'web' of 2 tasks behind target group 'web'. Returns the core and
        {task id: host port}."""
        core = self.start_core(clusters=())
        core.ok("CreateCluster", {"clusterName": cluster})
        core.ok("RegisterTaskDefinition", demo_taskdef())
        core.ok("CreateService", {
            "cluster": cluster, "serviceName": "web", "taskDefinition": "demo", "desiredCount": 2,
            "loadBalancers": [{"targetGroupArn": "web", "containerName": "web",
                               "containerPort": 8080}]})
        core.wait_running("web", 2, cluster=cluster)
        ports = {}
        for task in core.tasks(cluster, serviceName="web"):
            [binding] = task["containers"][0]["networkBindings"]
            ports[task["taskArn"].rsplit("/", 1)[1]] = binding["hostPort"]
        return core, ports

    # --- status ---

    def test_status_before_any_cluster(self):
        self.start_core(clusters=())
        out = self.status()
        self.assertIn("no cluster (is gantry-core running?)", out)
        self.assertIn(self.redis.url, out)

    def test_status_shows_services_tasks_health_and_events(self):
        core, ports = self.start_web()
        (healthy_id, healthy_port), (other_id, other_port) = sorted(ports.items())
        self.redis.command("HSET", "gantry:health:web", f"127.0.0.1:{healthy_port}",
                           health("healthy"))
        out = wait_until(lambda: (lambda o: STEADY in o and o)(self.status()),
                         message="the steady-state event in Redis")

        self.assertRegex(out, r"(?m)^CLUSTER\s+STATUS\s+SERVICES\s+RUNNING\s+PENDING$")
        self.assertRegex(out, r"(?m)^prod\s+ACTIVE\s+1\s+2\s+0$")
        self.assertRegex(out, r"(?m)^SERVICE\s+CLUSTER\s+STATUS\s+DESIRED/RUNNING/PENDING\s+"
                              r"TASK DEFINITION\s+ROLLOUT\s+LOAD BALANCERS$")
        self.assertRegex(out, r"(?m)^web\s+prod\s+ACTIVE\s+2/2/0\s+demo:1\s+COMPLETED\s+"
                              r"web \(web:8080\)$")
        for task_id, port, target in ((healthy_id, healthy_port, "web healthy"),
                                      (other_id, other_port, "web -")):
            line = line_with(out, f"127.0.0.1:{port}")
            self.assertRegex(line, rf"^  {task_id[:8]}\s+RUNNING/RUNNING\s+127\.0\.0\.1:{port}\s+"
                                   rf"{re.escape(target)}$")
        self.assertNotIn(healthy_id[:9], out.replace(f"(task {healthy_id})", ""))
        self.assertRegex(out, r"(?m)^  \d\d:\d\d:\d\d\s+has reached a steady state\.$")
        self.assertIn("registered 2 targets in (target-group web)", out)
        self.assertNotIn("(service web)", out)  # the block already names the service
        self.assertNotIn("stopped", out)

        # the newest 5 events only, newest first
        for i in range(6):
            self.redis.command("LPUSH", "gantry:ecs:events:prod:web", json.dumps(
                {"id": str(i), "createdAt": time.time(), "message": f"(service web) note {i}."}))
        out = self.status()
        events = re.findall(r"(?m)^  \d\d:\d\d:\d\d\s+(.*)$", out)
        self.assertEqual(events, ["note 5.", "note 4.", "note 3.", "note 2.", "note 1."])

        # the same through the configuration gantry-core runs with, and with --cluster
        by_config = self.gantry("status", "-c", core.config_path)
        self.assertEqual(by_config.returncode, 0, by_config.stderr)
        self.assertEqual(by_config.stdout, out)
        self.assertEqual(self.status("--cluster", "prod"), out)
        self.assertEqual(self.status("--cluster", f"{ACCOUNT_ARN}:cluster/prod"), out)
        proc = self.gantry("status", "--redis", self.redis.url, "--cluster", "nope")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertIn("no cluster 'nope'", proc.stderr)
        self.assertIn("prod", proc.stderr)

        # garbage next to the real state: shown as "?", the rest as before
        self.redis.command("HSET", "gantry:ecs:services:prod", "broken", "[1, 2")
        self.redis.command("HSET", "gantry:ecs:tasks:prod", "f00dfeedcafe", "{not json")
        self.redis.command("HSET", "gantry:health:web", f"127.0.0.1:{other_port}", "\x01nope")
        out = self.status()
        self.assertRegex(out, r"(?m)^broken\s+prod\s+\?\s+\?/0/0\s+\?\s+\?\s+\?$")
        self.assertRegex(out, r"(?m)^  f00dfeed\s+\?\s+\?\s+\?$")
        self.assertRegex(line_with(out, f"127.0.0.1:{other_port}"), r"\sweb \?$")
        self.assertRegex(line_with(out, f"127.0.0.1:{healthy_port}"), r"\sweb healthy$")
        self.assertRegex(out, r"(?m)^web\s+prod\s+ACTIVE\s+2/2/0\s")

    def test_status_counts_draining_and_stopped_tasks(self):
        core, ports = self.start_web()
        core.ok("UpdateService", {"cluster": "prod", "service": "web", "desiredCount": 1})
        [victim] = wait_until(lambda: core.tasks("prod", desiredStatus="STOPPED"),
                              message="a task to stop")
        victim_id = victim["taskArn"].rsplit("/", 1)[1]
        addr = f"127.0.0.1:{ports[victim_id]}"
        # what gantry-lb writes when the target leaves the group
        self.redis.command("HSET", "gantry:health:web", addr,
                           health("draining", "Target.DeregistrationInProgress"))
        out = wait_until(lambda: (lambda o: "DEACTIVATING" in o and o)(self.status()),
                         message="the task deactivating")
        self.assertRegex(line_with(out, addr),
                         rf"^  {victim_id[:8]}\s+DEACTIVATING/STOPPED\s+{addr}\s+web draining$")
        self.assertRegex(out, r"(?m)^web\s+prod\s+ACTIVE\s+1/1/0\s")
        self.assertRegex(out, r"(?m)^prod\s+ACTIVE\s+1\s+1\s+0$")

        # gantry-lb's drained mark lets the task stop: no longer listed, counted instead
        self.redis.command("HSET", "gantry:drained:web", addr, str(int(time.time() * 1000)))
        out = wait_until(lambda: (lambda o: "1 stopped" in o and o)(self.status()),
                         message="the stopped task counted")
        self.assertRegex(out, r"(?m)^  1 stopped$")
        self.assertNotIn(addr, out)
        self.assertNotIn(f"  {victim_id[:8]}", out)

        # an unhealthy target shows its reason
        [(kept_id, kept_port)] = [(i, p) for i, p in ports.items() if i != victim_id]
        self.redis.command("HSET", "gantry:health:web", f"127.0.0.1:{kept_port}",
                           health("unhealthy", "Target.FailedHealthChecks"))
        self.assertRegex(line_with(self.status(), f"127.0.0.1:{kept_port}"),
                         r"\sweb unhealthy \(Target\.FailedHealthChecks\)$")

    def test_status_survives_malformed_values(self):
        """Hand-written state where every value has a wrong shape: '?' and exit 0, no crash,
        nothing unescaped reaches the terminal."""
        self.redis = self.start_redis()
        r = self.redis.command
        r("HSET", "gantry:ecs:clusters", "good", json.dumps({"status": "ACTIVE"}))
        r("HSET", "gantry:ecs:clusters", "bad", "not json")
        r("HSET", "gantry:ecs:clusters", "list", "[1, 2]")
        r("HSET", "gantry:ecs:clusters", "esc\x1b[31m", json.dumps({"status": "\x1b[2J"}))
        r("HSET", "gantry:ecs:clusters", "deep", "[" * 100000)
        r("SET", "gantry:ecs:tasks:bad", "a string, not a hash")
        r("RPUSH", "gantry:ecs:services:list", "a list, not a hash")
        services = {
            "empty": {},
            "wrong": {"desiredCount": "two", "status": 5, "taskDefinition": 7,
                      "loadBalancers": {"x": 1}},
            "odd": {"desiredCount": 1e300, "status": "ACTIVE", "taskDefinition": "demo:3",
                    "loadBalancers": [5, {"targetGroupArn": [], "containerPort": 99999999},
                                      {"targetGroupArn": "arn:aws:elasticloadbalancing:x:1:"
                                                         "targetgroup/api/123",
                                       "containerName": "\x07", "containerPort": 80}]},
        }
        for name, doc in services.items():
            r("HSET", "gantry:ecs:services:good", name, json.dumps(doc))
        r("HSET", "gantry:ecs:services:good", "garbage", "\x00\xff")
        r("HSET", "gantry:ecs:services:good", "x" * 5000, "{}")
        r("RPUSH", "gantry:ecs:events:good:empty", "junk",
          json.dumps({"createdAt": "noon", "message": 5}),
          json.dumps({"createdAt": 1e300, "message": "(service empty) far future"}),
          json.dumps({"createdAt": -5, "message": "(service empty)"}),
          json.dumps({"createdAt": 1.5e9, "message": "old \x1b[31m news"}))
        r("SET", "gantry:ecs:events:good:wrong", "not a list")
        tasks = {
            "t1": "zzz",
            "t2": json.dumps({"_gantry": {"service": "empty", "targets": [
                {"group": "web", "addr": "127.0.0.1:1"}, 7, {"group": 5},
                {"group": "str", "addr": "127.0.0.1:2"}, {"group": "web", "addr": 3}]},
                "lastStatus": "RUNNING", "desiredStatus": None, "createdAt": "x",
                "containers": [{"networkBindings": [{"bindIP": 5, "hostPort": "x"}, 3,
                                                    {"bindIP": "::1", "hostPort": 70000}]},
                               4, {"networkBindings": "none"}]}),
            "t3": json.dumps({"_gantry": "x", "containers": "y", "lastStatus": ["RUNNING"]}),
            "t4": json.dumps({"_gantry": {"service": 12, "targets": "x"},
                              "group": "service:wrong", "lastStatus": "PENDING"}),
            "t5": json.dumps({"_gantry": {"service": "nowhere"}, "lastStatus": "STOPPED"}),
            "t6": json.dumps([]),
            "": json.dumps({"lastStatus": "RUNNING"}),
        }
        for task_id, value in tasks.items():
            r("HSET", "gantry:ecs:tasks:good", task_id, value)
        r("HSET", "gantry:health:web", "127.0.0.1:1", json.dumps({"state": 3}))
        r("SET", "gantry:health:str", "not a hash")

        out = self.status()
        self.assertIn("?", out)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)
        self.assertIn("\\x1b", out)
        self.assertRegex(out, r"(?m)^bad\s+\?\s+0\s+0\s+0$")
        self.assertRegex(out, r"(?m)^good\s+ACTIVE\s+1\s+2\s+1$")
        self.assertRegex(out, r"(?m)^empty\s+good\s+\?\s+\?/1/0\s+\?\s+-\s+\?$")
        self.assertRegex(out, r"(?m)^wrong\s+good\s+\?\s+\?/0/1\s+\?\s+-\s+\?$")
        self.assertRegex(out, r"(?m)^odd\s+good\s+ACTIVE\s+\?/0/0\s+demo:3\s+-\s+"
                              r"\? \(\?:\?\), \? \(\?:\?\), api \(\\x07:80\)$")
        self.assertRegex(out, r"(?m)^  t2\s+RUNNING/\?\s+\?:\?,\?:\?,\[::1\]:\?,\?\s+"
                              r"web \?, \? \?, \? \?, str \?, web \?$")
        self.assertRegex(out, r"(?m)^  events: \?$")
        self.assertIn("far future", out)
        self.assertRegex(out, r"(?m)^  \?\s+\?$")
        self.assertRegex(out, r"(?m)^  1 stopped$")
        self.assertIn("cluster bad)\n  tasks: ?", out)
        self.assertIn("cluster list: services ?", out)

        # only one cluster, and a Redis where even the clusters key is wrong
        self.assertRegex(self.status("--cluster", "bad"), r"^CLUSTER.*\nbad\s+\?\s+0\s+0\s+0\n")
        r("DEL", "gantry:ecs:clusters")
        r("SET", "gantry:ecs:clusters", "x")
        self.assertIn("clusters ?", self.status())

    def test_status_shows_the_last_scaling_activities(self):
        """What gantry-autoscaler records (autoscaler/activities.h) shows under its service: the
        newest 3, newest first, with the status's reason and escaped text; nothing for a service
        without any."""
        core, _ = self.start_web()
        key = "gantry:autoscaling:activities:service/prod/web"
        now = time.time()
        for n, (status, message) in enumerate([("Successful", ""), ("Successful", ""),
                                               ("Failed", "ServiceNotFoundException"),
                                               ("Successful", "")]):
            self.redis.command("LPUSH", key, json.dumps({
                "ActivityId": f"a{n}", "ServiceNamespace": "ecs", "ResourceId": "service/prod/web",
                "ScalableDimension": "ecs:service:DesiredCount",
                "Description": f"Setting desired count to {n + 2}.",
                "Cause": f"monitor alarm high-{n} in state ALARM triggered policy cpu\x1b[0m",
                "StartTime": now - 40 + n, "EndTime": now - 40 + n, "StatusCode": status,
                "StatusMessage": message}))
        out = wait_until(lambda: (lambda o: STEADY in o and o)(self.status()),
                         message="the steady-state event in Redis")
        self.assertRegex(out, r"(?m)^  SCALING\s+STATUS\s+DESCRIPTION\s+CAUSE$")
        rows = re.findall(r"(?m)^  \d\d:\d\d:\d\d\s+(\S+(?: \(\S+\))?)\s+"
                          r"(Setting desired count to \d\.)\s+(.*)$", out)
        self.assertEqual(rows, [
            ("Successful", "Setting desired count to 5.",
             "monitor alarm high-3 in state ALARM triggered policy cpu\\x1b[0m"),
            ("Failed (ServiceNotFoundException)", "Setting desired count to 4.",
             "monitor alarm high-2 in state ALARM triggered policy cpu\\x1b[0m"),
            ("Successful", "Setting desired count to 3.",
             "monitor alarm high-1 in state ALARM triggered policy cpu\\x1b[0m")])
        self.assertNotIn("\x1b", out)
        self.assertLess(out.index("has reached a steady state"), out.index("  SCALING"))
        self.assertEqual(self.status("--cluster", "prod"), out)

        # the activities of another cluster's service of the same name are not this one's
        self.redis.command("DEL", key)
        self.redis.command("LPUSH", "gantry:autoscaling:activities:service/other/web", "{}")
        self.assertNotIn("SCALING", self.status())
        # a key of another type: '?', the rest as before
        self.redis.command("SET", key, "not a list")
        out = self.status()
        self.assertRegex(out, r"(?m)^  scaling: \?$")
        self.assertRegex(out, r"(?m)^web\s+prod\s+ACTIVE\s+2/2/0\s")

    def test_status_when_redis_is_down_or_stalls(self):
        proc = self.gantry("status", "--redis", f"redis://127.0.0.1:{free_port()}")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("cannot reach Redis", proc.stderr)

        # a peer that accepts and never answers: bounded by redis.connect_timeout
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            config = self.write_file("stall.yaml", f'redis: {{url: "redis://127.0.0.1:{port}", '
                                                   f"connect_timeout: 300ms}}\n")
            start = time.monotonic()
            proc = self.gantry("status", "-c", config)
            self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("did not answer", proc.stderr)

    def test_status_usage(self):
        proc = self.gantry("status", "--help")
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--cluster NAME", proc.stdout)
        self.assertEqual(self.gantry("status", "extra").returncode, 2)
        self.assertEqual(self.gantry("status", "--redis", "http://x").returncode, 2)
        listed = self.gantry("help").stdout
        self.assertRegex(listed, r"(?m)^  status\s")
        self.assertRegex(listed, r"(?m)^  logs\s")

    # --- logs ---

    def run_logs_task(self, core):
        """A task of two shell containers that print three and two lines, then wait."""
        core.ok("RegisterTaskDefinition", {"family": "talk", "containerDefinitions": [
            shell_container("main", "echo hello-$GANTRY_TASK_ID; echo main-2; echo main-3; "
                                    "exec sleep 60"),
            shell_container("side", "echo side-1; echo side-2; exec sleep 60", essential=False)]})
        [task] = core.ok("RunTask", {"taskDefinition": "talk"})["tasks"]
        return task["taskArn"], task["taskArn"].rsplit("/", 1)[1]

    def test_logs_by_id_arn_and_prefix(self):
        core = self.start_core()
        arn, task_id = self.run_logs_task(core)
        whole = (f"==> main <==\nhello-{task_id}\nmain-2\nmain-3\n"
                 "\n==> side <==\nside-1\nside-2\n")
        logs = lambda *a, **kw: self.gantry("logs", *a, **kw)
        wait_until(lambda: logs(task_id).stdout == whole, message="both containers' lines")

        for ref in (task_id, arn, task_id[:4], task_id[:12]):
            proc = logs(ref, "-c", core.config_path, cwd="/")
            self.assertEqual((proc.returncode, proc.stdout, proc.stderr), (0, whole, ""), ref)
        proc = logs(task_id[:6], "--container", "main", "--tail", "2")
        self.assertEqual((proc.returncode, proc.stdout), (0, "main-2\nmain-3\n"))
        proc = logs("--tail", "1", task_id[:6])
        self.assertEqual(proc.stdout, "==> main <==\nmain-3\n\n==> side <==\nside-2\n")
        proc = logs(task_id, "--tail", "0", "--container", "side")
        self.assertEqual((proc.returncode, proc.stdout), (0, ""))
        proc = logs(task_id, "--tail", "100", "--container", "side")
        self.assertEqual(proc.stdout, "side-1\nside-2\n")

        # another task directory sharing the first 4 characters makes that prefix ambiguous
        other = task_id[:4] + ("0" if task_id[4] != "0" else "1") + "f" * 27
        os.makedirs(os.path.join(self.tmp, "run", "tasks", other))
        proc = logs(task_id[:4])
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertIn("ambiguous", proc.stderr)
        self.assertIn(task_id, proc.stderr)
        self.assertIn(other, proc.stderr)
        self.assertEqual(logs(task_id[:5]).stdout, whole)

        for ref, status, message in (
                ("0000ffff0000", 1, "no task matches '0000ffff0000'"),
                ("abc", 2, "at least 4 characters"),
                ("../../etc", 2, "not a task id"),
                (f"{ACCOUNT_ARN}:service/default/web", 2, "not a task ARN")):
            proc = logs(ref)
            self.assertEqual((proc.returncode, proc.stdout), (status, ""), ref)
            self.assertIn(message, proc.stderr)
            self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        proc = logs(task_id, "--container", "db")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no container 'db' (containers: main, side)", proc.stderr)
        self.assertEqual(logs(task_id, "--tail", "-1").returncode, 2)
        self.assertEqual(logs(task_id, "--tail", "x").returncode, 2)
        self.assertEqual(logs().returncode, 2)
        self.assertEqual(logs(task_id, task_id).returncode, 2)
        os.mkdir(os.path.join(self.tmp, "elsewhere"))
        # the default run_dir, "run", is not there
        proc = logs(task_id, cwd=os.path.join(self.tmp, "elsewhere"))
        self.assertEqual(proc.returncode, 1)
        self.assertIn("cannot read run/tasks", proc.stderr)

    def fake_task(self, task_id, files):
        """A task directory written by hand: {NAME.log: bytes, or None for a FIFO}."""
        directory = os.path.join(self.tmp, "run", "tasks", task_id)
        os.makedirs(directory)
        for name, data in files.items():
            path = os.path.join(directory, name)
            if data is None:
                os.mkfifo(path)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        return directory

    def max_rss_kib(self, *args):
        """Runs bin/gantry ARGS with its output discarded; its exit status and peak RSS."""
        proc = subprocess.Popen([binary("gantry"), *args], cwd=self.tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        stderr = proc.stderr.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
        self.assertNotIn("Sanitizer", stderr)
        return proc.returncode, usage.ru_maxrss

    def test_logs_streams_large_files_and_refuses_odd_ones(self):
        small = "a" * 32
        self.fake_task(small, {"web.log": b"one\ntwo\n"})
        big = "b" * 32
        directory = self.fake_task(big, {})
        size = 256 << 20
        with open(os.path.join(directory, "web.log"), "wb") as f:  # sparse: no disk used
            f.truncate(size - 20)
            f.seek(size - 20)
            f.write(b"\nsecond-last\nlast\n")
        status, baseline = self.max_rss_kib("logs", small)
        self.assertEqual(status, 0)
        for args in ((big, "--tail", "2"), (big,), (big, "--tail", "3")):
            status, rss = self.max_rss_kib("logs", *args)
            self.assertEqual(status, 0, args)
            self.assertLess(rss - baseline, 32 << 10, args)  # KiB: not the file's 256 MiB
        self.assertEqual(self.gantry("logs", big, "--tail", "2").stdout, "second-last\nlast\n")

        # a last line without its newline counts, as in tail(1)
        self.fake_task("c" * 32, {"web.log": b"x\ny\nz"})
        self.assertEqual(self.gantry("logs", "cccc", "--tail", "2").stdout, "y\nz")
        # a FIFO is refused at once (never waited on), the other file still printed
        self.fake_task("d" * 32, {"a.log": None, "b.log": b"fine\n"})
        proc = self.gantry("logs", "dddd", timeout=5)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "==> a <==\n\n==> b <==\nfine\n")
        self.assertIn("not a regular file", proc.stderr)
        # a task that has not written a log yet
        self.fake_task("e" * 32, {"notes.txt": b""})
        proc = self.gantry("logs", "eeee")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no container log", proc.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
