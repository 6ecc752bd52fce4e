#!/usr/bin/env python3
"""gantry-core benchmark client (stdlib only), run by perf/bench_core.sh against a gantry-core and a
redis-server it started: drives the raw ECS API (JSON 1.1 over HTTP), reads Redis over RESP, and
watches the task processes in /proc. See perf/README.md, section "gantry-core".

Phases, each timed from the API call that starts it, polled every POLL seconds with a deadline:
  up    CreateService (or UpdateService) to COUNT: until runningCount == COUNT and COUNT members in
        gantry:targets:GROUP ("registered"), and until every member answers GET /health ("http");
  down  UpdateService to 0: until the hash is empty, runningCount == 0 and no task process is left;
  idle  IDLE_COUNT tasks, then gantry-core's and redis-server's CPU (utime + stime from
        /proc/PID/stat) over IDLE_SECONDS, and their RSS.
Writes raw.tsv and results.json in --out, prints progress on stderr and the summary on stdout.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import sys
import time

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
JSON_TYPE = "application/x-amz-json-1.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def note(msg):
    print(f"   {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Clients


class Ecs:
    """The ECS API over one keep-alive connection; every call's latency is kept per phase."""

    def __init__(self, addr, timeout):
        host, port = addr.rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = None
        self.latencies = []

    def call(self, action, payload=None):
        body = json.dumps(payload or {}).encode()
        headers = {"X-Amz-Target": TARGET_PREFIX + action, "Content-Type": JSON_TYPE}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            t0 = time.monotonic()
            try:
                self.conn.request("POST", "/", body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                # Only a kept-alive connection the server closed is retried (once): a timeout is
                # an answer that did not come, and a mutating call must not be sent twice.
                closed = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                        ConnectionResetError))
                if attempt == 2 or not closed:
                    raise BenchError(f"{action}: {e}") from e
                continue
            self.latencies.append(time.monotonic() - t0)
            doc = json.loads(data) if data else {}
            if resp.status != 200:
                raise BenchError(f"{action}: HTTP {resp.status}: {doc}")
            return doc
        raise AssertionError("unreachable")

    def take_latencies(self):
        out, self.latencies = self.latencies, []
        return out


class Redis:
    """Just enough RESP for HLEN, HKEYS, INFO."""

    def __init__(self, addr, timeout=10):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.sent = 0  # commands this client sent: subtracted from the server's count

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(max(65536, n + 2 - len(self.buf)))
            if not chunk:
                raise BenchError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise BenchError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise BenchError(f"redis: unexpected reply {line[:40]!r}")

    def cmd(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = str(a).encode()
            out.append(f"${len(b)}\r\n".encode() + b + b"\r\n")
        self.sock.sendall(b"".join(out))
        self.sent += 1
        return self._reply()

    def commands(self):
        """The server's total_commands_processed, less this client's own commands (this INFO
        included): what everybody else (gantry-core) sent. MULTI and EXEC count as commands."""
        info = self.cmd("INFO", "stats")
        for line in info.splitlines():
            if line.startswith("total_commands_processed:"):
                return int(line.split(":")[1]) - self.sent
        raise BenchError("redis: no total_commands_processed in INFO stats")


# ---------------------------------------------------------------------------------------------
# /proc


def proc_stat(pid):
    """(state, utime + stime ticks, starttime) or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[11]) + int(fields[12]), int(fields[19])


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def task_pids(run_dir):
    """Processes whose working directory is under run_dir/tasks: the tasks gantry-core runs."""
    prefix = os.path.join(run_dir, "tasks") + "/"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(prefix):
            pids.append(int(entry))
    return pids


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def http_ok(member, timeout=1.0):
    """Whether HOST:PORT answers GET /health with 200."""
    host, port = member.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(1024)
                if not chunk:
                    break
                head += chunk
            return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, a):
        self.a = a
        self.ecs = Ecs(a.api, timeout=max(30, a.timeout))
        self.redis = Redis(a.redis)
        self.key = f"gantry:targets:{a.group}"
        self.rows = []  # (phase, round, tasks, metric, value)
        self.results = {"settings": vars(a)}

    def record(self, phase, rnd, tasks, metric, value):
        self.rows.append((phase, rnd, tasks, metric, value))

    def describe(self, svc):
        doc = self.ecs.call("DescribeServices", {"cluster": "default", "services": [svc]})
        if not doc.get("services"):
            raise BenchError(f"service {svc} not found: {doc}")
        return doc["services"][0]

    def steady_event_at(self, svc_doc, since_wall):
        """Seconds from since_wall to gantry-core's newest 'steady state' event after it."""
        for ev in svc_doc.get("events", []):
            if ev["message"].endswith("has reached a steady state.") and ev["createdAt"] >= since_wall:
                return ev["createdAt"] - since_wall
        return None

    def register_taskdef(self):
        td = {
            "family": "bench-demo",
            "containerDefinitions": [{
                "name": "web",
                "image": "gantry/demo-app",
                "command": [self.a.demo],
                "memoryReservation": self.a.memory_reservation,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            }],
        }
        doc = self.ecs.call("RegisterTaskDefinition", td)
        return doc["taskDefinition"]["taskDefinitionArn"]

    def create_service(self, name, td_arn, count):
        return self.ecs.call("CreateService", {
            "cluster": "default", "serviceName": name, "taskDefinition": td_arn,
            "desiredCount": count, "launchType": "PROCESS",
            "loadBalancers": [{"targetGroupArn": self.a.group, "containerName": "web",
                               "containerPort": 8080}],
        })

    def update(self, name, count):
        return self.ecs.call("UpdateService", {"cluster": "default", "service": name,
                                               "desiredCount": count})

    # --- phases -----------------------------------------------------------------------------

    def up(self, phase, rnd, name, count, start, timeout):
        """start() issues the call; then polls until running + registered and until HTTP."""
        self.ecs.take_latencies()
        cmds0 = self.redis.commands()
        t_wall = time.time()
        t0 = time.monotonic()
        start()
        call_s = time.monotonic() - t0
        deadline = t0 + timeout
        t_reg = t_http = None
        answered = set()
        polls = 0
        svc = None
        while True:
            now = time.monotonic()
            if now > deadline:
                raise BenchError(
                    f"{phase} round {rnd}: after {timeout:.0f} s: runningCount "
                    f"{svc and svc['runningCount']}, {self.redis.cmd('HLEN', self.key)} registered, "
                    f"{len(answered)} answering HTTP (want {count})")
            polls += 1
            members = set(self.redis.cmd("HKEYS", self.key))
            if t_reg is None:
                svc = self.describe(name)
                if svc["runningCount"] == count and len(members) == count:
                    t_reg = time.monotonic() - t0
            for m in members - answered:
                if http_ok(m):
                    answered.add(m)
            if t_http is None and len(answered & members) >= count:
                t_http = time.monotonic() - t0
            if t_reg is not None and t_http is not None:
                break
            time.sleep(self.a.poll)
        lat = self.ecs.take_latencies()
        cmds = self.redis.commands() - cmds0
        # gantry-core's own "steady state" event (its clock): a check on the polling's resolution
        steady = None
        for _ in range(50):
            steady = self.steady_event_at(self.describe(name), t_wall)
            if steady is not None:
                break
            time.sleep(0.1)
        self.record(phase, rnd, count, "call_s", call_s)
        self.record(phase, rnd, count, "registered_s", t_reg)
        self.record(phase, rnd, count, "http_s", t_http)
        self.record(phase, rnd, count, "steady_event_s", steady if steady is not None else float("nan"))
        self.record(phase, rnd, count, "api_max_ms", max(lat) * 1000)
        self.record(phase, rnd, count, "polls", polls)
        self.record(phase, rnd, count, "redis_cmds_per_task", cmds / count)
        self.record(phase, rnd, count, "core_rss_kb", rss_kb(self.a.core_pid))
        note(f"{count} tasks RUNNING and registered after {t_reg:.3f} s, all answering HTTP after "
             f"{t_http:.3f} s ({t_reg / count * 1000:.2f} ms per task; the call itself "
             f"{call_s * 1000:.1f} ms; core's steady-state event "
             f"at {steady if steady is not None else float('nan'):.3f} s; slowest API answer "
             f"{max(lat) * 1000:.1f} ms over {len(lat)} calls; {cmds / count:.1f} Redis commands "
             f"per task; gantry-core RSS {rss_kb(self.a.core_pid) / 1024:.1f} MiB)")
        return t_reg, t_http

    def down(self, phase, rnd, name, timeout):
        """UpdateService to 0: until the hash is empty, runningCount 0 and every process gone."""
        pids = task_pids(self.a.run_dir)
        before = len(pids)
        self.ecs.take_latencies()
        cmds0 = self.redis.commands()
        t0 = time.monotonic()
        self.update(name, 0)
        call_s = time.monotonic() - t0
        deadline = t0 + timeout
        t_hash = t_run = t_gone = None
        polls = 0
        left = pids
        while True:
            now = time.monotonic()
            if now > deadline:
                raise BenchError(f"{phase} round {rnd}: after {timeout:.0f} s: "
                                 f"{self.redis.cmd('HLEN', self.key)} registered, "
                                 f"{len(left)} processes left")
            polls += 1
            if t_hash is None and self.redis.cmd("HLEN", self.key) == 0:
                t_hash = time.monotonic() - t0
            if t_run is None and self.describe(name)["runningCount"] == 0:
                t_run = time.monotonic() - t0
            if t_gone is None:
                left = [p for p in left if alive(p)]
                if not left:
                    t_gone = time.monotonic() - t0
            if None not in (t_hash, t_run, t_gone):
                break
            time.sleep(self.a.poll)
        lat = self.ecs.take_latencies()
        cmds = self.redis.commands() - cmds0
        stray = task_pids(self.a.run_dir)
        if stray:
            raise BenchError(f"{phase} round {rnd}: task processes left after scale-in: {stray[:10]}")
        self.record(phase, rnd, before, "call_s", call_s)
        self.record(phase, rnd, before, "deregistered_s", t_hash)
        self.record(phase, rnd, before, "running0_s", t_run)
        self.record(phase, rnd, before, "gone_s", t_gone)
        self.record(phase, rnd, before, "api_max_ms", max(lat) * 1000)
        self.record(phase, rnd, before, "polls", polls)
        self.record(phase, rnd, before, "redis_cmds_per_task", cmds / max(before, 1))
        note(f"{before} processes: hash empty after {t_hash:.3f} s, runningCount 0 after "
             f"{t_run:.3f} s, every process gone after {t_gone:.3f} s (slowest API answer "
             f"{max(lat) * 1000:.1f} ms; {cmds / max(before, 1):.1f} Redis commands per task)")
        return t_gone

    def cpu_window(self, label, seconds, tasks):
        """CPU of gantry-core, redis-server and the task processes over `seconds`, no API call."""
        pids = task_pids(self.a.run_dir)
        procs = {"gantry-core": [self.a.core_pid], "redis-server": [self.a.redis_pid],
                 "tasks": pids}
        cmds0 = self.redis.commands()
        t0 = time.monotonic()
        before = {k: {p: proc_stat(p) for p in v} for k, v in procs.items()}
        time.sleep(seconds)
        wall = time.monotonic() - t0
        after = {k: {p: proc_stat(p) for p in v} for k, v in procs.items()}
        out = {"seconds": wall, "tasks": tasks,
               "redis_cmds_per_s": (self.redis.commands() - cmds0) / wall}
        for k in procs:
            ticks = 0
            for p, b in before[k].items():
                a = after[k].get(p)
                if b and a and a[2] == b[2]:
                    ticks += a[1] - b[1]
            out[f"{k}_cpu_pct"] = ticks / CLK_TCK / wall * 100
            out[f"{k}_rss_kb"] = sum(rss_kb(p) for p in procs[k])
        info = self.redis.cmd("INFO", "memory")
        for line in info.splitlines():
            if line.startswith("used_memory:"):
                out["redis_used_memory"] = int(line.split(":")[1])
        out["core_threads"] = len(os.listdir(f"/proc/{self.a.core_pid}/task"))
        for k, v in out.items():
            if k not in ("seconds", "tasks"):
                self.record(label, 1, tasks, k, v)
        note(f"{tasks} tasks, {wall:.1f} s: gantry-core {out['gantry-core_cpu_pct']:.2f} % of a core, "
             f"RSS {out['gantry-core_rss_kb'] / 1024:.1f} MiB; redis-server "
             f"{out['redis-server_cpu_pct']:.2f} %, RSS {out['redis-server_rss_kb'] / 1024:.1f} MiB; "
             f"{len(pids)} task processes {out['tasks_cpu_pct']:.2f} %, RSS "
             f"{out['tasks_rss_kb'] / 1024:.0f} MiB; {out['redis_cmds_per_s']:.2f} Redis commands/s "
             f"from gantry-core")
        return out

    def run(self):
        a = self.a
        self.results["core_rss_kb_start"] = rss_kb(a.core_pid)
        td = self.register_taskdef()
        if a.baseline_seconds > 0:
            log(f"baseline: gantry-core with no task, {a.baseline_seconds} s")
            self.results["baseline"] = self.cpu_window("baseline", a.baseline_seconds, 0)
        for r in range(1, a.rounds + 1):
            name = f"bench-{r}"
            log(f"round {r}/{a.rounds}: CreateService {name}, desiredCount {a.count}")
            self.up("create", r, name, a.count, lambda: self.create_service(name, td, a.count),
                    a.timeout)
            log(f"round {r}/{a.rounds}: UpdateService {name} {a.count} -> 0")
            self.down("scale-in", r, name, a.timeout)
            log(f"round {r}/{a.rounds}: UpdateService {name} 0 -> {a.count}")
            self.up("scale-out", r, name, a.count, lambda: self.update(name, a.count), a.timeout)
            log(f"round {r}/{a.rounds}: UpdateService {name} {a.count} -> 0, DeleteService")
            self.down("scale-in-2", r, name, a.timeout)
            self.ecs.call("DeleteService", {"cluster": "default", "service": name})
        if a.idle_count > 0:
            name = "bench-idle"
            log(f"idle: CreateService {name}, desiredCount {a.idle_count}")
            self.up("idle-create", 1, name, a.idle_count,
                    lambda: self.create_service(name, td, a.idle_count), a.idle_timeout)
            time.sleep(a.settle)
            log(f"idle: {a.idle_count} tasks, {a.idle_seconds} s without any API call")
            self.results["idle"] = self.cpu_window("idle", a.idle_seconds, a.idle_count)
            log(f"idle: UpdateService {name} {a.idle_count} -> 0")
            self.down("idle-scale-in", 1, name, a.idle_timeout)
            self.ecs.call("DeleteService", {"cluster": "default", "service": name})
            if a.after_seconds > 0:
                time.sleep(a.settle)
                log(f"after: no task running, {a.idle_count + a.rounds * 2 * a.count} STOPPED "
                    f"tasks retained, {a.after_seconds} s")
                self.results["after"] = self.cpu_window("after", a.after_seconds, 0)
        left = task_pids(a.run_dir)
        self.results["left_processes"] = left
        if left:
            raise BenchError(f"task processes left at the end: {left[:10]}")

    def save(self):
        with open(os.path.join(self.a.out, "raw.tsv"), "w") as f:
            f.write("phase\tround\ttasks\tmetric\tvalue\n")
            for row in self.rows:
                f.write("\t".join(str(x) for x in row) + "\n")
        with open(os.path.join(self.a.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1, default=str)

    # --- the summary ------------------------------------------------------------------------

    def values(self, phase, metric):
        return [v for p, _, _, m, v in self.rows if p == phase and m == metric and v == v]

    def summary(self):
        a = self.a
        lines = []
        w = lines.append

        def stats(phase, metric):
            v = self.values(phase, metric)
            if not v:
                return "-", "-", "-"
            return (f"{statistics.median(v):.3f}", f"{min(v):.3f}-{max(v):.3f}",
                    f"{(max(v) - min(v)) / statistics.median(v) * 100:.0f}%"
                    if statistics.median(v) > 0 else "-")

        w(f"{'phase':<28} {'until':<34} {'median s':>9} {'min-max s':>13} {'spread':>7}")
        table = [
            (f"CreateService {a.count}", "create", [
                ("RUNNING + registered", "registered_s"), ("every task answers HTTP", "http_s"),
                ("core's steady-state event", "steady_event_s")]),
            (f"UpdateService {a.count} -> 0", "scale-in", [
                ("targets deregistered (hash empty)", "deregistered_s"),
                ("runningCount 0", "running0_s"), ("every process gone", "gone_s")]),
            (f"UpdateService 0 -> {a.count}", "scale-out", [
                ("RUNNING + registered", "registered_s"), ("every task answers HTTP", "http_s"),
                ("core's steady-state event", "steady_event_s")]),
            (f"UpdateService {a.count} -> 0 (2nd)", "scale-in-2", [
                ("every process gone", "gone_s")]),
        ]
        if a.idle_count > 0:
            table += [
                (f"CreateService {a.idle_count}", "idle-create", [
                    ("RUNNING + registered", "registered_s"),
                    ("every task answers HTTP", "http_s"),
                    ("core's steady-state event", "steady_event_s")]),
                (f"UpdateService {a.idle_count} -> 0", "idle-scale-in", [
                    ("targets deregistered (hash empty)", "deregistered_s"),
                    ("runningCount 0", "running0_s"), ("every process gone", "gone_s")]),
            ]
        for title, phase, metrics in table:
            for i, (label, metric) in enumerate(metrics):
                med, rng, spread = stats(phase, metric)
                w(f"{title if i == 0 else '':<28} {label:<34} {med:>9} {rng:>13} {spread:>7}")
        w("")
        w(f"{'':<28} {'start: ms per task (median)':<34} {'API: slowest ms':>16} {'Redis cmds/task':>16}")
        for title, phase, _ in table:
            per = [v / t * 1000 for p, _, t, m, v in self.rows
                   if p == phase and m == "registered_s" and t]
            lat = self.values(phase, "api_max_ms")
            cmds = self.values(phase, "redis_cmds_per_task")
            if not lat:
                continue
            w(f"{title:<28} {f'{statistics.median(per):.2f}' if per else '-':<34} "
              f"{max(lat):>16.0f} {statistics.median(cmds) if cmds else float('nan'):>16.1f}")
        w("(API: the slowest DescribeServices or UpdateService answer while polling that phase;")
        w(" Redis cmds/task: commands gantry-core sent to Redis during the phase, per task, MULTI/EXEC included)")
        rss = [(p, r, v) for p, r, _, m, v in self.rows if m == "core_rss_kb"]
        w("gantry-core RSS once each start was done (MiB; it keeps STOPPED tasks for an hour): " +
          ", ".join(f"{p}{'' if p.startswith('idle') else f' r{r}'} {v / 1024:.1f}" for p, r, v in rss))
        for key, label in (("baseline", "no task"), ("idle", f"{a.idle_count} idle tasks"),
                           ("after", "no task, STOPPED tasks retained")):
            r = self.results.get(key)
            if not r:
                continue
            w("")
            w(f"CPU and memory over {r['seconds']:.1f} s, {label} (percent of one core):")
            w(f"  gantry-core   {r['gantry-core_cpu_pct']:6.2f} %   RSS {r['gantry-core_rss_kb'] / 1024:8.1f} MiB"
              f"   ({r['core_threads']} thread(s); {r['redis_cmds_per_s']:.2f} Redis commands/s)")
            w(f"  redis-server  {r['redis-server_cpu_pct']:6.2f} %   RSS {r['redis-server_rss_kb'] / 1024:8.1f} MiB"
              f"   (used_memory {r.get('redis_used_memory', 0) / 1048576:.1f} MiB)")
            if r["tasks"]:
                w(f"  {r['tasks']} tasks    {r['tasks_cpu_pct']:6.2f} %   RSS {r['tasks_rss_kb'] / 1024:8.1f} MiB"
                  f"   ({r['tasks_rss_kb'] / r['tasks']:.0f} KiB each)")
        w("")
        w(f"Task processes left at the end: {len(self.results.get('left_processes', []))}")
        return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", required=True, help="gantry-core's API, HOST:PORT")
    p.add_argument("--redis", required=True, help="redis-server, HOST:PORT")
    p.add_argument("--core-pid", type=int, required=True)
    p.add_argument("--redis-pid", type=int, required=True)
    p.add_argument("--run-dir", required=True, help="gantry-core's core.run_dir")
    p.add_argument("--demo", required=True, help="absolute path of the demo workload")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument("--group", default="bench")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--idle-count", type=int, default=1000)
    p.add_argument("--idle-seconds", type=float, default=30)
    p.add_argument("--baseline-seconds", type=float, default=10)
    p.add_argument("--after-seconds", type=float, default=10)
    p.add_argument("--settle", type=float, default=3, help="seconds between the start of the idle "
                   "tasks and the CPU measurement")
    p.add_argument("--memory-reservation", type=int, default=16, help="MiB per task")
    p.add_argument("--poll", type=float, default=0.02)
    p.add_argument("--timeout", type=float, default=60, help="deadline of each 50-task phase, s")
    p.add_argument("--idle-timeout", type=float, default=240, help="deadline of each idle phase, s")
    a = p.parse_args()
    bench = Bench(a)
    rc = 0
    try:
        bench.run()
    except (BenchError, OSError) as e:
        print(f"bench_core: {e}", file=sys.stderr)
        bench.results["error"] = str(e)
        rc = 1
    except KeyboardInterrupt:
        bench.results["error"] = "interrupted"
        bench.save()
        return 130
    finally:
        bench.save()
    print(bench.summary())
    if rc:
        print(f"\nINCOMPLETE: {bench.results['error']}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
