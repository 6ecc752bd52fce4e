"""gantry-lb end to end: a listener forwarding to two demo-app targets, round robin."""
from harness import http_request
from lb_fixtures import LbTestCase, app_yaml


class LbSmokeTest(LbTestCase):
    def test_forwards_round_robin_and_counts(self):
        backends = self.start_backends(2)
        lb = self.start_lb(app_yaml(backends, health_check=None))
        seen = [http_request(lb.listeners[0])[1]["x-task-id"] for _ in range(10)]
        self.assertEqual(sorted(seen), ["t0"] * 5 + ["t1"] * 5)
        self.assertTrue(all(a != b for a, b in zip(seen, seen[1:])), seen)
        self.assertEqual(lb.metric('gantry_lb_requests_total{listener="web",code="2xx"}'), 10)
        self.assertEqual(lb.metric('gantry_lb_target_requests_total{target_group="app"}'), 10)

    def test_reload_switches_rules_and_a_bad_file_keeps_the_running_one(self):
        backends = self.start_backends(1)
        config = """
            lb:
              workers: 1
              listeners:
                - name: web
                  listen: 127.0.0.1:0
                  default_action: {{type: fixed-response, status: {status}, body: "{body}"}}
            """
        lb = self.start_lb(config.format(status=200, body="one"))
        self.assertEqual(http_request(lb.listeners[0])[2], b"one")
        # The listener asked for port 0: the reload must name the port it got.
        port = lb.listeners[0].rpartition(":")[2]
        fixed = config.replace("127.0.0.1:0", f"127.0.0.1:{port}")
        out = self.reload_lb(lb, fixed.format(status=201, body="two"))
        self.assertIn("configuration 2 in force", out)
        status, _, body = http_request(lb.listeners[0])
        self.assertEqual((status, body), (201, b"two"))
        out = self.reload_lb(lb, "lb:\n  workers: many\n")
        self.assertIn("reload refused", out)
        self.assertEqual(http_request(lb.listeners[0])[2], b"two")
        del backends
