#!/usr/bin/env python3
"""The metrics benchmark (perf/README.md, "metrics"): gantry-lb's requests/s with metrics on
against metrics off in the same run (interleaved wrk rounds, same nginx backend), then what 1,000
targets' series cost Redis (CPU, memory per 1,000 series) and gantry-lb (the flush per second).

Everything runs on 127.0.0.1 in a temporary directory; every process is stopped at the end, on
failure or on Ctrl-C. Settings from the environment: DURATION (s per wrk run, 10), ROUNDS (3),
CONNECTIONS (64), TARGETS (1000), SERIES_SECONDS (30), QUICK=1 (3 s x 1 round, 10 s of series).
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bin")
QUICK = os.environ.get("QUICK") == "1"
DURATION = int(os.environ.get("DURATION", 3 if QUICK else 10))
ROUNDS = int(os.environ.get("ROUNDS", 1 if QUICK else 3))
CONNECTIONS = int(os.environ.get("CONNECTIONS", 64))
TARGETS = int(os.environ.get("TARGETS", 1000))
SERIES_SECONDS = int(os.environ.get("SERIES_SECONDS", 10 if QUICK else 30))
CG_REQUESTS = int(os.environ.get("CG_REQUESTS", 2000 if QUICK else 8000))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench_metrics: timed out waiting for {what}")


def answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Redis:
    def __init__(self, port):
        self.port = port

    def command(self, *words):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(("*%d\r\n" % len(words) + "".join(
                "$%d\r\n%s\r\n" % (len(str(w).encode()), w) for w in words)).encode())
            f = s.makefile("rb")
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:].decode()
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else f.read(n + 2)[:-2].decode()
            if kind == b":":
                return int(rest)
            return rest

    def info(self, section):
        text = self.command("INFO", section)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


class Stack:
    """The processes of the run, stopped in reverse order."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def lb_metric(admin_port, name):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    found = False
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def lb_config(path, redis_port, listen, admin, targets, metrics, name):
    lines = [f'redis: {{url: "redis://127.0.0.1:{redis_port}"}}', "lb:", "  workers: 1",
             f"  name: {name}", f"  metrics: {'true' if metrics else 'false'}",
             f"  admin: 127.0.0.1:{admin}", "  listeners:", "    - name: web",
             f"      listen: 127.0.0.1:{listen}",
             "      default_action: {type: forward, target_group: backend}",
             "  target_groups:", "    - name: backend", "      health_check: {enabled: false}",
             "      targets:"]
    lines += [f"        - address: 127.0.0.1:{p}" for p in targets]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def wrk(port):
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=DURATION + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or errors:
        raise SystemExit(f"bench_metrics: wrk failed against :{port}:\n{out}")
    return float(m.group(1))


def throughput(stack, tmp, redis):
    backend = free_port()
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx.err;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{backend}; location / {{ return 200 "0123456789abcdef"; }} }} }}
""")
    stack.start("nginx", ["nginx", "-c", os.path.join(tmp, "nginx.conf")])
    wait_for(lambda: answers(backend), 10, "nginx")
    lbs = {}
    for metrics in (True, False):
        listen, admin = free_port(), free_port()
        path = os.path.join(tmp, f"lb-{'on' if metrics else 'off'}.yaml")
        lb_config(path, redis.port, listen, admin, [backend], metrics, "bench")
        proc = stack.start(f"lb-{'on' if metrics else 'off'}", [os.path.join(BIN, "gantry-lb"),
                                                              "-c", path])
        wait_for(lambda: answers(listen) and answers(admin), 10, "gantry-lb")
        lbs[metrics] = (listen, admin, proc)
    for metrics in (True, False):
        wrk_warm = DURATION
        subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{min(2, wrk_warm)}s",
                        f"http://127.0.0.1:{lbs[metrics][0]}/"], capture_output=True, timeout=60)
    written_before = lb_metric(lbs[True][1], "gantry_lb_metrics_datapoints_written_total") or 0
    dropped_before = lb_metric(lbs[True][1], "gantry_lb_metrics_datapoints_dropped_total") or 0
    rps = {True: [], False: []}
    for r in range(ROUNDS):
        for metrics in ((True, False) if r % 2 == 0 else (False, True)):
            rps[metrics].append(wrk(lbs[metrics][0]))
            print(f"  round {r + 1}: metrics {'on ' if metrics else 'off'} "
                  f"{rps[metrics][-1]:,.0f} req/s", flush=True)
    written = (lb_metric(lbs[True][1], "gantry_lb_metrics_datapoints_written_total") or 0) \
        - written_before
    dropped = (lb_metric(lbs[True][1], "gantry_lb_metrics_datapoints_dropped_total") or 0) \
        - dropped_before
    on, off = statistics.median(rps[True]), statistics.median(rps[False])
    for _, _, proc in lbs.values():
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return {"metrics_on_rps": on, "metrics_off_rps": off, "ratio": on / off,
            "rounds": ROUNDS, "duration_s": DURATION, "connections": CONNECTIONS,
            "datapoints_written": written, "datapoints_dropped": dropped,
            "all_on": rps[True], "all_off": rps[False]}


def keepalive_requests(port, n):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench_metrics: status {resp.status} under callgrind")
    conn.close()


def callgrind_instructions(stack, tmp, redis, backend, metrics, n):
    """Instructions gantry-lb executes (valgrind's count: exact, whatever the machine does) for
    its whole life with n keep-alive requests."""
    listen, admin = free_port(), free_port()
    tag = f"{'on' if metrics else 'off'}-{n}"
    path = os.path.join(tmp, f"lb-cg-{tag}.yaml")
    lb_config(path, redis.port, listen, admin, [backend], metrics, "cg")
    out = os.path.join(tmp, f"callgrind-{tag}.out")
    proc = stack.start(f"lb-cg-{tag}", ["valgrind", "--tool=callgrind", "--callgrind-out-file=" +
                                        out, os.path.join(BIN, "gantry-lb"), "-c", path])
    wait_for(lambda: answers(listen), 60, "gantry-lb under valgrind")
    keepalive_requests(listen, n)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit("bench_metrics: no callgrind summary")


def instructions_per_request(stack, tmp, redis):
    """The slope between two request counts: what one more request costs, on and off."""
    backend = free_port()
    stack.start("demo-cg", [os.path.join(BIN, "gantry-demo-app"), "--listen",
                            f"127.0.0.1:{backend}"])
    wait_for(lambda: answers(backend), 10, "demo backend")
    n1, n2 = CG_REQUESTS // 4, CG_REQUESTS
    result = {}
    for metrics in (False, True):
        a = callgrind_instructions(stack, tmp, redis, backend, metrics, n1)
        b = callgrind_instructions(stack, tmp, redis, backend, metrics, n2)
        result["on" if metrics else "off"] = (b - a) / (n2 - n1)
    result["ratio_off_over_on"] = result["off"] / result["on"]
    return result


def series_cost(stack, tmp, redis):
    base = 41000
    listen, admin = free_port(), free_port()
    path = os.path.join(tmp, "lb-targets.yaml")
    lb_config(path, redis.port, listen, admin, range(base, base + TARGETS), True, "many")
    redis.command("FLUSHALL")
    mem_before = int(redis.info("memory")["used_memory"])
    proc = stack.start("lb-targets", [os.path.join(BIN, "gantry-lb"), "-c", path])
    wait_for(lambda: answers(admin), 20, "gantry-lb with many targets")
    wait_for(lambda: (redis.command("ZCARD", "gantry:m:series") or 0) > TARGETS, 30,
             "the first flush")
    time.sleep(2)  # past the first, larger flush (new keys)
    info = redis.info("cpu")
    redis_cpu0 = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
    lb_cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    flushes = []
    while time.monotonic() - t0 < SERIES_SECONDS:
        value = lb_metric(admin, "gantry_lb_metrics_flush_seconds")
        if value is not None:
            flushes.append(value)
        time.sleep(1)
    elapsed = time.monotonic() - t0
    info = redis.info("cpu")
    redis_cpu = float(info["used_cpu_sys"]) + float(info["used_cpu_user"]) - redis_cpu0
    lb_cpu = cpu_seconds(proc.pid) - lb_cpu0
    series = redis.command("ZCARD", "gantry:m:series")
    mem = int(redis.info("memory")["used_memory"]) - mem_before
    dropped = lb_metric(admin, "gantry_lb_metrics_datapoints_dropped_total")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    return {"targets": TARGETS, "series": series, "seconds": round(elapsed, 1),
            "redis_cpu_percent": 100 * redis_cpu / elapsed,
            "redis_cpu_percent_per_1000_series": 100 * redis_cpu / elapsed * 1000 / series,
            "redis_memory_bytes": mem,
            "redis_memory_per_1000_series_after_s": [mem * 1000 / series, round(elapsed + 2)],
            "lb_cpu_percent": 100 * lb_cpu / elapsed,
            "flush_seconds_median": statistics.median(flushes) if flushes else None,
            "flush_seconds_max": max(flushes) if flushes else None,
            "datapoints_dropped": dropped}


def main():
    for tool in ("wrk", "nginx", "redis-server"):
        if not shutil.which(tool):
            raise SystemExit(f"bench_metrics: {tool} is missing (scripts/deps.sh perf test)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = os.path.join(ROOT, "perf", "results", "metrics-" + stamp)
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="gantry-bench-metrics-")
    stack = Stack(tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        port = free_port()
        stack.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", tmp])
        wait_for(lambda: answers(port), 10, "redis-server")
        redis = Redis(port)
        print(f"== metrics on vs off: wrk -t1 -c{CONNECTIONS} {DURATION}s x {ROUNDS} rounds")
        results = {"throughput": throughput(stack, tmp, redis)}
        t = results["throughput"]
        print(f"   metrics on {t['metrics_on_rps']:,.0f} req/s, off {t['metrics_off_rps']:,.0f}"
              f" req/s: ratio {t['ratio']:.3f} (goal >= 0.97); datapoints written "
              f"{t['datapoints_written']:.0f}, dropped {t['datapoints_dropped']:.0f}")
        if shutil.which("valgrind") and CG_REQUESTS > 0:
            print(f"== instructions per request under callgrind ({CG_REQUESTS // 4} and "
                  f"{CG_REQUESTS} keep-alive requests, the slope)")
            results["instructions"] = instructions_per_request(stack, tmp, redis)
            i = results["instructions"]
            print(f"   metrics off {i['off']:,.0f}, on {i['on']:,.0f} instructions per request: "
                  f"off/on {i['ratio_off_over_on']:.3f} (the throughput ratio CPU-bound)")
        print(f"== {TARGETS} targets' series for {SERIES_SECONDS} s")
        results["series"] = series_cost(stack, tmp, redis)
        s = results["series"]
        print(f"   {s['series']} series: Redis {s['redis_cpu_percent']:.1f} % of a core "
              f"({s['redis_cpu_percent_per_1000_series']:.2f} % per 1,000 series), "
              f"{s['redis_memory_bytes'] / 1048576:.1f} MiB after {s['seconds']:.0f} s "
              f"({s['redis_memory_per_1000_series_after_s'][0] / 1048576:.2f} MiB per 1,000 "
              f"series); gantry-lb {s['lb_cpu_percent']:.1f} % of a core, flush round trip "
              f"median {s['flush_seconds_median']} s, max {s['flush_seconds_max']} s; "
              f"dropped {s['datapoints_dropped']}")
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=ROOT).stdout.strip()
        results["commit"] = rev
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        print(f"== results in {out_dir}")
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
