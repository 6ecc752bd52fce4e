"""`gantry scaling activities` and the SCALING lines of `gantry status`, against a private
redis-server into which the tests write scaling activities the way gantry-autoscaler does
(autoscaler/activities.h: LPUSH of a DescribeScalingActivities-shaped JSON document onto
gantry:autoscaling:activities:RESOURCE_ID, then LTRIM to the newest 100). Damaged values (not JSON,
wrong types, terminal escapes, huge fields, keys of another type) must never crash the command and
always print bounded, escaped text."""
import json
import os
import socket
import time
import uuid

from harness import GantryTestCase, _read_resp, free_port

PREFIX = "gantry:autoscaling:activities:"
DEMO = "service/default/demo"
WEB = "service/prod/web"
TABLE_HEAD = r"(?m)^START TIME\s+RESOURCE\s+STATUS\s+DESCRIPTION\s+CAUSE$"
LINE_MAX = 4000  # the widest row the cells' bounds allow, with room
# JSON keeps a member whole; a document over 64 KiB is refused, and \uXXXX is 6 bytes per byte
JSON_LINE_MAX = 6 * 64 * 1024


def activity(resource, desired, start, status="Successful", message="", cause=None):
    """A document as gantry-autoscaler records it."""
    return {"ActivityId": str(uuid.uuid4()), "ServiceNamespace": "ecs", "ResourceId": resource,
            "ScalableDimension": "ecs:service:DesiredCount",
            "Description": f"Setting desired count to {desired}.",
            "Cause": cause or (f"monitor alarm TargetTracking-{resource}-AlarmHigh in state "
                               "ALARM triggered policy cpu50"),
            "StartTime": start, "EndTime": start + 0.25, "StatusCode": status,
            "StatusMessage": message}


def local(t, short=False):
    return time.strftime("%H:%M:%S" if short else "%Y-%m-%d %H:%M:%S", time.localtime(t))


class ScalingCliTest(GantryTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()
        self.now = time.time()

    def pipeline(self, commands):
        """Many commands on one connection (the harness opens one per command); the replies."""
        payload = b"".join(
            b"*%d\r\n" % len(words) + b"".join(
                b"$%d\r\n%s\r\n" % (len(w), w) for w in
                (x if isinstance(x, bytes) else str(x).encode() for x in words))
            for words in commands)
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=10) as s:
            s.sendall(payload)
            f = s.makefile("rb")
            return [_read_resp(f) for _ in commands]

    def record(self, *docs):
        """What activity_record does, for each document in turn (oldest first)."""
        commands = []
        for doc in docs:
            text = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
            resource = doc["ResourceId"] if isinstance(doc, dict) else DEMO
            commands += [("LPUSH", PREFIX + resource, text), ("LTRIM", PREFIX + resource, 0, 99)]
        self.pipeline(commands)

    def push(self, resource, *values):
        """Raw values onto a resource's list, the last one the newest."""
        self.pipeline([("LPUSH", PREFIX + resource, v) for v in values])

    def gantry(self, *args, redis=True):
        """bin/gantry ARGS (--redis to the test's server unless redis is False); never a
        sanitizer report, never a terminal escape or an unbounded line."""
        line_max = JSON_LINE_MAX if "--json" in args else LINE_MAX
        extra = ("--redis", self.redis.url) if redis else ()
        proc = self.run_program("gantry", (*args, *extra))
        for out in (proc.stdout, proc.stderr):
            self.assertNotIn("Sanitizer", out, out)
            self.assertNotIn("runtime error", out, out)
            # printable ASCII only: no escape sequence, C1 control or bidi override gets through
            self.assertEqual([c for c in out if c != "\n" and not " " <= c <= "~"], [], out)
            self.assertLess(max((len(line) for line in out.splitlines()), default=0), line_max)
        return proc

    def activities(self, *args):
        proc = self.gantry("scaling", "activities", *args)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        return proc.stdout

    def json_activities(self, *args):
        proc = self.gantry("scaling", "activities", "--json", *args)
        self.assertEqual(proc.returncode, 0, proc.stderr + proc.stdout)
        out = json.loads(proc.stdout)
        self.assertEqual(list(out), ["ScalingActivities"])
        return out["ScalingActivities"], proc.stderr

    def rows(self, out):
        """The table's rows after its head, each cut in its 5 columns by the head's offsets."""
        lines = out.splitlines()
        self.assertRegex(lines[0], TABLE_HEAD)
        starts = [lines[0].index(h) for h in ("START TIME", "RESOURCE", "STATUS", "DESCRIPTION",
                                              "CAUSE")]
        ends = starts[1:] + [None]
        return [[line[a:b].strip() for a, b in zip(starts, ends)] for line in lines[1:]]

    # --- the table and the JSON ---

    def test_table_and_json_newest_first_across_resources(self):
        t = self.now - 600
        docs = [activity(DEMO, 4, t), activity(WEB, 3, t + 10),
                activity(DEMO, 6, t + 40),
                activity(WEB, 2, t + 70, status="Failed",
                         message="ECS said: ServiceNotFoundException"),
                activity(DEMO, 1, t + 100.5)]
        self.record(*docs)
        newest_first = sorted(docs, key=lambda d: -d["StartTime"])

        rows = self.rows(self.activities())
        self.assertEqual(rows, [[local(d["StartTime"]), d["ResourceId"],
                                 d["StatusCode"] + (f" ({d['StatusMessage']})"
                                                    if d["StatusMessage"] else ""),
                                 d["Description"], d["Cause"]] for d in newest_first])

        listed, stderr = self.json_activities()
        self.assertEqual(listed, newest_first)  # every member as recorded, in the API's order
        self.assertEqual(stderr, "")
        for doc in listed:
            self.assertEqual(list(doc), list(docs[0]))

        # the same Redis found through a configuration file, options before the command too
        config = self.write_file("gantry.yaml", f"redis:\n  url: {self.redis.url}\n")
        proc = self.gantry("scaling", "--json", "-c", config, "activities", redis=False)
        self.assertEqual(json.loads(proc.stdout)["ScalingActivities"], newest_first)

    def test_resource_filter_and_max_items(self):
        t = self.now - 3600
        demo = [activity(DEMO, n, t + 60 * n) for n in range(1, 6)]
        web = [activity(WEB, n, t + 60 * n + 30) for n in range(1, 4)]
        self.record(*demo, *web)

        listed, _ = self.json_activities("--resource-id", DEMO)
        self.assertEqual(listed, demo[::-1])
        listed, _ = self.json_activities("--resource-id", WEB, "--max-items", "2")
        self.assertEqual(listed, web[:0:-1])
        listed, _ = self.json_activities("--max-items", "3")
        self.assertEqual([d["ActivityId"] for d in listed],
                         [demo[4]["ActivityId"], demo[3]["ActivityId"], web[2]["ActivityId"]])
        listed, _ = self.json_activities("--max-items", "1000")
        self.assertEqual(len(listed), 8)

        rows = self.rows(self.activities("--resource-id", WEB, "--max-items", "1"))
        self.assertEqual([r[3] for r in rows], ["Setting desired count to 3."])
        self.assertEqual(len(self.rows(self.activities("--max-items", "4"))), 4)

        # a resource without activities, and a Redis without any
        out = self.activities("--resource-id", "service/default/none")
        self.assertEqual(out, f"no scaling activities of service/default/none in Redis at "
                              f"{self.redis.url}\n")
        self.assertEqual(self.json_activities("--resource-id", "service/default/none")[0], [])
        self.redis.command("FLUSHALL")
        self.assertIn("no scaling activities in Redis at", self.activities())
        self.assertEqual(self.json_activities(), ([], ""))

    def test_only_the_newest_hundred_are_kept_and_read(self):
        t = self.now - 7200
        self.record(*[activity(DEMO, n % 7, t + n) for n in range(130)])
        self.assertEqual(self.redis.command("LLEN", PREFIX + DEMO), 100)
        listed, _ = self.json_activities()
        self.assertEqual([d["StartTime"] for d in listed], [t + n for n in range(129, 29, -1)])
        # a list longer than the writer keeps (damage): the newest 100 still
        self.push(DEMO, *[json.dumps(activity(DEMO, 1, t + 1000 + n)) for n in range(50)])
        listed, _ = self.json_activities()
        self.assertEqual(len(listed), 100)
        self.assertEqual(listed[0]["StartTime"], t + 1049)

    # --- what Redis may hold instead ---

    def test_damaged_values_are_shown_as_question_marks_and_left_out_of_json(self):
        t = self.now - 300
        good_old, good_new = activity(DEMO, 2, t), activity(DEMO, 3, t + 200)
        escapes = activity(DEMO, 5, t + 150, status="Failed",
                           message="\x1b]0;pwned\x07 bad \x1b[31mred")
        escapes["Description"] = "Setting desired count to 5.\x1b[2J"
        escapes["Cause"] = "cause \x9b with \u202e bytes"
        long_cause = activity(DEMO, 4, t + 120, cause="c" * 20000)
        wrong_types = dict(activity(DEMO, 9, t + 100), StartTime="noon", Description=5,
                           StatusCode="Exploded", Cause=["x"], EndTime=-1)
        future = dict(activity(DEMO, 8, t + 90), StartTime=1e300)
        self.push(DEMO,
                  json.dumps(good_old),
                  "not json at all",
                  json.dumps([1, 2, 3]),
                  "[" * 100000,
                  json.dumps(wrong_types),
                  json.dumps(future),
                  json.dumps(long_cause),
                  json.dumps(dict(activity(DEMO, 7, t + 130), Cause="x" * (1 << 20))),
                  "\x00\xff\xfe binary",
                  json.dumps(escapes),
                  "",
                  json.dumps(good_new))
        # keys of another type, under the same prefix
        self.redis.command("SET", PREFIX + "service/x/string", "not a list")
        self.redis.command("HSET", PREFIX + "service/x/hash", "a", "b")

        proc = self.gantry("scaling", "activities")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = self.rows(proc.stdout)
        self.assertEqual(len(rows), 12)  # every element shows, readable or not
        self.assertEqual(rows[0][3], "Setting desired count to 3.")
        self.assertEqual(rows[-1][3], "Setting desired count to 2.")
        [esc] = [r for r in rows if r[3].startswith("Setting desired count to 5.")]
        self.assertEqual(esc[3], "Setting desired count to 5.\\x1b[2J")
        self.assertEqual(esc[2], "Failed (\\x1b]0;pwned\\x07 bad \\x1b[31mred)")
        self.assertIn("\\x", esc[4])
        [cut] = [r for r in rows if r[3] == "Setting desired count to 4."]
        self.assertTrue(cut[4].startswith("cccc") and cut[4].endswith("..."), cut[4][-20:])
        self.assertLess(len(cut[4]), 500)
        self.assertEqual(sum(r == ["?", DEMO, "?", "?", "?"] for r in rows), 7)
        self.assertIn("service/x/string is not a list of activities", proc.stderr)
        self.assertIn("service/x/hash is not a list of activities", proc.stderr)

        listed, stderr = self.json_activities()
        self.assertEqual([d["ActivityId"] for d in listed],
                         [good_new["ActivityId"], escapes["ActivityId"],
                          long_cause["ActivityId"], good_old["ActivityId"]])
        # escaped by the JSON itself (\u001b), so the same text once parsed
        self.assertEqual(listed[1]["Description"], escapes["Description"])
        self.assertEqual(listed[1]["Cause"], escapes["Cause"])
        self.assertEqual(listed[2]["Cause"], long_cause["Cause"])
        self.assertIn("8 damaged activities left out of the JSON", stderr)

    def test_many_resources_and_strange_key_names(self):
        docs = [activity(f"service/c{i}/s{i}", 2, self.now - 5000 + i) for i in range(1100)]
        self.record(*docs)
        self.push("service/default/\x1b[31m" + "n" * 3000, json.dumps(activity(DEMO, 3, 1)))
        proc = self.gantry("scaling", "activities")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("more than 1000 scalable targets have activities: only 1000", proc.stderr)
        self.assertEqual(len(self.rows(proc.stdout)), 1000)
        proc = self.gantry("scaling", "activities", "--resource-id", "service/c7/s7", "--json")
        self.assertEqual(json.loads(proc.stdout)["ScalingActivities"], [docs[7]])

    # --- the command line ---

    def test_usage_and_errors(self):
        for args, status, message in [
                ((), 2, "expected a command: gantry scaling activities"),
                (("policies",), 2, "unknown command 'policies' (expected activities)"),
                (("activities", "more"), 2, "unexpected argument 'more'"),
                (("activities", "--bogus"), 2, "--bogus"),
                (("activities", "--resource-id", "default/demo"), 1,
                 "--resource-id 'default/demo': expected service/CLUSTER/SERVICE"),
                (("activities", "--resource-id", "service/a/b/c"), 1, "expected service/"),
                (("activities", "--resource-id", "service//b"), 1, "expected service/"),
                (("activities", "--resource-id", "service/a/\x1b"), 1, "'service/a/\\x1b'"),
                (("activities", "--max-items", "0"), 1, "--max-items '0': expected a whole"),
                (("activities", "--max-items", "x"), 1, "--max-items 'x'"),
                (("activities", "--max-items", "-3"), 1, "--max-items '-3'")]:
            with self.subTest(args=args):
                proc = self.gantry("scaling", *args)
                self.assertEqual(proc.returncode, status, proc.stderr)
                self.assertEqual(proc.stdout, "")
                self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
                self.assertIn(message, proc.stderr)
        proc = self.gantry("scaling", "activities", "--redis", "http://x", redis=False)
        self.assertEqual(proc.returncode, 2)
        proc = self.gantry("scaling", "activities", "--redis",
                           f"redis://127.0.0.1:{free_port()}", redis=False)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, "")
        self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
        self.assertIn("cannot reach Redis", proc.stderr)

        proc = self.gantry("scaling", "--help", redis=False)
        self.assertEqual(proc.returncode, 0)
        for option in ("--resource-id", "--max-items", "--json", "DescribeScalingActivities"):
            self.assertIn(option, proc.stdout)
        self.assertRegex(self.gantry("help", redis=False).stdout, r"(?m)^  scaling\s")
        self.assertIn("scaling", self.gantry("frobnicate", redis=False).stderr)

    # --- gantry status ---

    def test_status_shows_each_services_last_three_activities(self):
        """A hand-written cluster: status shows the newest 3 under their service only."""
        r = self.redis.command
        r("HSET", "gantry:ecs:clusters", "default", json.dumps({"status": "ACTIVE"}))
        for name in ("demo", "quiet"):
            r("HSET", "gantry:ecs:services:default", name,
              json.dumps({"status": "ACTIVE", "desiredCount": 2, "taskDefinition": "demo:1",
                          "loadBalancers": []}))
        t = self.now - 100
        docs = [activity(DEMO, n, t + 10 * n) for n in range(1, 6)]
        docs[4] = activity(DEMO, 5, t + 50, status="Failed", message="no \x1b[31m ECS")
        self.record(*docs)
        self.record(activity("service/other/demo", 9, t))  # another cluster's demo: not shown

        proc = self.gantry("status")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        demo_block = proc.stdout.split("\ndemo ")[1].split("\nquiet ")[0]
        self.assertRegex(demo_block, r"(?m)^  SCALING\s+STATUS\s+DESCRIPTION\s+CAUSE$")
        after = demo_block.split("  SCALING")[1].splitlines()[1:]
        shown = [line for line in after[:after.index("")] if line.startswith("  ")]
        self.assertEqual(len(shown), 3, demo_block)
        for line, doc in zip(shown, docs[::-1]):
            self.assertTrue(line.startswith("  " + local(doc["StartTime"], short=True)), line)
            self.assertIn(doc["Description"], line)
            self.assertIn(doc["Cause"], line)
        self.assertIn("Failed (no \\x1b[31m ECS)", shown[0])
        self.assertNotIn("SCALING", proc.stdout.split("\nquiet ")[1])
        self.assertNotIn("count to 9", proc.stdout)

        # damaged activities, then a key of another type
        self.push(DEMO, "junk", json.dumps({"StartTime": "x", "Description": ["y"]}))
        out = self.gantry("status").stdout
        self.assertRegex(out, r"(?m)^  \?\s+\?\s+\?\s+\?$")
        r("DEL", PREFIX + DEMO)
        r("SET", PREFIX + DEMO, "a string")
        out = self.gantry("status").stdout
        self.assertRegex(out, r"(?m)^  scaling: \?$")
        self.assertEqual(out.count("scaling: ?"), 1)
