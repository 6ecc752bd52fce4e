"""Sticky sessions: lb_cookie and app_cookie, and a client moving when its target can't serve."""
import socketserver
import threading

from harness import http_request, wait_until
from lb_fixtures import LbTestCase, app_yaml


def sticky_yaml(targets, stickiness):
    return app_yaml(targets, workers=2, group_lines=[f"stickiness: {stickiness}"])


def cookie_of(headers, name):
    value = headers.get("set-cookie", "")
    assert value.startswith(name + "="), value
    return value.split(";")[0]


class StickyTest(LbTestCase):
    def wait_all_healthy(self, lb):
        wait_until(lambda: all(t["state"] == "healthy" for t in
                               lb.targets()["target_groups"][0]["targets"]),
                   message="every target healthy")

    def test_lb_cookie_keeps_a_client_on_one_target_and_moves_it_when_the_target_fails(self):
        backends = self.start_backends(3)
        lb = self.start_lb(sticky_yaml(backends, "{enabled: true, duration: 1h}"))
        self.wait_all_healthy(lb)
        status, headers, _ = http_request(lb.listeners[0])
        self.assertEqual(status, 200)
        cookie = cookie_of(headers, "GantryLB")
        self.assertIn("Max-Age=3600", headers["set-cookie"])
        first = headers["x-task-id"]
        served = {http_request(lb.listeners[0], headers={"Cookie": f"a=1; {cookie}; b=2"})[1]
                  ["x-task-id"] for _ in range(100)}
        self.assertEqual(served, {first})
        # Without the cookie, round robin spreads as usual.
        self.assertEqual({http_request(lb.listeners[0])[1]["x-task-id"] for _ in range(6)},
                         {"t0", "t1", "t2"})
        # Its target fails its checks: the client moves, and its cookie is rewritten.
        sticky_addr = backends[int(first[1:])]
        http_request(sticky_addr, method="POST", path="/health/fail")
        wait_until(lambda: any(t["address"] == sticky_addr and t["state"] == "unhealthy"
                               for t in lb.targets()["target_groups"][0]["targets"]),
                   message="the sticky target to be unhealthy")
        _, headers, _ = http_request(lb.listeners[0], headers={"Cookie": cookie})
        self.assertNotEqual(headers["x-task-id"], first)
        moved = cookie_of(headers, "GantryLB")
        self.assertNotEqual(moved, cookie)
        again = {http_request(lb.listeners[0], headers={"Cookie": moved})[1]["x-task-id"]
                 for _ in range(20)}
        self.assertEqual(again, {headers["x-task-id"]})

    def test_a_forged_cookie_names_no_target(self):
        backends = self.start_backends(2)
        lb = self.start_lb(sticky_yaml(backends, "{enabled: true}"))
        self.wait_all_healthy(lb)
        served = [http_request(lb.listeners[0], headers={"Cookie": "GantryLB=0123456789abcdef"})[1]
                  ["x-task-id"] for _ in range(10)]
        self.assertEqual(sorted(set(served)), ["t0", "t1"])  # round robin, not a crash or a 5xx

    def test_app_cookie_follows_the_applications_session(self):
        names = []

        def make_handler(name):
            class Handler(socketserver.StreamRequestHandler):
                def handle(self):
                    while True:
                        head = self.rfile.readline()
                        if not head:
                            return
                        lines = []
                        while (line := self.rfile.readline()) not in (b"\r\n", b""):
                            lines.append(line.lower())
                        login = b"/login" in head
                        extra = b"Set-Cookie: SESSION=s-" + name.encode() + b"; Path=/\r\n" \
                            if login else b""
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Backend: " + name.encode() +
                                         b"\r\n" + extra + b"Content-Length: 2\r\n\r\nok")
            return Handler

        addrs = []
        for name in ("a", "b"):
            server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), make_handler(name))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.addCleanup(server.shutdown)
            addrs.append(f"127.0.0.1:{server.server_address[1]}")
            names.append(name)
        yaml = sticky_yaml(addrs, "{enabled: true, type: app_cookie, cookie_name: SESSION}")
        yaml = yaml.replace("health_check: {path: /health", "health_check: {path: /")
        lb = self.start_lb(yaml)
        self.wait_all_healthy(lb)
        # No session yet: no balancer cookie either.
        _, headers, _ = http_request(lb.listeners[0], path="/")
        self.assertNotIn("set-cookie", headers)
        _, headers, _ = http_request(lb.listeners[0], path="/login")
        backend = headers["x-backend"]
        cookie = cookie_of(headers, "GantryLBApp")
        served = {http_request(lb.listeners[0], path="/",
                               headers={"Cookie": f"SESSION=s-{backend}; {cookie}"})[1]
                  ["x-backend"] for _ in range(30)}
        self.assertEqual(served, {backend})
