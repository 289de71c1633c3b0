#!/usr/bin/env bash
# Router benchmark: the same demo-service instance called directly and through cutover's
# weighted router, at fixed open-loop rates and at saturation, in one run on this machine.
# Usage: benches/router.sh [seconds-per-run]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
cargo build --release --quiet
B=$PWD/target/release/cutover
STATE=$(mktemp -d)
trap '$B --state-dir "$STATE" host stop >/dev/null 2>&1 || true; rm -rf "$STATE"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$STATE/bench.yaml" <<SPEC
id: bench
name: bench
version: '1.0.0'
strategy: recreate
environment: bench
components:
  - id: web
    name: web
    version: '1.0.0'
    replicas: 1
    listen: 127.0.0.1:$PORT
    run:
      command: ['{self}', demo-service, --port, '{port}', --version, '{version}']
    healthCheck: {type: http, endpoint: /health, port: 8080, periodSeconds: 5}
infrastructure:
  provider: local
SPEC
$B --state-dir "$STATE" apply "$STATE/bench.yaml" >/dev/null
BACKEND=$($B --state-dir "$STATE" host status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["components"][0]["revisions"][0]["instances"][0]["ports"]["http"])')
run() { # name url rps concurrency
  $B load --target "$2" --rps "$3" --duration "${SECS}s" --concurrency "$4" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_ms"]; a=sys.argv; print("%-8s %6s rps asked %8.0f rps done  ok %7d  failed %4d  dropped %6d  p50 %6.3f ms  p99 %6.3f ms" % (a[1], a[2], r["achieved_rps"], r["ok"], r["errors"]+r["transport_errors"], r["dropped"], l["p50"], l["p99"]))' "$1" "$3"
}
echo "cutover router benchmark: ${SECS}s per run, $(nproc) cores, load generator on the same machine"
for RPS in 1000 2000 4000; do
  run direct "http://127.0.0.1:$BACKEND/" $RPS 256
  run router "http://127.0.0.1:$PORT/" $RPS 256
done
echo "saturation (asked 50000 rps, 64 in flight):"
run direct "http://127.0.0.1:$BACKEND/" 50000 64
run router "http://127.0.0.1:$PORT/" 50000 64
