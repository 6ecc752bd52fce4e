#!/usr/bin/env bash
# The metrics benchmark: gantry-lb's requests/s with metrics on against off (same run,
# interleaved), then what 1,000 targets' series cost Redis and gantry-lb. See perf/README.md.
#   perf/bench_metrics.sh          # about 2 minutes
#   QUICK=1 perf/bench_metrics.sh  # about 30 s
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/deps.sh" build test perf
make -C "$ROOT" --no-print-directory -j2 all >/dev/null
exec python3 "$ROOT/perf/bench_metrics.py"
