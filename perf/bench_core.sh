#!/usr/bin/env bash
# The gantry-core benchmark: how fast a service of PROCESS tasks (the demo workload) starts, is
# registered in its target group and stops, and what gantry-core costs while 1,000 idle tasks run.
# Loopback only: a private redis-server and a private gantry-core, driven through the raw ECS API
# by perf/bench_core.py. See perf/README.md, section "gantry-core", for the method.
#
#   perf/bench_core.sh               # ROUNDS=3 x (50 up, down, up, down), then 1,000 idle tasks: ~1 min
#   QUICK=1 perf/bench_core.sh       # smoke run: 1 round, 200 idle tasks for 5 s: ~15 s
#
# Settings (environment): ROUNDS (3), COUNT (50 tasks per service), IDLE_COUNT (1000; 0 skips the
# idle test), IDLE_SECONDS (30: the CPU measurement), BASELINE_SECONDS (10: the same with no task,
# first), AFTER_SECONDS (10: the same once the idle tasks stopped), HOST_PORT_MIN/HOST_PORT_MAX
# (12000/14999: the tasks' host ports, below the kernel's ephemeral range), TIMEOUT (60 s per
# 50-task phase), IDLE_TIMEOUT (240 s per 1,000-task phase), POLL (0.02 s).
# Raw outputs, the configuration, logs and the binaries that ran go to perf/results/core-<UTC timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1}
  IDLE_COUNT=${IDLE_COUNT:-200}
  IDLE_SECONDS=${IDLE_SECONDS:-5}
  BASELINE_SECONDS=${BASELINE_SECONDS:-2}
  AFTER_SECONDS=${AFTER_SECONDS:-2}
fi
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-50}
IDLE_COUNT=${IDLE_COUNT:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-30}
BASELINE_SECONDS=${BASELINE_SECONDS:-10}
AFTER_SECONDS=${AFTER_SECONDS:-10}
HOST_PORT_MIN=${HOST_PORT_MIN:-12000}
HOST_PORT_MAX=${HOST_PORT_MAX:-14999}
TIMEOUT=${TIMEOUT:-60}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-240}
POLL=${POLL:-0.02}
MEMORY_RESERVATION=16 # MiB per task: what placement counts (instance_memory below is 64 GiB)

die() {
  echo "bench_core: $*" >&2
  exit 1
}
log() { echo "== $*" >&2; }

for v in ROUNDS COUNT IDLE_COUNT IDLE_SECONDS BASELINE_SECONDS AFTER_SECONDS HOST_PORT_MIN HOST_PORT_MAX TIMEOUT IDLE_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
[[ $POLL =~ ^[0-9]*\.?[0-9]+$ ]] || die "POLL must be a number of seconds"
if [ "$ROUNDS" -lt 1 ] || [ "$COUNT" -lt 1 ] || [ "$COUNT" -gt 1000 ]; then die "ROUNDS must be at least 1, COUNT 1 to 1000"; fi
[ "$IDLE_COUNT" -le 1000 ] || die "IDLE_COUNT: at most 1000 (ECS's and gantry-core's desiredCount limit)"
[ $((HOST_PORT_MAX - HOST_PORT_MIN + 1)) -ge $((IDLE_COUNT > COUNT ? IDLE_COUNT * 2 : COUNT * 2)) ] ||
  die "the host port range $HOST_PORT_MIN-$HOST_PORT_MAX is too small for $IDLE_COUNT tasks"

# ---------------------------------------------------------------------------------------------
# Every process this script starts runs in a session of its own (setsid), so a Ctrl-C reaches
# only this script, whose trap stops them in order: gantry-core first (SIGTERM: it stops every
# task, SIGKILL after at most 15 s), then whatever task process is left (none, normally), then
# redis-server.
CORE_PID=
REDIS_PID=
TMP=
OUT=
# shellcheck disable=SC2317  # reached through the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CORE_PID" ]; then
    stop_pid "$CORE_PID" 25
    [ -n "$OUT" ] && [ -s "$OUT/logs/gantry-core.log" ] && grep -q 'shutdown: tasks still running' "$OUT/logs/gantry-core.log" &&
      echo "bench_core: gantry-core had to SIGKILL tasks on shutdown" >&2
  fi
  if [ -n "$TMP" ]; then
    local left
    left=$(task_pids "$TMP/run")
    if [ -n "$left" ]; then
      echo "bench_core: task processes left after gantry-core stopped: $(echo "$left" | tr '\n' ' ')(killed)" >&2
      # shellcheck disable=SC2086
      kill -KILL $left 2>/dev/null || true
      rc=1
    fi
  fi
  [ -n "$REDIS_PID" ] && stop_pid "$REDIS_PID" 5
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench_core: interrupted" >&2; exit 130' INT
trap 'echo "bench_core: terminated" >&2; exit 143' TERM

proc_state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1 || true; }
running() { kill -0 "$1" 2>/dev/null && [ "$(proc_state "$1")" != Z ]; }

# stop_pid PID SECONDS: SIGTERM, SIGKILL after SECONDS, reaped.
stop_pid() {
  local i
  kill -TERM "$1" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    running "$1" || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# task_pids RUN_DIR: processes whose working directory is under RUN_DIR/tasks (gantry-core's tasks).
task_pids() {
  local d p cwd
  for d in /proc/[0-9]*; do
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    [[ $cwd == "$1"/tasks/* ]] || continue
    p=${d#/proc/}
    echo "$p"
  done
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------------------------
# Dependencies, the build, the results directory.
command -v redis-server >/dev/null || die "redis-server is needed (scripts/deps.sh test)"
command -v python3 >/dev/null || die "python3 is needed (scripts/deps.sh test)"
if [ ! -x bin/gantry-core ] || [ ! -x bin/gantry-demo-app ]; then
  log "building"
  make -j2 bin/gantry-core bin/gantry-demo-app
fi
for b in gantry-core gantry-demo-app; do
  make -q "bin/$b" 2>/dev/null || echo "bench_core: warning: bin/$b is older than its sources (run make)" >&2
done
ulimit -n "$(ulimit -Hn)"
[ "$(cat /proc/sys/kernel/pid_max)" -gt $((IDLE_COUNT * 3 + 1000)) ] || die "kernel.pid_max is too low for $IDLE_COUNT tasks"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/perf/results/core-$STAMP
mkdir -p "$OUT/conf" "$OUT/logs" "$OUT/bin"
# Copies of the binaries run, so a rebuild during the run changes nothing.
cp bin/gantry-core bin/gantry-demo-app "$OUT/bin/"
CORE_BIN=$OUT/bin/gantry-core
DEMO_BIN=$OUT/bin/gantry-demo-app
TMP=$(mktemp -d /tmp/gantry-bench-core.XXXXXX)
mkdir -p "$TMP/redis" "$TMP/run"
{
  echo "date: $STAMP"
  echo "gantry: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- core common config demo 2>/dev/null || echo ' (modified)')," \
    "bin/gantry-core built $(date -u -r bin/gantry-core +%FT%TZ), sha256 $(sha256sum "$CORE_BIN" | cut -c1-16)"
  git diff --stat HEAD -- core common config demo 2>/dev/null | sed 's/^/  /' || true
  echo "redis: $(redis-server --version)"
  echo "python: $(python3 --version 2>&1)"
  echo "kernel: $(uname -r), cores: $(nproc), memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), descriptor limit: $(ulimit -n)"
  echo "settings: ROUNDS=$ROUNDS COUNT=$COUNT IDLE_COUNT=$IDLE_COUNT IDLE_SECONDS=$IDLE_SECONDS BASELINE_SECONDS=$BASELINE_SECONDS AFTER_SECONDS=$AFTER_SECONDS HOST_PORTS=$HOST_PORT_MIN-$HOST_PORT_MAX POLL=$POLL"
  echo "load average at start: $(cat /proc/loadavg)"
} >"$OUT/env.txt"
log "results in $OUT"

# ---------------------------------------------------------------------------------------------
# redis-server: private, no persistence, on a free loopback port.
REDIS_PORT=$(free_port)
setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP/redis" --save "" --appendonly no \
  --daemonize no --logfile "" >"$OUT/logs/redis.log" 2>&1 </dev/null &
REDIS_PID=$!
for ((i = 0; i < 100; i++)); do
  [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
  running "$REDIS_PID" || die "redis-server exited: $(tail -n 5 "$OUT/logs/redis.log")"
  sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "redis-server does not answer on port $REDIS_PORT"

# gantry-core: its defaults (reconcile every 1 s, STOPPED tasks kept 1 h, log level info), a
# 64 GiB instance so placement never limits, and the target group "bench" with a deregistration
# delay of 0 s: no gantry-lb runs here to write the drained mark, so with ALB's default 300 s a
# stopping task would wait 5 minutes.
cat >"$OUT/conf/core.yaml" <<EOF
redis: {url: "redis://127.0.0.1:$REDIS_PORT"}
core:
  listen: 127.0.0.1:0
  run_dir: $TMP/run
  clusters: [default]
  instance_memory: 64g
  host_port_min: $HOST_PORT_MIN
  host_port_max: $HOST_PORT_MAX
lb:
  target_groups:
    - name: bench
      targets_from: redis
      deregistration_delay: 0s
EOF
"$CORE_BIN" -c "$OUT/conf/core.yaml" --check >/dev/null || die "the configuration is refused"
: >"$TMP/ready"
# gantry-core writes "READY http://ADDR" to GANTRY_READY_FD once its API listens.
GANTRY_READY_FD=9 setsid "$CORE_BIN" -c "$OUT/conf/core.yaml" 9>"$TMP/ready" \
  >"$OUT/logs/gantry-core.log" 2>&1 </dev/null &
CORE_PID=$!
API=
for ((i = 0; i < 100; i++)); do
  API=$(sed -n 's|^READY http://||p' "$TMP/ready" | head -n 1)
  [ -n "$API" ] && break
  running "$CORE_PID" || die "gantry-core exited: $(tail -n 10 "$OUT/logs/gantry-core.log")"
  sleep 0.1
done
[ -n "$API" ] || die "gantry-core is not ready after 10 s: $(tail -n 10 "$OUT/logs/gantry-core.log")"
log "gantry-core (pid $CORE_PID) on http://$API, redis-server (pid $REDIS_PID) on port $REDIS_PORT"
echo "gantry-core's $(grep -m1 -o 'runner: .*' "$OUT/logs/gantry-core.log" || echo 'runner: (not logged)')" >>"$OUT/env.txt"

# ---------------------------------------------------------------------------------------------
# The measurements (perf/bench_core.py), then the summary.
rc=0
python3 perf/bench_core.py --api "$API" --redis "127.0.0.1:$REDIS_PORT" --core-pid "$CORE_PID" \
  --redis-pid "$REDIS_PID" --run-dir "$TMP/run" --demo "$DEMO_BIN" --out "$OUT" \
  --rounds "$ROUNDS" --count "$COUNT" --idle-count "$IDLE_COUNT" --idle-seconds "$IDLE_SECONDS" \
  --baseline-seconds "$BASELINE_SECONDS" --after-seconds "$AFTER_SECONDS" \
  --memory-reservation "$MEMORY_RESERVATION" --poll "$POLL" --timeout "$TIMEOUT" \
  --idle-timeout "$IDLE_TIMEOUT" >"$OUT/summary.body" || rc=$?
running "$CORE_PID" || { echo "bench_core: gantry-core died during the run" >&2; rc=1; }
echo "load average at the end: $(cat /proc/loadavg)" >>"$OUT/env.txt"

{
  echo "gantry-core benchmark, $STAMP: $ROUNDS round(s) of CreateService $COUNT, UpdateService $COUNT -> 0 -> $COUNT -> 0;"
  echo "then $IDLE_COUNT idle tasks for ${IDLE_SECONDS}s. Demo workload, PROCESS tasks, target group 'bench' in Redis"
  echo "(deregistration_delay 0s, no gantry-lb). Polled every ${POLL}s. $(nproc) cores. $(sed -n 's/^gantry: //p' "$OUT/env.txt" | cut -d, -f1)."
  echo "Raw outputs: ${OUT#"$ROOT"/}/"
  grep '^load average' "$OUT/env.txt"
  echo
  cat "$OUT/summary.body"
  local_warn=$(grep -c -E ' (warn|error) ' "$OUT/logs/gantry-core.log" || true)
  echo "gantry-core log: $(wc -l <"$OUT/logs/gantry-core.log") lines, $local_warn warnings or errors"
} | tee "$OUT/summary.txt"
rm -f "$OUT/summary.body"
exit "$rc"
