"""gantry-core's answers to bad requests, end to end: every request of the corpus in
tests/core/bad_requests/ (one JSON file per case, format in that directory's README.md) gets the
ECS exception it names, and changes nothing.

"Changes nothing" is checked against a known state set up through the API before the corpus runs:
a task definition demo:1 and a service `web` (desiredCount 1, the demo workload) that has reached
a steady state, a service `gone` that was deleted (INACTIVE), a deregistered task definition old:1
and a deleted cluster `retired`. The snapshot holds every gantry:ecs:* key in Redis with its full
content, the answers of the Describe*/List* actions, and the task directories under the run
directory; after each bad request a new snapshot must be identical, nothing excluded.

Each case also checks the protocol side: HTTP 400 answers are application/x-amz-json-1.1 with a
{"__type", "message"} body and an x-amzn-RequestId, and gantry-core still answers a good request
afterwards, on the same connection when it kept it open, and on a new one.

A few cases go through the real AWS CLI (exit status 254 and the exception's name on stderr).
"""
import json
import os
import socket

from core_fixtures import JSON_TYPE, TARGET_PREFIX, CoreTestCase, demo_taskdef
from harness import DEFAULT_TIMEOUT, ROOT, split_addr, wait_until

CORPUS = os.path.join(ROOT, "tests", "core", "bad_requests")
MAX_REQUEST_SIZE = 64 * 1024  # core.max_request_size below; the generated cases depend on it
TASKDEF_MAX_BYTES = 32 * 1024
CASE_KEYS = {"description", "action", "payload", "raw", "generate", "headers", "method", "path",
             "body_after_continue", "expect"}
EXPECT_KEYS = {"status", "type", "message_contains"}
GOOD_REQUEST = ("ListClusters", {})


# -- the corpus ---------------------------------------------------------------------------------

def load_corpus():
    """[(name, case)] for every tests/core/bad_requests/*.json, sorted by name."""
    cases = []
    for entry in sorted(os.listdir(CORPUS)):
        if not entry.endswith(".json"):
            continue
        with open(os.path.join(CORPUS, entry)) as f:
            case = json.load(f)
        name = entry[:-len(".json")]
        unknown = set(case) - CASE_KEYS
        if unknown:
            raise AssertionError(f"{entry}: unknown keys {sorted(unknown)}")
        expect = case.get("expect", {})
        if set(expect) - EXPECT_KEYS or "status" not in expect or (
                expect["status"] == 400 and "type" not in expect):
            raise AssertionError(f"{entry}: expect needs status, and a type for a 400")
        if sum(k in case for k in ("payload", "raw", "generate")) > 1:
            raise AssertionError(f"{entry}: payload, raw and generate exclude each other")
        cases.append((name, case))
    return cases


def container(name, **extra):
    c = {"name": name, "image": "gantry/demo-app", "memory": 64, "essential": True}
    c.update(extra)
    return c


def eleven_containers():
    return {"family": "bad", "containerDefinitions": [container(f"c{i}") for i in range(11)]}


def taskdef_33_kib():
    """A valid task definition but for its size: 33 KiB of compact JSON (gantry-core measures
    the definition re-serialised compactly, as ECS does, not the body as sent)."""
    env = []
    td = {"family": "bad", "containerDefinitions": [container("web", environment=env)]}
    while len(json.dumps(td, separators=(",", ":"))) < 33 * 1024:
        env.append({"name": f"VAR_{len(env):04d}", "value": "x" * 64})
    size = len(json.dumps(td, separators=(",", ":")))
    assert TASKDEF_MAX_BYTES < 33 * 1024 <= size < MAX_REQUEST_SIZE, size
    return td


def build_request(case, addr):
    """(head, body, mode): the bytes of the case's request and how they are sent: 'whole' (in one
    write), 'head-only' (gantry-core must answer before any body) or 'after-continue' (the head
    with Expect: 100-continue, the body once gantry-core has read the head and said so)."""
    method = case.get("method", "POST")
    path = case.get("path", "/")
    headers = {"Host": addr, "X-Amz-Target": TARGET_PREFIX + case.get("action", ""),
               "Content-Type": JSON_TYPE}
    for key, value in case.get("headers", {}).items():
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    body = None
    mode = "after-continue" if case.get("body_after_continue") else "whole"
    if mode == "after-continue":
        headers["Expect"] = "100-continue"
    generate = case.get("generate")
    if "payload" in case:
        body = json.dumps(case["payload"]).encode()
    elif "raw" in case:
        body = case["raw"].encode()
    elif generate == "eleven_containers":
        body = json.dumps(eleven_containers()).encode()
    elif generate == "taskdef_33_kib":
        body = json.dumps(taskdef_33_kib(), separators=(",", ":")).encode()
    elif generate == "at_max_request_size":
        body = b'{"maxResults": 0}'
        body += b" " * (MAX_REQUEST_SIZE - len(body))
    elif generate == "over_max_request_size":
        headers["Content-Length"] = str(MAX_REQUEST_SIZE + 1)
        mode = "head-only"
    elif generate == "chunked_over_max_request_size":
        # One chunk one byte too long, its last byte the one that crosses the limit: gantry-core
        # has read everything sent when it answers (no reset of unread data hides the answer).
        headers["Transfer-Encoding"] = "chunked"
        body = f"{MAX_REQUEST_SIZE + 1:x}\r\n".encode() + b" " * (MAX_REQUEST_SIZE + 1)
    elif generate is not None:
        raise AssertionError(f"unknown generator {generate!r}")
    if body is not None and "Transfer-Encoding" not in headers:
        headers["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode(), body or b"", mode


# -- a raw HTTP/1.1 connection: exact bytes out, one answer in ----------------------------------

class RawConnection:
    def __init__(self, addr):
        self.sock = socket.create_connection(split_addr(addr), timeout=DEFAULT_TIMEOUT)
        self.file = self.sock.makefile("rb")

    def close(self):
        self.file.close()
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_answer(self):
        """(status, headers lower-cased, body); raises ConnectionError at EOF before a status."""
        line = self.file.readline()
        if not line:
            raise ConnectionError("connection closed before an answer")
        version, status, _ = line.decode("latin-1").split(" ", 2)
        if not version.startswith("HTTP/1."):
            raise AssertionError(f"bad status line {line!r}")
        headers = {}
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0")))
        return int(status), headers, body

    def at_eof(self):
        """Whether the server closed the connection (reading waits at most the timeout)."""
        try:
            return self.file.read(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False


def good_request_bytes(addr):
    action, payload = GOOD_REQUEST
    body = json.dumps(payload).encode()
    return (f"POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {TARGET_PREFIX}{action}\r\n"
            f"Content-Type: {JSON_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


# -- state snapshots ----------------------------------------------------------------------------

def redis_state(redis):
    """Every gantry:ecs:* key: its type and full content (JSON values parsed, for diffs)."""
    def parse(text):
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text

    keys = redis.command("KEYS", "gantry:ecs:*")
    if keys is None:
        raise AssertionError("redis does not answer KEYS")
    state = {}
    for key in sorted(keys):
        kind = redis.command("TYPE", key)
        if kind == "hash":
            flat = redis.command("HGETALL", key)
            content = {flat[i]: parse(flat[i + 1]) for i in range(0, len(flat), 2)}
        elif kind == "list":
            content = [parse(v) for v in redis.command("LRANGE", key, "0", "-1")]
        else:
            content = f"(unexpected type {kind})"
        state[key] = {"type": kind, "content": content}
    return state


def api_state(core):
    """What the Describe*/List* actions answer about everything the setup made."""
    ok = core.ok
    state = {
        "ListClusters": ok("ListClusters"),
        "DescribeClusters": ok("DescribeClusters", {"clusters": ["default", "retired"]}),
        "ListTaskDefinitionFamilies": ok("ListTaskDefinitionFamilies", {"status": "ALL"}),
        "ListTaskDefinitions ACTIVE": ok("ListTaskDefinitions", {"status": "ACTIVE"}),
        "ListTaskDefinitions INACTIVE": ok("ListTaskDefinitions", {"status": "INACTIVE"}),
        "ListServices": ok("ListServices", {"cluster": "default"}),
        "DescribeServices": ok("DescribeServices", {"cluster": "default",
                                                    "services": ["web", "gone", "extra"]}),
        "ListContainerInstances": ok("ListContainerInstances", {"cluster": "default"}),
    }
    for family in ("demo", "old", "bad"):
        status, doc = core.call("DescribeTaskDefinition", {"taskDefinition": family + ":1"})
        state[f"DescribeTaskDefinition {family}:1"] = (status, doc)
    state["DescribeContainerInstances"] = ok("DescribeContainerInstances", {
        "cluster": "default",
        "containerInstances": state["ListContainerInstances"]["containerInstanceArns"]})
    for desired in ("RUNNING", "STOPPED"):
        arns = ok("ListTasks", {"cluster": "default", "desiredStatus": desired})["taskArns"]
        state[f"ListTasks {desired}"] = arns
        if arns:
            state[f"DescribeTasks {desired}"] = ok("DescribeTasks", {"cluster": "default",
                                                                      "tasks": arns})
    return state


def diff(a, b, path="", out=None, limit=12):
    """Where two JSON-like values differ: ['path: before -> after', ...] (at most limit)."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a:
                out.append(f"{path}/{key}: added {json.dumps(b[key])[:200]}")
            elif key not in b:
                out.append(f"{path}/{key}: removed (was {json.dumps(a[key])[:200]})")
            else:
                diff(a[key], b[key], f"{path}/{key}", out, limit)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: {json.dumps(a)[:200]} -> {json.dumps(b)[:200]}")
    return out


class CoreErrorsTest(CoreTestCase):
    def snapshot(self, core):
        tasks_dir = os.path.join(self.tmp, "run", "tasks")
        return {"redis": redis_state(self.redis), "api": api_state(core),
                "task directories": sorted(os.listdir(tasks_dir)) if os.path.isdir(tasks_dir)
                else []}

    def set_up_known_state(self, core):
        core.ok("RegisterTaskDefinition", demo_taskdef())
        core.ok("CreateService", {"serviceName": "web", "taskDefinition": "demo:1",
                                  "desiredCount": 1})
        core.ok("CreateService", {"serviceName": "gone", "taskDefinition": "demo:1",
                                  "desiredCount": 0})
        core.ok("DeleteService", {"service": "gone", "force": True})
        core.ok("RegisterTaskDefinition", demo_taskdef(family="old"))
        core.ok("DeregisterTaskDefinition", {"taskDefinition": "old:1"})
        core.ok("CreateCluster", {"clusterName": "retired"})
        core.ok("DeleteCluster", {"cluster": "retired"})
        core.wait_running("web", 1)

        # Steady: web's steady-state event and gone's INACTIVE status are written by the last
        # reconcile step that changes anything; once both are in Redis nothing moves on its own.
        def settled():
            events = self.redis.command("LRANGE", "gantry:ecs:events:default:web", "0", "-1")
            gone = json.loads(self.redis.command("HGET", "gantry:ecs:services:default", "gone")
                              or "{}")
            return (events and "has reached a steady state." in json.loads(events[0])["message"]
                    and gone.get("status") == "INACTIVE")
        wait_until(settled, message="web steady and gone INACTIVE in Redis")
        # Two snapshots in a row agree: the state the corpus must leave alone.
        last = [self.snapshot(core)]

        def stable():
            now = self.snapshot(core)
            same, last[0] = now == last[0], now
            return same
        wait_until(stable, message="a stable state")
        return last[0]

    def check_answer(self, name, case, status, headers, body):
        expect = case["expect"]
        self.assertEqual(status, expect["status"], f"{name}: status; body {body[:300]!r}")
        if status == 413:
            self.assertEqual(headers.get("connection", "").lower(), "close",
                             f"{name}: a 413 closes the connection")
            return
        self.assertEqual(headers.get("content-type"), JSON_TYPE, f"{name}: Content-Type")
        self.assertTrue(headers.get("x-amzn-requestid"), f"{name}: no x-amzn-RequestId")
        doc = json.loads(body)
        self.assertIsInstance(doc, dict, f"{name}: body {body!r}")
        self.assertEqual(set(doc), {"__type", "message"}, f"{name}: body {doc!r}")
        self.assertEqual(doc["__type"], expect["type"], f"{name}: exception; message "
                         f"{doc['message']!r}")
        self.assertIsInstance(doc["message"], str)
        self.assertTrue(doc["message"], f"{name}: empty message")
        if "message_contains" in expect:
            self.assertIn(expect["message_contains"], doc["message"], f"{name}: message")

    def check_good_request(self, name, conn):
        conn.send(good_request_bytes(self.core.addr))
        status, headers, body = conn.read_answer()
        self.assertEqual(status, 200, f"{name}: a good request after it: {body[:300]!r}")
        self.assertEqual(headers.get("content-type"), JSON_TYPE)
        self.assertIn("arn:aws:ecs:us-east-1:000000000000:cluster/default",
                      json.loads(body)["clusterArns"], f"{name}: a good request after it")

    def run_case(self, name, case):
        head, body, mode = build_request(case, self.core.addr)
        conn = RawConnection(self.core.addr)
        try:
            try:
                if mode == "after-continue":
                    conn.send(head)
                    status, _, _ = conn.read_answer()
                    self.assertEqual(status, 100, f"{name}: no 100 Continue after the head")
                    conn.send(body)
                else:
                    conn.send(head + body)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail(f"{name}: gantry-core dropped the connection while the request was "
                          f"sent: {e}")
            status, headers, body = conn.read_answer()
            self.check_answer(name, case, status, headers, body)
            if headers.get("connection", "").lower() == "close":
                self.assertTrue(conn.at_eof(), f"{name}: Connection: close, but the "
                                "connection stays open")
            else:
                # The connection handling side: the same connection serves the next request.
                self.check_good_request(name, conn)
        finally:
            conn.close()
        fresh = RawConnection(self.core.addr)
        try:
            self.check_good_request(name, fresh)
        finally:
            fresh.close()

    def check_unchanged(self, name, baseline):
        """Returns the snapshot to compare the next cases with: a change is reported once."""
        now = self.snapshot(self.core)
        changes = diff(baseline, now)
        if changes:
            return now, f"{name} changed the state:\n  " + "\n  ".join(changes)
        return baseline, None

    def test_bad_requests_get_ecs_exceptions_and_change_nothing(self):
        # A line at column 0 keeps start_core's dedent from lifting the key out of core:.
        self.core = core = self.start_core(
            extra_yaml=f"# the corpus's size cases\n  max_request_size: {MAX_REQUEST_SIZE}\n")
        baseline = self.set_up_known_state(core)
        cases = load_corpus()
        self.assertGreaterEqual(len(cases), 100, "the corpus is incomplete")
        for name, case in cases:
            with self.subTest(name):
                problems = []
                try:
                    self.run_case(name, case)
                except AssertionError as e:
                    problems.append(str(e))
                except (OSError, ValueError) as e:
                    problems.append(f"{name}: {type(e).__name__}: {e}")
                baseline, changed = self.check_unchanged(name, baseline)
                if changed:
                    problems.append(changed)
                if problems:
                    self.fail("\n".join(problems))

        # The same through the real AWS CLI: its exit status for a service error is 254.
        eleven = self.write_file("eleven.json", json.dumps(eleven_containers()))
        cli_cases = [
            ("aws-cli unknown cluster", ("ecs", "list-services", "--cluster", "nope"),
             "(ClusterNotFoundException) when calling the ListServices operation"),
            ("aws-cli 11 containers", ("ecs", "register-task-definition", "--cli-input-json",
                                       "file://" + eleven),
             "(ClientException) when calling the RegisterTaskDefinition operation: Too many "
             "containers"),
            ("aws-cli deleted service", ("ecs", "update-service", "--service", "gone",
                                         "--desired-count", "2"),
             "(ServiceNotActiveException) when calling the UpdateService operation"),
        ]
        for name, args, expected in cli_cases:
            with self.subTest(name):
                proc = core.aws_run(*args)
                problems = []
                if proc.returncode != 254 or expected not in proc.stderr:
                    problems.append(f"aws {' '.join(args)}: exit {proc.returncode} (expected "
                                    f"254 and {expected!r}):\n{proc.stderr}{proc.stdout}")
                baseline, changed = self.check_unchanged(name, baseline)
                if changed:
                    problems.append(changed)
                if problems:
                    self.fail("\n".join(problems))

        # The comparison can fail: a good request that changes something is seen.
        core.ok("RegisterTaskDefinition", demo_taskdef(family="control"))
        _, changed = self.check_unchanged("a good RegisterTaskDefinition", baseline)
        self.assertIsNotNone(changed, "the snapshot did not see a new task definition")
        self.assertIn("gantry:ecs:taskdefs:control", changed)
