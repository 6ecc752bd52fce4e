"""Fixtures for gantry-lb system tests: real demo-app backends, a real gantry-lb started from a
YAML config, raw sockets for exact bytes, and the admin endpoints.

    class MyTest(LbTestCase):
        def test_x(self):
            backends = self.start_backends(2)             # ["127.0.0.1:PORT", ...]
            lb = self.start_lb(f'''
    lb:
      listeners:
        - name: web
          listen: 127.0.0.1:0
          default_action: {{type: forward, target_group: app}}
      target_groups:
        - name: app
          targets: [{{address: "{backends[0]}"}}, {{address: "{backends[1]}"}}]
    ''')
            status, headers, body = http_request(lb.listeners[0], path="/echo")
"""
import json
import os
import socket
import textwrap
import time

from harness import GantryTestCase, http_request, split_addr, wait_until


FAST_CHECK = ("{path: /health, interval: 200ms, timeout: 150ms, healthy_threshold: 2, "
              "unhealthy_threshold: 2}")


def app_yaml(targets=(), workers=1, health_check=FAST_CHECK, group_lines=(), lb_lines=(),
             redis_url=None, targets_from=None):
    """One listener on a free port forwarding to one target group `app`: the configuration most
    lb tests start from. group_lines and lb_lines are extra YAML lines for the group and for lb."""
    listed = ", ".join(f'{{address: "{t}"}}' for t in targets)
    lines = []
    if redis_url:
        lines.append(f'redis: {{url: "{redis_url}"}}')
    lines += ["lb:", f"  workers: {workers}", *(f"  {line}" for line in lb_lines),
              "  listeners:", "    - name: web", "      listen: 127.0.0.1:0",
              "      default_action: {type: forward, target_group: app}",
              "  target_groups:", "    - name: app"]
    lines.append(f"      targets_from: {targets_from}" if targets_from
                 else f"      targets: [{listed}]")
    if health_check:
        lines.append(f"      health_check: {health_check}")
    lines += [f"      {line}" for line in group_lines]
    return "\n".join(lines) + "\n"


class Lb:
    """A running gantry-lb: its program, listener addresses (in config order) and admin address."""

    def __init__(self, program, addrs, config_path):
        self.program = program
        self.listeners = addrs[:-1]
        self.admin = addrs[-1]
        self.config_path = config_path

    def metrics(self):
        """The /metrics samples as {'name{labels}': value}."""
        status, _, body = http_request(self.admin, path="/metrics")
        assert status == 200, status
        samples = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def metric(self, key):
        return self.metrics().get(key, 0.0)

    def targets(self):
        status, _, body = http_request(self.admin, path="/targets")
        assert status == 200, status
        return json.loads(body)

    def generation(self):
        return int(self.metric("gantry_lb_config_generation"))


class RawConnection:
    """A client socket for exact bytes: send anything, read whole responses or until close."""

    def __init__(self, addr, timeout=5.0):
        host, port = split_addr(addr)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buffer += chunk

    def read_response(self, head_only=False):
        """One response: (status, headers dict lower-cased (last value wins), body bytes).
        Knows Content-Length, chunked and close-delimited bodies."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_only or status < 200 or status in (204, 304):
            return status, headers, b""
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buffer) < n:
                self._fill()
            body, self.buffer = self.buffer[:n], self.buffer[n:]
            return status, headers, body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, self._read_chunked()
        return status, headers, self.read_until_close()

    def _read_chunked(self):
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                self._fill()
            line, _, self.buffer = self.buffer.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buffer:
                    self._fill()
                while not self.buffer.startswith(b"\r\n"):  # trailers
                    _, _, self.buffer = self.buffer.partition(b"\r\n")
                    while b"\r\n" not in self.buffer:
                        self._fill()
                self.buffer = self.buffer[2:]
                return body
            while len(self.buffer) < size + 2:
                self._fill()
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2:]

    def read_until_close(self):
        try:
            while True:
                self._fill()
        except (EOFError, ConnectionResetError):
            pass
        data, self.buffer = self.buffer, b""
        return data

    def is_closed(self, timeout=2.0):
        """True when the peer closes (EOF or reset) within timeout with nothing more to read."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class LbTestCase(GantryTestCase):
    def start_backends(self, n, env=None, ids=None):
        """n demo-app backends on free ports; TASK_ID t0, t1, ... unless ids are given."""
        addrs = []
        for i in range(n):
            task_id = ids[i] if ids else f"t{i}"
            program = self.start_program("gantry-demo-app",
                                         env={"PORT": "0", "TASK_ID": task_id, **(env or {})})
            addrs.append(program.wait_ready()[0])
        return addrs

    def write_config(self, text, name="lb.yaml"):
        return self.write_file(name, textwrap.dedent(text))

    def start_lb(self, config_text=None, args=(), name="lb.yaml", wait=True):
        """gantry-lb with the config (dedented) and the admin on a free port."""
        argv = list(args)
        path = None
        if config_text is not None:
            path = self.write_config(config_text, name)
            argv = ["-c", path, *argv]
        if "--admin" not in argv:
            argv += ["--admin", "127.0.0.1:0"]
        program = self.start_program("gantry-lb", argv)
        if not wait:
            return program
        return Lb(program, program.wait_ready(), path)

    def reload_lb(self, lb, config_text=None):
        """Rewrites the config (if given), sends SIGHUP; returns once the log says the outcome."""
        import signal
        if config_text is not None:
            with open(lb.config_path, "w") as f:
                f.write(textwrap.dedent(config_text))
        before = lb.program.log().count("reload")
        lb.program.signal(signal.SIGHUP)
        wait_until(lambda: lb.program.log().count("reload") > before
                   and ("in force" in lb.program.log().split("reloading")[-1]),
                   message="the reload to finish")
        return lb.program.log().split("reloading the configuration")[-1]


def now():
    return time.monotonic()
