"""Fixtures for gantry-core system tests: a real gantry-core on a private redis-server, its ECS API
called raw (http.client, exact bytes and statuses) or through the real AWS CLI v2.

    class MyTest(CoreTestCase):
        def test_x(self):
            core = self.start_core()                      # cluster "default" declared
            status, doc = core.call("ListClusters")
            td = core.aws("ecs", "register-task-definition", "--cli-input-json",
                          "file://" + self.write_file("td.json", json.dumps(demo_taskdef())))
"""
import http.client
import json
import os
import subprocess
import textwrap

from harness import (DEFAULT_TIMEOUT, GantryTestCase, binary, pids_working_in, split_addr,
                     wait_until)

AWS = "/usr/bin/aws"  # Debian's awscli (v2); a pyenv shim earlier in PATH may not have it
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
JSON_TYPE = "application/x-amz-json-1.1"


def demo_taskdef(family="demo", memory=64, cpu=None, env=None, port=8080, command=None,
                 extra_container=None, task_memory=None):
    """A task definition in ECS's format running the demo workload (one container, 'web')."""
    container = {
        "name": "web",
        "image": "gantry/demo-app",
        "command": command or [binary("gantry-demo-app")],
        "memory": memory,
        "essential": True,
        "portMappings": [{"containerPort": port, "protocol": "tcp"}] if port else [],
        "environment": [{"name": k, "value": str(v)} for k, v in (env or {}).items()],
    }
    if cpu is not None:
        container["cpu"] = cpu
    if extra_container:
        container.update(extra_container)
    td = {"family": family, "containerDefinitions": [container]}
    if task_memory is not None:
        td["memory"] = str(task_memory)
    return td


class Core:
    def __init__(self, program, addr, redis, tmp, config_path):
        self.program = program
        self.addr = addr
        self.url = f"http://{addr}"
        self.redis = redis
        self.tmp = tmp
        self.config_path = config_path

    def request(self, body, headers, method="POST", path="/"):
        """Any request; returns (status, headers dict lower-cased, body bytes)."""
        host, port = split_addr(self.addr)
        conn = http.client.HTTPConnection(host, port, timeout=DEFAULT_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def call(self, action, payload=None, raw=None):
        """One ECS action; returns (status, parsed JSON)."""
        body = raw if raw is not None else json.dumps(payload or {}).encode()
        status, _, data = self.request(body, {"X-Amz-Target": TARGET_PREFIX + action,
                                              "Content-Type": JSON_TYPE})
        return status, json.loads(data) if data else None

    def ok(self, action, payload=None):
        status, doc = self.call(action, payload)
        if status != 200:
            raise AssertionError(f"{action} {payload!r}: {status} {doc!r}")
        return doc

    def aws_env(self):
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": "gantry", "AWS_SECRET_ACCESS_KEY": "gantry",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_PAGER": "",
                    "AWS_CONFIG_FILE": os.path.join(self.tmp, "aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp, "aws-credentials"),
                    "HOME": self.tmp})
        return env

    def aws_run(self, *args, timeout=120):
        """The AWS CLI against this core: the CompletedProcess (text)."""
        return subprocess.run([AWS, "--endpoint-url", self.url, "--output", "json", *args],
                              capture_output=True, text=True, env=self.aws_env(), timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def aws(self, *args, timeout=120):
        """The AWS CLI; fails the test unless it exits 0; returns its parsed JSON output."""
        proc = self.aws_run(*args, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stderr}{proc.stdout}")
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def service(self, name, cluster="default"):
        doc = self.ok("DescribeServices", {"cluster": cluster, "services": [name]})
        return doc["services"][0] if doc["services"] else None

    def tasks(self, cluster="default", **filters):
        arns = self.ok("ListTasks", {"cluster": cluster, **filters})["taskArns"]
        if not arns:
            return []
        return self.ok("DescribeTasks", {"cluster": cluster, "tasks": arns})["tasks"]

    def wait_running(self, service, count, cluster="default", timeout=DEFAULT_TIMEOUT):
        """Waits until the service has count RUNNING tasks, all registered (steady)."""
        def steady():
            svc = self.service(service, cluster)
            return (svc and svc["runningCount"] == count and svc["pendingCount"] == 0
                    and len([t for t in self.tasks(cluster, serviceName=service)
                             if t["lastStatus"] == "RUNNING"]) == count and svc)
        return wait_until(steady, timeout=timeout, interval=0.05,
                          message=f"{count} running tasks of {service}")

    def host_ports(self, service, cluster="default"):
        return sorted(b["hostPort"] for t in self.tasks(cluster, serviceName=service)
                      if t["lastStatus"] == "RUNNING"
                      for c in t["containers"] for b in c.get("networkBindings", []))


def task_pids(run_dir):
    """Processes whose working directory is under run_dir: the tasks gantry-core started."""
    return pids_working_in(os.path.join(run_dir, "tasks"))


class CoreTestCase(GantryTestCase):
    def start_core(self, core_yaml="", extra_yaml="", clusters=("default",), redis=None, args=(),
                   env=None, wait=True, name="core.yaml"):
        """gantry-core on a private redis-server (or `redis`), API on a free loopback port, run
        directory in the test's temp dir. core_yaml: more keys of the core section (indented by
        two spaces); extra_yaml: more top-level sections."""
        self.redis = redis or getattr(self, "redis", None) or self.start_redis()
        text = textwrap.dedent(f"""\
            redis: {{url: "{self.redis.url}"}}
            core:
              listen: 127.0.0.1:0
              run_dir: {os.path.join(self.tmp, "run")}
              reconcile_interval: 200ms
              clusters: {json.dumps(list(clusters))}
            """) + core_yaml + textwrap.dedent(extra_yaml)
        config_path = self.write_file(name, text)
        program = self.start_program("gantry-core", ["-c", config_path, *args], env=env)
        if not wait:
            return program
        addr = program.wait_ready()[0].removeprefix("http://")
        return Core(program, addr, self.redis, self.tmp, config_path)
