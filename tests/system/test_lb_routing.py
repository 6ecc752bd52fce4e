"""gantry-lb end to end: routing (every condition type, AND/OR, priorities, default action),
actions (forward, weighted forward, redirect, fixed-response), the three balancing algorithms,
what the proxy rewrites in requests and responses, keep-alive both ways, bodies (chunked,
streamed, large, HEAD), pipelining, Expect: 100-continue, WebSocket tunnelling, the access log,
the admin endpoints, several workers, and quick mode.

Everything is real: gantry-demo-app targets (its /echo returns the request head exactly as the
target received it, then the body), a WebSocket echo server (ws_backend.py) and a small scripted
raw-socket target for responses the demo app never sends (chunked, close-delimited, hop-by-hop
fields). Clients are http.client, raw sockets for exact bytes, and a selector-driven client for
concurrency. Error paths (timeouts, 502/503/504, smuggling, limits, reloads, SIGTERM) are
test_lb_errors.py's.

Configurations are built as Python dicts and written as JSON, which is YAML too (config/README.md).
"""
import http.client
import json
import os
import re
import selectors
import signal
import socket
import threading
import time
import unittest

from harness import free_port, http_request, split_addr, wait_until
from lb_fixtures import LbTestCase, RawConnection
from ws_backend import FrameReader, WebSocketEchoServer, accept_key, encode_frame

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
CLF_LINE = re.compile(r'^(?P<client>\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] '
                      r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<size>\d+|-)$')
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
              "upgrade")


# -- configuration builders ------------------------------------------------------------------------

def fixed(body, status=200, content_type=None):
    action = {"type": "fixed-response", "status": status, "body": body}
    if content_type:
        action["content_type"] = content_type
    return action


def forward(group):
    return {"type": "forward", "target_group": group}


def cond(field, *values, header=None):
    c = {"field": field, "values": list(values)}
    if header:
        c["header_name"] = header
    return c


def rule(priority, conditions, action):
    return {"priority": priority, "conditions": conditions, "action": action}


def group(name, addrs, algorithm=None, weights=None):
    # Health checks off: these tests are about routing, and some backends (raw sockets, a
    # WebSocket server, a 30 s one) would take the checks' requests for their own.
    g = {"name": name, "targets": [{"address": a} for a in addrs],
         "health_check": {"enabled": False}}
    if weights:
        for target, weight in zip(g["targets"], weights):
            target["weight"] = weight
    if algorithm:
        g["algorithm"] = algorithm
    return g


def config(rules=(), default=None, groups=(), listen="127.0.0.1:0", **settings):
    listener = {"name": "web", "listen": listen, "rules": list(rules)}
    if default is not None:
        listener["default_action"] = default
    lb = {"workers": 1, **settings, "listeners": [listener], "target_groups": list(groups)}
    return json.dumps({"lb": lb}, indent=1)


# -- reading what a target received ---------------------------------------------------------------

class Echo:
    """A demo-app /echo body: the request head as the target received it, then the body."""

    def __init__(self, body):
        head, sep, self.body = body.partition(b"\r\n\r\n")
        assert sep, f"no end of head in the echo: {body[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.append((name, value.strip()))

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def value(self, name):
        values = self.values(name)
        assert len(values) == 1, f"{name}: expected exactly one, got {values} in {self.headers}"
        return values[0]

    def names(self):
        return [n.lower() for n, _ in self.headers]


def raw_request(addr, data, source=None, timeout=5.0):
    """A RawConnection, optionally from a given local address (e.g. 127.0.0.2), with data sent."""
    if source is None:
        conn = RawConnection(addr, timeout)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(split_addr(addr))
        conn = RawConnection.__new__(RawConnection)
        conn.sock, conn.buffer = sock, b""
    conn.send(data)
    return conn


def task_ids(addr, n, path="/"):
    """n GETs on one keep-alive connection; the X-Task-Id of each answer, in order."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    ids = []
    try:
        for _ in range(n):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            ids.append(resp.getheader("X-Task-Id"))
    finally:
        conn.close()
    return ids


# -- a scripted target for responses the demo app never sends --------------------------------------

CHUNKS = [(b"chunk-%03d:" % i) + b"x" * 1000 for i in range(40)]  # 40 chunks, ~40 KiB in all
CHUNKED_BODY = b"".join(CHUNKS)
CLOSE_BODY = b"close-delimited body: " + b"y" * 30000


class ScriptedBackend:
    """A raw-socket HTTP/1.1 target on loopback, one thread per connection, keep-alive:
    - /chunked: a chunked response (CHUNKS, one with an extension, then a trailer);
    - /close: no Content-Length, no Transfer-Encoding: the body ends when the target closes;
    - /bye: a Content-Length body with Connection: close, then the target closes;
    - /early: a 103 Early Hints interim response, then 200 "hints";
    - anything else: "ok" and every hop-by-hop field a target could send, plus X-Visible.
    It records the request heads it received."""

    def __init__(self):
        self.heads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                self.heads.append(head.decode("latin-1"))
                path = head.split(b" ")[1]
                if path == b"/chunked":
                    out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                          b"Transfer-Encoding: chunked\r\n\r\n"
                    for i, c in enumerate(CHUNKS):
                        out += b"%x%s\r\n%s\r\n" % (len(c), b";ext=1" if i == 3 else b"", c)
                    out += b"0\r\nX-Trailer: t\r\n\r\n"
                    conn.sendall(out)
                elif path == b"/close":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + CLOSE_BODY)
                    return
                elif path == b"/bye":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                 b"Connection: close\r\n\r\nbye")
                    return
                elif path == b"/early":
                    conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                                 b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
                                 b"X-Secret: s3cret\r\nProxy-Connection: keep-alive\r\n"
                                 b"Upgrade: h2c\r\nTE: trailers\r\nTrailer: X-Checksum\r\n"
                                 b"X-Visible: v\r\n\r\nok")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


class LbRoutingTest(LbTestCase):
    """Every test starts its own targets and its own gantry-lb (workers: 1 unless said)."""

    def start_lb_config(self, text):
        lb = self.start_lb(text)
        self.addr = lb.listeners[0]
        return lb

    def routed(self, path="/", method="GET", headers=None):
        """The body of a fixed-response answer: which rule (or the default) took the request."""
        status, _, body = http_request(self.addr, method=method, path=path, headers=headers)
        self.assertEqual(status, 200, (method, path, headers, body))
        return body.decode()

    def raw_routed(self, data, source=None):
        conn = raw_request(self.addr, data, source=source)
        try:
            status, _, body = conn.read_response()
        finally:
            conn.close()
        self.assertEqual(status, 200, (data, body))
        return body.decode()

    def metrics_when(self, lb, predicate):
        """/metrics once predicate(samples) holds, or at the deadline (the caller's assertions
        then say what is wrong)."""
        try:
            return wait_until(lambda: (lambda m: m if predicate(m) else None)(lb.metrics()),
                              timeout=5, message="the metrics")
        except AssertionError:
            return lb.metrics()

    def backend_programs(self):
        return [p for p in self.programs if p.argv[0].endswith("gantry-demo-app")]

    # -- 1. conditions ---------------------------------------------------------------------------

    def test_host_header_condition_wildcards_port_and_case(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("host-header", "*.example.com")], fixed("wild")),
                   rule(20, [cond("host-header", "api.test", "h?.test")], fixed("named"))],
            default=fixed("default")))
        cases = {
            "a.example.com": "wild",
            "deep.sub.example.com": "wild",
            "A.EXAMPLE.COM:8080": "wild",        # case-insensitive, port not part of the host
            "example.com": "default",            # "*." needs the dot
            "a.example.com.evil": "default",     # anchored at the end
            "api.test": "named",
            "API.Test:81": "named",
            "h1.test": "named",                  # ? is exactly one character
            "h12.test": "default",
            "api.tester": "default",
            "x.api.test": "default",
        }
        for host, want in cases.items():
            with self.subTest(host=host):
                self.assertEqual(self.routed(headers={"Host": host}), want)

    def test_path_pattern_condition_wildcards_case_and_query(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("path-pattern", "/api/*")], fixed("api")),
                   rule(20, [cond("path-pattern", "/img/*.png", "/v?/x")], fixed("img-or-v")),
                   rule(30, [cond("path-pattern", "/exact")], fixed("exact"))],
            default=fixed("default")))
        cases = {
            "/api/users": "api",
            "/api/": "api",
            "/api": "default",                        # "/api/*" needs the slash
            "/API/users": "default",                  # paths are case-sensitive
            "/img/a/b.png": "img-or-v",
            "/img/a.png?size=big": "img-or-v",        # the query is not part of the path
            "/img/a.gif?x=.png": "default",
            "/v1/x": "img-or-v",
            "/v10/x": "default",
            "/exact": "exact",
            "/exact?q=/api/x": "exact",
            "/exact/": "default",
            "/other?next=/exact": "default",
        }
        for path, want in cases.items():
            with self.subTest(path=path):
                self.assertEqual(self.routed(path=path), want)

    def test_http_header_condition_named_header_and_several_values(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("http-header", "staging", "canary-*", header="X-Env")],
                        fixed("env"))],
            default=fixed("default")))
        self.assertEqual(self.routed(headers={"X-Env": "staging"}), "env")
        self.assertEqual(self.routed(headers={"x-env": "CANARY-7"}), "env")  # both case-insensitive
        self.assertEqual(self.routed(headers={"X-Env": "prod"}), "default")
        self.assertEqual(self.routed(headers={"X-Envy": "staging"}), "default")
        self.assertEqual(self.routed(headers={"X-Other": "staging"}), "default")
        self.assertEqual(self.routed(), "default")
        # Any occurrence of a repeated header may match.
        self.assertEqual(self.raw_routed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Env: prod\r\n"
                                         b"X-Env: staging\r\n\r\n"), "env")

    def test_http_request_method_condition(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("http-request-method", "POST", "PUT")], fixed("write")),
                   rule(20, [cond("http-request-method", "PURGE")], fixed("purge"))],
            default=fixed("default")))
        self.assertEqual(self.routed(method="POST", headers={"Content-Length": "0"}), "write")
        self.assertEqual(self.routed(method="PUT", headers={"Content-Length": "0"}), "write")
        self.assertEqual(self.routed(method="GET"), "default")
        self.assertEqual(self.routed(method="DELETE"), "default")
        self.assertEqual(self.raw_routed(b"PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n"), "purge")
        # Methods are case-sensitive: "post" is another method.
        self.assertEqual(self.raw_routed(b"post / HTTP/1.1\r\nHost: h\r\n"
                                         b"Content-Length: 0\r\n\r\n"), "default")

    def test_query_string_condition_key_value_value_only_and_wildcards(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("query-string", "version=v2", "beta", "lang=e?", "k*=wild*")],
                        fixed("query"))],
            default=fixed("default")))
        cases = {
            "/?version=v2": "query",
            "/?a=1&version=v2&b=2": "query",
            "/?VERSION=V2": "query",         # case-insensitive
            "/?version=v3": "default",
            "/?version=v22": "default",
            "/?x=beta": "query",             # a value without key matches any parameter's value
            "/?beta=x": "default",
            "/?lang=en": "query",
            "/?lang=eng": "default",
            "/?key=wildcard": "query",
            "/?k=wild": "query",
            "/?key=tame": "default",
            "/version=v2": "default",        # in the path, not the query
            "/": "default",
        }
        for path, want in cases.items():
            with self.subTest(path=path):
                self.assertEqual(self.routed(path=path), want)

    def test_source_ip_condition_uses_the_connection_address(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("source-ip", "10.0.0.0/8")], fixed("ten")),
                   rule(20, [cond("source-ip", "127.0.0.1/32")], fixed("one")),
                   rule(30, [cond("source-ip", "192.168.1.7", "127.0.0.0/8")], fixed("loopback"))],
            default=fixed("default")))
        request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        self.assertEqual(self.raw_routed(request), "one")
        # 127.0.0.2 is loopback too: outside 127.0.0.1/32, inside 127.0.0.0/8.
        self.assertEqual(self.raw_routed(request, source="127.0.0.2"), "loopback")
        # X-Forwarded-For is the client's say: the connection's address decides.
        spoofed = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n"
        self.assertEqual(self.raw_routed(spoofed), "one")
        self.assertEqual(self.raw_routed(spoofed, source="127.0.0.2"), "loopback")

    def test_source_ip_condition_non_matching_loopback_source_gets_the_default(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("source-ip", "127.0.0.1")], fixed("one"))],
            default=fixed("default")))
        request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        self.assertEqual(self.raw_routed(request), "one")
        self.assertEqual(self.raw_routed(request, source="127.0.0.2"), "default")

    def test_source_ip_condition_ipv6(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(listen="[::1]:0", rules=[
            rule(10, [cond("source-ip", "127.0.0.0/8")], fixed("v4")),
            rule(20, [cond("source-ip", "::1/128"), cond("path-pattern", "/v6")], fixed("v6"))],
            default=forward("app"), groups=[group("app", [backend])]))
        self.assertEqual(self.raw_routed(b"GET /v6 HTTP/1.1\r\nHost: h\r\n\r\n"), "v6")
        echo = Echo(http_request(self.addr, path="/echo")[2])  # not v4: the default
        self.assertEqual(echo.value("X-Forwarded-For"), "::1")

    def test_absolute_form_target_routes_and_forwards_one_host(self):
        # RFC 9112 3.2.2: the authority of an absolute-form target wins over Host, and a proxy
        # forwarding it must make Host match. Routing by one name while the target reads another
        # would let a client pass host-header rules (here: the deny rule for admin.test).
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(
            rules=[rule(1, [cond("host-header", "admin.test")], fixed("denied", 403))],
            default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr, b"GET http://public.test/echo?x=1 HTTP/1.1\r\n"
                                      b"Host: admin.test\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200, body)  # routed by public.test, as the parser decided
        echo = Echo(body)
        self.assertEqual(echo.value("Host"), "public.test")

    def test_conditions_and_between_them_or_within_one(self):
        self.start_lb_config(config(
            rules=[rule(10, [cond("host-header", "a.test", "b.test"),
                             cond("path-pattern", "/x/*"),
                             cond("http-request-method", "GET"),
                             cond("query-string", "mode=1", "mode=2")], fixed("all"))],
            default=fixed("default")))
        self.assertEqual(self.routed("/x/1?mode=1", headers={"Host": "a.test"}), "all")
        self.assertEqual(self.routed("/x/1?mode=2", headers={"Host": "b.test"}), "all")
        for path, host, method in [("/y/1?mode=1", "a.test", "GET"),    # path fails
                                   ("/x/1?mode=1", "c.test", "GET"),    # host fails
                                   ("/x/1?mode=1", "a.test", "HEAD"),   # method fails
                                   ("/x/1?mode=3", "a.test", "GET"),    # query fails
                                   ("/x/1", "b.test", "GET")]:
            with self.subTest(path=path, host=host, method=method):
                status, _, body = http_request(self.addr, method=method, path=path,
                                               headers={"Host": host})
                self.assertEqual(status, 200)
                if method != "HEAD":
                    self.assertEqual(body, b"default")

    def test_rule_priority_lowest_number_wins_whatever_the_file_order(self):
        backends = self.start_backends(4, ids=["p30", "p5", "p10", "fallback"])
        self.start_lb_config(config(
            rules=[rule(30, [cond("http-request-method", "GET")], forward("g30")),
                   rule(5, [cond("path-pattern", "/a/*")], forward("g5")),
                   rule(10, [cond("path-pattern", "/a/b/*")], forward("g10"))],
            default=forward("gdefault"),
            groups=[group("g30", [backends[0]]), group("g5", [backends[1]]),
                    group("g10", [backends[2]]), group("gdefault", [backends[3]])]))

        def served_by(path, method="GET"):
            status, headers, _ = http_request(self.addr, method=method, path=path,
                                              body=b"" if method == "POST" else None)
            self.assertEqual(status, 200)
            return headers["x-task-id"]

        self.assertEqual(served_by("/a/b/c"), "p5")       # all three match: 5 beats 10 and 30
        self.assertEqual(served_by("/a/x"), "p5")
        self.assertEqual(served_by("/z"), "p30")
        self.assertEqual(served_by("/a/b/c", "POST"), "p5")
        self.assertEqual(served_by("/z", "POST"), "fallback")  # nothing matches

    def test_no_default_action_answers_404(self):
        self.start_lb_config(config(rules=[rule(1, [cond("path-pattern", "/only")], fixed("x"))]))
        self.assertEqual(http_request(self.addr, path="/only")[0], 200)
        status, _, _ = http_request(self.addr, path="/elsewhere")
        self.assertEqual(status, 404)

    # -- 2. actions ------------------------------------------------------------------------------

    def test_forward_to_one_group(self):
        backends = self.start_backends(2, ids=["api", "web"])
        self.start_lb_config(config(
            rules=[rule(1, [cond("path-pattern", "/api/*")], forward("api"))],
            default=forward("web"),
            groups=[group("api", [backends[0]]), group("web", [backends[1]])]))
        self.assertEqual(set(task_ids(self.addr, 10, "/api/v1")), {"api"})
        self.assertEqual(set(task_ids(self.addr, 10, "/home")), {"web"})

    def test_weighted_forward_across_target_groups(self):
        backends = self.start_backends(3, ids=["blue", "green", "never"])
        self.start_lb_config(config(
            default={"type": "forward", "target_groups": [
                {"name": "blue", "weight": 80}, {"name": "green", "weight": 20},
                {"name": "off", "weight": 0}]},
            groups=[group("blue", [backends[0]]), group("green", [backends[1]]),
                    group("off", [backends[2]])]))
        ids = task_ids(self.addr, 1000)
        # Each request picks blue with p = 0.8: over 1000 requests, blue's count is binomial with
        # mean 800 and sigma sqrt(1000 * 0.8 * 0.2) = 12.6. The tolerance, +-63, is 5 sigma: a
        # correct balancer fails it about once in 1.7 million runs; a 50/50 or a 90/10 split fails.
        self.assertEqual(ids.count("never"), 0)
        self.assertEqual(ids.count("blue") + ids.count("green"), 1000)
        self.assertLessEqual(abs(ids.count("blue") - 800), 63, ids.count("blue"))

    def test_redirect_location_with_alb_variables(self):
        port = free_port()  # an explicit port, so that #{port} has a known value
        self.start_lb_config(config(listen=f"127.0.0.1:{port}", rules=[
            rule(1, [cond("path-pattern", "/old/*")],
                 {"type": "redirect", "status": 301, "host": "new.example.com",
                  "path": "/new/#{path}"}),
            rule(2, [cond("path-pattern", "/secure/*")],
                 {"type": "redirect", "status": 302, "protocol": "https", "port": "443"}),
            rule(3, [cond("path-pattern", "/vars")],
                 {"type": "redirect", "status": 302,
                  "path": "/#{protocol}/#{host}/#{port}/#{path}", "query": "was=#{query}"}),
            rule(4, [cond("path-pattern", "/alt")],
                 {"type": "redirect", "protocol": "https", "port": "8443", "query": ""}),
        ], default=fixed("default")))
        cases = [
            ("/old/a/b?x=1&y=2", 301, "http://new.example.com:%d/new/old/a/b?x=1&y=2" % port),
            ("/old/a", 301, "http://new.example.com:%d/new/old/a" % port),  # no query: no '?'
            ("/secure/page?q=1", 302, "https://example.com/secure/page?q=1"),  # 443 left out
            ("/secure/page", 302, "https://example.com/secure/page"),
            ("/vars?k=v", 302, "http://example.com:%d/http/example.com/%d/vars?was=k=v"
             % (port, port)),
            ("/alt?dropped=1", 301, "https://example.com:8443/alt"),   # status defaults to 301
        ]
        for path, status, location in cases:
            with self.subTest(path=path):
                got_status, headers, body = http_request(
                    self.addr, path=path, headers={"Host": "example.com:%d" % port})
                self.assertEqual(got_status, status)
                self.assertEqual(headers.get("location"), location)
                self.assertEqual(body, b"")

    def test_fixed_response_status_type_body_and_head(self):
        self.start_lb_config(config(
            rules=[rule(1, [cond("path-pattern", "/down")],
                        fixed('{"down": true}', status=503, content_type="application/json")),
                   rule(2, [cond("path-pattern", "/teapot")], fixed("short and stout", 418))],
            default={"type": "fixed-response"}))
        status, headers, body = http_request(self.addr, path="/down")
        self.assertEqual((status, headers["content-type"], body),
                         (503, "application/json", b'{"down": true}'))
        self.assertEqual(headers["content-length"], str(len(body)))
        status, headers, body = http_request(self.addr, path="/teapot")
        self.assertEqual((status, headers["content-type"], body), (418, "text/plain",
                                                                  b"short and stout"))
        status, headers, body = http_request(self.addr, path="/anything")
        self.assertEqual((status, body), (200, b""))  # status 200 and an empty body by default
        # HEAD: the same head, no body; the next response on the connection must parse cleanly.
        conn = raw_request(self.addr, b"HEAD /down HTTP/1.1\r\nHost: h\r\n\r\n"
                                      b"GET /teapot HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, body = conn.read_response(head_only=True)
        self.assertEqual((status, headers["content-length"], headers["content-type"]),
                         (503, "14", "application/json"))
        status, _, body = conn.read_response()
        self.assertEqual((status, body), (418, b"short and stout"))
        conn.close()

    # -- 3. algorithms ---------------------------------------------------------------------------

    def test_round_robin_splits_exactly(self):
        backends = self.start_backends(4)
        self.start_lb_config(config(default=forward("app"),
                                    groups=[group("app", backends, "round_robin")]))
        ids = task_ids(self.addr, 1000)
        self.assertEqual({t: ids.count(t) for t in set(ids)},
                         {"t0": 250, "t1": 250, "t2": 250, "t3": 250})
        # and in strict rotation: every window of four has each target once
        for i in range(0, 996):
            self.assertEqual(len(set(ids[i:i + 4])), 4, ids[i:i + 4])

    def test_weighted_random_follows_the_weights(self):
        backends = self.start_backends(3)
        self.start_lb_config(config(default=forward("app"), groups=[
            group("app", backends, "weighted_random", weights=[3, 1, 0])]))
        ids = task_ids(self.addr, 1000)
        # t0 is picked with p = 3/4: binomial mean 750, sigma sqrt(1000 * 0.75 * 0.25) = 13.7;
        # +-68 is 5 sigma (a false failure about once in 1.7 million runs). Weight 0 gets none.
        self.assertEqual(ids.count("t2"), 0)
        self.assertEqual(ids.count("t0") + ids.count("t1"), 1000)
        self.assertLessEqual(abs(ids.count("t0") - 750), 68, ids.count("t0"))

    def test_least_outstanding_requests_avoids_the_slow_target(self):
        """Robust by construction, not by timing. The slow target answers after 30 s (LATENCY),
        i.e. never within this test; the fast one at once. C = 10 client connections each keep
        exactly one request in flight, a new one as soon as the previous answer is read, until
        1000 answers have come back. A connection whose request went to the slow target stays
        stuck on it for the rest of the test, so the slow target's outstanding count k only
        grows. Under least outstanding requests the slow target can get another request only
        when k <= outstanding(fast), and outstanding(fast) <= C - 1 - k (the connection being
        routed has nothing in flight). So k never exceeds (C - 1) // 2 + 1 = 5, whatever the
        timing, and the other connections keep going. Round robin would leave every connection
        stuck on the slow target within a few rounds and never reach 1000 answers."""
        fast = self.start_backends(1, ids=["fast"])[0]
        slow = self.start_backends(1, ids=["slow"], env={"LATENCY": "30s"})[0]
        slow_program = self.backend_programs()[-1]
        lb = self.start_lb_config(config(default=forward("app"), groups=[
            group("app", [slow, fast], "least_outstanding_requests")]))
        conns = 10
        request = b"GET / HTTP/1.1\r\nHost: lor\r\n\r\n"
        sel = selectors.DefaultSelector()
        socks = []
        answered = []
        sent = 0
        try:
            for _ in range(conns):
                s = socket.create_connection(split_addr(self.addr), timeout=5)
                s.setblocking(False)
                s.send(request)
                sent += 1
                socks.append(s)
                sel.register(s, selectors.EVENT_READ, [b""])
            deadline = time.monotonic() + 30
            while len(answered) < 1000:
                self.assertLess(time.monotonic(), deadline,
                                f"only {len(answered)} answers: connections stuck on the slow "
                                f"target ({sent - len(answered)} in flight)")
                for key, _ in sel.select(timeout=1.0):
                    chunk = key.fileobj.recv(65536)
                    self.assertTrue(chunk, "the balancer closed a client connection")
                    key.data[0] += chunk
                    while b"\r\n\r\n" in key.data[0]:
                        head, _, rest = key.data[0].partition(b"\r\n\r\n")
                        fields = dict(line.split(": ", 1) for line in
                                      head.decode("latin-1").split("\r\n")[1:])
                        n = int(fields["Content-Length"])
                        if len(rest) < n:
                            break
                        key.data[0] = rest[n:]
                        answered.append(fields["X-Task-Id"])
                        if len(answered) < 1000:
                            key.fileobj.send(request)
                            sent += 1
            self.assertEqual(set(answered), {"fast"})

            def outstanding():
                groups = {g["name"]: g for g in lb.targets()["target_groups"]}
                return {t["address"]: t["outstanding"] for t in groups["app"]["targets"]}

            # Once the fast target's last answers are written (they are not read above), what is
            # still in flight is only the requests stuck on the slow target.
            counts = wait_until(lambda: (lambda o: o if o[fast] == 0 else None)(outstanding()),
                                message="the fast target's last requests to finish")
            late = 0
            for key in sel.get_map().values():  # the answers written are readable by now
                data = key.data[0]  # what was read of them already
                try:
                    chunk = key.fileobj.recv(1 << 20)
                    self.assertTrue(chunk, "the balancer closed a client connection")
                    data += chunk
                except BlockingIOError:
                    pass
                late += data.count(b"HTTP/1.1 200 ")
                self.assertEqual(data.count(b"\r\nX-Task-Id: fast\r\n"),
                                 data.count(b"HTTP/1.1 200 "), data)
            self.assertEqual(counts[slow], sent - len(answered) - late)
            self.assertLessEqual(counts[slow], (conns - 1) // 2 + 1)
        finally:
            for s in socks:
                s.close()
            slow_program.stop(signal.SIGKILL)  # its answers would only come in 30 s

    # -- 4. header rewriting ---------------------------------------------------------------------

    def test_forwarded_headers_host_and_request_line(self):
        backend = self.start_backends(1)[0]
        lb = self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        port = split_addr(lb.listeners[0])[1]
        conn = raw_request(self.addr,
                           b"GET /echo?a=1&b=%2F HTTP/1.1\r\nHost: Example.org:1234\r\n"
                           b"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
                           b"Accept: */*\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200, body)
        echo = Echo(body)
        self.assertEqual(echo.request_line, "GET /echo?a=1&b=%2F HTTP/1.1")
        self.assertEqual(echo.value("Host"), "Example.org:1234")
        self.assertEqual(echo.value("X-Forwarded-For"), "127.0.0.1")  # created when absent
        self.assertEqual(echo.value("X-Forwarded-Proto"), "http")  # the client's is not trusted
        self.assertEqual(echo.value("X-Forwarded-Port"), str(port))
        self.assertEqual(echo.value("Accept"), "*/*")
        # The client's X-Forwarded-For gets the client's address appended (here it is the last
        # field of the request; see the next test for one followed by other fields).
        conn.send(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200, body)
        self.assertEqual(Echo(body).value("X-Forwarded-For"), "203.0.113.7, 127.0.0.1")
        conn.close()

    def test_x_forwarded_for_followed_by_other_fields(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr,
                           b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\n"
                           b"Accept: */*\r\nX-Forwarded-For: 198.51.100.1\r\n"
                           b"Cookie: a=b\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200, body)
        echo = Echo(body)
        self.assertEqual(echo.value("X-Forwarded-For"), "203.0.113.7, 198.51.100.1, 127.0.0.1")
        self.assertEqual(echo.value("Accept"), "*/*")
        self.assertEqual(echo.value("Cookie"), "a=b")

    def test_request_id_generated_unique_and_kept_when_sent(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        ids = [Echo(http_request(self.addr, path="/echo")[2]).value("X-Request-Id")
               for _ in range(50)]
        for rid in ids:
            self.assertRegex(rid, UUID4)
        self.assertEqual(len(set(ids)), 50)
        echo = Echo(http_request(self.addr, path="/echo",
                                 headers={"X-Request-Id": "client-chosen-42"})[2])
        self.assertEqual(echo.values("X-Request-Id"), ["client-chosen-42"])

    def test_hop_by_hop_request_headers_are_not_forwarded(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr,
                           b"GET /echo HTTP/1.1\r\nHost: h\r\n"
                           b"Connection: keep-alive, X-Drop-Me, x-also-dropped\r\n"
                           b"Keep-Alive: timeout=5, max=100\r\nTE: trailers\r\n"
                           b"Proxy-Connection: keep-alive\r\nUpgrade: websocket\r\n"
                           b"X-Drop-Me: secret\r\nX-Also-Dropped: 1\r\nX-Keep: yes\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200)
        echo = Echo(body)
        for name in ("connection", "keep-alive", "te", "proxy-connection", "upgrade",
                     "x-drop-me", "x-also-dropped"):
            self.assertNotIn(name, echo.names(), echo.headers)
        self.assertEqual(echo.value("X-Keep"), "yes")

    def test_non_websocket_upgrade_is_not_forwarded(self):
        # Only WebSocket upgrades are tunnelled (as with ALB); an h2c upgrade offer is a
        # hop-by-hop request the target must not see, and the request is served as HTTP/1.1.
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr,
                           b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200)
        echo = Echo(body)
        for name in ("connection", "upgrade", "http2-settings"):
            self.assertNotIn(name, echo.names(), echo.headers)

    def test_expect_is_not_forwarded(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        # head and body in one send: the target still must not be asked to expect anything
        conn = raw_request(self.addr, b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                                      b"Expect: 100-continue\r\n\r\ndata")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200)
        echo = Echo(body)
        self.assertNotIn("expect", echo.names())
        self.assertEqual(echo.body, b"data")

    def test_hop_by_hop_response_headers_are_not_passed_to_the_client(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        self.start_lb_config(config(default=forward("app"),
                                    groups=[group("app", [backend.address])]))
        conn = raw_request(self.addr, b"GET /hop HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual((status, body), (200, b"ok"))
        self.assertEqual(headers.get("x-visible"), "v")
        for name in HOP_BY_HOP + ("x-secret",):
            self.assertNotIn(name, headers)
        # and the client connection is still usable
        conn.send(b"GET /hop HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(conn.read_response()[2], b"ok")
        conn.close()

    # -- 5. keep-alive ---------------------------------------------------------------------------

    def test_keep_alive_both_ways(self):
        backends = self.start_backends(2)
        lb = self.start_lb_config(config(default=forward("app"), groups=[group("app", backends)]))
        host, port = split_addr(self.addr)
        for round_ in range(2):  # two client connections, 100 requests each
            conn = http.client.HTTPConnection(host, port, timeout=5)
            for i in range(100):
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
                self.assertNotEqual((resp.getheader("Connection") or "").lower(), "close")
            conn.close()
            self.assertEqual(lb.metric('gantry_lb_new_connections_total{listener="web"}'),
                             round_ + 1)  # http.client would have reconnected silently
        # One upstream connection per target (one worker, one request at a time), reused since.
        new = 'gantry_lb_target_connections_total{target_group="app",reused="false"}'
        reused = 'gantry_lb_target_connections_total{target_group="app",reused="true"}'
        metrics = lb.metrics()
        self.assertEqual(metrics[new], 2)
        self.assertEqual(metrics[reused], 198)
        # Connection: close from an HTTP/1.1 client: answered with close, then closed.
        conn = raw_request(self.addr, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        status, headers, _ = conn.read_response()
        self.assertEqual((status, headers.get("connection")), (200, "close"))
        self.assertTrue(conn.is_closed())
        conn.close()
        # ... and the target connections are still the pooled ones.
        self.assertEqual(lb.metric(new), 2)

    def test_http10_client_closes_unless_it_asks_for_keep_alive(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr, b"GET /echo HTTP/1.0\r\nHost: h\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(conn.is_closed())
        conn.close()
        conn = raw_request(self.addr, b"GET /echo HTTP/1.0\r\nHost: h\r\n"
                                      b"Connection: keep-alive\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual((status, headers.get("connection", "").lower()), (200, "keep-alive"))
        self.assertNotIn("connection", Echo(body).names())
        conn.send(b"GET /echo?second HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual((status, headers.get("connection", "").lower()), (200, "keep-alive"))
        self.assertTrue(Echo(body).request_line.startswith("GET /echo?second "))
        conn.close()

    def test_http10_request_without_host_is_forwarded_with_one(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr, b"GET /echo HTTP/1.0\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual(status, 200, body)
        echo = Echo(body)
        self.assertEqual(len(echo.values("Host")), 1, echo.headers)

    # -- 6. bodies -------------------------------------------------------------------------------

    def test_chunked_request_body_is_rechunked_to_the_target(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr,
                           b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200)
        echo = Echo(body)
        self.assertEqual(echo.values("Transfer-Encoding"), ["chunked"])
        self.assertNotIn("content-length", echo.names())
        self.assertEqual(echo.body, b"hello world")  # the target decoded what the lb sent
        # A larger body in many chunks and several writes, streamed through the 16 KiB buffer.
        payload = os.urandom(200 * 1024)
        conn.send(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(payload), 7000):
            piece = payload[i:i + 7000]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200)
        echo = Echo(body)
        self.assertEqual(echo.values("Transfer-Encoding"), ["chunked"])
        self.assertEqual(len(echo.body), len(payload))
        self.assertTrue(echo.body == payload, "the chunked body changed on the way")
        conn.close()

    def test_one_mib_content_length_body_streams_intact(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        payload = os.urandom(1024 * 1024)  # the demo app's largest; 64 times the lb's buffer
        status, _, body = http_request(self.addr, method="POST", path="/echo", body=payload,
                                       timeout=20)
        self.assertEqual(status, 200)
        echo = Echo(body)
        self.assertEqual(echo.value("Content-Length"), str(len(payload)))
        self.assertEqual(len(echo.body), len(payload))
        self.assertTrue(echo.body == payload, "the body changed on the way")

    def test_chunked_and_close_delimited_responses(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        self.start_lb_config(config(default=forward("app"),
                                    groups=[group("app", [backend.address])]))
        # HTTP/1.1 client: a valid chunked body, and the connection stays usable.
        conn = raw_request(self.addr, b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", headers)
        self.assertEqual(body, CHUNKED_BODY)
        conn.send(b"GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(conn.read_response()[2], CHUNKED_BODY)
        conn.close()
        # HTTP/1.0 client: the body de-chunked, delimited by the close.
        conn = raw_request(self.addr, b"GET /chunked HTTP/1.0\r\nHost: h\r\n"
                                      b"Connection: keep-alive\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual(status, 200)
        self.assertNotIn("transfer-encoding", headers)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(body, CHUNKED_BODY)  # read_response read until the close
        conn.close()
        # A close-delimited response: passed on and the client connection closed after it.
        conn = raw_request(self.addr, b"GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, body = conn.read_response()
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(body, CLOSE_BODY)
        conn.close()

    def test_target_closing_after_a_response_does_not_close_the_client(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        lb = self.start_lb_config(config(default=forward("app"),
                                         groups=[group("app", [backend.address])]))
        conn = raw_request(self.addr, b"GET /bye HTTP/1.1\r\nHost: h\r\n\r\n")
        for i in range(3):
            status, headers, body = conn.read_response()
            self.assertEqual((status, body), (200, b"bye"))
            self.assertNotIn("connection", headers)  # the target's close is its own business
            conn.send(b"GET /bye HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(conn.read_response()[2], b"bye")
        conn.close()
        # every request needed a new target connection: none was pooled after a close
        self.assertEqual(lb.metric('gantry_lb_target_connections_total'
                                   '{target_group="app",reused="true"}'), 0)
        self.assertEqual(lb.metric('gantry_lb_target_connections_total'
                                   '{target_group="app",reused="false"}'), 4)

    def test_interim_responses_are_relayed_to_http11_clients(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        self.start_lb_config(config(default=forward("app"),
                                    groups=[group("app", [backend.address])]))
        conn = raw_request(self.addr, b"GET /early HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = conn.read_response()
        self.assertEqual((status, headers.get("link")), (103, "</s.css>; rel=preload"))
        status, _, body = conn.read_response()
        self.assertEqual((status, body), (200, b"hints"))
        conn.close()

    def test_no_interim_responses_to_http10_clients(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        self.start_lb_config(config(default=forward("app"),
                                    groups=[group("app", [backend.address])]))
        conn = raw_request(self.addr, b"GET /early HTTP/1.0\r\nHost: h\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual((status, body), (200, b"hints"))

    def test_interim_response_counted_once_in_the_latency_histogram(self):
        backend = ScriptedBackend()
        self.addCleanup(backend.stop)
        lb = self.start_lb_config(config(default=forward("app"),
                                         groups=[group("app", [backend.address])]))
        conn = raw_request(self.addr, b"GET /early HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 103)
        self.assertEqual(conn.read_response()[0], 200)
        conn.close()
        metrics = lb.metrics()
        self.assertEqual(metrics['gantry_lb_target_responses_total'
                                 '{target_group="app",code="2xx"}'], 1)
        self.assertEqual(metrics['gantry_lb_target_response_seconds_count{target_group="app"}'], 1)

    def test_large_response_and_head(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        status, headers, body = http_request(self.addr, path="/?size=5m", timeout=20)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), 5 * 1024 * 1024)
        self.assertEqual(len(body), 5 * 1024 * 1024)
        # HEAD: the target's Content-Length, no body; the connection goes on cleanly.
        conn = raw_request(self.addr, b"HEAD /?size=1k HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = conn.read_response(head_only=True)
        self.assertEqual((status, headers.get("content-length")), (200, "1024"))
        conn.send(b"GET /echo HTTP/1.1\r\nHost: h\r\n\r\n")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200)
        self.assertEqual(Echo(body).request_line, "GET /echo HTTP/1.1")
        conn.close()

    # -- 7. pipelining ---------------------------------------------------------------------------

    def test_pipelined_requests_answered_in_order(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(
            rules=[rule(1, [cond("path-pattern", "/fixed")], fixed("from the lb"))],
            default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr,
                           b"GET /echo?n=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                           b"POST /echo?n=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                           b"GET /fixed HTTP/1.1\r\nHost: h\r\n\r\n"
                           b"GET /echo?n=4 HTTP/1.1\r\nHost: h\r\n\r\n")
        first = Echo(conn.read_response()[2])
        second = Echo(conn.read_response()[2])
        third = conn.read_response()[2]
        fourth = Echo(conn.read_response()[2])
        self.assertEqual(first.request_line, "GET /echo?n=1 HTTP/1.1")
        self.assertEqual((second.request_line, second.body), ("POST /echo?n=2 HTTP/1.1", b"abc"))
        self.assertEqual(third, b"from the lb")
        self.assertEqual(fourth.request_line, "GET /echo?n=4 HTTP/1.1")
        # A chunked body (streamed, not held whole) between two requests, all in one send.
        conn.send(b"POST /echo?n=5 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nxyz\r\n0\r\n\r\n"
                  b"GET /echo?n=6 HTTP/1.1\r\nHost: h\r\n\r\n")
        fifth = Echo(conn.read_response()[2])
        sixth = Echo(conn.read_response()[2])
        conn.close()
        self.assertEqual((fifth.request_line, fifth.body), ("POST /echo?n=5 HTTP/1.1", b"xyz"))
        self.assertEqual(sixth.request_line, "GET /echo?n=6 HTTP/1.1")

    # -- 8. Expect: 100-continue -----------------------------------------------------------------

    def test_expect_100_continue(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr, b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n"
                                      b"Expect: 100-continue\r\n\r\n")
        # The interim response comes before the client sends a byte of its body.
        while b"\r\n\r\n" not in conn.buffer:
            conn._fill()
        self.assertTrue(conn.buffer.startswith(b"HTTP/1.1 100 Continue\r\n"), conn.buffer)
        status, _, _ = conn.read_response()
        self.assertEqual(status, 100)
        conn.send(b"hello world")
        status, _, body = conn.read_response()
        self.assertEqual(status, 200)
        echo = Echo(body)
        self.assertEqual(echo.body, b"hello world")
        self.assertNotIn("expect", echo.names())
        # the connection goes on
        conn.send(b"GET /echo?next HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(Echo(conn.read_response()[2]).request_line, "GET /echo?next HTTP/1.1")
        conn.close()

    def test_expect_100_continue_with_a_chunked_body(self):
        backend = self.start_backends(1)[0]
        self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])]))
        conn = raw_request(self.addr, b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n")
        self.assertEqual(conn.read_response()[0], 100)
        conn.send(b"4\r\nwxyz\r\n0\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual((status, Echo(body).body), (200, b"wxyz"))

    # -- 9. WebSocket ----------------------------------------------------------------------------

    WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example: its accept is known

    def websocket_handshake(self, server):
        self.start_lb_config(config(default=forward("ws"), groups=[group("ws", [server.address])]))
        conn = raw_request(self.addr,
                           ("GET /chat HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n" % self.WS_KEY).encode())
        status, headers, _ = conn.read_response(head_only=True)
        self.assertEqual(status, 101)
        self.assertEqual(headers.get("sec-websocket-accept"), accept_key(self.WS_KEY))
        self.assertEqual(headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(headers.get("upgrade", "").lower(), "websocket")
        self.assertEqual(headers.get("connection", "").lower(), "upgrade")
        return conn, FrameReader(conn.sock, conn.buffer)

    def test_websocket_upgrade_is_tunnelled_both_ways(self):
        server = WebSocketEchoServer()
        self.addCleanup(server.stop)
        conn, reader = self.websocket_handshake(server)
        # The target got the upgrade fields, and the usual forwarding ones.
        target_head = server.heads[0].lower()
        self.assertIn("\r\nupgrade: websocket", target_head)
        self.assertIn("\r\nx-forwarded-for: 127.0.0.1", target_head)
        messages = [b"hi", "h\u00e9llo".encode(), b"m" * 300, os.urandom(70000), b"last"]
        for i, message in enumerate(messages):
            opcode = 0x2 if i == 3 else 0x1
            conn.send(encode_frame(opcode, message, mask=os.urandom(4)))
            self.assertEqual(reader.read(), (True, opcode, False, message))
        conn.send(encode_frame(0x9, b"ping?", mask=os.urandom(4)))
        self.assertEqual(reader.read(), (True, 0xA, False, b"ping?"))
        close_payload = b"\x03\xe8bye"  # 1000, normal closure
        conn.send(encode_frame(0x8, close_payload, mask=os.urandom(4)))
        self.assertEqual(reader.read(), (True, 0x8, False, close_payload))
        self.assertEqual(server.frames, messages)
        self.assertEqual(server.unmasked_frames, 0)
        # The target closed after the close handshake: the lb closes the client side too.
        self.assertEqual(reader.buffer, b"")
        self.assertTrue(conn.is_closed())
        conn.close()

    def test_websocket_frame_right_behind_the_101_head(self):
        # Servers often send a first message at once: here in the same write as the 101 head.
        server = WebSocketEchoServer(greeting=b"welcome")
        self.addCleanup(server.stop)
        conn, reader = self.websocket_handshake(server)
        conn.sock.settimeout(2.0)  # the greeting is on loopback already: 2 s is plenty
        self.assertEqual(reader.read(), (True, 0x1, False, b"welcome"))
        conn.close()

    # -- 10. access log --------------------------------------------------------------------------

    def read_lines(self, path):
        try:
            with open(path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def test_access_log_json(self):
        backend = self.start_backends(1)[0]
        log_path = os.path.join(self.tmp, "access.json")
        self.start_lb_config(config(
            rules=[rule(1, [cond("path-pattern", "/fixed")], fixed("nope", 418))],
            default=forward("app"), groups=[group("app", [backend])],
            access_log={"enabled": True, "format": "json", "path": log_path}))
        seen_ids = []
        for i in range(4):
            headers = {"X-Request-Id": "client-id-1"} if i == 2 else {}
            status, _, body = http_request(self.addr, path=f"/echo?n={i}", headers=headers)
            self.assertEqual(status, 200)
            seen_ids.append(Echo(body).value("X-Request-Id"))
        self.assertEqual(http_request(self.addr, method="POST", path="/echo?n=4",
                                      body=b"abc")[0], 200)
        self.assertEqual(http_request(self.addr, path="/fixed", headers={"Host": "h.test"})[0], 418)
        lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 6 else None)(
            self.read_lines(log_path)), message="6 access log lines")
        self.assertEqual(len(lines), 6, lines)
        entries = [json.loads(line) for line in lines]
        for i, e in enumerate(entries[:4]):
            self.assertEqual((e["method"], e["target"], e["status"], e["client"]),
                             ("GET", f"/echo?n={i}", 200, "127.0.0.1"))
            self.assertEqual(e["request_id"], seen_ids[i])  # what the target was given
            self.assertEqual(e["upstream"], backend)
            self.assertEqual(e["listener"], "web")
        self.assertEqual(entries[2]["request_id"], "client-id-1")
        self.assertRegex(entries[0]["request_id"], UUID4)
        self.assertEqual((entries[4]["method"], entries[4]["target"], entries[4]["status"]),
                         ("POST", "/echo?n=4", 200))
        self.assertEqual((entries[5]["method"], entries[5]["target"], entries[5]["status"],
                          entries[5]["host"]), ("GET", "/fixed", 418, "h.test"))
        for e in entries:
            self.assertIn("request_id", e)
            self.assertIn("time", e)

    def test_access_log_common_format(self):
        backend = self.start_backends(1)[0]
        log_path = os.path.join(self.tmp, "access.log")
        self.start_lb_config(config(
            default=forward("app"), groups=[group("app", [backend])],
            access_log={"enabled": True, "format": "common", "path": log_path}))
        for i in range(5):
            self.assertEqual(http_request(self.addr, path=f"/log/{i}?q=1")[0], 200)
        lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 5 else None)(
            self.read_lines(log_path)), message="5 access log lines")
        self.assertEqual(len(lines), 5, lines)
        for i, line in enumerate(lines):
            m = CLF_LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual((m["client"], m["request"], m["status"]),
                             ("127.0.0.1", f"GET /log/{i}?q=1 HTTP/1.1", "200"))

    def common_log_of_one_http10_request(self):
        backend = self.start_backends(1)[0]
        log_path = os.path.join(self.tmp, "access.log")
        self.start_lb_config(config(
            default=forward("app"), groups=[group("app", [backend])],
            access_log={"enabled": True, "format": "common", "path": log_path}))
        conn = raw_request(self.addr, b"GET /?size=100 HTTP/1.0\r\nHost: h\r\n\r\n")
        status, _, body = conn.read_response()
        conn.close()
        self.assertEqual((status, len(body)), (200, 100))
        lines = wait_until(lambda: self.read_lines(log_path), message="an access log line")
        m = CLF_LINE.match(lines[0])
        self.assertIsNotNone(m, lines[0])
        return m

    def test_access_log_common_format_logs_the_request_protocol(self):
        # CLF's request field is the request line as the client sent it.
        self.assertEqual(self.common_log_of_one_http10_request()["request"],
                         "GET /?size=100 HTTP/1.0")

    def test_access_log_common_format_size_is_the_body_size(self):
        # CLF's size (Apache %b, nginx $body_bytes_sent) is the body, without the head.
        self.assertEqual(self.common_log_of_one_http10_request()["size"], "100")

    # -- 11. admin -------------------------------------------------------------------------------

    def test_admin_endpoints(self):
        backends = self.start_backends(2)
        lb = self.start_lb_config(config(
            default=forward("app"),
            groups=[group("app", backends, "weighted_random", weights=[5, 2]),
                    group("spare", [backends[0]])]))
        status, headers, body = http_request(lb.admin, path="/healthz")
        self.assertEqual((status, body.strip()), (200, b"ok"))
        targets = lb.targets()
        self.assertEqual(targets["generation"], 1)
        groups = {g["name"]: g for g in targets["target_groups"]}
        self.assertEqual(set(groups), {"app", "spare"})
        self.assertEqual(groups["app"]["algorithm"], "weighted_random")
        self.assertEqual([(t["address"], t["weight"]) for t in groups["app"]["targets"]],
                         [(backends[0], 5), (backends[1], 2)])
        self.assertEqual([(t["address"], t["weight"]) for t in groups["spare"]["targets"]],
                         [(backends[0], 1)])
        self.assertEqual(groups["spare"]["algorithm"], "round_robin")
        # /metrics: the families are declared, and the counters move with traffic.
        status, headers, body = http_request(lb.admin, path="/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for family, kind in [("gantry_lb_requests_total", "counter"),
                             ("gantry_lb_new_connections_total", "counter"),
                             ("gantry_lb_active_connections", "gauge"),
                             ("gantry_lb_target_requests_total", "counter"),
                             ("gantry_lb_target_responses_total", "counter"),
                             ("gantry_lb_target_connections_total", "counter"),
                             ("gantry_lb_target_response_seconds", "histogram"),
                             ("gantry_lb_config_generation", "gauge"),
                             ("gantry_lb_workers", "gauge")]:
            self.assertIn(f"# HELP {family} ", text)
            self.assertIn(f"# TYPE {family} {kind}\n", text)
        before = lb.metrics()
        for i in range(3):
            self.assertEqual(http_request(self.addr, path="/")[0], 200)
        # A request is counted by the status its client got once the answer is written: the
        # client can read it before the worker thread counts it, so poll for the last one.
        key_2xx = 'gantry_lb_requests_total{listener="web",code="2xx"}'
        after = self.metrics_when(lb, lambda m: m.get(key_2xx, 0) - before.get(key_2xx, 0) >= 3)

        def moved(key):
            return after.get(key, 0) - before.get(key, 0)

        self.assertEqual(moved('gantry_lb_requests_total{listener="web",code="2xx"}'), 3)
        self.assertEqual(moved('gantry_lb_requests_total{listener="web",code="5xx"}'), 0)
        self.assertEqual(moved('gantry_lb_new_connections_total{listener="web"}'), 3)
        self.assertEqual(moved('gantry_lb_target_requests_total{target_group="app"}'), 3)
        self.assertEqual(moved('gantry_lb_target_requests_total{target_group="spare"}'), 0)
        self.assertEqual(
            moved('gantry_lb_target_responses_total{target_group="app",code="2xx"}'), 3)
        self.assertEqual(moved('gantry_lb_target_response_seconds_count{target_group="app"}'), 3)
        self.assertGreater(moved('gantry_lb_received_bytes_total{listener="web"}'), 0)
        self.assertGreater(moved('gantry_lb_sent_bytes_total{listener="web"}'), 3 * 16)
        self.assertEqual(after['gantry_lb_workers'], 1)
        # unknown admin paths
        self.assertEqual(http_request(lb.admin, path="/nope")[0], 404)
        self.assertEqual(http_request(lb.admin, path="/metrics/extra")[0], 404)

    def test_admin_head_has_no_body(self):
        lb = self.start_lb_config(config(default=fixed("x")))
        conn = raw_request(lb.admin, b"HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        status, headers, _ = conn.read_response(head_only=True)
        self.assertEqual((status, headers.get("content-length")), (200, "3"))
        self.assertEqual(conn.read_until_close(), b"")  # the admin closes after one answer
        conn.close()

    # -- 12. several workers ---------------------------------------------------------------------

    def test_two_workers_both_serve(self):
        backend = self.start_backends(1)[0]
        lb = self.start_lb_config(config(default=forward("app"), groups=[group("app", [backend])],
                                         workers=2))
        for _ in range(200):
            self.assertEqual(http_request(self.addr, path="/")[0], 200)
        # (counted once written: the last one may still be on its way to the counter)
        metrics = self.metrics_when(
            lb, lambda m: m.get('gantry_lb_requests_total{listener="web",code="2xx"}', 0) >= 200)
        self.assertEqual(metrics["gantry_lb_workers"], 2)
        self.assertEqual(metrics['gantry_lb_requests_total{listener="web",code="2xx"}'], 200)
        self.assertEqual(metrics['gantry_lb_new_connections_total{listener="web"}'], 200)
        self.assertEqual(metrics['gantry_lb_target_requests_total{target_group="app"}'], 200)
        # Each worker keeps its own pool of target connections, and requests came one at a time:
        # each worker that served opened exactly one connection to the target. SO_REUSEPORT
        # spreads 200 connections over both workers (all on one: probability 2^-199).
        new = metrics['gantry_lb_target_connections_total{target_group="app",reused="false"}']
        reused = metrics['gantry_lb_target_connections_total{target_group="app",reused="true"}']
        self.assertEqual((new, reused), (2, 198))

    # -- 13. quick mode --------------------------------------------------------------------------

    def test_quick_mode_round_robin(self):
        backends = self.start_backends(2)
        lb = self.start_lb(args=["--listen", "127.0.0.1:0", "--to", backends[0],
                                 "--to", backends[1], "--algorithm", "round_robin"])
        ids = task_ids(lb.listeners[0], 10)
        self.assertEqual(sorted(ids), ["t0"] * 5 + ["t1"] * 5)
        self.assertTrue(all(a != b for a, b in zip(ids, ids[1:])), ids)
        groups = lb.targets()["target_groups"]
        self.assertEqual([(g["algorithm"], [t["address"] for t in g["targets"]]) for g in groups],
                         [("round_robin", backends)])

    def test_quick_mode_check_and_bad_algorithm(self):
        args = ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:9001", "--to", "127.0.0.1:9002"]
        proc = self.run_program("gantry-lb", [*args, "--algorithm", "least_outstanding_requests",
                                              "--check"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("configuration OK", proc.stdout + proc.stderr)
        for extra in (["--check"], []):
            with self.subTest(check=bool(extra)):
                proc = self.run_program("gantry-lb", [*args, "--algorithm", "fastest",
                                                      "--admin", "127.0.0.1:0", *extra])
                self.assertEqual(proc.returncode, 1)
                self.assertIn("'fastest'", proc.stderr)
                self.assertIn("algorithm", proc.stderr)
                self.assertIn("round_robin", proc.stderr)  # it says what is accepted
                self.assertNotIn("configuration OK", proc.stdout)


if __name__ == "__main__":
    unittest.main()
