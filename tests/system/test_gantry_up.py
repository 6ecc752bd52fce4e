"""`gantry up` and the rest of bin/gantry's command line, on the real binaries: the managed
redis-server, the demo workload, readiness, output prefixing, restarts, the stop order, and that
nothing it started outlives it. The demo cases need a working bin/gantry-demo-app and are skipped
while it is not built."""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import unittest

from core_fixtures import task_pids
from harness import (BIN, ROOT, GantryTestCase, Program, _read_resp, binary, free_port,
                     http_request, pids_of, wait_until)


def demo_app_available():
    """The demo workload is another engineer's: run its cases once it serves (--listen in help)."""
    try:
        proc = subprocess.run([binary("gantry-demo-app"), "--help"], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "--listen" in proc.stdout


DEMO = demo_app_available()
NEEDS_DEMO = "bin/gantry-demo-app is not built yet"


def autoscaler_available():
    """gantry-autoscaler is another engineer's: until it is built, the cases that need one run a
    stand-in (GantryUpTest.bin_dir_with_fake_autoscaler)."""
    try:
        proc = subprocess.run([binary("gantry-autoscaler"), "--help"], capture_output=True,
                              timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


AUTOSCALER = autoscaler_available()
# A scalable target is all `gantry up` looks at to run gantry-autoscaler.
SCALABLE_TARGET = """autoscaler:
  scalable_targets:
    - {ServiceNamespace: ecs, ResourceId: service/default/web,
       ScalableDimension: "ecs:service:DesiredCount", MinCapacity: 1, MaxCapacity: 2}
"""


def unix_command(path, *words):
    """One RESP command over a unix socket; the reply, or None when nothing answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            s.sendall((f"*{len(words)}\r\n" + "".join(
                f"${len(str(w).encode())}\r\n{w}\r\n" for w in words)).encode())
            return _read_resp(s.makefile("rb"))
    except OSError:
        return None


class GantryUpTest(GantryTestCase):
    def setUp(self):
        super().setUp()
        self.run_dir = os.path.join(self.tmp, "run")
        self.socket_path = os.path.join(self.run_dir, "redis.sock")
        self.demo_port = free_port()
        self.demo_addr = f"127.0.0.1:{self.demo_port}"

    def write_config(self, demo=False, up_extra="", extra="", name="gantry.yaml",
                     ready_timeout="5s"):
        """Small timeouts and backoffs keep the suite fast; run_dir is relative on purpose (it is
        resolved against the working directory, self.tmp)."""
        text = (f"up:\n  run_dir: run\n  ready_timeout: {ready_timeout}\n  stop_timeout: 3s\n"
                "  restart_backoff_min: 50ms\n  restart_backoff_max: 200ms\n" + up_extra +
                "core:\n  listen: 127.0.0.1:0\n" + "metrics:\n  admin: 127.0.0.1:0\n" +
                (f"demo:\n  enabled: true\n  listen: {self.demo_addr}\n  body_size: 100\n"
                 if demo else "demo:\n  enabled: false\n") + extra)
        return self.write_file(name, text)

    def start_up(self, config, args=()):
        up = self.start_program("gantry", ["up", "-c", config, *args])
        return up, up.wait_ready()

    def leftovers(self):
        """Processes started for this test: the managed redis names the temp dir on its command
        line, the demo its port."""
        return pids_of(self.run_dir) + pids_of(f"gantry-demo-app.*:{self.demo_port}")

    def assert_nothing_left(self):
        wait_until(lambda: not self.leftovers(), message="no process left behind")

    def bin_dir_with_fake_autoscaler(self):
        """A copy of bin/gantry (`gantry up` runs the programs beside its own binary) next to the
        real daemons and a stand-in gantry-autoscaler: a script that prints its arguments,
        announces readiness with no address as the real one does (daemon_ready(NULL, 0)), and
        exits on SIGTERM."""
        bin_dir = os.path.join(self.tmp, "bin")
        os.mkdir(bin_dir)
        shutil.copy2(binary("gantry"), bin_dir)
        for name in ("gantry-core", "gantry-lb", "gantry-metrics", "gantry-demo-app"):
            os.symlink(binary(name), os.path.join(bin_dir, name))
        script = os.path.join(bin_dir, "gantry-autoscaler")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    'echo "fake autoscaler: $*"\n'
                    "trap 'echo fake autoscaler: stopping; exit 0' TERM\n"
                    "echo READY >&3\n"  # GANTRY_READY_FD is always 3 in a child of gantry up
                    "exec 3>&-\n"
                    "sleep 600 &\n"
                    "wait\n")
        os.chmod(script, 0o755)
        return bin_dir

    def start_gantry_in(self, bin_dir, args):
        """BIN_DIR/gantry ARGS, as start_program runs bin/gantry."""
        log_path = os.path.join(self.tmp, f"gantry-{len(self.programs)}.log")
        program = Program([os.path.join(bin_dir, "gantry"), *args], log_path, cwd=self.tmp)
        self.programs.append(program)
        return program

    # --- the managed redis-server ---

    def test_up_runs_its_own_redis_and_stops_on_sigint(self):
        up, addrs = self.start_up(self.write_config())
        self.assertEqual(addrs[0], "unix:" + self.socket_path)
        self.assertEqual(len(addrs), 3, addrs)  # and gantry-core's API, gantry-metrics' admin
        self.assertEqual(unix_command(self.socket_path, "PING"), "PONG")
        self.assertEqual(stat.S_IMODE(os.stat(self.socket_path).st_mode), 0o700)
        self.assertTrue(os.path.isdir(os.path.join(self.run_dir, "redis")))
        self.assertTrue(pids_of(self.run_dir), "the managed redis names its socket in ps")
        wait_until(lambda: "redis   | " in up.log(), message="redis output, prefixed")
        self.assertIn("gantry: up — redis unix:" + self.socket_path, up.log())
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()
        self.assertIn("redis stopped", up.log())

    def test_redis_data_survives_a_restart_of_gantry_up(self):
        config = self.write_config()
        up, _ = self.start_up(config)
        self.assertEqual(unix_command(self.socket_path, "SET", "gantry:test", "kept"), "OK")
        up.signal(signal.SIGTERM)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()
        up, _ = self.start_up(config)
        self.assertEqual(unix_command(self.socket_path, "GET", "gantry:test"), "kept")
        up.signal(signal.SIGTERM)
        self.assertEqual(up.wait(), 0, up.log())

    def test_crashed_redis_is_restarted(self):
        up, _ = self.start_up(self.write_config())
        [pid] = pids_of("redis-server.*" + self.run_dir)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pids_of("redis-server.*" + self.run_dir) not in ([], [pid]),
                   message="a new redis")
        wait_until(lambda: unix_command(self.socket_path, "PING") == "PONG",
                   message="redis answering again")
        log = up.log()
        self.assertIn(f"redis (pid {pid}) was killed by signal 9", log)
        self.assertIn("restarting it in 50ms", log)
        wait_until(lambda: "restarted redis" in up.log(), message="the restart logged")
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()

    def test_sigkill_of_gantry_up_leaves_no_child_behind(self):
        up, _ = self.start_up(self.write_config(demo=DEMO))
        self.assertTrue(self.leftovers())
        up.signal(signal.SIGKILL)
        up.wait()
        self.assert_nothing_left()

    def test_a_second_gantry_up_on_the_same_run_dir_is_refused(self):
        config = self.write_config()
        up, _ = self.start_up(config)
        proc = self.run_program("gantry", ["up", "-c", config])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"another `gantry up` (pid {up.pid}) is running", proc.stderr)
        self.assertEqual(unix_command(self.socket_path, "PING"), "PONG")
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())

    def test_missing_redis_server_is_one_clear_line(self):
        for program, why in [("/nonexistent/redis-server", "No such file or directory"),
                             ("no-such-redis-server", "not found in PATH")]:
            with self.subTest(program=program):
                config = self.write_config(up_extra=f"  redis_server: {program}\n")
                proc = self.run_program("gantry", ["up", "-c", config])
                self.assertEqual(proc.returncode, 1, proc.stderr)
                name = os.path.basename(program)
                self.assertEqual(proc.stderr.strip(),
                                 f"gantry: cannot run {name} '{program}': {why} (install it: "
                                 "make deps, or apt-get install redis-server)")
                self.assertFalse(pids_of(self.run_dir))

    def test_configured_redis_url_starts_no_redis(self):
        redis = self.start_redis()
        for how, config, args in [
                ("config", self.write_config(extra=f"redis:\n  url: {redis.url}\n"), []),
                ("--redis", self.write_config(name="plain.yaml"), ["--redis", redis.url])]:
            with self.subTest(how=how):
                up, addrs = self.start_up(config, args)
                self.assertEqual(len(addrs), 2, addrs)  # gantry-core's API, gantry-metrics' admin
                self.assertTrue(addrs[0].startswith("http://127.0.0.1:"), addrs)
                self.assertIn(f"redis {redis.url}/0 (external)", up.log())
                self.assertFalse(os.path.exists(self.run_dir))
                self.assertFalse(pids_of(self.run_dir))
                up.signal(signal.SIGINT)
                self.assertEqual(up.wait(), 0, up.log())

    # --- programs that fail to start ---

    def fake_redis(self, body):
        """A stand-in for redis-server (up.redis_server), to fail in the ways a program can."""
        path = self.write_file("fake-redis", "#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return self.write_config(up_extra=f"  redis_server: {path}\n", ready_timeout="1s")

    def test_program_exiting_before_ready_fails_with_its_last_lines(self):
        config = self.fake_redis("echo 'fake redis: cannot open its data'\nexit 3\n")
        proc = self.run_program("gantry", ["up", "-c", config])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("redis   | fake redis: cannot open its data", proc.stdout)
        self.assertIn("gantry: redis exited with status 3 before it was ready", proc.stderr)
        # stdout and stderr are different pipes here: the last lines are repeated on stderr.
        self.assertIn("  redis   | fake redis: cannot open its data", proc.stderr)

    def test_program_not_ready_in_time_is_stopped_with_its_process_group(self):
        # The server runs as a grandchild: only a stop of the whole process group reaches it.
        config = self.fake_redis(
            "python3 -c 'import time; time.sleep(60)' \"$@\" &\nwait\n")
        proc = self.run_program("gantry", ["up", "-c", config])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertRegex(proc.stderr, r"gantry: redis \(pid \d+\) was not ready within 1s")
        self.assert_nothing_left()

    def test_overlong_output_lines_are_split(self):
        config = self.fake_redis("python3 -c 'print(\"x\" * 10000)'\nexit 1\n")
        proc = self.run_program("gantry", ["up", "-c", config])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        pieces = [line for line in proc.stdout.splitlines() if line.startswith("redis   | x")]
        self.assertEqual([len(p) - len("redis   | ") for p in pieces], [4096, 4096, 1808])

    # --- the demo workload ---

    @unittest.skipUnless(DEMO, NEEDS_DEMO)
    def test_full_stack_serves_the_demo_and_stops_in_order(self):
        up, addrs = self.start_up(self.write_config(demo=True))
        self.assertEqual([addrs[0], addrs[2]], ["unix:" + self.socket_path, self.demo_addr])
        self.assertTrue(addrs[1].startswith("http://127.0.0.1:"), addrs)  # gantry-core's API
        status, _, body = http_request(addrs[2])
        self.assertEqual((status, len(body)), (200, 100))
        self.assertEqual(unix_command(self.socket_path, "PING"), "PONG")
        self.assertIn(f"demo http://{self.demo_addr}/, metrics http://127.0.0.1:", up.log())
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()
        log = up.log()
        self.assertLess(log.index("demo stopped"), log.index("core stopped"))
        self.assertLess(log.index("core stopped"), log.index("redis stopped"))

    @unittest.skipUnless(DEMO, NEEDS_DEMO)
    def test_crashed_demo_is_restarted_and_serves_again(self):
        up, addrs = self.start_up(self.write_config(demo=True))
        pattern = f"gantry-demo-app.*:{self.demo_port}"
        [pid] = pids_of(pattern)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: pids_of(pattern) not in ([], [pid]), message="a new demo app")
        wait_until(lambda: "demo is ready" in up.log().split("restarted demo")[-1],
                   message="the new demo ready")
        self.assertEqual(http_request(addrs[2])[0], 200)
        self.assertIn(f"demo (pid {pid}) was killed by signal 9", up.log())
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()

    @unittest.skipUnless(DEMO, NEEDS_DEMO)
    def test_demo_port_in_use_fails_and_stops_redis(self):
        with socket.socket() as busy:
            busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            busy.bind(("127.0.0.1", self.demo_port))
            busy.listen()
            proc = self.run_program("gantry", ["up", "-c", self.write_config(demo=True)])
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        demo_lines = [line for line in proc.stdout.splitlines() if line.startswith("demo    | ")]
        self.assertTrue(any(self.demo_addr in line for line in demo_lines), proc.stdout)
        self.assertIn("gantry: demo exited with status", proc.stderr)
        self.assert_nothing_left()

    # --- the demo service: gantry-core's tasks behind gantry-lb ---

    def served_task_ids(self, addr, n=20):
        ids = set()
        for _ in range(n):
            status, headers, _ = http_request(addr)
            self.assertEqual(status, 200)
            ids.add(headers["x-task-id"])
        return ids

    def wait_two_tasks_serving(self, addr):
        """Both tasks of the demo service answer through the balancer (ids are ECS task ids)."""
        def two():
            try:
                ids = self.served_task_ids(addr)
            except (OSError, AssertionError):
                return None
            return len(ids) == 2 and ids
        ids = wait_until(two, timeout=20, interval=0.2, message="two demo tasks behind gantry-lb")
        for task_id in ids:
            self.assertRegex(task_id, r"^[0-9a-f]{32}$")
        return ids

    def stop_and_check_nothing_left(self, up):
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(timeout=30), 0, up.log())
        self.assertEqual(task_pids(self.run_dir), [], "a task outlived gantry up")
        self.assert_nothing_left()
        log = up.log()
        self.assertLess(log.index("lb stopped"), log.index("core stopped"))

    def test_demo_example_runs_the_service_behind_the_balancer(self):
        """config/examples/demo.yaml, with free ports and the demo's absolute path; its
        gantry-autoscaler calls this gantry-core (or, until it is built, is left out: no scalable
        target)."""
        core_port = free_port()
        autoscaler = (f"autoscaler:\n  ecs_endpoint: http://127.0.0.1:{core_port}\n" if AUTOSCALER
                      else "autoscaler:\n  scalable_targets: []\n  policies: []\n")
        override = self.write_file("override.yaml", f"""\
up:
  run_dir: run
  stop_timeout: 10s
core:
  listen: 127.0.0.1:{core_port}
  run_dir: {self.run_dir}
  task_definitions:
    - family: demo
      containerDefinitions:
        - name: web
          image: gantry/demo-app
          command: ["{binary("gantry-demo-app")}"]
          memoryReservation: 32
          portMappings: [{{containerPort: 8080}}]
metrics:
  admin: 127.0.0.1:0
lb:
  admin: 127.0.0.1:0
  listeners:
    - name: web
      listen: 127.0.0.1:0
      default_action: {{type: forward, target_group: demo}}
""" + autoscaler)
        up, addrs = self.start_up(os.path.join(ROOT, "config/examples/demo.yaml"),
                                  ["-c", override])
        self.assertEqual(addrs[1], f"http://127.0.0.1:{core_port}")
        listener = addrs[2]
        self.wait_two_tasks_serving(listener)
        self.assertIn("(service demo) has reached a steady state.", up.log())
        self.assertEqual("autoscaler is ready" in up.log(), AUTOSCALER)
        self.stop_and_check_nothing_left(up)

    def test_embedded_config_is_the_demo_example(self):
        """cli/up.c's embedded defaults are config/examples/demo.yaml but for its comments and the
        demo's absolute path. `gantry up` writes them, then fails at once: no redis-server in its
        PATH here, so nothing is started."""
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        proc = self.run_program("gantry", ["up"], env={"PATH": empty})
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("not found in PATH", proc.stderr)

        def lines(text):
            return [line for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
        with open(os.path.join(self.run_dir, "gantry-up.yaml")) as f:
            embedded = f.read()
        with open(os.path.join(ROOT, "config/examples/demo.yaml")) as f:
            example = f.read()
        demo_app = os.path.realpath(binary("gantry-demo-app"))
        self.assertIn(f'["{demo_app}"]', embedded)
        self.assertEqual(lines(embedded.replace(demo_app, "bin/gantry-demo-app")), lines(example))

    def test_without_a_config_it_runs_the_embedded_demo_service(self):
        """`make run`: no -c; the demo service on 127.0.0.1:8080, the API on 127.0.0.1:9300, and
        gantry-autoscaler (a stand-in until bin/gantry-autoscaler is built)."""
        bin_dir = BIN if AUTOSCALER else self.bin_dir_with_fake_autoscaler()
        up = self.start_gantry_in(bin_dir, ["up"])
        addrs = up.wait_ready()
        self.assertIn("http://127.0.0.1:9300", addrs)
        self.assertIn("127.0.0.1:8080", addrs)
        self.wait_two_tasks_serving("127.0.0.1:8080")
        self.assertIn("autoscaler is ready", up.log())
        with open(os.path.join(self.run_dir, "gantry-up.yaml")) as f:
            self.assertIn(os.path.join(bin_dir, "gantry-demo-app"), f.read())
        # `gantry status` finds the Redis `gantry up` runs by itself (its socket in run/)
        status = self.run_program("gantry", ["status"])
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertRegex(status.stdout, r"demo +default +ACTIVE +2/2/0 +demo:1")
        self.stop_and_check_nothing_left(up)

    # --- gantry-autoscaler ---

    def test_autoscaler_starts_last_and_stops_first(self):
        """With a scalable target, gantry-autoscaler runs after gantry-metrics with the same files
        and Redis; it announces no address; on a stop it goes first. Without one it is not run."""
        bin_dir = self.bin_dir_with_fake_autoscaler()
        config = self.write_config(extra=SCALABLE_TARGET)
        up = self.start_gantry_in(bin_dir, ["up", "-c", config])
        addrs = up.wait_ready()
        self.assertEqual(len(addrs), 3, addrs)  # redis, gantry-core's API, gantry-metrics' admin
        log = up.log()
        self.assertIn(f"autoscaler | fake autoscaler: -c {config} --redis unix:{self.socket_path}",
                      log)
        self.assertLess(log.index("metrics is ready"), log.index("fake autoscaler: -c"))
        self.assertRegex(log, r"metrics http://127\.0\.0\.1:\d+/, autoscaler; Ctrl-C to stop")
        self.assertRegex(log, r"(?m)autoscaler is ready$")
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assert_nothing_left()
        log = up.log()
        self.assertIn("fake autoscaler: stopping", log)
        order = [log.index(f"{name} stopped") for name in ("autoscaler", "metrics", "core",
                                                            "redis")]
        self.assertEqual(order, sorted(order), log)

        # an autoscaler section without scalable targets runs no autoscaler
        config = self.write_config(name="none.yaml",
                                   extra="autoscaler:\n  scalable_targets: []\n")
        up = self.start_gantry_in(bin_dir, ["up", "-c", config])
        self.assertEqual(len(up.wait_ready()), 3)
        up.signal(signal.SIGINT)
        self.assertEqual(up.wait(), 0, up.log())
        self.assertNotIn("autoscaler", up.log())
        self.assertIn("metrics | ", up.log())  # the prefixes as wide as the longest name run

    # --- the command line ---

    def test_check_with_good_and_bad_configuration(self):
        good = self.write_config()
        proc = self.run_program("gantry", ["up", "--check", "-c", good])
        self.assertEqual((proc.returncode, proc.stdout), (0, "configuration OK\n"), proc.stderr)
        bad = self.write_file("bad.yaml", "up:\n  stop_timeout: soon\n")
        proc = self.run_program("gantry", ["up", "--check", "-c", bad])
        self.assertEqual(proc.returncode, 1)
        self.assertTrue(proc.stderr.startswith(f"{bad}:2:17: invalid value 'soon'"), proc.stderr)
        self.assertFalse(os.path.exists(self.run_dir), "--check starts nothing")

    def test_unknown_command_and_arguments(self):
        proc = self.run_program("gantry", ["frobnicate"])
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("unknown command 'frobnicate'", proc.stderr)
        self.assertEqual(self.run_program("gantry", []).returncode, 2)
        self.assertEqual(self.run_program("gantry", ["up", "extra"]).returncode, 2)
        self.assertEqual(self.run_program("gantry", ["up", "--bogus"]).returncode, 2)
        for args in (["--help"], ["help"]):
            proc = self.run_program("gantry", args)
            self.assertEqual(proc.returncode, 0)
            self.assertIn("  up ", proc.stdout)
        proc = self.run_program("gantry", ["version"])
        self.assertEqual(proc.returncode, 0)
        self.assertTrue(proc.stdout.startswith("gantry "))

    def test_config_keys_lists_every_key(self):
        proc = self.run_program("gantry", ["config", "--keys"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        self.assertTrue(all(len(r) == 4 and r[3] for r in rows), proc.stdout)
        keys = {r[0]: (r[1], r[2]) for r in rows}
        expected = {
            "log.level": ("enum", "info"), "redis.url": ("Redis URL", ""),
            "redis.connect_timeout": ("duration", "2s"), "up.run_dir": ("string", "run"),
            "up.redis_server": ("string", "redis-server"),
            "up.ready_timeout": ("duration", "10s"), "up.stop_timeout": ("duration", "10s"),
            "up.restart_backoff_min": ("duration", "500ms"),
            "up.restart_backoff_max": ("duration", "30s"), "demo.enabled": ("bool", "true"),
            "demo.listen": ("address", "127.0.0.1:8080"), "demo.body_size": ("size", "16"),
            "demo.latency": ("duration", "0s"), "demo.cpu": ("duration", "0s")}
        for key, value in expected.items():
            self.assertEqual(keys.get(key), value, key)
        # Every key of the YAML view is listed too (sections other engineers add included).
        yaml_keys = set()
        section = None
        for line in self.run_program("gantry", ["config"]).stdout.splitlines():
            if line and not line.startswith((" ", "#")):
                section = line.rstrip(":")
            elif line.startswith("  ") and not line.startswith("   ") and ":" in line:
                yaml_keys.add(f"{section}.{line.strip().split(':')[0]}")
        self.assertTrue(yaml_keys <= set(keys) | {k.rsplit(".", 1)[0] for k in keys},
                        yaml_keys - set(keys))

    def test_config_prints_the_effective_configuration_which_loads_back(self):
        config = self.write_config(demo=True)
        first = self.run_program("gantry", ["config", "-c", config])
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("up:\n  run_dir: \"run\"\n", first.stdout)
        self.assertIn("  restart_backoff_min: 50ms\n", first.stdout)
        self.assertIn(f"  listen: \"{self.demo_addr}\"\n", first.stdout)
        self.assertIn("  level: info\n", first.stdout)  # a default, shown too
        printed = self.write_file("printed.yaml", first.stdout)
        second = self.run_program("gantry", ["config", "-c", printed])
        self.assertEqual(second.stdout, first.stdout, second.stderr)
