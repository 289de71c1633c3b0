#!/usr/bin/env bash
# Probe benchmark: what health probes cost the local host. Starts N instances (default 1000) of a
# minimal HTTP backend (benches/tiny_backend.c, compiled here with cc: about 1 MB each, where a
# demo-service is about 9 MB), each probed by HTTP GET every second, and measures the host's CPU
# time over a window once all are ready (from /proc/PID/stat: user + system, every thread).
#
#   benches/probes.sh [instances] [seconds] [pinned|unpinned]     (default: 1000 30 pinned)
#
# Pinned: the host on core 0, the instances on core 1, so that the host's share is its own.
# Prints the host's CPU as a percentage of one core, per probe in microseconds, and its memory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
SECS=${2:-30}
MODE=${3:-pinned}
if [ "$MODE" = pinned ] && [ "$(nproc)" -ge 2 ]; then
  HOSTCPU="taskset -c 0"
  INSTCPU="taskset, -c, '1', "
else
  HOSTCPU=""
  INSTCPU=""
  MODE=unpinned
fi
cargo build --release --quiet
B=$PWD/target/release/cutover
D=$(mktemp -d)
cleanup() {
  "$B" --state-dir "$D" host stop >/dev/null 2>&1 || true
  [ -n "${HOST:-}" ] && kill "$HOST" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
cc -O2 -o "$D/tiny" benches/tiny_backend.c
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$D/spec.yaml" <<SPEC
id: probes
name: probes
version: '1'
strategy: recreate
environment: bench
components:
  - id: tiny
    name: tiny
    version: '1'
    replicas: $N
    listen: 127.0.0.1:$PORT
    run:
      command: [$INSTCPU'$D/tiny', '{port}']
    healthCheck: {type: http, endpoint: /health, port: 8080, periodSeconds: 1, timeoutSeconds: 1}
infrastructure:
  provider: local
SPEC
$HOSTCPU "$B" --state-dir "$D" host supervise 2>"$D/host.err" &
HOST=$!
for _ in $(seq 100); do "$B" --state-dir "$D" host status >/dev/null 2>&1 && break; sleep 0.1; done
t0=$(date +%s.%N)
"$B" --state-dir "$D" apply "$D/spec.yaml" --headless >"$D/apply.log" 2>&1 || { tail -5 "$D/apply.log" >&2; exit 1; }
t1=$(date +%s.%N)
ready=$("$B" --state-dir "$D" host status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(1 for c in s["components"] for r in c["revisions"] for i in r["instances"] if i["ready"]))')
[ "$ready" -eq "$N" ] || { echo "only $ready of $N instances ready" >&2; exit 1; }
# The host that serves (`host supervise` runs it as a child and restarts it).
WORKER=$("$B" --state-dir "$D" host status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
cpu() { awk '{print $14 + $15}' "/proc/$WORKER/stat"; }
checks() {
  "$B" --state-dir "$D" host status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(i["probe"]["checks"] for c in s["components"] for r in c["revisions"] for i in r["instances"]))'
}
sleep 3 # let the start-up settle
c0=$(cpu); k0=$(checks); s0=$(date +%s.%N)
sleep "$SECS"
c1=$(cpu); k1=$(checks); s1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
python3 - "$c0" "$c1" "$k0" "$k1" "$s0" "$s1" "$hz" "$N" "$MODE" "$(awk '/VmRSS/ {print $2}' "/proc/$WORKER/status")" "$(python3 -c "print(round($t1 - $t0, 1))")" <<'PY'
import sys
c0, c1, k0, k1, s0, s1, hz, n, mode, rss, start = sys.argv[1:]
cpu = (float(c1) - float(c0)) / float(hz)
wall = float(s1) - float(s0)
checks = int(k1) - int(k0)
print(f"probes benchmark, {mode}: {n} instances probed by HTTP every 1 s, {wall:.0f} s measured")
print(f"  started and ready in {start} s")
print(f"  checks: {checks} ({checks / wall:.0f}/s)")
print(f"  host CPU: {100 * cpu / wall:.2f}% of one core, {1e6 * cpu / max(checks, 1):.1f} us per check")
print(f"  host memory: {int(rss) / 1024:.0f} MB")
PY
