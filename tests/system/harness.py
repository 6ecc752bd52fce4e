"""Fixtures for Gantry's system tests: real binaries, a real redis-server, real sockets.

- GantryTestCase gives every test a private temporary directory (self.tmp) and stops everything
  it started when the test ends, pass or fail; when a test fails, the logs of every program it
  started are printed.
- self.start_redis() runs a private redis-server on a free loopback port (and a unix socket).
- self.start_program(name, args, env=...) runs bin/NAME with $GANTRY_READY_FD set, and
  .wait_ready() polls that pipe with a deadline: it returns the addresses the program announced.
- wait_until(predicate, timeout) polls a condition with a deadline. Never sleep to synchronise.
"""
import http.client
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("GANTRY_BIN", os.path.join(ROOT, "bin"))
DEFAULT_TIMEOUT = 10.0


def binary(name):
    return os.path.join(BIN, name)


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, message="condition"):
    """Polls predicate() until it returns a true value, which is returned; fails at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def split_addr(addr):
    """'127.0.0.1:8080' or '[::1]:80' -> (host, port)."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def http_request(addr, method="GET", path="/", body=None, headers=None, timeout=5.0):
    """One request on a new connection; returns (status, headers dict lower-cased, body bytes)."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def pids_of(pattern):
    """PIDs whose command line matches pattern (pgrep -f), excluding this process."""
    proc = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split() if int(p) != os.getpid()]


def pids_working_in(directory):
    """Processes whose working directory is directory or under it."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == directory or cwd.startswith(directory + "/"):
            pids.append(int(entry))
    return pids


class Program:
    """A running binary with its log in a file and a readiness pipe."""

    def __init__(self, argv, log_path, env=None, cwd=None, ready_fd=True):
        self.argv = argv
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.ready_r = None
        pass_fds = ()
        if ready_fd:
            self.ready_r, ready_w = os.pipe()
            full_env["GANTRY_READY_FD"] = str(ready_w)
            pass_fds = (ready_w,)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                     pass_fds=pass_fds, start_new_session=True)
        if ready_fd:
            os.close(ready_w)
        self.ready_line = None

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        """Waits for 'READY addr...' on the pipe; returns the list of addresses."""
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv[0]} not ready within {timeout}s:\n{self.log()}")
            readable, _, _ = select.select([self.ready_r], [], [], left)
            if not readable:
                continue
            chunk = os.read(self.ready_r, 4096)
            if not chunk:
                raise AssertionError(f"{self.argv[0]} exited or closed its ready pipe before "
                                     f"ready (status {self.proc.poll()}):\n{self.log()}")
            data += chunk
        self.ready_line = data.decode().strip()
        words = self.ready_line.split()
        if words[0] != "READY":
            raise AssertionError(f"unexpected readiness line {self.ready_line!r}")
        return words[1:]

    def log(self):
        if not self.log_file.closed:
            self.log_file.flush()
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"(log unavailable: {e})"

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=None, timeout=DEFAULT_TIMEOUT):
        """Signals the program (SIGTERM by default) and waits for it; SIGKILLs its whole session
        at the deadline."""
        sig = sig or signal.SIGTERM
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
                self.proc.wait()
        self.close()
        return self.proc.returncode

    def kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self):
        if self.ready_r is not None:
            os.close(self.ready_r)
            self.ready_r = None
        self.log_file.close()


class RedisServer:
    """A private redis-server on a free loopback port and a unix socket in `directory`."""

    def __init__(self, directory):
        self.dir = directory
        self.socket_path = os.path.join(directory, "redis.sock")
        self.program = None
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            self.program = Program(["redis-server", "--port", str(self.port), "--bind",
                                    "127.0.0.1", "--unixsocket", self.socket_path, "--dir",
                                    directory, "--save", "", "--appendonly", "no"],
                                   os.path.join(directory, f"redis-{self.port}.log"),
                                   ready_fd=False)
            try:
                wait_until(self._answers_or_died, timeout=DEFAULT_TIMEOUT, message="redis ping")
            except AssertionError:
                self.program.stop(signal.SIGKILL)
                raise
            if self.program.proc.poll() is None:
                return
            self.program.close()
        raise AssertionError("redis-server could not start:\n" + self.program.log())

    def _answers_or_died(self):
        return self.program.proc.poll() is not None or self.command("PING") == "PONG"

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def command(self, *words):
        """Sends one command over RESP; returns the reply (str, int, list or None) or None on error."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                payload = f"*{len(words)}\r\n" + "".join(
                    f"${len(str(w).encode())}\r\n{w}\r\n" for w in words)
                s.sendall(payload.encode())
                return _read_resp(s.makefile("rb"))
        except OSError:
            return None

    def stop(self):
        if self.program:
            self.program.stop()


def _read_resp(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_resp(f) for _ in range(n)]
    raise RuntimeError(f"bad RESP line {line!r}")


class GantryTestCase(unittest.TestCase):
    """Base class: a temp dir per test, and cleanup of everything started, pass or fail."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gantry-test-")
        self.programs = []
        self.addCleanup(self._cleanup)

    def _failed(self):
        # Inside a cleanup, _outcome.success is still True on Python 3.11: ask the result.
        result = self._outcome.result
        problems = result.failures + result.errors
        return any(test is self or getattr(test, "test_case", None) is self
                   for test, _ in problems)

    def _cleanup(self):
        for program in reversed(self.programs):
            program.stop()
        # What the programs started and did not stop (a gantry-core's tasks after a failed test):
        # every process working in this test's directory.
        for pid in pids_working_in(self.tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not self._failed():
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        # A failed test keeps its directory and shows what its programs said.
        for program in self.programs:
            print(f"\n----- log of {' '.join(program.argv)} -----\n{program.log()}")
        print(f"(files kept in {self.tmp})")

    def start_program(self, name, args=(), env=None, cwd=None, ready_fd=True):
        """Starts bin/NAME; the caller waits with .wait_ready() when the program announces."""
        log_path = os.path.join(self.tmp, f"{name}-{len(self.programs)}.log")
        program = Program([binary(name), *args], log_path, env=env, cwd=cwd or self.tmp,
                          ready_fd=ready_fd)
        self.programs.append(program)
        return program

    def start_redis(self):
        redis = RedisServer(self.tmp)
        self.programs.append(redis.program)
        return redis

    def run_program(self, name, args=(), env=None, timeout=DEFAULT_TIMEOUT, input=None):
        """Runs bin/NAME to completion; returns CompletedProcess with text stdout/stderr."""
        return subprocess.run([binary(name), *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.tmp, input=input,
                              env=dict(os.environ, **(env or {})))

    def write_file(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path
