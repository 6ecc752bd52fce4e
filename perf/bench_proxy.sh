#!/usr/bin/env bash
# The proxy benchmark: gantry-lb against HAProxy and nginx (and the direct path) in one run, on
# loopback, same nginx backend for everyone; then the memory cost of idle keep-alive client
# connections. See perf/README.md for the method and how to read the figures.
#
#   perf/bench_proxy.sh              # DURATION=10 s per measurement, ROUNDS=3: about 4 minutes
#   QUICK=1 perf/bench_proxy.sh      # smoke run: 3 s x 1 round, under a minute
#
# Settings (environment): DURATION (s), ROUNDS, WARMUP (s, once per contender), CONNECTIONS (64),
# WORKERS ("1 2"), BACKENDS (1 or 2 nginx backend instances), IDLE_CONNS (9000), MEM_WORKERS (1),
# MEMORY (1; 0 skips the memory test), THROUGHPUT (1; 0 skips it), PORT_BASE (18100: ports
# PORT_BASE..PORT_BASE+59 on 127.0.0.1 must be free), HAPROXY_MAXCONN (9500).
# Raw outputs, configurations and logs go to perf/results/<UTC timestamp>/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "${QUICK:-0}" = 1 ]; then
  DURATION=${DURATION:-3}
  ROUNDS=${ROUNDS:-1}
  WARMUP=${WARMUP:-1}
fi
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
WORKERS=${WORKERS:-1 2}
BACKENDS=${BACKENDS:-1}
IDLE_CONNS=${IDLE_CONNS:-9000}
MEM_WORKERS=${MEM_WORKERS:-1}
MEMORY=${MEMORY:-1}
THROUGHPUT=${THROUGHPUT:-1}
PORT_BASE=${PORT_BASE:-18100}
HAPROXY_MAXCONN=${HAPROXY_MAXCONN:-9500}
SETTLE=2   # seconds between the last idle connection's response and the RSS reading
BODY=0123456789abcdef

die() {
  echo "bench_proxy: $*" >&2
  exit 1
}
log() { echo "== $*" >&2; }

for v in DURATION ROUNDS WARMUP CONNECTIONS BACKENDS IDLE_CONNS MEM_WORKERS PORT_BASE HAPROXY_MAXCONN; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
for w in $WORKERS; do [[ $w =~ ^[1-9]$ ]] || die "WORKERS: '$w' is not 1 to 9"; done
[[ $BACKENDS =~ ^[12]$ ]] || die "BACKENDS must be 1 or 2"
if [ "$ROUNDS" -lt 1 ] || [ "$DURATION" -lt 1 ]; then die "ROUNDS and DURATION must be at least 1"; fi

# ---------------------------------------------------------------------------------------------
# Every process this script starts is recorded here and stopped on exit, whatever the cause. They
# run in sessions of their own (setsid), so a Ctrl-C reaches only this script, whose trap stops
# them in order, instead of killing some under its feet.
PIDS=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pids "${PIDS[@]}"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench_proxy: interrupted" >&2; exit 130' INT
trap 'echo "bench_proxy: terminated" >&2; exit 143' TERM

# stop_pids PID...: SIGTERM, then SIGKILL what is left after 5 s. An nginx master's workers are
# its children: they are collected first and treated the same way.
stop_pids() {
  local pids=() p c
  for p in "$@"; do
    [ -n "$p" ] || continue
    pids+=("$p")
    for c in $(children "$p"); do pids+=("$c"); done
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  local i alive
  for ((i = 0; i < 50; i++)); do
    alive=0
    for p in "${pids[@]}"; do
      # A reaped child is gone; an unreaped one is a zombie: both count as stopped.
      if kill -0 "$p" 2>/dev/null && [ "$(proc_state "$p")" != Z ]; then alive=1; fi
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
forget_pids() { # forget_pids PID...: drop stopped processes from PIDS
  local keep=() p q drop
  for p in "${PIDS[@]}"; do
    drop=0
    for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
    [ $drop = 0 ] && keep+=("$p")
  done
  PIDS=("${keep[@]}")
}
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
proc_state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1 || true; }

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT PID LOG: until the port accepts, failing if PID exits or 10 s pass.
wait_port() {
  local i
  for ((i = 0; i < 100; i++)); do
    port_open "$1" && return 0
    if ! kill -0 "$2" 2>/dev/null || [ "$(proc_state "$2")" = Z ]; then
      tail -n 20 "$3" >&2 || true
      die "the process for port $1 exited (log: $3)"
    fi
    sleep 0.1
  done
  tail -n 20 "$3" >&2 || true
  die "nothing listens on port $1 after 10 s (log: $3)"
}

# alive_or_die PID NAME LOG
alive_or_die() {
  if ! kill -0 "$1" 2>/dev/null || [ "$(proc_state "$1")" = Z ]; then
    tail -n 20 "$3" >&2 || true
    die "$2 (pid $1) died during the run (log: $3)"
  fi
}

# rss_kb PID...: the sum of VmRSS, in KiB.
rss_kb() {
  local p sum=0 v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# cpu_ticks PID...: user + system CPU time of the processes (all their threads), in clock ticks.
cpu_ticks() {
  local p sum=0 v
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# ---------------------------------------------------------------------------------------------
# Dependencies, the build, the ports, the results directory.
scripts/deps.sh perf
command -v python3 >/dev/null || die "python3 is needed for the memory test (scripts/deps.sh test installs it)"
if [ ! -x bin/gantry-lb ]; then
  log "building gantry-lb"
  make
fi
make -q bin/gantry-lb 2>/dev/null || echo "bench_proxy: warning: bin/gantry-lb is older than its sources (run make)" >&2

ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] || [ "$NOFILE" -ge $((IDLE_CONNS * 2 + 100)) ] ||
  die "the descriptor limit ($NOFILE) is too low for $IDLE_CONNS idle connections through a proxy"

P_BACKEND=$PORT_BASE               # +0, +1: the nginx backends
p_gantry() { echo $((PORT_BASE + 10 + $1)); }
p_gantry_admin() { echo $((PORT_BASE + 20 + $1)); }
p_haproxy() { echo $((PORT_BASE + 30 + $1)); }
p_nginx() { echo $((PORT_BASE + 40 + $1)); }
P_MEM=$((PORT_BASE + 50))          # the contender under the memory test
P_MEM_ADMIN=$((PORT_BASE + 51))
for ((p = PORT_BASE; p < PORT_BASE + 60; p++)); do
  port_open "$p" && die "port $p is in use: choose another PORT_BASE"
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/perf/results/$STAMP
mkdir -p "$OUT/conf" "$OUT/logs" "$OUT/wrk"
# The run uses a copy of the binary, so a rebuild during the run changes nothing.
GANTRY_LB=$OUT/gantry-lb
cp bin/gantry-lb "$GANTRY_LB"
CLK_TCK=$(getconf CLK_TCK)
{
  echo "date: $STAMP"
  echo "gantry: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- lb common config 2>/dev/null || echo ' (modified)')," \
    "bin/gantry-lb built $(date -u -r bin/gantry-lb +%FT%TZ), sha256 $(sha256sum "$GANTRY_LB" | cut -c1-16)"
  git diff --stat HEAD -- lb common config 2>/dev/null | sed 's/^/  /' || true
  echo "haproxy: $(haproxy -v 2>&1 | head -n 1)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "kernel: $(uname -r), cores: $(nproc), descriptor limit: $NOFILE"
  echo "settings: DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS WORKERS='$WORKERS' BACKENDS=$BACKENDS IDLE_CONNS=$IDLE_CONNS MEM_WORKERS=$MEM_WORKERS THROUGHPUT=$THROUGHPUT MEMORY=$MEMORY"
  echo "load average at start: $(cat /proc/loadavg)"
} >"$OUT/env.txt"
log "results in $OUT"

# ---------------------------------------------------------------------------------------------
# Configurations. Every contender: keep-alive on both sides, no access log, 60 s client idle
# timeout, the same backends.
backend_ports() {
  local i
  for ((i = 0; i < BACKENDS; i++)); do echo $((P_BACKEND + i)); done
}

# nginx_common DIR: the lines every nginx here shares (files under DIR, no access log).
nginx_common() {
  cat <<EOF
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile $NOFILE;
EOF
}
nginx_http_common() {
  cat <<EOF
  access_log off;
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  keepalive_requests 100000000;
EOF
}

conf_backend() { # conf_backend PORT DIR
  nginx_common "$2"
  cat <<EOF
worker_processes 1;
events { worker_connections 19000; }
http {
$(nginx_http_common "$2")
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$1 backlog=4096;
    default_type text/plain;
    location / { return 200 "$BODY"; }
  }
}
EOF
}

conf_gantry() { # conf_gantry WORKERS PORT ADMIN_PORT
  cat <<EOF
log: {level: warn}
lb:
  workers: $1
  admin: 127.0.0.1:$3
  max_connections: 20000
  idle_timeout: 60s
  stop_timeout: 1s
  upstream_keepalive: 64
  listeners:
    - name: bench
      listen: 127.0.0.1:$2
      default_action: {type: forward, target_group: backend}
  target_groups:
    - name: backend
      algorithm: round_robin
      targets:
EOF
  local p
  for p in $(backend_ports); do echo "        - address: 127.0.0.1:$p"; done
}

conf_haproxy() { # conf_haproxy WORKERS PORT
  cat <<EOF
global
  nbthread $1
  maxconn $HAPROXY_MAXCONN

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 60s

frontend bench
  bind 127.0.0.1:$2
  maxconn $HAPROXY_MAXCONN
  default_backend backend

backend backend
  balance roundrobin
EOF
  local p i=0
  for p in $(backend_ports); do
    i=$((i + 1))
    echo "  server b$i 127.0.0.1:$p"
  done
}

conf_nginx_proxy() { # conf_nginx_proxy WORKERS PORT DIR
  nginx_common "$3"
  cat <<EOF
worker_processes $1;
events { worker_connections 19000; }
http {
$(nginx_http_common "$3")
  keepalive_timeout 60s;
  upstream backend {
$(for p in $(backend_ports); do echo "    server 127.0.0.1:$p;"; done)
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:$2 reuseport backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
}

# ---------------------------------------------------------------------------------------------
# Starting contenders. Each start_* sets STARTED_PID (the process to stop) and STARTED_LOG.
start_nginx() { # start_nginx NAME CONF_FUNCTION ARGS... (the last argument of the function is DIR)
  local name=$1 fn=$2
  shift 2
  local dir=$OUT/run/$name
  mkdir -p "$dir"
  "$fn" "$@" "$dir" >"$OUT/conf/$name.conf"
  setsid nginx -p "$dir/" -e "$dir/error.log" -c "$OUT/conf/$name.conf" >"$OUT/logs/$name.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  STARTED_LOG=$dir/error.log
}
start_gantry() { # start_gantry NAME WORKERS PORT ADMIN_PORT
  conf_gantry "$2" "$3" "$4" >"$OUT/conf/$1.yaml"
  setsid "$GANTRY_LB" -c "$OUT/conf/$1.yaml" >"$OUT/logs/$1.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  STARTED_LOG=$OUT/logs/$1.log
  wait_port "$3" "$STARTED_PID" "$STARTED_LOG"
  wait_port "$4" "$STARTED_PID" "$STARTED_LOG"
}
start_haproxy() { # start_haproxy NAME WORKERS PORT
  conf_haproxy "$2" "$3" >"$OUT/conf/$1.cfg"
  haproxy -c -q -f "$OUT/conf/$1.cfg" >"$OUT/logs/$1.check.log" 2>&1 ||
    die "haproxy refuses $OUT/conf/$1.cfg: $(cat "$OUT/logs/$1.check.log")"
  setsid haproxy -db -f "$OUT/conf/$1.cfg" >"$OUT/logs/$1.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  STARTED_LOG=$OUT/logs/$1.log
}

# The processes whose memory and CPU count for a contender: gantry-lb and HAProxy are one process
# (threads included); for nginx, its workers (the master handles no connection).
accounted_pids() { # accounted_pids KIND PID
  case "$1" in
    nginx | direct) children "$2" ;;
    *) echo "$2" ;;
  esac
}

start_backends() {
  local i
  BACKEND_PIDS=()
  for ((i = 0; i < BACKENDS; i++)); do
    start_nginx "backend$i" conf_backend $((P_BACKEND + i))
    BACKEND_PIDS+=("$STARTED_PID")
    wait_port $((P_BACKEND + i)) "$STARTED_PID" "$STARTED_LOG"
  done
  # The backends answer as they should.
  local reply
  reply=$(python3 - "$P_BACKEND" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
print(s.recv(4096).decode("latin-1").split("\r\n\r\n", 1)[-1])
EOF
  )
  [ "$reply" = "$BODY" ] || die "the backend answers '$reply', expected '$BODY'"
}

# ---------------------------------------------------------------------------------------------
# Measurements.

# run_wrk PORT SECONDS OUTFILE: one wrk run, in the background so a signal stops it at once.
run_wrk() {
  setsid wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "http://127.0.0.1:$1/" >"$3" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local rc=0
  wait "$pid" || rc=$?
  forget_pids "$pid"
  [ $rc = 0 ] || die "wrk failed (exit $rc): $(tail -n 5 "$3")"
}

# parse_wrk FILE: "rps p50_ms p99_ms non2xx socket_errors requests"
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
    / requests in / { reqs = $1 }
    END { printf "%s %.3f %.3f %d %d %d\n", rps, p50, p99, non2xx, errs, reqs }
  ' "$1"
}

# The contenders: "name kind workers port pid" lines, filled as they start.
CONTENDERS=()
declare -A CLOG

throughput() {
  local w name
  log "starting the backend(s) and the contenders"
  start_backends
  CONTENDERS+=("direct direct 1 $P_BACKEND ${BACKEND_PIDS[0]}")
  CLOG[direct]=$OUT/run/backend0/error.log
  for w in $WORKERS; do
    name=gantry-lb-w$w
    start_gantry "$name" "$w" "$(p_gantry "$w")" "$(p_gantry_admin "$w")"
    CONTENDERS+=("gantry-lb gantry $w $(p_gantry "$w") $STARTED_PID")
    CLOG[$name]=$STARTED_LOG
    name=haproxy-w$w
    start_haproxy "$name" "$w" "$(p_haproxy "$w")"
    wait_port "$(p_haproxy "$w")" "$STARTED_PID" "$STARTED_LOG"
    CONTENDERS+=("haproxy haproxy $w $(p_haproxy "$w") $STARTED_PID")
    CLOG[$name]=$STARTED_LOG
    name=nginx-w$w
    start_nginx "$name" conf_nginx_proxy "$w" "$(p_nginx "$w")"
    wait_port "$(p_nginx "$w")" "$STARTED_PID" "$STARTED_LOG"
    CONTENDERS+=("nginx nginx $w $(p_nginx "$w") $STARTED_PID")
    CLOG[$name]=$STARTED_LOG
  done

  local c n kind workers port pid
  for c in "${CONTENDERS[@]}"; do
    read -r n kind workers port pid <<<"$c"
    log "warm-up: $n, $workers worker(s), ${WARMUP}s"
    run_wrk "$port" "$WARMUP" "$OUT/wrk/warmup-$n-w$workers.txt"
  done

  # Interleaved rounds: every contender once per round; each round starts one contender further
  # along the list, so none is always measured first or right after the same neighbour.
  local r i k total=${#CONTENDERS[@]} f t0 t1 parsed
  printf 'round\tcontender\tworkers\trps\tp50_ms\tp99_ms\tnon2xx\tsocket_errors\trequests\tcpu_us_per_req\tloadavg\n' >"$OUT/raw.tsv"
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < total; k++)); do
      i=$(((k + r - 1) % total))
      read -r n kind workers port pid <<<"${CONTENDERS[$i]}"
      log "round $r/$ROUNDS: $n, $workers worker(s), ${DURATION}s"
      f=$OUT/wrk/round$r-$n-w$workers.txt
      local acc
      acc=$(accounted_pids "$kind" "$pid")
      # shellcheck disable=SC2086
      t0=$(cpu_ticks $acc)
      run_wrk "$port" "$DURATION" "$f"
      # shellcheck disable=SC2086
      t1=$(cpu_ticks $acc)
      alive_or_die "$pid" "$n ($workers workers)" "$( [ "$kind" = direct ] && echo "${CLOG[direct]}" || echo "${CLOG[$n-w$workers]}")"
      parsed=$(parse_wrk "$f")
      read -r rps p50 p99 non2xx errs reqs <<<"$parsed"
      local cpu=nan
      [ "${reqs:-0}" -gt 0 ] && cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$n" "$workers" "$rps" "$p50" "$p99" \
        "$non2xx" "$errs" "$reqs" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/raw.tsv"
      echo "   $rps req/s, p50 ${p50} ms, p99 ${p99} ms, non-2xx $non2xx, socket errors $errs, proxy CPU ${cpu} us/req" >&2
    done
  done

  # gantry-lb's own counters: errors, and how many target connections the keep-alive pool opened.
  for w in $WORKERS; do
    curl -s --max-time 5 "http://127.0.0.1:$(p_gantry_admin "$w")/metrics" >"$OUT/logs/gantry-lb-w$w.metrics" 2>/dev/null || true
  done
  echo "load average at the end of the throughput test: $(cat /proc/loadavg)" >>"$OUT/env.txt"

  # Stop them all before the memory test.
  local stop=()
  for c in "${CONTENDERS[@]}"; do
    read -r n kind workers port pid <<<"$c"
    [ "$kind" = direct ] || stop+=("$pid")
  done
  stop_pids "${stop[@]}" "${BACKEND_PIDS[@]}"
  forget_pids "${stop[@]}" "${BACKEND_PIDS[@]}"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# med CONTENDER WORKERS COLUMN: the median of a raw.tsv column over the rounds.
med() { awk -F'\t' -v n="$1" -v w="$2" -v c="$3" 'NR > 1 && $2 == n && $3 == w { print $c }' "$OUT/raw.tsv" | median; }
colsum() { awk -F'\t' -v n="$1" -v w="$2" -v c="$3" 'NR > 1 && $2 == n && $3 == w { s += $c } END { print s + 0 }' "$OUT/raw.tsv"; }
spread() { # (max - min) / median of req/s over the rounds, in %
  awk -F'\t' -v n="$1" -v w="$2" 'NR > 1 && $2 == n && $3 == w { print $4 }' "$OUT/raw.tsv" | sort -g |
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; if (m > 0) printf "%.0f%%", (v[NR] - v[1]) / m * 100; else print "-" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else print "nan" }'; }

# ---------------------------------------------------------------------------------------------
# The memory test: one contender at a time, freshly started at MEM_WORKERS workers.
declare -A MEM_PER_CONN
mem_test() { # mem_test NAME
  local name=$1 pid acc port=$P_MEM kind=$1
  case "$name" in
    gantry-lb)
      start_gantry mem-gantry-lb "$MEM_WORKERS" "$port" "$P_MEM_ADMIN"
      pid=$STARTED_PID
      ;;
    haproxy)
      start_haproxy mem-haproxy "$MEM_WORKERS" "$port"
      pid=$STARTED_PID
      wait_port "$port" "$pid" "$STARTED_LOG"
      ;;
    nginx)
      start_nginx mem-nginx conf_nginx_proxy "$MEM_WORKERS" "$port"
      pid=$STARTED_PID
      wait_port "$port" "$pid" "$STARTED_LOG"
      ;;
  esac
  local mlog=$STARTED_LOG
  log "memory: $name ($MEM_WORKERS worker(s)): warm-up, then $IDLE_CONNS idle connections"
  run_wrk "$port" 1 "$OUT/wrk/memory-warmup-$name.txt"
  sleep 1
  acc=$(accounted_pids "$kind" "$pid")
  local before after after2 master_before=0 master_after=0
  # shellcheck disable=SC2086
  before=$(rss_kb $acc)
  [ "$kind" = nginx ] && master_before=$(rss_kb "$pid")

  local cout=$OUT/logs/memory-$name-client.txt
  setsid python3 perf/idle_conns.py 127.0.0.1 "$port" "$IDLE_CONNS" --body "$BODY" >"$cout" 2>&1 &
  local cpid=$!
  PIDS+=("$cpid")
  local i
  for ((i = 0; i < 1800; i++)); do
    grep -q '^HELD' "$cout" && break
    kill -0 "$cpid" 2>/dev/null || break
    alive_or_die "$pid" "$name" "$mlog"
    sleep 0.1
  done
  grep -q '^HELD' "$cout" || die "the idle-connection client did not finish: $(tail -n 5 "$cout")"
  sleep "$SETTLE"
  alive_or_die "$pid" "$name" "$mlog"
  acc=$(accounted_pids "$kind" "$pid")
  # shellcheck disable=SC2086
  after=$(rss_kb $acc)
  sleep 1
  # shellcheck disable=SC2086
  after2=$(rss_kb $acc)
  [ "$kind" = nginx ] && master_after=$(rss_kb "$pid")
  kill -USR1 "$cpid"
  local crc=0
  wait "$cpid" || crc=$?
  forget_pids "$cpid"
  stop_pids "$pid"
  forget_pids "$pid"

  local held open per
  held=$(grep '^HELD' "$cout")
  open=$(grep '^OPEN' "$cout" || echo "OPEN ? CLOSED ?")
  per=$(((after - before) * 1024 / IDLE_CONNS))
  MEM_PER_CONN[$name]=$per
  {
    printf '%s\tworkers=%s\tbefore_kb=%s\tafter_kb=%s\tafter+1s_kb=%s\tbytes_per_conn=%s' \
      "$name" "$MEM_WORKERS" "$before" "$after" "$after2" "$per"
    [ "$kind" = nginx ] && printf '\tmaster_before_kb=%s\tmaster_after_kb=%s' "$master_before" "$master_after"
    printf '\tclient: %s; %s (exit %s)\n' "$held" "$open" "$crc"
  } >>"$OUT/memory.tsv"
  echo "   RSS $before KiB -> $after KiB ($after2 KiB 1 s later): $per bytes per idle connection; $held; $open" >&2
  [ "$crc" = 0 ] || echo "   ANOMALY: $name: the idle-connection client reports failures: $held; $open" >&2
}

memory() {
  start_backends
  : >"$OUT/memory.tsv"
  local c
  for c in gantry-lb haproxy nginx; do mem_test "$c"; done
  stop_pids "${BACKEND_PIDS[@]}"
  forget_pids "${BACKEND_PIDS[@]}"
}

# ---------------------------------------------------------------------------------------------
[ "$THROUGHPUT" = 1 ] && throughput
[ "$MEMORY" = 1 ] && memory
echo "load average at the end: $(cat /proc/loadavg)" >>"$OUT/env.txt"

# ---------------------------------------------------------------------------------------------
# The report, printed and saved as summary.txt.
report() {
  echo "Proxy benchmark, $STAMP: wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency, $ROUNDS interleaved round(s), medians;"
  echo "a 16-byte response from $BACKENDS nginx backend(s) (1 worker each) over keep-alive. $(nproc) cores."
  echo "Raw outputs: ${OUT#"$ROOT"/}/"
  grep '^load average' "$OUT/env.txt" | sed 's/ [0-9]*\/[0-9]* [0-9]*$//'
  local anomalies=()
  if [ "$THROUGHPUT" = 1 ]; then
    echo
    printf '%-10s %7s %10s %8s %8s %11s %7s %7s\n' contender workers "req/s" "p50 ms" "p99 ms" "cpu us/req" spread errors
    local w n rows=("direct 1")
    for w in $WORKERS; do rows+=("gantry-lb $w" "haproxy $w" "nginx $w"); done
    local row
    for row in "${rows[@]}"; do
      read -r n w <<<"$row"
      local e
      e=$(($(colsum "$n" "$w" 7) + $(colsum "$n" "$w" 8)))
      printf '%-10s %7s %10.0f %8.2f %8.2f %11.1f %7s %7s\n' "$n" "$([ "$n" = direct ] && echo - || echo "$w")" \
        "$(med "$n" "$w" 4)" "$(med "$n" "$w" 5)" "$(med "$n" "$w" 6)" "$(med "$n" "$w" 10)" "$(spread "$n" "$w")" "$e"
    done
    echo
    echo "gantry-lb's ratios (medians):"
    printf '%-8s %17s %15s %15s %13s %19s\n' workers "req/s vs HAProxy" "p99 vs HAProxy" "req/s vs nginx" "p99 vs nginx" "cpu/req vs HAProxy"
    for w in $WORKERS; do
      printf '%-8s %16sx %14sx %14sx %12sx %18sx\n' "$w" \
        "$(ratio "$(med gantry-lb "$w" 4)" "$(med haproxy "$w" 4)")" \
        "$(ratio "$(med gantry-lb "$w" 6)" "$(med haproxy "$w" 6)")" \
        "$(ratio "$(med gantry-lb "$w" 4)" "$(med nginx "$w" 4)")" \
        "$(ratio "$(med gantry-lb "$w" 6)" "$(med nginx "$w" 6)")" \
        "$(ratio "$(med gantry-lb "$w" 10)" "$(med haproxy "$w" 10)")"
    done
    # Anomalies: wrk errors or non-2xx answers, errors in gantry-lb's counters or HAProxy's log.
    local line
    while IFS=$'\t' read -r r n w rps p50 p99 non2xx errs _; do
      [ "$r" = round ] && continue
      [ "$non2xx" != 0 ] && anomalies+=("round $r, $n ($w workers): $non2xx non-2xx/3xx responses")
      [ "$errs" != 0 ] && anomalies+=("round $r, $n ($w workers): $errs socket errors")
    done <"$OUT/raw.tsv"
    for w in $WORKERS; do
      local m=$OUT/logs/gantry-lb-w$w.metrics
      [ -s "$m" ] || continue
      while read -r line; do
        anomalies+=("gantry-lb ($w workers) metrics: $line")
      done < <(grep -E '^gantry_lb_(errors_total|target_connection_errors_total|retries_total)' "$m" | awk '$NF + 0 > 0' || true)
      local fresh reused
      fresh=$(awk '/^gantry_lb_target_connections_total.*reused="false"/ { s += $NF } END { print s + 0 }' "$m")
      reused=$(awk '/^gantry_lb_target_connections_total.*reused="true"/ { s += $NF } END { print s + 0 }' "$m")
      echo "gantry-lb ($w workers): $fresh new target connections, $reused reused from the pool, over the whole run."
    done
    for f in "$OUT"/logs/haproxy-w*.log "$OUT"/logs/gantry-lb-w*.log; do
      [ -s "$f" ] || continue
      while read -r line; do anomalies+=("$(basename "$f"): $line"); done < <(grep -E 'ALERT|WARNING|error|warn' "$f" | head -n 5 || true)
    done
  fi
  if [ "$MEMORY" = 1 ]; then
    echo
    echo "Memory: RSS added by $IDLE_CONNS idle keep-alive client connections (each answered once), $MEM_WORKERS worker(s):"
    local c
    for c in gantry-lb haproxy nginx; do
      local line
      line=$(grep "^$c	" "$OUT/memory.tsv" || true)
      local note=""
      [ "$c" = nginx ] && note=" (workers' RSS; master excluded, it handles no connection)"
      printf '  %-10s %6s bytes per connection%s\n' "$c" "${MEM_PER_CONN[$c]:-nan}" "$note"
      if [ -n "$line" ] && ! grep -q "OPEN $IDLE_CONNS CLOSED 0 (exit 0)" <<<"$line"; then
        anomalies+=("memory test, $c: ${line#*client: }")
      fi
    done
  fi

  echo
  if [ ${#anomalies[@]} -gt 0 ]; then
    local a
    for a in "${anomalies[@]}"; do echo "ANOMALY: $a"; done
  else
    local ok=()
    [ "$THROUGHPUT" = 1 ] && ok+=("no wrk socket error or non-2xx response, no gantry-lb error counter")
    [ "$MEMORY" = 1 ] && ok+=("every idle connection answered and kept open")
    local joined
    joined=$(printf '%s; ' "${ok[@]}")
    echo "No anomalies: ${joined%; }."
  fi
  echo
  bar() { # bar LABEL VALUE OP LIMIT
    local ok
    ok=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { if (v == "nan" || l == "nan" || v == "" || l == "") print "FAIL"; else if (op == "<=") print (v + 0 <= l + 0) ? "PASS" : "FAIL"; else print (v + 0 >= l + 0) ? "PASS" : "FAIL" }')
    echo "$ok $1"
  }
  if [ "$THROUGHPUT" = 1 ] && [[ " $WORKERS " != *" 1 "* ]]; then
    echo "(the throughput bars are at 1 worker: WORKERS does not include 1)"
  elif [ "$THROUGHPUT" = 1 ]; then
    local rr pr
    rr=$(ratio "$(med gantry-lb 1 4)" "$(med haproxy 1 4)")
    pr=$(ratio "$(med gantry-lb 1 6)" "$(med haproxy 1 6)")
    bar "gantry-lb req/s >= 1.0x HAProxy's at 1 worker: ${rr}x" "$rr" ">=" 1.0
    bar "gantry-lb p99 <= 1.1x HAProxy's at 1 worker: ${pr}x" "$pr" "<=" 1.1
  fi
  if [ "$MEMORY" = 1 ]; then
    bar "gantry-lb memory per idle connection <= HAProxy's: ${MEM_PER_CONN[gantry-lb]:-nan} vs ${MEM_PER_CONN[haproxy]:-nan} bytes" \
      "${MEM_PER_CONN[gantry-lb]:-nan}" "<=" "${MEM_PER_CONN[haproxy]:-nan}"
  fi
}
report | tee "$OUT/summary.txt"
