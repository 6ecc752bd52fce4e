"""Fixtures for the DOCKER launch type's tests: a real dockerd and a test image, no registry.

    class MyTest(DockerTestCase):
        def test_x(self):
            core = self.start_core(core_yaml=self.docker_yaml())
            core.ok("RegisterTaskDefinition", docker_taskdef())
            self.docker.containers(self.owner_label())      # what dockerd runs for this test

The daemon: the one DOCKER_HOST (unix://PATH) or /var/run/docker.sock names, when it answers
/_ping; else a private one this module starts once per run (`dockerd --storage-driver=vfs
--iptables=false --bridge=none`, every path under a short /tmp/gantry-dockerd-XXXX: unix socket
paths are short) and stops at exit, with its containerd and shims. When dockerd is not installed
or cannot run here (not root, no cgroups, ...), every test that needs it is skipped with the
reason, never passed.

The image (image(), also self.image) is imported once per run (the API's `docker import`) from
a tarball holding the statically linked demo workload as /bin/gantry-demo-app (its entrypoint)
and a static helper, /bin/gantry-exit: `gantry-exit CODE [TEXT]` prints a line to stdout and
TEXT to stderr, then exits CODE; `--ignore-term` waits forever, deaf to SIGTERM; `--alloc MIB`
touches that much memory."""
import atexit
import hashlib
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import unittest
import urllib.parse

from core_fixtures import CoreTestCase
from harness import BIN, ROOT, wait_until
from lb_fixtures import LbTestCase

DEMO_REPO = "gantry-test-demo"
DAEMON_START_TIMEOUT = 30.0

EXIT_HELPER_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--ignore-term") == 0) {
        signal(SIGTERM, SIG_IGN);
        printf("ignoring SIGTERM\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (argc > 2 && strcmp(argv[1], "--alloc") == 0) {
        for (long i = 0; i < atol(argv[2]); i++) {
            char *p = malloc(1 << 20);
            if (!p)
                return 2;
            memset(p, 1, 1 << 20);
        }
        return 0;
    }
    int code = argc > 1 ? atoi(argv[1]) : 0;
    printf("stdout: exiting with %d\n", code);
    fprintf(stderr, "stderr: %s\n", argc > 2 ? argv[2] : "bye");
    return code;
}
"""


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DockerAPI:
    """The Engine API over a unix socket, as raw as the tests need it."""

    def __init__(self, socket_path):
        self.socket_path = socket_path

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        """Returns (status, body bytes)."""
        conn = UnixHTTPConnection(self.socket_path, timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            conn.request(method, "/v1.41" + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, ok=(200, 201, 204, 304)):
        status, data = self.request(method, path, body)
        if status not in ok:
            raise AssertionError(f"dockerd: {method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data.strip() else None

    def ping(self):
        try:
            return self.request("GET", "/_ping", timeout=2.0)[0] == 200
        except OSError:
            return False

    def containers(self, label):
        """Every container (running or not) with the label ("KEY" or "KEY=VALUE")."""
        filters = urllib.parse.quote(json.dumps({"label": [label]}))
        return self.json("GET", f"/containers/json?all=1&filters={filters}")

    def inspect(self, container_id):
        status, data = self.request("GET", f"/containers/{container_id}/json")
        return json.loads(data) if status == 200 else None

    def run(self, image, name, labels, cmd=None, entrypoint=None):
        """Creates and starts a container on the host network; returns its id."""
        body = {"Image": image, "Labels": labels, "HostConfig": {"NetworkMode": "host"}}
        if cmd is not None:
            body["Cmd"] = cmd
        if entrypoint is not None:
            body["Entrypoint"] = entrypoint
        created = self.json("POST", f"/containers/create?name={name}", body)
        self.json("POST", f"/containers/{created['Id']}/start")
        return created["Id"]

    def kill(self, container_id, sig="SIGKILL"):
        self.json("POST", f"/containers/{container_id}/kill?signal={sig}")

    def remove(self, container_id):
        self.request("DELETE", f"/containers/{container_id}?force=1&v=1")


class PrivateDaemon:
    """A dockerd of our own under a short /tmp directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gantry-dockerd-", dir="/tmp")
        self.socket_path = os.path.join(self.dir, "docker.sock")
        self.log_path = os.path.join(self.dir, "dockerd.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
             "--ip-forward=false", "--ip-masq=false", "--data-root", os.path.join(self.dir, "data"),
             "--exec-root", os.path.join(self.dir, "exec"), "--pidfile",
             os.path.join(self.dir, "docker.pid"), "-H", f"unix://{self.socket_path}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, api):
        deadline = time.monotonic() + DAEMON_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"dockerd exited with status {self.proc.returncode}: {self.log_tail()}"
            if api.ping():
                return None
            time.sleep(0.05)
        return f"dockerd did not answer within {DAEMON_START_TIMEOUT:.0f}s: {self.log_tail()}"

    def log_tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "(no output)"

    def stop(self):
        """SIGTERM (dockerd stops its containers and its containerd), SIGKILL to the whole session
        after a deadline, then whatever is left mounted or running under our directory."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # containerd and shims share its session
        except OSError:
            pass
        self.proc.wait()
        self.log.close()
        kill_processes_using(self.dir)
        unmount_under(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def kill_processes_using(directory):
    """Processes whose executable, command line or root lies under directory (a shim, a
    container's process): SIGKILLed."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if directory in cmdline or root.startswith(directory + "/"):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def unmount_under(directory):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(directory + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


class _Docker:
    """The run's daemon and image, found or made once (None until asked)."""
    api = None
    private = None
    skip_reason = None
    image = None


def _find_daemon():
    host = os.environ.get("DOCKER_HOST", "")
    candidates = [host[len("unix://"):]] if host.startswith("unix://") else []
    candidates.append("/var/run/docker.sock")
    for path in candidates:
        api = DockerAPI(path)
        if os.path.exists(path) and api.ping():
            return api
    if not shutil.which("dockerd"):
        return "dockerd is not installed (scripts/deps.sh test installs docker.io)"
    daemon = PrivateDaemon()
    api = DockerAPI(daemon.socket_path)
    why = daemon.wait_ready(api)
    if why:
        daemon.stop()
        return why
    _Docker.private = daemon
    atexit.register(stop_private_daemon)
    return api


def stop_private_daemon():
    """Stops the private daemon, if this run started one (a module's tearDownModule, and at exit):
    a later test that needs dockerd starts it again."""
    if _Docker.private:
        _Docker.private.stop()
        _Docker.private = None
        _Docker.api = _Docker.image = None


def daemon():
    """The run's DockerAPI; raises unittest.SkipTest (with the reason) when dockerd cannot run."""
    if _Docker.api is None and _Docker.skip_reason is None:
        found = _find_daemon()
        if isinstance(found, str):
            _Docker.skip_reason = found
        else:
            _Docker.api = found
    if _Docker.skip_reason:
        raise unittest.SkipTest(f"no usable dockerd: {_Docker.skip_reason}")
    return _Docker.api


def _static_demo_binary():
    """bin/gantry-demo-app-static of the binaries under test, else of the release build (made
    when missing: `make asan` builds no static binary, sanitizers do not link statically)."""
    for directory in (BIN, os.path.join(ROOT, "bin")):
        path = os.path.join(directory, "gantry-demo-app-static")
        if os.access(path, os.X_OK):
            return path
    # not the calling make's variables (`make asan` passes BUILD=asan down through MAKEFLAGS)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "-C", ROOT, "BUILD=release", "bin/gantry-demo-app-static"],
                          capture_output=True, text=True, timeout=600, env=env)
    path = os.path.join(ROOT, "bin", "gantry-demo-app-static")
    if proc.returncode != 0 or not os.access(path, os.X_OK):
        raise AssertionError(f"cannot build {path}:\n{proc.stdout}{proc.stderr}")
    return path


def _exit_helper(directory):
    src = os.path.join(directory, "gantry-exit.c")
    out = os.path.join(directory, "gantry-exit")
    with open(src, "w") as f:
        f.write(EXIT_HELPER_C)
    proc = subprocess.run(["gcc", "-static", "-O2", "-o", out, src], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"cannot build the exit helper:\n{proc.stderr}")
    return out


def _rootfs_tar(files):
    """A root filesystem tarball: /bin/NAME for each (name, path), /tmp; fixed times, so the same
    binaries make the same bytes (and the same image tag)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, path in files:
            info = tar.gettarinfo(path, arcname=f"bin/{name}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return data.getvalue()


def image():
    """The test image's reference (imported unless dockerd has it already)."""
    api = daemon()
    if _Docker.image:
        return _Docker.image
    with tempfile.TemporaryDirectory(prefix="gantry-image-") as work:
        tar = _rootfs_tar([("gantry-demo-app", _static_demo_binary()),
                           ("gantry-exit", _exit_helper(work))])
    tag = hashlib.sha256(tar).hexdigest()[:16]
    ref = f"{DEMO_REPO}:{tag}"
    status, _ = api.request("GET", f"/images/{ref}/json")
    if status != 200:
        changes = urllib.parse.quote('ENTRYPOINT ["/bin/gantry-demo-app"]')
        status, data = api.request(
            "POST", f"/images/create?fromSrc=-&repo={DEMO_REPO}&tag={tag}&changes={changes}",
            body=tar, headers={"Content-Type": "application/x-tar"}, timeout=120)
        if status != 200 or b'"error"' in data:
            raise AssertionError(f"docker import failed: {status} {data[-500:]!r}")
        _forget_other_tags(api, ref)
    _Docker.image = ref
    return ref


def _forget_other_tags(api, keep):
    """Older test images on a shared daemon: each run would leave one."""
    filters = urllib.parse.quote(json.dumps({"reference": [DEMO_REPO]}))
    for img in api.json("GET", f"/images/json?filters={filters}") or []:
        if keep not in (img.get("RepoTags") or []):
            api.request("DELETE", f"/images/{img['Id']}?force=1")


def docker_taskdef(family="dweb", image=None, command=None, entrypoint=None, port=8080, memory=64,
                   cpu=None, requires_docker=True, health=False, extra=None, **td_fields):
    """A task definition for the test image: one container 'web' serving on $PORT (the image's
    entrypoint) unless command/entrypoint say otherwise."""
    container = {"name": "web", "image": image or _Docker.image, "memory": memory,
                 "essential": True,
                 "portMappings": [{"containerPort": port, "protocol": "tcp"}] if port else []}
    if command is not None:
        container["command"] = command
    if entrypoint is not None:
        container["entryPoint"] = entrypoint
    if health:
        container["healthCheck"] = {"command": ["CMD", "/bin/gantry-demo-app", "--probe",
                                                "/health"], "interval": 5, "timeout": 2,
                                    "retries": 2}
    container.update(extra or {})
    td = {"family": family, "containerDefinitions": [container], **td_fields}
    if cpu is not None:
        td["cpu"] = str(cpu)
    if requires_docker:
        td["requiresCompatibilities"] = ["DOCKER"]
    return td


class DockerTestCase(CoreTestCase, LbTestCase):
    """A test that needs dockerd: skipped (with the reason) when there is none. Containers this
    test's gantry-core left behind are removed when the test ends."""
    needs_daemon = True

    def setUp(self):
        super().setUp()
        if not self.needs_daemon:
            return
        self.docker = daemon()
        self.image = image()
        self.addCleanup(self._remove_leftovers)

    def run_dir(self):
        return os.path.join(self.tmp, "run")

    def owner_label(self):
        """The label gantry-core puts on every container it creates: its run directory."""
        return f"gantry.core={self.run_dir()}"

    def docker_yaml(self, socket_path=None):
        """The core keys of a DOCKER test: the daemon's socket, and host ports from a range of
        its own (the default range is shared with whatever else runs on this machine, and a
        container binds its port some time after gantry-core found it free)."""
        if not hasattr(self, "port_base"):
            self.port_base = random.randrange(21000, 32000, 100)
        return (f"  docker_socket: {socket_path or self.docker.socket_path}\n"
                f"  host_port_min: {self.port_base}\n  host_port_max: {self.port_base + 99}\n")

    def ours(self, running_only=False):
        listed = self.docker.containers(self.owner_label())
        return [c for c in listed if not running_only or c["State"] == "running"]

    def _remove_leftovers(self):
        for program in reversed(self.programs):
            program.stop()
        for c in self.docker.containers(self.owner_label()):
            self.docker.remove(c["Id"])
        wait_until(lambda: not self.docker.containers(self.owner_label()), timeout=10,
                   message="the test's containers removed")
