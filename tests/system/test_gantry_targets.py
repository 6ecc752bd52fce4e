"""`gantry targets register|deregister|list|watch` against a real redis-server, checked through
the keys and channels of docs/redis.md. `watch` runs lb/discovery (gantry-lb's Redis client), so
its cases cover pub/sub, periodic resync, reconnection, stalls and the validation of what is in
the hashes."""
import os
import signal
import socket
import time

from harness import DEFAULT_TIMEOUT, GantryTestCase, Program, RedisServer, _read_resp, \
    free_port, wait_until

HEALTHY = '{"state": "healthy", "reason": "", "since": 1763712625123}'


def resp(*words):
    return (f"*{len(words)}\r\n" + "".join(
        f"${len(str(w).encode())}\r\n{w}\r\n" for w in words)).encode()


def pipeline(port, *commands):
    """Several commands on one connection (so SELECT applies to the next ones); the replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(resp(*c) for c in commands))
        f = s.makefile("rb")
        replies = []
        for _ in commands:
            try:
                replies.append(_read_resp(f))
            except RuntimeError as e:  # an error reply
                replies.append(e)
        return replies


def as_dict(flat):
    return dict(zip(flat[0::2], flat[1::2])) if flat else {}


class Subscriber:
    """A raw RESP connection SUBSCRIBEd to channels, confirmed before the constructor returns."""

    def __init__(self, port, *channels):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.sock.sendall(resp("SUBSCRIBE", *channels))
        for channel in channels:
            kind, name, _ = _read_resp(self.file)
            assert (kind, name) == ("subscribe", channel), (kind, name)

    def message(self, timeout=5.0):
        """The next (channel, message); raises socket.timeout when none comes."""
        self.sock.settimeout(timeout)
        kind, channel, data = _read_resp(self.file)
        assert kind == "message", kind
        return channel, data

    def close(self):
        self.file.close()
        self.sock.close()


class TargetsTestCase(GantryTestCase):
    def setUp(self):
        super().setUp()
        self.redis = self.start_redis()

    def gantry(self, *args, redis=None):
        """Runs bin/gantry targets ARGS against our Redis; never a sanitizer report."""
        argv = ["targets", *args]
        if redis is not False:
            argv += ["--redis", redis or self.redis.url]
        proc = self.run_program("gantry", argv)
        self.assertNotIn("Sanitizer", proc.stderr, proc.stderr)
        return proc

    def hash(self, key):
        return as_dict(self.redis.command("HGETALL", key))

    def subscribe(self, *channels):
        sub = Subscriber(self.redis.port, *channels)
        self.addCleanup(sub.close)
        return sub

    # --- watch ---

    def watch(self, *groups, resync="60s", redis=None, extra=()):
        """`gantry targets watch`, its stdout and stderr in one log. resync is long by default, so
        a change seen quickly came through pub/sub."""
        return self.start_program(
            "gantry", ["targets", "watch", *groups, "--redis", redis or self.redis.url,
                       "--resync", resync, *extra], ready_fd=False)

    @staticmethod
    def reports(program, group):
        prefix = f"{group}: "
        return [line[len(prefix):] for line in program.log().splitlines()
                if line.startswith(prefix)]

    def wait_report(self, program, group, text, timeout=DEFAULT_TIMEOUT):
        """Waits until the last report of group is text; returns how many reports there are."""
        wait_until(lambda: self.reports(program, group)[-1:] == [text], timeout=timeout,
                   message=f"{group}: {text!r} in the watch output:\n{program.log()}")
        return len(self.reports(program, group))

    @staticmethod
    def count(program, text):
        return sum(text in line for line in program.log().splitlines())

    def stop_watch(self, program, sig=signal.SIGTERM):
        self.assertEqual(program.stop(sig), 0, program.log())
        self.assertNotIn("Sanitizer", program.log())

    def restart_redis(self, redis):
        """Starts redis-server again on the port (and socket) the stopped one had."""
        program = Program(["redis-server", "--port", str(redis.port), "--bind", "127.0.0.1",
                           "--unixsocket", redis.socket_path, "--dir", self.tmp, "--save", "",
                           "--appendonly", "no"],
                          os.path.join(self.tmp, f"redis-{redis.port}-{len(self.programs)}.log"),
                          ready_fd=False)
        self.programs.append(program)
        redis.program = program
        wait_until(redis._answers_or_died, message="redis ping after restart")
        self.assertIsNone(program.proc.poll(), program.log())


class TargetsCommandTest(TargetsTestCase):
    def test_register_list_deregister_round_trip(self):
        sub = self.subscribe("gantry:targets")
        proc = self.gantry("register", "api", "127.0.0.1:9001")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "registered 127.0.0.1:9001 in api (weight 1)\n")
        self.assertEqual(self.hash("gantry:targets:api"), {"127.0.0.1:9001": "1"})
        self.assertEqual(sub.message(), ("gantry:targets", "api"))

        proc = self.gantry("register", "api", "127.0.0.1:10000", "--weight", "7")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sub.message(), ("gantry:targets", "api"))
        proc = self.gantry("register", "api", "127.0.0.1:9001", "--weight", "0")
        self.assertEqual(proc.stdout,
                         "registered 127.0.0.1:9001 in api (weight 0, was already registered)\n")
        self.assertEqual(sub.message(), ("gantry:targets", "api"))
        self.assertEqual(self.hash("gantry:targets:api"),
                         {"127.0.0.1:9001": "0", "127.0.0.1:10000": "7"})

        # Sorted by address: port 9001 before 10000, which a text sort would invert.
        proc = self.gantry("list", "api")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ADDRESS", "WEIGHT", "STATE", "REASON", "SINCE",
                                            "DRAINED"])
        self.assertEqual([line.split() for line in lines[1:]],
                         [["127.0.0.1:9001", "0", "-", "-", "-", "-"],
                          ["127.0.0.1:10000", "7", "-", "-", "-", "-"]])

        proc = self.gantry("deregister", "api", "127.0.0.1:10000")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("deregistered 127.0.0.1:10000 from api", proc.stdout)
        self.assertEqual(self.hash("gantry:targets:api"), {"127.0.0.1:9001": "0"})
        self.assertEqual(sub.message(), ("gantry:targets", "api"))

        proc = self.gantry("deregister", "api", "127.0.0.1:10000")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr,
                         "gantry targets: 127.0.0.1:10000 is not registered in api\n")
        proc = self.gantry("deregister", "api", "127.0.0.1:9001")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.redis.command("EXISTS", "gantry:targets:api"), 0)
        self.assertEqual(self.gantry("list", "api").stdout, "no targets in api\n")

    def test_addresses_are_stored_canonical_and_registering_clears_drained(self):
        self.redis.command("HSET", "gantry:drained:api", "127.0.0.1:9001", "1763712625999")
        self.redis.command("HSET", "gantry:drained:api", "127.0.0.1:9009", "1763712625999")
        proc = self.gantry("register", "api", "localhost:9001", "--weight", "3")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "registered 127.0.0.1:9001 in api (weight 3); its drained "
                                      "mark is cleared\n")
        self.assertEqual(self.hash("gantry:targets:api"), {"127.0.0.1:9001": "3"})
        self.assertEqual(self.hash("gantry:drained:api"), {"127.0.0.1:9009": "1763712625999"})
        proc = self.gantry("register", "api", "[::1]:9001")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("[::1]:9001", self.hash("gantry:targets:api"))
        # Deregistering by the other spelling finds the stored one.
        proc = self.gantry("deregister", "api", "localhost:9001")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.hash("gantry:targets:api"), {"[::1]:9001": "1"})

    def test_invalid_addresses_weights_and_groups_exit_2_and_write_nothing(self):
        sub = self.subscribe("gantry:targets")
        cases = [
            (["register", "api", "127.0.0.1"], "invalid address '127.0.0.1'"),
            (["register", "api", "127.0.0.1:0"], "port must be a number from 1 to 65535"),
            (["register", "api", "127.0.0.1:70000"], "port must be a number from 1 to 65535"),
            (["register", "api", "example.com:80"], "neither an IPv4 address nor localhost"),
            (["register", "api", "[::1]"], "invalid address '[::1]'"),
            (["register", "api", "unix:/tmp/x.sock"], "a target is HOST:PORT"),
            (["register", "api", "*:80"], "a target is HOST:PORT"),
            (["register", "api", "127.0.0.1:9001", "--weight", "abc"], "invalid weight 'abc'"),
            (["register", "api", "127.0.0.1:9001", "--weight", "1000"], "invalid weight '1000'"),
            (["register", "api", "127.0.0.1:9001", "--weight", "-1"], "invalid weight '-1'"),
            (["register", "api", "127.0.0.1:9001", "--weight", ""], "invalid weight ''"),
            (["register", "a b", "127.0.0.1:9001"], "invalid group name 'a b'"),
            (["register", "x" * 33, "127.0.0.1:9001"], "invalid group name"),
            (["register", "api:x", "127.0.0.1:9001"], "invalid group name 'api:x'"),
            (["deregister", "api", "nonsense"], "invalid address 'nonsense'"),
            (["list", "a*"], "invalid group name 'a*'"),
            (["watch", "ok", "bad/name"], "invalid group name 'bad/name'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                proc = self.gantry(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)
                self.assertEqual(proc.stdout, "")
        self.assertEqual(self.redis.command("KEYS", "gantry:*"), [])
        with self.assertRaises(socket.timeout):
            sub.message(timeout=0.2)  # nothing was published either
        # The limits themselves are fine.
        for weight in ("0", "999"):
            proc = self.gantry("register", "x" * 32, "127.0.0.1:65535", "--weight", weight)
            self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.hash("gantry:targets:" + "x" * 32), {"127.0.0.1:65535": "999"})

    def test_unreachable_redis_is_one_line_and_exit_1(self):
        port = free_port()  # nothing listens there
        for args in (["register", "api", "127.0.0.1:9001"], ["deregister", "api", "127.0.0.1:1"],
                     ["list", "api"], ["list"]):
            with self.subTest(args=args):
                proc = self.gantry(*args, redis=f"redis://127.0.0.1:{port}")
                self.assertEqual(proc.returncode, 1)
                self.assertEqual(proc.stderr, f"gantry: cannot reach Redis at "
                                              f"redis://127.0.0.1:{port}: Connection refused\n")
                self.assertEqual(proc.stdout, "")
        missing = os.path.join(self.tmp, "nothing.sock")
        proc = self.gantry("list", redis=f"unix:{missing}")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr, f"gantry: cannot reach Redis at unix:{missing}: "
                                      f"No such file or directory\n")
        # The URL of a config file is used when --redis is not given.
        config = self.write_file("gantry.yaml", f"redis:\n  url: redis://127.0.0.1:{port}\n")
        proc = self.gantry("list", "-c", config, redis=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"cannot reach Redis at redis://127.0.0.1:{port}:", proc.stderr)
        config = self.write_file("good.yaml", f"redis:\n  url: {self.redis.url}\n")
        proc = self.gantry("register", "api", "127.0.0.1:9001", "-c", config, redis=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        # A Redis that answers with an error is another exit-1 case, said in one line.
        self.redis.command("SET", "gantry:targets:str", "not a hash")
        proc = self.gantry("list", "str")
        self.assertEqual(proc.returncode, 1)
        self.assertIn("refused HGETALL gantry:targets:str: WRONGTYPE", proc.stderr)

    def test_list_shows_health_drained_and_invalid_fields(self):
        self.redis.command("HSET", "gantry:targets:api", "127.0.0.1:9002", "2",
                           "127.0.0.1:9001", "1", "[::1]:9001", "4", "127.0.0.1:9005", "abc",
                           "bad field", "1")
        self.redis.command("HSET", "gantry:health:api", "127.0.0.1:9001", HEALTHY,
                           "127.0.0.1:9002",
                           '{"state":"unhealthy","reason":"Target.Timeout","since":1763712000000}',
                           "127.0.0.1:9003",
                           '{"state":"draining","reason":"Target.DeregistrationInProgress",'
                           '"since":1763712625123}', "[::1]:9001", "not json")
        self.redis.command("HSET", "gantry:drained:api", "127.0.0.1:9004", "1763712625999")
        proc = self.gantry("list", "api")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = [line.split() for line in proc.stdout.splitlines()[1:]
                if not line.startswith("note:")]
        self.assertEqual(rows, [
            ["127.0.0.1:9001", "1", "healthy", "-", "2025-11-21T08:10:25.123Z", "-"],
            ["127.0.0.1:9002", "2", "unhealthy", "Target.Timeout", "2025-11-21T08:00:00.000Z",
             "-"],
            # deregistered, still draining: in health only
            ["127.0.0.1:9003", "-", "draining", "Target.DeregistrationInProgress",
             "2025-11-21T08:10:25.123Z", "-"],
            ["127.0.0.1:9004", "-", "-", "-", "-", "2025-11-21T08:10:25.999Z"],
            ["127.0.0.1:9005", "invalid", "-", "-", "-", "-"],
            ["[::1]:9001", "4", "?", "-", "-", "-"],
            ["bad", "field", "invalid", "-", "-", "-", "-"],
        ])
        notes = [line for line in proc.stdout.splitlines() if line.startswith("note:")]
        self.assertEqual(len(notes), 2, proc.stdout)
        self.assertIn("invalid weight 'abc'", notes[0])
        self.assertIn("invalid address 'bad field'", notes[1])

    def test_list_without_group_scans_every_group(self):
        self.assertEqual(self.gantry("list").stdout,
                         f"no target groups in Redis at {self.redis.url}\n")
        # Enough other keys that SCAN takes several rounds.
        filler = []
        for i in range(3000):
            filler += [f"other:{i}", "x"]
        self.redis.command("MSET", *filler)
        for group, n in (("web", 1), ("api", 3), ("a-b_c", 2)):
            for i in range(n):
                self.assertEqual(self.gantry("register", group, f"127.0.0.1:{9000 + i}")
                                 .returncode, 0)
        self.redis.command("SET", "gantry:targets:not:a:group", "x")
        proc = self.gantry("list")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([line.split() for line in proc.stdout.splitlines()],
                         [["GROUP", "TARGETS"], ["a-b_c", "2"], ["api", "3"], ["web", "1"]])

    def test_database_and_unix_socket(self):
        url = f"{self.redis.url}/3"
        proc = self.gantry("register", "api", "127.0.0.1:9001", redis=url)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.redis.command("EXISTS", "gantry:targets:api"), 0)  # not in db 0
        _, flat = pipeline(self.redis.port, ["SELECT", "3"], ["HGETALL", "gantry:targets:api"])
        self.assertEqual(as_dict(flat), {"127.0.0.1:9001": "1"})
        proc = self.gantry("register", "web", "127.0.0.1:9002",
                           redis=f"unix:{self.redis.socket_path}")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.hash("gantry:targets:web"), {"127.0.0.1:9002": "1"})
        proc = self.gantry("list", redis=url)
        self.assertEqual(proc.stdout.split(), ["GROUP", "TARGETS", "api", "1"])

    def test_help_and_usage(self):
        proc = self.run_program("gantry", ["targets", "--help"])
        self.assertEqual(proc.returncode, 0)
        for text in ("register GROUP HOST:PORT [--weight N]", "deregister GROUP HOST:PORT",
                     "list [GROUP]", "watch GROUP...", "--redis URL", "--resync DURATION",
                     "-c, --config FILE", "0 to 999", "Exit status"):
            self.assertIn(text, proc.stdout)
        self.assertIn("targets", self.run_program("gantry", ["--help"]).stdout)
        cases = [
            ([], "which command?"),
            (["frob"], "unknown command 'frob'"),
            (["register", "api"], "register takes a group and an address"),
            (["list", "a", "b"], "list takes at most one group"),
            (["watch"], "watch takes one or more groups"),
            (["list", "--weight", "3"], "--weight is an option of register"),
            (["list", "--resync", "1s"], "--resync is an option of watch"),
            (["watch", "api", "--resync", "1ms"], "--resync '1ms'"),
            (["list", "--redis", "http://x"], "--redis 'http://x'"),
            (["list", "--bogus"], "unknown option"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                proc = self.run_program("gantry", ["targets", *args])
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)


class TargetsWatchTest(TargetsTestCase):
    def test_watch_follows_changes_through_pubsub(self):
        watch = self.watch("api", "web")
        self.wait_report(watch, "api", "no targets")
        self.wait_report(watch, "web", "no targets")
        start = time.monotonic()
        self.assertEqual(self.gantry("register", "api", "127.0.0.1:9001").returncode, 0)
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 1", timeout=5)
        # Resync is 60 s: only the message can have brought it this fast.
        self.assertLess(time.monotonic() - start, 1.5)

        self.gantry("register", "api", "127.0.0.1:10000", "--weight", "5")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 1, 127.0.0.1:10000 weight 5")
        self.gantry("register", "web", "[::1]:80")
        self.wait_report(watch, "web", "[::1]:80 weight 1")
        self.gantry("register", "other", "127.0.0.1:1")  # not followed
        self.gantry("register", "api", "127.0.0.1:9001", "--weight", "2")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 2, 127.0.0.1:10000 weight 5")
        self.gantry("deregister", "api", "127.0.0.1:9001")
        n = self.wait_report(watch, "api", "127.0.0.1:10000 weight 5")
        # A message that changes nothing reports nothing (the module de-duplicates).
        self.redis.command("PUBLISH", "gantry:targets", "api")
        self.gantry("register", "web", "127.0.0.1:81")
        self.wait_report(watch, "web", "127.0.0.1:81 weight 1, [::1]:80 weight 1")
        self.assertEqual(len(self.reports(watch, "api")), n)
        self.assertEqual(self.reports(watch, "other"), [])
        self.assertEqual(self.count(watch, "redis: connected to"), 1)
        self.stop_watch(watch, signal.SIGINT)

    def test_resync_heals_a_missed_message(self):
        watch = self.watch("api", resync="200ms")
        self.wait_report(watch, "api", "no targets")
        # Written without PUBLISH, as if the message were lost.
        self.redis.command("HSET", "gantry:targets:api", "127.0.0.1:9001", "3")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 3", timeout=5)
        self.redis.command("HDEL", "gantry:targets:api", "127.0.0.1:9001")
        self.wait_report(watch, "api", "no targets", timeout=5)
        self.stop_watch(watch)

    def test_watch_reconnects_after_a_redis_restart(self):
        watch = self.watch("api", extra=("--log-level", "debug"))
        self.wait_report(watch, "api", "no targets")
        self.gantry("register", "api", "127.0.0.1:9001")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 1")

        self.redis.program.stop()
        wait_until(lambda: self.count(watch, "redis: connection lost:"),
                   message="the loss in the log")
        # It keeps trying, with one warning for the whole outage.
        wait_until(lambda: self.count(watch, "still cannot connect") >= 2,
                   message="several attempts")
        self.assertEqual(self.count(watch, "retrying in") - self.count(watch, "still cannot"), 1,
                         watch.log())
        self.assertIn("retrying in 100ms", watch.log())
        self.assertIsNone(watch.proc.poll())

        self.restart_redis(self.redis)  # empty: it had no persistence
        wait_until(lambda: self.count(watch, "redis: connected to") == 2,
                   message="the reconnection", timeout=15)
        self.wait_report(watch, "api", "no targets")
        self.gantry("register", "api", "127.0.0.1:9002")
        self.wait_report(watch, "api", "127.0.0.1:9002 weight 1", timeout=5)
        self.stop_watch(watch)

    def test_watch_waits_for_a_redis_that_is_not_up_yet(self):
        port = free_port()
        watch = self.watch("api", redis=f"redis://127.0.0.1:{port}")
        wait_until(lambda: self.count(watch, f"cannot connect to redis://127.0.0.1:{port}: "
                                             f"Connection refused, retrying in 100ms"),
                   message="the first failure")
        redis = RedisServer.__new__(RedisServer)
        redis.port, redis.socket_path = port, os.path.join(self.tmp, "late.sock")
        self.restart_redis(redis)
        wait_until(lambda: self.count(watch, "redis: connected to"), timeout=15,
                   message="the connection")
        self.wait_report(watch, "api", "no targets")
        self.assertEqual(self.count(watch, "cannot connect"), 1, watch.log())
        self.stop_watch(watch)

    def test_watch_skips_invalid_fields_with_one_warning_each(self):
        self.redis.command("HSET", "gantry:targets:api", "127.0.0.1:9001", "3",
                           "nonsense", "1", "10.0.0.1:0", "1", "127.0.0.1:9002", "abc",
                           "127.0.0.1:9003", "5000", "localhost:9001", "1",
                           "unix:/tmp/x", "1", "bad\x01byte:1", "1")
        watch = self.watch("api", resync="100ms", extra=("--log-level", "debug"))
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 3")
        warnings = [line for line in watch.log().splitlines() if "skipping" in line]
        self.assertEqual(len(warnings), 7, watch.log())
        for text in ("invalid address 'nonsense'", "invalid address '10.0.0.1:0'",
                     "invalid weight 'abc' for 127.0.0.1:9002",
                     "invalid weight '5000' for 127.0.0.1:9003",
                     "'localhost:9001': the same target as '127.0.0.1:9001'",
                     "invalid address 'unix:/tmp/x'", "invalid address 'bad\\x01byte:1'"):
            self.assertTrue(any(text in w for w in warnings), (text, warnings))
        # Several reads later, still one warning each.
        reads = self.count(watch, "reading the 1 followed groups again")
        wait_until(lambda: self.count(watch, "reading the 1 followed groups again") >= reads + 3,
                   message="three more reads")
        self.assertEqual(self.count(watch, "skipping"), 7, watch.log())
        # A new bad field is one more warning; fixing one brings its target in.
        self.redis.command("HSET", "gantry:targets:api", "127.0.0.1:9004", "x")
        self.redis.command("HSET", "gantry:targets:api", "127.0.0.1:9002", "2")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 3, 127.0.0.1:9002 weight 2")
        wait_until(lambda: self.count(watch, "skipping") == 8, message="the new warning")
        self.assertEqual(len(self.reports(watch, "api")), 2, watch.log())
        self.stop_watch(watch)

    def test_watch_takes_the_first_1000_members(self):
        fields = []
        for i in range(1005):
            fields += [f"127.0.0.{1 + i // 500}:{10000 + i % 500}", "1"]
        self.redis.command("HSET", "gantry:targets:big", *fields)
        watch = self.watch("big")
        wait_until(lambda: self.reports(watch, "big"), message="the report")
        members = self.reports(watch, "big")[0].split(", ")
        self.assertEqual(len(members), 1000)
        self.assertEqual(members[0], "127.0.0.1:10000 weight 1")
        self.assertEqual(members[499], "127.0.0.1:10499 weight 1")
        self.assertEqual(members[-1], "127.0.0.2:10499 weight 1")  # the 1000th by address
        self.assertFalse(any(m.startswith("127.0.0.3:") for m in members))
        self.assertEqual(self.count(watch, "gantry:targets:big has 1005 targets; using the first "
                                           "1000 by address"), 1)
        self.stop_watch(watch)

    def test_watch_drops_a_stalled_redis_and_comes_back(self):
        config = self.write_file("gantry.yaml", "redis:\n  connect_timeout: 300ms\n")
        watch = self.watch("api", resync="100ms", extra=("-c", config))
        self.wait_report(watch, "api", "no targets")
        self.redis.program.signal(signal.SIGSTOP)
        try:
            wait_until(lambda: self.count(watch, "redis: connection lost: no answer for 300ms"),
                       message="the stall detected")
        finally:
            self.redis.program.signal(signal.SIGCONT)
        wait_until(lambda: self.count(watch, "redis: connected to") == 2,
                   message="the reconnection")
        self.gantry("register", "api", "127.0.0.1:9001")
        self.wait_report(watch, "api", "127.0.0.1:9001 weight 1")
        self.stop_watch(watch)

    def test_watch_reads_its_database_and_over_a_unix_socket(self):
        watch = self.watch("api", redis=f"{self.redis.url}/2")
        unix_watch = self.watch("api", redis=f"unix:{self.redis.socket_path}")
        self.wait_report(watch, "api", "no targets")
        self.wait_report(unix_watch, "api", "no targets")
        self.gantry("register", "api", "127.0.0.1:9001")  # db 0
        self.wait_report(unix_watch, "api", "127.0.0.1:9001 weight 1")
        self.gantry("register", "api", "127.0.0.1:9002", redis=f"{self.redis.url}/2")
        # Pub/sub spans databases; each watch reads its own.
        self.wait_report(watch, "api", "127.0.0.1:9002 weight 1")
        self.assertEqual(self.reports(watch, "api"), ["no targets", "127.0.0.1:9002 weight 1"])
        self.assertEqual(self.reports(unix_watch, "api")[-1], "127.0.0.1:9001 weight 1")
        self.stop_watch(watch)
        self.stop_watch(unix_watch)
