"""Regressions for defects a review found: a long pipeline of answers the balancer makes itself
(recursion), a request that may have reached a target sent again, a cookie reaching a weight-0
target, an idle keep-alive connection that slept through a reload."""
import socket
import threading

from harness import http_request
from lb_fixtures import LbTestCase, RawConnection, app_yaml


class ReviewRegressionsTest(LbTestCase):
    def test_a_long_pipeline_of_fixed_responses_is_answered_whole(self):
        lb = self.start_lb("""
lb:
  workers: 1
  max_header_size: 512k
  listeners:
    - name: web
      listen: 127.0.0.1:0
      default_action: {type: fixed-response, status: 200, body: "ok"}
""")
        conn = RawConnection(lb.listeners[0], timeout=20)
        n = 15000  # it used to overflow the worker's stack near 6,300
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * n)
        for _ in range(n):
            self.assertEqual(conn.read_response()[0], 200)
        conn.close()
        self.assertIsNone(lb.program.proc.poll())

    def keepalive_once_backend(self):
        """Answers the first request of each connection; reads the second and closes without an
        answer: a pooled connection that dies under the next request. Records what it read."""
        seen = []
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.addCleanup(listener.close)

        def serve(sock):
            reader = sock.makefile("rb")
            for i in range(2):
                line = reader.readline()
                if not line:
                    break
                length = 0
                while (h := reader.readline()) not in (b"\r\n", b""):
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":")[1])
                reader.read(length)
                seen.append(line.split()[0].decode())
                if i == 0:
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            sock.close()

        def accept():
            while True:
                try:
                    s, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=serve, args=(s,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return f"127.0.0.1:{listener.getsockname()[1]}", seen

    def test_a_post_the_target_may_have_read_is_never_sent_again(self):
        addr, seen = self.keepalive_once_backend()
        lb = self.start_lb(app_yaml([addr], health_check="{enabled: false}"))
        self.assertEqual(http_request(lb.listeners[0])[0], 200)  # pools the connection
        status, _, _ = http_request(lb.listeners[0], method="POST", body=b"pay once")
        self.assertEqual(status, 502)
        self.assertEqual(seen.count("POST"), 1)

    def test_a_get_on_a_pooled_connection_that_died_is_sent_again(self):
        addr, seen = self.keepalive_once_backend()
        lb = self.start_lb(app_yaml([addr], health_check="{enabled: false}"))
        self.assertEqual(http_request(lb.listeners[0])[0], 200)
        self.assertEqual(http_request(lb.listeners[0])[0], 200)  # replayed on a new connection
        self.assertEqual(seen.count("GET"), 3)

    def test_a_sticky_cookie_cannot_reach_a_weight_0_target(self):
        a, b = self.start_backends(2, ids=["a", "b"])
        yaml = app_yaml([], health_check=None, group_lines=["stickiness: {enabled: true}"])
        yaml = yaml.replace("targets: []", f'targets: [{{address: "{a}", weight: 0}}, '
                                           f'{{address: "{b}"}}]')
        lb = self.start_lb(yaml)
        # a's cookie value: the hash the balancer gives it; learn it from a config where a serves.
        probe = self.start_lb(app_yaml([a], health_check=None,
                                       group_lines=["stickiness: {enabled: true}"]),
                              name="probe.yaml")
        cookie = http_request(probe.listeners[0])[1]["set-cookie"].split(";")[0]
        served = {http_request(lb.listeners[0], headers={"Cookie": cookie})[1]["x-task-id"]
                  for _ in range(5)}
        self.assertEqual(served, {"b"})

    def test_an_idle_keepalive_connection_follows_a_reload(self):
        """Its first request after the reload goes by the new rules, never to a removed target."""
        a, b = self.start_backends(2, ids=["a", "b"])
        lb = self.start_lb(app_yaml([a], health_check=None))
        conn = RawConnection(lb.listeners[0])
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(conn.read_response()[1]["x-task-id"], "a")
        self.reload_lb(lb, app_yaml([b], health_check=None))
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = conn.read_response()
        self.assertEqual((status, headers["x-task-id"]), (200, "b"))
        conn.close()
