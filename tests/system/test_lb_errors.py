"""gantry-lb failure handling, end to end with real sockets: the errors it generates (502, 503, 504)
and how it counts them, client timeouts (slowloris, idle keep-alive), the request-smuggling corpus
through the proxy, connection and size limits, reloads under load, SIGTERM, startup errors, and
pooled target connections that the target closed.

Raw Python backends (RawBackend) play the targets that misbehave; demo-app backends play the good
ones. Routing, rewriting, bodies, websockets, the access log and the admin API are covered in
test_lb_routing.py, not here.
"""
import concurrent.futures
import http.client
import os
import re
import select
import signal
import socket
import threading
import time
import unittest

from harness import free_port, http_request, split_addr, wait_until
from lb_fixtures import LbTestCase, RawConnection


# -- raw backends ------------------------------------------------------------------------------

class RawBackend:
    """A loopback TCP server run by Python threads: handler(conn, backend) serves one connection.
    Records how many connections it accepted, every byte it received and the request lines it
    parsed (for handlers that use read_request)."""

    def __init__(self, handler, backlog=64):
        self.handler = handler
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.05)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.raw = bytearray()
        self.request_lines = []
        self.conns = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5.0)
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def recv(self, conn, timeout=5.0):
        """Bytes from conn (b'' at EOF or reset), recorded."""
        conn.settimeout(timeout)
        try:
            data = conn.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        with self.lock:
            self.raw += data
        return data

    def read_request(self, conn, pending=b""):
        """One request (head, body) and the bytes after it, or None at EOF. Knows Content-Length
        and chunked bodies (what gantry-lb sends)."""
        buf = pending
        while b"\r\n\r\n" not in buf:
            data = self.recv(conn)
            if not data:
                return None
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        with self.lock:
            self.request_lines.append(head.split(b"\r\n")[0])
        lower = head.lower()
        m = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", lower)
        body = b""
        if m:
            n = int(m.group(1))
            while len(buf) < n:
                data = self.recv(conn)
                if not data:
                    return None
                buf += data
            body, buf = buf[:n], buf[n:]
        elif re.search(rb"\r\ntransfer-encoding:[^\r]*chunked", lower):
            while True:
                while b"\r\n" not in buf:
                    data = self.recv(conn)
                    if not data:
                        return None
                    buf += data
                line, _, buf = buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                while len(buf) < size + 2:
                    data = self.recv(conn)
                    if not data:
                        return None
                    buf += data
                body += buf[:size]
                buf = buf[size + 2:]
                if size == 0:
                    break
        return head, body, buf

    def stop(self):
        self.stopping.set()
        self.sock.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(timeout=2)


OK_KEEP_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


def serve_recording(conn, backend):
    """A well-behaved target: answers every request it can parse with 200 'ok'."""
    pending = b""
    while True:
        req = backend.read_request(conn, pending)
        if req is None:
            return
        pending = req[2]
        conn.sendall(OK_KEEP_ALIVE)


def serve_garbage(conn, backend):
    """Answers a request head with bytes that are not HTTP, then waits for the lb to close."""
    if backend.read_request(conn) is None:
        return
    conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    backend.recv(conn, timeout=2.0)


def serve_close_unanswered(conn, backend):
    """Reads the request and closes (FIN) without a byte of response."""
    backend.read_request(conn)


def serve_cut_short(conn, backend):
    """Starts a 100-byte response, sends 10 bytes of it and closes."""
    if backend.read_request(conn) is None:
        return
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")


def serve_reset_at_once(conn, backend):
    """Resets the connection as soon as it is accepted (SO_LINGER 0: RST, not FIN)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def serve_short_keep_alive(conn, backend):
    """A target with a 50 ms keep-alive timeout: it answers with 'Connection: keep-alive', then
    closes the connection after 50 ms without a new request."""
    pending = b""
    while True:
        req = backend.read_request(conn, pending)
        if req is None:
            return
        pending = req[2]
        conn.sendall(OK_KEEP_ALIVE)
        if not pending and not select.select([conn], [], [], 0.05)[0]:
            return


def serve_first_request_only(conn, backend):
    """Answers the first request of a connection with keep-alive; on a second request it closes
    without answering: the race where a target closes its idle connection just as the next request
    arrives, made deterministic."""
    req = backend.read_request(conn)
    if req is None:
        return
    conn.sendall(OK_KEEP_ALIVE)
    backend.read_request(conn, req[2])


def closed_port():
    """A loopback port nobody listens on: bound, then released."""
    return free_port()


def connect_refused(addr):
    """True when a connection to addr is refused (or reset/closed at once without an answer)."""
    host, port = split_addr(addr)
    try:
        s = socket.create_connection((host, port), timeout=1.0)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    s.close()
    return False


def metric_key(name, **labels):
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def err_key(kind, listener="web"):
    return metric_key("gantry_lb_errors_total", listener=listener, kind=kind)


def group_key(name, group, **labels):
    return metric_key(name, target_group=group, **labels)


ERROR_KINDS = ("bad_request", "client_timeout", "502", "503", "504", "rejected_connection")


def lb_config(listeners, groups, workers=1, **settings):
    """gantry-lb YAML: listeners are (name, listen, rules_yaml_lines, default_action_yaml) and
    groups (name, [addresses])."""
    lines = ["lb:", f"  workers: {workers}"]
    lines += [f"  {key}: {value}" for key, value in settings.items()]
    lines.append("  listeners:")
    for name, listen, rules, default in listeners:
        lines += [f"    - name: {name}", f"      listen: {listen}"]
        if rules:
            lines.append("      rules:")
            lines += [f"        {rule}" for rule in rules]
        lines.append(f"      default_action: {default}")
    if groups:
        lines.append("  target_groups:")
        for name, addrs in groups:
            targets = ", ".join(f'{{address: "{a}"}}' for a in addrs)
            # Checks off: these tests count what reaches their backends, request by request.
            lines += [f"    - name: {name}", f"      targets: [{targets}]",
                      "      health_check: {enabled: false}"]
    return "\n".join(lines) + "\n"


GOOD_RULE = ('- {priority: 1, conditions: [{field: path-pattern, values: ["/good*"]}], '
             'action: {type: forward, target_group: good}}')


def request_bytes(path="/", host="lb.test", method="GET", extra=b""):
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n")


SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class LbErrorsCase(LbTestCase):
    def setUp(self):
        super().setUp()
        # Runs after the test's own cleanups (sockets, raw backends), before the base class stops
        # the programs: gantry-lb must stop cleanly, without a sanitizer report.
        self.addCleanup(self.check_lb_exit)

    def check_lb_exit(self):
        if getattr(getattr(self, self._testMethodName), "__unittest_expecting_failure__", False):
            return  # a known engine bug may well end in a crash
        for program in self.programs:
            if os.path.basename(program.argv[0]) != "gantry-lb":
                continue
            status = program.stop()
            log = program.log()
            self.assertFalse(status is not None and status < 0,
                             f"gantry-lb ended by signal {-status}:\n{log[-3000:]}")
            for report in SANITIZER_REPORTS:
                self.assertNotIn(report, log, f"in the gantry-lb log:\n{log[-6000:]}")

    def start_raw_backend(self, handler, backlog=64):
        backend = RawBackend(handler, backlog)
        self.addCleanup(backend.stop)
        return backend

    def executor(self):
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=8)
        self.addCleanup(ex.shutdown, wait=True)
        return ex

    def raw(self, addr, timeout=5.0):
        conn = RawConnection(addr, timeout=timeout)
        self.addCleanup(conn.close)
        return conn

    def start_error_lb(self, bad_targets, **settings):
        """A listener 'web': /good* goes to a demo-app target (group good), anything else to the
        group 'bad' with bad_targets."""
        good = self.start_backends(1, ids=["good"])
        lb = self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [GOOD_RULE], "{type: forward, target_group: bad}")],
            [("good", good), ("bad", bad_targets)], **settings))
        return lb

    def assert_generated_error(self, status, headers, body, expected, keep_alive=True):
        self.assertEqual(status, expected, body)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        self.assertTrue(body.startswith(f"{expected} ".encode()), body)
        self.assertLess(len(body), 256, "a generated error has a short body")
        if keep_alive:
            self.assertNotEqual(headers.get("connection", "").lower(), "close", headers)
        elif keep_alive is not None:
            self.assertEqual(headers.get("connection", "").lower(), "close", headers)

    def assert_still_usable(self, conn):
        """The client connection that got a generated error serves the next request."""
        conn.send(request_bytes("/good"))
        status, headers, _ = conn.read_response()
        self.assertEqual((status, headers.get("x-task-id")), (200, "good"))

    def assert_only_error(self, lb, kind, count=1, listener="web"):
        """errors_total counts `count` of `kind` and nothing of the other kinds."""
        samples = lb.metrics()
        got = {k: samples.get(err_key(k, listener), 0.0) for k in ERROR_KINDS}
        want = {k: (count if k == kind else 0.0) for k in ERROR_KINDS}
        self.assertEqual(got, want)


# -- 1. generated errors -----------------------------------------------------------------------

class GeneratedErrorsTest(LbErrorsCase):
    def test_502_when_the_target_refuses_the_connection(self):
        lb = self.start_error_lb([f"127.0.0.1:{closed_port()}"])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 502)
        self.assertIn(b"refused", body)
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "502")
        self.assertEqual(lb.metric(group_key("gantry_lb_target_connection_errors_total", "bad")), 1)

    def test_502_when_the_target_answers_garbage(self):
        backend = self.start_raw_backend(serve_garbage)
        lb = self.start_error_lb([backend.addr])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 502)
        self.assertIn(b"invalid response", body)
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "502")
        self.assertEqual(backend.accepted, 1, "an invalid response is not retried")

    def test_502_target_connection_errors_counted_once_per_invalid_response(self):
        backend = self.start_raw_backend(serve_garbage)
        lb = self.start_error_lb([backend.addr])
        for _ in range(3):
            self.assertEqual(http_request(lb.listeners[0], path="/")[0], 502)
        self.assertEqual(lb.metric(group_key("gantry_lb_target_connection_errors_total", "bad")), 3)

    def test_502_when_the_target_closes_without_answering(self):
        backend = self.start_raw_backend(serve_close_unanswered)
        lb = self.start_error_lb([backend.addr])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 502)
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "502")
        wait_until(lambda: b"GET / HTTP/1.1" in bytes(backend.raw), message="the target's read")
        self.assertEqual(backend.accepted, 1, "a new connection that failed is not retried")

    def test_502_when_the_target_resets_at_once(self):
        backend = self.start_raw_backend(serve_reset_at_once)
        lb = self.start_error_lb([backend.addr])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 502)
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "502")

    def test_pipelined_request_behind_a_502_is_served(self):
        lb = self.start_error_lb([f"127.0.0.1:{closed_port()}"])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/first") + request_bytes("/good/second"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 502)
        status, headers, _ = conn.read_response()
        self.assertEqual((status, headers.get("x-task-id")), (200, "good"))
        self.assert_only_error(lb, "502")

    def test_a_response_cut_short_closes_the_client_connection(self):
        # Once a response has begun, a 502 can no longer be sent: the client must see the
        # connection close, never a keep-alive connection out of step with its responses.
        backend = self.start_raw_backend(serve_cut_short)
        lb = self.start_error_lb([backend.addr])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, _ = conn.read_response(head_only=True)
        self.assertEqual((status, headers.get("content-length")), (200, "100"))
        self.assertEqual(conn.read_until_close(), b"0123456789")
        self.assertEqual(lb.metric(group_key("gantry_lb_target_connection_errors_total", "bad")), 1)

    def test_503_when_the_group_has_no_targets(self):
        lb = self.start_error_lb([])
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 503)
        self.assertIn(b"no targets", body)
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "503")

    def test_503_after_a_streamed_request_body_is_answered_once(self):
        lb = self.start_error_lb([])
        conn = self.raw(lb.listeners[0])
        # A chunked body streams to the target (not replayable): the request body state ends
        # "done" on this connection.
        conn.send(b"POST /good/echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n0\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 200)
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        self.assert_generated_error(status, headers, body, 503)
        self.assert_still_usable(conn)  # the next answer is to the next request
        self.assertIsNone(lb.program.proc.poll(), "gantry-lb died")
        self.assertEqual(lb.metric(err_key("503")), 1)

    def hold_the_only_connection(self, lb, ex):
        """Sends a 1 s request to the only target of 'bad'; returns its pending response once the
        request is in flight."""
        first = self.raw(lb.listeners[0])
        first.send(request_bytes("/?latency=1s"))
        pending = ex.submit(first.read_response)
        wait_until(lambda: lb.targets()["target_groups"][1]["targets"][0]["outstanding"] == 1,
                   message="the slow request to be in flight")
        return pending

    def test_503_when_every_target_is_at_max_upstream_connections(self):
        slow = self.start_backends(1, ids=["slow"])
        lb = self.start_error_lb(slow, max_upstream_connections=1)
        pending = self.hold_the_only_connection(lb, self.executor())
        second = self.raw(lb.listeners[0])
        start = time.monotonic()
        second.send(request_bytes("/"))
        status, headers, body = second.read_response()
        self.assertLess(time.monotonic() - start, 0.5, "a 503 does not wait for the slow one")
        self.assert_generated_error(status, headers, body, 503)
        self.assertIn(b"no target can take", body)
        self.assertFalse(pending.done())
        status, headers, _ = pending.result(timeout=5)
        self.assertEqual((status, headers.get("x-task-id")), (200, "slow"))
        # The target's connection is free again: the same client connection now gets through.
        second.send(request_bytes("/"))
        status, headers, _ = second.read_response()
        self.assertEqual((status, headers.get("x-task-id")), (200, "slow"))
        self.assert_still_usable(second)
        self.assert_only_error(lb, "503")

    def test_504_on_target_response_timeout(self):
        slow = self.start_backends(1, ids=["slow"])
        lb = self.start_error_lb(slow, target_response_timeout="300ms")
        conn = self.raw(lb.listeners[0])
        start = time.monotonic()
        conn.send(request_bytes("/?latency=2s"))
        status, headers, body = conn.read_response()
        elapsed = time.monotonic() - start
        self.assert_generated_error(status, headers, body, 504)
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        self.assert_still_usable(conn)
        # A fast answer from the same target is within the timeout.
        conn.send(request_bytes("/?latency=10ms"))
        self.assertEqual(conn.read_response()[0], 200)
        self.assert_only_error(lb, "504")

    def hanging_target(self):
        """A target whose connect hangs: a listening socket with backlog 0 whose accept queue is
        full; Linux then drops further SYNs (retransmitted after 1 s, 3 s...)."""
        blackhole = socket.socket()
        self.addCleanup(blackhole.close)
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        addr = blackhole.getsockname()
        for _ in range(4):  # fill the queue until a connect does not complete within 200 ms
            probe = socket.socket()
            self.addCleanup(probe.close)
            probe.setblocking(False)
            probe.connect_ex(addr)
            if not select.select([], [probe], [], 0.2)[1]:
                return "127.0.0.1:%d" % addr[1]
        self.skipTest("cannot make a connect hang on loopback here")

    def test_504_on_connect_timeout(self):
        lb = self.start_error_lb([self.hanging_target()], connect_timeout="200ms")
        conn = self.raw(lb.listeners[0])
        start = time.monotonic()
        conn.send(request_bytes("/"))
        status, headers, body = conn.read_response()
        elapsed = time.monotonic() - start
        self.assert_generated_error(status, headers, body, 504)
        self.assertIn(b"connect", body)
        self.assertGreater(elapsed, 0.15)
        self.assertLess(elapsed, 0.9, "before the first SYN retransmission (1 s)")
        self.assert_still_usable(conn)
        self.assert_only_error(lb, "504")

    def test_504_connect_timeout_counts_one_target_connection_error(self):
        lb = self.start_error_lb([self.hanging_target()], connect_timeout="100ms")
        for _ in range(2):
            self.assertEqual(http_request(lb.listeners[0], path="/")[0], 504)
        self.assertEqual(lb.metric(group_key("gantry_lb_target_connection_errors_total", "bad")), 2)


# -- 2. client timeouts ------------------------------------------------------------------------

class ClientTimeoutsTest(LbErrorsCase):
    def start_timeout_lb(self, **settings):
        backends = self.start_backends(1)
        return self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")],
            [("app", backends)], **settings))

    def test_half_a_head_gets_408_and_the_connection_closes(self):
        lb = self.start_timeout_lb(client_header_timeout="300ms", idle_timeout="5s")
        conn = self.raw(lb.listeners[0])
        start = time.monotonic()
        conn.send(b"GET / HTTP/1.1\r\nHost: lb.test\r\n")
        status, headers, body = conn.read_response()
        elapsed = time.monotonic() - start
        self.assert_generated_error(status, headers, body, 408, keep_alive=False)
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        self.assertTrue(conn.is_closed())
        self.assert_only_error(lb, "client_timeout")

    def test_a_silent_new_connection_is_closed_after_the_header_timeout(self):
        lb = self.start_timeout_lb(client_header_timeout="300ms", idle_timeout="5s")
        conn = self.raw(lb.listeners[0])
        start = time.monotonic()
        self.assertTrue(conn.is_closed(timeout=3), "closed with nothing sent")
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)

    def test_idle_keep_alive_connection_closes_after_idle_timeout(self):
        lb = self.start_timeout_lb(client_header_timeout="5s", idle_timeout="300ms")
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        self.assertEqual(conn.read_response()[0], 200)
        start = time.monotonic()
        self.assertTrue(conn.is_closed(timeout=3), "closed with nothing sent")
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        self.assert_only_error(lb, "client_timeout", count=0)

    def test_idle_time_below_idle_timeout_keeps_the_connection(self):
        lb = self.start_timeout_lb(client_header_timeout="5s", idle_timeout="600ms")
        conn = self.raw(lb.listeners[0])
        for _ in range(3):
            conn.send(request_bytes("/"))
            self.assertEqual(conn.read_response()[0], 200)
            time.sleep(0.3)  # idle time, half the idle timeout: the connection must stay open

    def test_second_request_head_has_the_header_timeout_not_the_idle_timeout(self):
        lb = self.start_timeout_lb(client_header_timeout="300ms", idle_timeout="5s")
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        self.assertEqual(conn.read_response()[0], 200)
        start = time.monotonic()
        conn.send(b"GET / HTTP/1.1\r\nHost: lb")
        status, headers, body = conn.read_response()
        elapsed = time.monotonic() - start
        self.assert_generated_error(status, headers, body, 408, keep_alive=False)
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        self.assertTrue(conn.is_closed())

    def test_slowloris_gets_408_at_the_deadline(self):
        lb = self.start_timeout_lb(client_header_timeout="300ms", idle_timeout="5s")
        conn = self.raw(lb.listeners[0])
        start = time.monotonic()
        head = b"GET / HTTP/1.1\r\nHost: lb.test\r\nX-Slow: " + b"a" * 100
        answered = False
        for byte in head[:30]:  # at most 3 s of trickling
            if select.select([conn.sock], [], [], 0)[0]:
                answered = True
                break
            conn.send(bytes([byte]))
            time.sleep(0.1)  # the slow client: one byte per 100 ms
        self.assertTrue(answered or select.select([conn.sock], [], [], 1.0)[0],
                        "no answer while the head trickled in: the timer is reset by each byte")
        status, headers, body = conn.read_response()
        elapsed = time.monotonic() - start
        self.assert_generated_error(status, headers, body, 408, keep_alive=False)
        self.assertLess(elapsed, 1.0, "the deadline counts from the start of the head")
        self.assertTrue(conn.is_closed())
        self.assert_only_error(lb, "client_timeout")


# -- 3. the smuggling corpus -------------------------------------------------------------------

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: lb.test\r\n\r\n"
H = b"Host: lb.test\r\n"

# (name, bytes, expected status). Each is sent with SMUGGLED right behind it, in one write.
# The limits in force: max_request_line 256, max_header_size 1k, max_headers 10, max_body_size 1k.
SMUGGLING_CORPUS = [
    ("cl_and_te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_and_cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two_content_lengths", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n"
     b"Content-Length: %d\r\n\r\n" % len(SMUGGLED), 400),
    ("two_equal_content_lengths", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n"
     b"Content-Length: 0\r\n\r\n", 400),
    ("content_length_plus_sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +0\r\n\r\n", 400),
    ("content_length_minus_sign", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
     400),
    ("content_length_inner_space", b"POST / HTTP/1.1\r\n" + H +
     b"Content-Length: 0 %d\r\n\r\n" % len(SMUGGLED), 400),
    ("content_length_list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0, 0\r\n\r\n", 400),
    ("content_length_hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x0\r\n\r\n", 400),
    ("te_chunked_then_identity", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
    ("te_identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 400),
    ("te_gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    ("te_xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n", 400),
    ("te_chunked_twice", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_unknown_coding", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: foo, chunked\r\n\r\n"
     b"0\r\n\r\n", 501),
    ("te_space_before_colon", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("obs_fold", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("bare_lf_in_head", b"POST / HTTP/1.1\r\n" + H + b"X-A: b\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("bare_lf_line_ends", b"GET / HTTP/1.1\nHost: lb.test\n\n", 400),
    ("bare_cr_in_head", b"POST / HTTP/1.1\r\n" + H + b"X-A: b\rTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("nul_in_header", b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400),
    ("invalid_chunk_size", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"zz\r\n\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"10000000000000001\r\nx\r\n0\r\n\r\n", 400),
    ("chunk_size_with_sign", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"+1\r\nx\r\n0\r\n\r\n", 400),
    ("header_name_invalid_char", b"POST / HTTP/1.1\r\n" + H + b"Content(Length: 5\r\n\r\n", 400),
    ("header_name_space", b"POST / HTTP/1.1\r\n" + H + b"Content Length: 5\r\n\r\n", 400),
    ("http10_with_te", b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("request_line_without_version", b"GET /\r\n" + H + b"\r\n", 400),
    ("http2_version", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http11_missing_host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    ("two_hosts", b"GET / HTTP/1.1\r\n" + H + b"Host: other.test\r\n\r\n", 400),
    ("request_line_too_long", b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("head_too_large", b"GET / HTTP/1.1\r\n" + H + b"".join(
        b"X-Pad-%d: %s\r\n" % (i, b"p" * 400) for i in range(3)) + b"\r\n", 431),
    ("too_many_headers", b"GET / HTTP/1.1\r\n" + H + b"".join(
        b"X-H%d: v\r\n" % i for i in range(10)) + b"\r\n", 431),
    ("body_over_max_body_size", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2048\r\n\r\n", 413),
]


class SmugglingTest(LbErrorsCase):
    def start_smuggling_lb(self):
        backend = self.start_raw_backend(serve_recording)
        lb = self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")],
            [("app", [backend.addr])], max_request_line=256, max_header_size="1k",
            max_headers=10, max_body_size="1k"))
        return lb, backend

    def check_refused(self, attack, expected):
        lb, backend = self.start_smuggling_lb()
        conn = self.raw(lb.listeners[0])
        conn.send(attack + SMUGGLED)
        status, headers, body = conn.read_response()
        self.assertEqual(status, expected, body)
        self.assertEqual(headers.get("connection", "").lower(), "close", headers)
        self.assertTrue(body.startswith(b"%d " % expected), body)
        self.assertTrue(conn.is_closed(), "the connection closes after the error")
        self.assert_only_error(lb, "bad_request")
        # The target is reachable and records what it gets: a control request arrives...
        self.assertEqual(http_request(lb.listeners[0], path="/control")[0], 200)
        wait_until(lambda: b"GET /control HTTP/1.1" in backend.request_lines,
                   message="the control request at the target")
        # ...and the smuggled one never did.
        self.assertNotIn(b"/smuggled", bytes(backend.raw))

    def test_underscore_framing_headers_are_not_forwarded(self):
        # Content_Length / Transfer_Encoding: some servers read '_' as '-' and would frame the
        # body by them. nginx drops header names with underscores; gantry-lb must not forward them.
        echo = self.start_backends(1)
        lb = self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")], [("app", echo)]))
        for name in (b"Content_Length", b"Transfer_Encoding", b"content_length"):
            value = b"chunked" if b"ransfer" in name else b"%d" % len(SMUGGLED)
            with self.subTest(header=name):
                conn = self.raw(lb.listeners[0])
                conn.send(request_bytes("/echo", extra=name + b": " + value + b"\r\n") + SMUGGLED)
                status, headers, body = conn.read_response()
                self.assertEqual(status, 200, body)
                self.assertTrue(body.startswith(b"GET /echo HTTP/1.1\r\n"), body)
                self.assertNotIn(name.lower(), body.lower(), "forwarded to the target")
                # What follows is a request of its own, answered as such.
                status, _, body = conn.read_response()
                self.assertEqual(status, 200)


def _make_smuggling_test(attack, expected):
    def test(self):
        self.check_refused(attack, expected)
    return test


for _name, _attack, _expected in SMUGGLING_CORPUS:
    _test = _make_smuggling_test(_attack, _expected)
    _test.__name__ = f"test_smuggling_{_name}"
    _test.__doc__ = f"{_name}: {_expected}, Connection: close, closed, nothing smuggled"
    setattr(SmugglingTest, _test.__name__, _test)


# -- 4. limits ---------------------------------------------------------------------------------

class LimitsTest(LbErrorsCase):
    def start_limits_lb(self, **settings):
        echo = self.start_backends(1)
        return self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")],
            [("app", echo)], **settings))

    def exchange(self, lb, data):
        conn = self.raw(lb.listeners[0])
        conn.send(data)
        status, headers, body = conn.read_response()
        return conn, status, headers, body

    def assert_refused(self, lb, data, expected):
        conn, status, headers, body = self.exchange(lb, data)
        self.assertEqual(status, expected, body)
        self.assertEqual(headers.get("connection", "").lower(), "close", headers)
        self.assertTrue(conn.is_closed())

    def assert_accepted(self, lb, data):
        _, status, _, body = self.exchange(lb, data)
        self.assertEqual(status, 200, body)
        return body

    def test_max_connections_closes_the_one_too_many(self):
        lb = self.start_limits_lb(max_connections=5)
        conns = [self.raw(lb.listeners[0]) for _ in range(5)]
        for conn in conns:  # each one has been accepted and serves
            conn.send(request_bytes("/"))
            self.assertEqual(conn.read_response()[0], 200)
        sixth = self.raw(lb.listeners[0])
        self.assertTrue(sixth.is_closed(timeout=2), "the 6th connection is closed at once")
        self.assertEqual(lb.metric(err_key("rejected_connection")), 1)
        for conn in conns:
            conn.send(request_bytes("/"))
            self.assertEqual(conn.read_response()[0], 200)
        conns[0].close()
        wait_until(lambda: lb.metric(metric_key("gantry_lb_active_connections",
                                                listener="web")) == 4,
                   message="the closed connection to be counted out")
        again = self.raw(lb.listeners[0])
        again.send(request_bytes("/"))
        self.assertEqual(again.read_response()[0], 200)
        self.assertEqual(lb.metric(err_key("rejected_connection")), 1)

    def test_reload_raising_max_connections_takes_effect(self):
        echo = self.start_backends(1)
        port = free_port()
        config = lambda n: lb_config(
            [("web", f"127.0.0.1:{port}", [], "{type: forward, target_group: app}")],
            [("app", echo)], max_connections=n)
        lb = self.start_lb(config(2))
        out = self.reload_lb(lb, config(10))
        self.assertIn("configuration 2 in force", out)
        for _ in range(4):  # four connections open at once, within the new limit of 10
            conn = self.raw(lb.listeners[0])
            conn.send(request_bytes("/"))
            self.assertEqual(conn.read_response()[0], 200)
        self.assertEqual(lb.metric(err_key("rejected_connection")), 0)

    def test_reload_raising_max_header_size_takes_effect(self):
        echo = self.start_backends(1)
        port = free_port()
        config = lambda size: lb_config(
            [("web", f"127.0.0.1:{port}", [], "{type: forward, target_group: app}")],
            [("app", echo)], max_header_size=size)
        lb = self.start_lb(config("16k"))
        out = self.reload_lb(lb, config("64k"))
        self.assertIn("configuration 2 in force", out)
        head = b"GET /echo HTTP/1.1\r\n" + H + b"X-Big: " + b"x" * 30000 + b"\r\n\r\n"
        conn = self.raw(lb.listeners[0])
        conn.send(head)
        # A 30 KiB head, within the new 64k limit: the lb forwards it. The demo-app target has its
        # own 16 KiB limit and answers 431 itself, which its X-Task-Id header shows.
        status, headers, body = conn.read_response()
        self.assertIn("x-task-id", headers, (status, body[:200]))
        self.assertEqual(lb.metric(err_key("bad_request")), 0)

    def test_max_request_line(self):
        lb = self.start_limits_lb(max_request_line=256)
        line = lambda n: b"GET /echo?" + b"q" * (n - len(b"GET /echo? HTTP/1.1")) + b" HTTP/1.1"
        self.assertEqual(len(line(256)), 256)
        self.assert_accepted(lb, line(256) + b"\r\n" + H + b"\r\n")
        self.assert_refused(lb, line(257) + b"\r\n" + H + b"\r\n", 414)
        self.assertEqual(lb.metric(err_key("bad_request")), 1)

    def test_max_header_size(self):
        lb = self.start_limits_lb(max_header_size="1k")
        base = b"GET /echo HTTP/1.1\r\n" + H + b"X-Pad: \r\n\r\n"
        head = lambda n: base.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (n - len(base)))
        self.assertEqual(len(head(1024)), 1024)
        self.assert_accepted(lb, head(1024))
        self.assert_refused(lb, head(1025), 431)
        self.assertEqual(lb.metric(err_key("bad_request")), 1)

    def test_max_headers(self):
        lb = self.start_limits_lb(max_headers=10)
        head = lambda n: b"GET /echo HTTP/1.1\r\n" + H + b"".join(
            b"X-H%d: v\r\n" % i for i in range(n - 1)) + b"\r\n"
        self.assert_accepted(lb, head(10))
        self.assert_refused(lb, head(11), 431)
        self.assertEqual(lb.metric(err_key("bad_request")), 1)

    def test_max_body_size_with_content_length(self):
        lb = self.start_limits_lb(max_body_size="1k")
        post = lambda n: (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % n
                          + b"b" * n)
        body = self.assert_accepted(lb, post(1024))
        self.assertTrue(body.endswith(b"\r\n\r\n" + b"b" * 1024))
        conn = self.raw(lb.listeners[0])
        conn.send(post(1025)[:-1025])  # the head alone: refused before the body is sent
        status, headers, body = conn.read_response()
        self.assertEqual(status, 413, body)
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertTrue(conn.is_closed())
        self.assert_only_error(lb, "bad_request")

    def test_max_body_size_with_a_chunked_body(self):
        lb = self.start_limits_lb(max_body_size="1k")
        conn = self.raw(lb.listeners[0])
        chunks = b"".join(b"100\r\n" + b"c" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            conn.send(chunks)  # 2 KiB of body, twice max_body_size
            status, headers, body = conn.read_response()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            status = None  # closed without an answer: acceptable
        self.assertIn(status, (413, None), "a chunked body over max_body_size was forwarded")
        if status == 413:
            self.assertEqual(headers.get("connection", "").lower(), "close")
            self.assertTrue(conn.is_closed())


# -- 5. reload under load ----------------------------------------------------------------------

class Load:
    """Bounded load in threads: keep-alive clients alternating a forwarded path and a fixed
    response, and one client opening a new connection per request. Every request must get 200
    with a body; anything else is a failure."""

    def __init__(self, addr, keep_alive_threads=3, new_conn_threads=1, max_seconds=15.0):
        self.addr = addr
        self.host, self.port = split_addr(addr)
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + max_seconds
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.threads = [threading.Thread(target=self._run, args=(True,), daemon=True)
                        for _ in range(keep_alive_threads)]
        self.threads += [threading.Thread(target=self._run, args=(False,), daemon=True)
                         for _ in range(new_conn_threads)]
        for t in self.threads:
            t.start()

    def _one(self, conn, path):
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200 or not body:
            raise AssertionError(f"{path}: {resp.status} {body[:80]!r}")
        return resp

    def _run(self, keep_alive):
        conn = None
        i = 0
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            path = "/fixed" if i % 2 else "/"
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                resp = self._one(conn, path)
                if not keep_alive or resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
                with self.lock:
                    self.ok += 1
            except Exception as e:  # any failure counts, and the client starts afresh
                with self.lock:
                    self.failures.append(f"{path}: {type(e).__name__}: {e}")
                if conn:
                    conn.close()
                conn = None
        if conn:
            conn.close()

    def count(self):
        with self.lock:
            return self.ok

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=10)


class ReloadUnderLoadTest(LbErrorsCase):
    def config(self, port, groups, default, fixed_body, extra_listener=None, workers=2):
        """Listener 'web' on port: /fixed answers fixed_body, the rest goes to group `default`;
        groups: {name: [addresses]}."""
        listeners = [("web", f"127.0.0.1:{port}", [
            '- {priority: 1, conditions: [{field: path-pattern, values: ["/fixed"]}], '
            f'action: {{type: fixed-response, status: 200, body: "{fixed_body}"}}}}'],
            f"{{type: forward, target_group: {default}}}")]
        if extra_listener:
            listeners.append(("extra", f"127.0.0.1:{extra_listener}", [],
                              '{type: fixed-response, status: 200, body: "extra"}'))
        return lb_config(listeners, list(groups.items()), workers=workers)

    def start_reload_lb(self):
        backends = self.start_backends(2)
        port = free_port()
        lb = self.start_lb(self.config(port, {"app": [backends[0]]}, "app", "v1"))
        return lb, backends, port

    def alive(self, lb):
        if lb.program.proc.poll() is not None:
            raise AssertionError(f"gantry-lb exited with status {lb.program.proc.poll()}")
        return True

    def run_load(self, lb):
        load = Load(lb.listeners[0])
        self.addCleanup(load.stop)
        wait_until(lambda: self.alive(lb) and load.count() >= 50, message="the load to get going")
        return load

    def reload_during(self, lb, load, config):
        before = load.count()
        self.alive(lb)
        out = self.reload_lb(lb, config)
        # Let the load run on the new configuration before the next change.
        wait_until(lambda: self.alive(lb) and load.count() >= before + 100,
                   message="requests after the reload")
        return out

    def check_load(self, load, at_least=300):
        load.stop()
        self.assertEqual(load.failures[:5], [], f"{len(load.failures)} failed of {load.count()}")
        self.assertGreater(load.count(), at_least)

    def test_reload_that_drops_a_target_with_pooled_connections(self):
        # The smallest form of the reload bug below: one pooled connection to t0, then a reload
        # that replaces t0 by t1 frees t0's pool.
        backends = self.start_backends(2)
        port = free_port()
        lb = self.start_lb(self.config(port, {"app": [backends[0]]}, "app", "v1", workers=1))
        self.assertEqual(http_request(lb.listeners[0])[1]["x-task-id"], "t0")
        # Once no client holds configuration 1, the worker frees it as soon as it switches.
        wait_until(lambda: lb.metric(metric_key("gantry_lb_active_connections",
                                                listener="web")) == 0,
                   message="the client connection to be gone")
        self.reload_lb(lb, self.config(port, {"app": [backends[1]]}, "app", "v1", workers=1))
        # An answer from t1 means the worker has switched (and freed configuration 1).
        for _ in range(4):
            self.assertEqual(http_request(lb.listeners[0])[1]["x-task-id"], "t1")
        self.assertIsNone(lb.program.proc.poll(), "gantry-lb died")

    def assert_serves_last_config(self, lb, task_id, fixed_body):
        """New requests follow the last configuration: its target and its fixed response."""
        for _ in range(4):
            status, headers, _ = http_request(lb.listeners[0], path="/")
            self.assertEqual((status, headers.get("x-task-id")), (200, task_id))
        self.assertEqual(http_request(lb.listeners[0], path="/fixed")[2], fixed_body)
        self.assertEqual(lb.metric(err_key("502")) + lb.metric(err_key("503")), 0)

    def test_reloads_swapping_targets_under_load_fail_no_request(self):
        lb, (b0, b1), port = self.start_reload_lb()
        load = self.run_load(lb)
        configs = [({"app": [b1]}, "v2"), ({"app": [b0]}, "v1"), ({"app": [b1]}, "v2"),
                   ({"app": [b0]}, "v3"), ({"app": [b1]}, "v4")]
        for groups, body in configs:
            out = self.reload_during(lb, load, self.config(port, groups, "app", body))
            self.assertIn("configuration", out)
            self.assertNotIn("refused", out)
        self.check_load(load)
        self.assertEqual(lb.generation(), 1 + len(configs))
        self.assert_serves_last_config(lb, "t1", b"v4")

    def test_reloads_switching_groups_under_load_fail_no_request(self):
        # Both targets stay in the configuration (their pools live on); the rules change.
        lb, (b0, b1), port = self.start_reload_lb()
        groups = {"app": [b0], "other": [b1]}
        load = self.run_load(lb)
        steps = [("other", "v2"), ("app", "v3"), ("other", "v4"), ("app", "v5"), ("other", "v6")]
        for default, body in steps:
            out = self.reload_during(lb, load, self.config(port, groups, default, body))
            self.assertNotIn("refused", out)
        self.check_load(load)
        self.assertEqual(lb.generation(), 1 + len(steps))
        self.assert_serves_last_config(lb, "t1", b"v6")

    def test_bad_config_on_reload_under_load_keeps_the_old_one(self):
        lb, (b0, b1), port = self.start_reload_lb()
        load = self.run_load(lb)
        out = self.reload_during(lb, load, "lb:\n  workers: many\n")
        self.assertIn("reload refused", out)
        out = self.reload_during(lb, load, self.config(port, {"app": ["nowhere"]}, "app", "v2"))
        self.assertIn("reload refused", out)
        self.check_load(load, at_least=200)
        self.assertEqual(lb.generation(), 1)
        self.assertEqual(http_request(lb.listeners[0], path="/fixed")[2], b"v1")
        self.assertEqual(http_request(lb.listeners[0], path="/")[1].get("x-task-id"), "t0")

    def test_reload_adds_and_removes_a_listener(self):
        lb, (b0, b1), port = self.start_reload_lb()
        groups = {"app": [b0]}
        extra = free_port()
        self.assertTrue(connect_refused(f"127.0.0.1:{extra}"))
        load = self.run_load(lb)
        self.reload_during(lb, load, self.config(port, groups, "app", "v1", extra_listener=extra))
        for _ in range(4):  # both workers serve it
            status, _, body = http_request(f"127.0.0.1:{extra}")
            self.assertEqual((status, body), (200, b"extra"))
        self.reload_during(lb, load, self.config(port, groups, "app", "v1"))
        wait_until(lambda: connect_refused(f"127.0.0.1:{extra}"), timeout=3,
                   message="the removed listener's port to refuse connections")
        self.check_load(load, at_least=200)
        self.assertEqual(http_request(lb.listeners[0], path="/fixed")[2], b"v1")


# -- 6. SIGTERM --------------------------------------------------------------------------------

class StopTest(LbErrorsCase):
    def start_stop_lb(self, **settings):
        backends = self.start_backends(1)
        return self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")],
            [("app", backends)], **settings))

    def test_sigterm_finishes_the_request_in_flight_then_exits_0(self):
        lb = self.start_stop_lb(stop_timeout="5s")
        ex = self.executor()
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/?latency=1s"))
        pending = ex.submit(conn.read_response)
        wait_until(lambda: lb.targets()["target_groups"][0]["targets"][0]["outstanding"] == 1,
                   message="the slow request to be in flight")
        start = time.monotonic()
        lb.program.signal(signal.SIGTERM)
        status, headers, body = pending.result(timeout=5)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 16)
        self.assertEqual(headers.get("connection", "").lower(), "close", "the lb is stopping")
        self.assertEqual(lb.program.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertTrue(connect_refused(lb.listeners[0]))
        self.assertNotIn("AddressSanitizer", lb.program.log())

    def test_sigterm_stops_accepting_new_connections_at_once(self):
        lb = self.start_stop_lb(stop_timeout="5s")
        ex = self.executor()
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/?latency=1500ms"))
        pending = ex.submit(conn.read_response)
        wait_until(lambda: lb.targets()["target_groups"][0]["targets"][0]["outstanding"] == 1,
                   message="the slow request to be in flight")
        lb.program.signal(signal.SIGTERM)
        # While the request drains, a new client must be turned away (refused, or closed without
        # an answer), not left in an accept queue nobody reads until the process exits.
        # One that reaches a worker before that worker has taken the signal in may be served
        # instead, with Connection: close; what must never happen is a wait for the exit.
        start = time.monotonic()
        newcomer = None
        try:
            newcomer = RawConnection(lb.listeners[0], timeout=1.0)
            newcomer.send(request_bytes("/"))
            _, headers, _ = newcomer.read_response()
            turned_away = headers.get("connection", "").lower() == "close"
        except (ConnectionRefusedError, ConnectionResetError, EOFError):
            turned_away = True
        except socket.timeout:
            turned_away = False
        finally:
            if newcomer:
                newcomer.close()
        self.assertTrue(turned_away, "a new connection hangs while the lb drains")
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertFalse(pending.done(), "checked while the old request was still in flight")
        self.assertEqual(pending.result(timeout=5)[0], 200)
        self.assertEqual(lb.program.wait(timeout=5), 0)

    def test_stop_timeout_cuts_a_long_request(self):
        lb = self.start_stop_lb(stop_timeout="300ms")
        ex = self.executor()
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/?latency=5s"))
        pending = ex.submit(conn.read_until_close)
        wait_until(lambda: lb.targets()["target_groups"][0]["targets"][0]["outstanding"] == 1,
                   message="the slow request to be in flight")
        start = time.monotonic()
        lb.program.signal(signal.SIGTERM)
        self.assertEqual(lb.program.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertEqual(pending.result(timeout=2), b"", "cut without a response")

    def test_sigterm_closes_an_idle_keep_alive_connection_promptly(self):
        lb = self.start_stop_lb(stop_timeout="5s", idle_timeout="1m")
        conn = self.raw(lb.listeners[0])
        conn.send(request_bytes("/"))
        self.assertEqual(conn.read_response()[0], 200)
        start = time.monotonic()
        lb.program.signal(signal.SIGTERM)
        self.assertTrue(conn.is_closed(timeout=2))
        self.assertEqual(lb.program.wait(timeout=2), 0)
        self.assertLess(time.monotonic() - start, 0.5)


# -- 7. startup errors -------------------------------------------------------------------------

class StartupErrorsTest(LbErrorsCase):
    def hold_port(self):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        return "127.0.0.1:%d" % s.getsockname()[1]

    def assert_fails_with_one_line(self, program, pattern):
        self.assertEqual(program.wait(timeout=5), 1)
        log = program.log()
        lines = [line for line in log.splitlines() if re.search(pattern, line)]
        self.assertEqual(len(lines), 1, log)
        for bad in ("AddressSanitizer", "runtime error", "Segmentation", "core dumped"):
            self.assertNotIn(bad, log)

    def test_listener_port_in_use(self):
        addr = self.hold_port()
        program = self.start_lb(lb_config(
            [("web", addr, [], '{type: fixed-response, status: 200, body: "x"}')], []), wait=False)
        self.assert_fails_with_one_line(program, r"bind %s: Address already in use" %
                                        re.escape(addr))

    def test_admin_port_in_use(self):
        addr = self.hold_port()
        program = self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], '{type: fixed-response, status: 200, body: "x"}')], []),
            args=("--admin", addr), wait=False)
        self.assert_fails_with_one_line(program, r"admin.*bind %s: Address already in use" %
                                        re.escape(addr))

    def test_config_errors_name_file_line_and_column(self):
        program = self.start_lb("lb:\n  workers: 1\n  max_connections: 0\n  idle_timeout: soon\n",
                                wait=False)
        self.assertEqual(program.wait(timeout=5), 1)
        log = program.log()
        self.assertRegex(log, r"lb\.yaml:3:\d+: .*max_connections")
        self.assertRegex(log, r"lb\.yaml:4:\d+: .*idle_timeout")


# -- 8. pooled connections the target closed ---------------------------------------------------

class PooledConnectionTest(LbErrorsCase):
    def start_pool_lb(self, backend):
        return self.start_lb(lb_config(
            [("web", "127.0.0.1:0", [], "{type: forward, target_group: app}")],
            [("app", [backend.addr])]))

    def pool_counters(self, lb):
        m = lb.metrics()
        return {
            "new": m.get(group_key("gantry_lb_target_connections_total", "app", reused="false"), 0),
            "reused": m.get(group_key("gantry_lb_target_connections_total", "app", reused="true"),
                            0),
            "retries": m.get(metric_key("gantry_lb_retries_total", target_group="app"), 0),
        }

    def test_a_pooled_connection_the_target_closed_is_not_a_client_error(self):
        backend = self.start_raw_backend(serve_short_keep_alive)
        lb = self.start_pool_lb(backend)
        conn = self.raw(lb.listeners[0])
        for i in range(20):
            conn.send(request_bytes(f"/{i}"))
            status, _, body = conn.read_response()
            self.assertEqual((i, status, body), (i, 200, b"ok"))
            time.sleep(0.15)  # idle time: the target closes its connection after 50 ms
        c = self.pool_counters(lb)
        self.assertEqual(backend.accepted, 20, "the target closed every connection")
        self.assertEqual(c["new"], 20, c)
        self.assertEqual(c["reused"], c["retries"], c)  # a reuse can only have been retried
        self.assert_only_error(lb, "502", count=0)

    def test_a_pooled_connection_closed_as_the_request_arrives_is_retried(self):
        backend = self.start_raw_backend(serve_first_request_only)
        lb = self.start_pool_lb(backend)
        conn = self.raw(lb.listeners[0])
        for i in range(20):
            conn.send(request_bytes(f"/{i}"))
            status, _, body = conn.read_response()
            self.assertEqual((i, status, body), (i, 200, b"ok"))
        c = self.pool_counters(lb)
        self.assertEqual(backend.accepted, 20)
        self.assertEqual(c, {"new": 20, "reused": 19, "retries": 19})
        self.assert_only_error(lb, "502", count=0)
        self.assertEqual(lb.metric(metric_key("gantry_lb_requests_total", listener="web",
                                              code="2xx")), 20)


if __name__ == "__main__":
    unittest.main()
