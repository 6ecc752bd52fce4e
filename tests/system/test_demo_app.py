"""bin/gantry-demo-app: the demo workload over real sockets.

Raw sockets are used wherever the exact bytes or the connection's fate matter (pipelining,
keep-alive, malformed requests); http_request for the rest.
"""
import os
import signal
import socket
import time

from harness import GantryTestCase, free_port, http_request, split_addr, wait_until


def connect(addr, timeout=5.0):
    return socket.create_connection(split_addr(addr), timeout=timeout)


def read_response(f, head=False):
    """Reads one response from a binary file object: (status, headers lower-cased, body)."""
    status_line = f.readline()
    if not status_line:
        raise AssertionError("connection closed before a response")
    version, status = status_line.split()[:2]
    assert version == b"HTTP/1.1", status_line
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    length = 0 if head else int(headers.get("content-length", "0"))
    return int(status), headers, f.read(length)


def closed_by_peer(sock):
    """True when the peer has closed: recv gives EOF (or a reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class DemoAppTest(GantryTestCase):
    def start_demo(self, env=None, args=()):
        program = self.start_program("gantry-demo-app", args, env={"PORT": "0", **(env or {})})
        addrs = program.wait_ready()
        self.assertEqual(len(addrs), 1)
        return program, addrs[0]

    def test_default_body_and_headers(self):
        _, addr = self.start_demo()
        status, headers, body = http_request(addr, path="/anything/at/all")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"x" * 15 + b"\n")
        self.assertEqual(headers["content-length"], "16")
        self.assertEqual(headers["content-type"], "text/plain")
        self.assertEqual(headers["x-task-id"], "demo")
        self.assertEqual(headers["x-served-by"], addr)
        self.assertNotEqual(split_addr(addr)[1], 0)

    def test_environment_settings(self):
        _, addr = self.start_demo(env={"BODY_SIZE": "1k", "TASK_ID": "web-7"})
        status, headers, body = http_request(addr)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 1024)
        self.assertEqual(headers["x-task-id"], "web-7")

    def test_query_size(self):
        _, addr = self.start_demo()
        for query, size in [("size=1k", 1024), ("size=0", 0), ("size=1", 1), ("size=100k", 102400),
                            ("size=3m", 3 * 1024 * 1024)]:
            status, headers, body = http_request(addr, path=f"/?{query}")
            self.assertEqual(status, 200, query)
            self.assertEqual(int(headers["content-length"]), size, query)
            self.assertEqual(body, (b"x" * (size - 1) + b"\n") if size else b"", query)
        status, headers, body = http_request(addr, method="HEAD", path="/?size=2k")
        self.assertEqual((status, headers["content-length"], body), (200, "2048", b""))

    def test_unknown_method_gets_the_default_body(self):
        _, addr = self.start_demo()
        status, _, body = http_request(addr, method="PURGE", path="/?size=4")
        self.assertEqual((status, body), (200, b"xxx\n"))

    def test_query_latency_does_not_block_other_connections(self):
        _, addr = self.start_demo()
        slow = connect(addr)
        self.addCleanup(slow.close)
        start = time.monotonic()
        slow.sendall(b"GET /?latency=600ms HTTP/1.1\r\nHost: t\r\n\r\n")
        fast_start = time.monotonic()
        status, _, _ = http_request(addr)
        fast = time.monotonic() - fast_start
        self.assertEqual(status, 200)
        self.assertLess(fast, 0.5, "a delayed response held up another connection")
        status, _, body = read_response(slow.makefile("rb"))
        elapsed = time.monotonic() - start
        self.assertEqual((status, len(body)), (200, 16))
        self.assertGreaterEqual(elapsed, 0.6)
        self.assertLess(elapsed, 5)

    def test_query_cpu(self):
        program, addr = self.start_demo()
        before = cpu_seconds(program.pid)
        status, _, _ = http_request(addr, path="/?cpu=300ms")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(cpu_seconds(program.pid) - before, 0.25)

    def test_invalid_query_values(self):
        _, addr = self.start_demo()
        for query, word in [("size=lots", "size"), ("latency=5x", "latency"), ("cpu=-1", "cpu"),
                            ("size=65m", "size"), ("latency=2m", "latency")]:
            status, _, body = http_request(addr, path=f"/?{query}")
            self.assertEqual(status, 400, query)
            self.assertIn(f"invalid {word}".encode(), body, query)

    def test_health_flip(self):
        _, addr = self.start_demo()
        self.assertEqual(http_request(addr, path="/health")[::2], (200, b"ok\n"))
        self.assertEqual(http_request(addr, method="POST", path="/health/fail")[0], 200)
        status, headers, body = http_request(addr, path="/health")
        self.assertEqual((status, body), (503, b"failing\n"))
        self.assertEqual(headers["x-task-id"], "demo")
        self.assertEqual(http_request(addr, method="POST", path="/health/ok")[0], 200)
        self.assertEqual(http_request(addr, path="/health")[::2], (200, b"ok\n"))

    def test_echo_reproduces_the_request(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            request = (b"POST /echo?q=1 HTTP/1.1\r\nHost: example\r\nX-Forwarded-For:  10.0.0.1\r\n"
                       b"x-lower: Value\r\nContent-Length: 5\r\n\r\nhello")
            s.sendall(request)
            status, headers, body = read_response(s.makefile("rb"))
        self.assertEqual(status, 200)
        self.assertEqual(body, request)
        status, _, body = http_request(addr, path="/echo", headers={"X-Test": "hello"})
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"GET /echo HTTP/1.1\r\n"), body)
        self.assertIn(b"\r\nX-Test: hello\r\n", body)
        self.assertTrue(body.endswith(b"\r\n\r\n"), body)

    def test_keep_alive_two_requests_on_one_connection(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            f = s.makefile("rb")
            s.sendall(b"GET /?size=3 HTTP/1.1\r\nHost: t\r\n\r\n")
            status, headers, body = read_response(f)
            self.assertEqual((status, body), (200, b"xx\n"))
            self.assertNotIn("connection", headers)
            s.sendall(b"GET /?size=4 HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(read_response(f)[::2], (200, b"xxx\n"))

    def test_pipelined_requests_answered_in_order(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            # The first is delayed: the second must still come after it.
            s.sendall(b"GET /?size=5&latency=100ms HTTP/1.1\r\nHost: t\r\n\r\n"
                      b"GET /echo HTTP/1.1\r\nHost: second\r\n\r\n"
                      b"HEAD /?size=9 HTTP/1.1\r\nHost: t\r\n\r\n")
            f = s.makefile("rb")
            self.assertEqual(read_response(f)[::2], (200, b"xxxx\n"))
            status, _, body = read_response(f)
            self.assertEqual(status, 200)
            self.assertIn(b"Host: second", body)
            status, headers, body = read_response(f, head=True)
            self.assertEqual((status, headers["content-length"]), (200, "9"))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(read_response(f)[::2], (200, b"ok\n"))

    def test_chunked_request_body(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            f = s.makefile("rb")
            head = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            s.sendall(head + b"5;ext=1\r\nhello\r\n6\r\n wor")
            s.sendall(b"ld\r\n0\r\nX-Trailer: dropped\r\n\r\n")
            status, _, body = read_response(f)
            self.assertEqual(status, 200)
            self.assertEqual(body, head + b"hello world")
            # A discarded chunked body leaves the connection ready for the next request.
            s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n0\r\n\r\nGET /?size=2 HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(read_response(f)[0], 200)
            self.assertEqual(read_response(f)[::2], (200, b"x\n"))

    def test_expect_100_continue(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            f = s.makefile("rb")
            s.sendall(b"PUT /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 4\r\n\r\n")
            self.assertEqual(f.readline(), b"HTTP/1.1 100 Continue\r\n")
            self.assertEqual(f.readline(), b"\r\n")
            s.sendall(b"data")
            status, _, body = read_response(f)
            self.assertEqual(status, 200)
            self.assertTrue(body.endswith(b"\r\n\r\ndata"))

    def test_malformed_request_gets_400_and_close(self):
        _, addr = self.start_demo()
        for request in [b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                        b"GET / HTTP/1.1\nHost: t\n\n",
                        b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
                        b"GET / HTTP/1.1\r\n\r\n"]:
            with connect(addr) as s:
                s.sendall(request)
                status, headers, body = read_response(s.makefile("rb"))
                self.assertEqual(status, 400, request)
                self.assertEqual(headers["connection"], "close")
                self.assertTrue(body.startswith(b"400 Bad Request: "), body)
                self.assertTrue(closed_by_peer(s), request)
        # The server is still serving.
        self.assertEqual(http_request(addr)[0], 200)

    def test_parser_statuses(self):
        _, addr = self.start_demo()
        cases = [(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
                 (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501),
                 (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
                 (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"b" * 17000 + b"\r\n\r\n", 431),
                 (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 413),
                 (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)]
        for request, expected in cases:
            with connect(addr) as s:
                s.sendall(request)
                status, headers, _ = read_response(s.makefile("rb"))
                self.assertEqual(status, expected, request[:60])
                self.assertEqual(headers["connection"], "close")
                self.assertTrue(closed_by_peer(s))

    def test_chunked_body_over_limit_gets_413(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"10000\r\n" + b"y" * 0x10000 + b"\r\n"
            try:
                for _ in range(20):  # 1.25 MiB
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            status, _, _ = read_response(s.makefile("rb"))
            self.assertEqual(status, 413)

    def test_http10_and_connection_close(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            s.sendall(b"GET /?size=2 HTTP/1.0\r\n\r\n")
            status, headers, body = read_response(s.makefile("rb"))
            self.assertEqual((status, body, headers["connection"]), (200, b"x\n", "close"))
            self.assertTrue(closed_by_peer(s))
        with connect(addr) as s:
            f = s.makefile("rb")
            s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = read_response(f)
            self.assertEqual((status, headers["connection"]), (200, "keep-alive"))
            s.sendall(b"GET /?size=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, headers, body = read_response(f)
            self.assertEqual((status, body, headers["connection"]), (200, b"\n", "close"))
            self.assertTrue(closed_by_peer(s))

    def test_requests_before_a_half_close_are_answered(self):
        _, addr = self.start_demo()
        with connect(addr) as s:
            s.sendall(b"GET /?size=2 HTTP/1.1\r\nHost: t\r\n\r\nGET /?size=3 HTTP/1.1\r\nHost: t\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            f = s.makefile("rb")
            self.assertEqual(read_response(f)[2], b"x\n")
            self.assertEqual(read_response(f)[2], b"xx\n")
            self.assertTrue(closed_by_peer(s))

    def test_config_file_env_and_flag_precedence(self):
        port = free_port()
        path = self.write_file("demo.yaml",
                               f"demo:\n  listen: 127.0.0.1:{port}\n  body_size: 100\n  latency: 0s\n")
        check = self.run_program("gantry-demo-app", ["-c", path, "--check"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("configuration OK", check.stdout)
        bad = self.write_file("bad.yaml", "demo:\n  body_size: lots\n")
        check = self.run_program("gantry-demo-app", ["-c", bad, "--check"])
        self.assertEqual(check.returncode, 1)
        self.assertIn("body_size", check.stderr)

        # The file alone: its address and body size.
        program = self.start_program("gantry-demo-app", ["-c", path])
        self.assertEqual(program.wait_ready(), [f"127.0.0.1:{port}"])
        self.assertEqual(len(http_request(f"127.0.0.1:{port}")[2]), 100)
        self.assertEqual(program.stop(), 0)
        # The environment over the file, the flag over the environment.
        _, addr = self.start_demo(env={"BODY_SIZE": "7"}, args=["-c", path])
        self.assertNotEqual(addr, f"127.0.0.1:{port}")
        self.assertEqual(len(http_request(addr)[2]), 7)
        program = self.start_program("gantry-demo-app", ["-c", path, "--listen", "127.0.0.1:0"],
                                     env={"PORT": str(port)})
        flag_addr = program.wait_ready()[0]
        self.assertNotEqual(flag_addr, f"127.0.0.1:{port}")
        self.assertEqual(len(http_request(flag_addr)[2]), 100)

    def test_invalid_environment_exits_1(self):
        for name, value in [("BODY_SIZE", "lots"), ("PORT", "99999"), ("PORT", "http"),
                            ("LATENCY", "5x"), ("CPU", "11s"), ("HOST", "example.com"),
                            ("TASK_ID", "has space")]:
            proc = self.run_program("gantry-demo-app", env={"PORT": "0", name: value})
            self.assertEqual(proc.returncode, 1, (name, value, proc.stderr))
            lines = proc.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, proc.stderr)
            self.assertIn(name, lines[0])

    def test_sigterm_exits_0(self):
        program, addr = self.start_demo()
        self.assertEqual(http_request(addr)[0], 200)
        program.signal(signal.SIGTERM)
        self.assertEqual(program.wait(), 0)
        self.assertIn("stopped", program.log())
        with self.assertRaises(OSError):
            http_request(addr, timeout=1)

    def test_sigterm_finishes_a_request_in_flight(self):
        program, addr = self.start_demo()
        with connect(addr) as s:
            f = s.makefile("rb")
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 3\r\n\r\n")
            # 100 Continue proves the server is inside the request when the signal lands.
            self.assertEqual(f.readline(), b"HTTP/1.1 100 Continue\r\n")
            f.readline()
            program.signal(signal.SIGTERM)
            wait_until(lambda: "stopping" in program.log(), message="the stop to begin")
            s.sendall(b"end")
            status, headers, body = read_response(f)
            self.assertEqual(status, 200)
            self.assertEqual(headers["connection"], "close")
            self.assertTrue(body.endswith(b"end"))
        self.assertEqual(program.wait(), 0)
