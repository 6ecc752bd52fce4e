#!/usr/bin/env bash
# Installs the Debian packages Gantry needs, and only those that are missing, so a second run costs
# a few dpkg-query calls. Usage: scripts/deps.sh [build|test|fmt|fuzz|perf]...  (default: build test)
set -euo pipefail

build_pkgs=(gcc make pkg-config libev-dev libhiredis-dev libcurl4-openssl-dev libyaml-dev libjansson-dev)
# awscli: the AWS CLI v2, the acceptance client of gantry-core's ECS API. docker.io: dockerd for
# the DOCKER launch type's tests (they start a private daemon when none runs).
test_pkgs=(libcmocka-dev redis-server curl python3 procps awscli docker.io)
fmt_pkgs=(clang-format)
fuzz_pkgs=(clang libclang-rt-14-dev)
# perf: the benchmarks' contenders (wrk, haproxy, nginx-light) and gnuplot-nox, which draws perf/load's
# and the scenarios' charts (PNG, no X11).
perf_pkgs=(wrk haproxy nginx-light procps python3 gnuplot-nox)

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(build test)

wanted=()
for set in "${sets[@]}"; do
  case "$set" in
    build) wanted+=("${build_pkgs[@]}") ;;
    test) wanted+=("${test_pkgs[@]}") ;;
    fmt) wanted+=("${fmt_pkgs[@]}") ;;
    fuzz) wanted+=("${fuzz_pkgs[@]}") ;;
    perf) wanted+=("${perf_pkgs[@]}") ;;
    *) echo "deps.sh: unknown package set '$set' (expected build, test, fmt, fuzz or perf)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -ne 0 ] && sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
}
# A fresh machine may have empty or stale package lists: refresh once, only when needed.
if ! apt_install; then
  "${sudo[@]}" apt-get update -q </dev/null
  apt_install
fi
