#!/usr/bin/env bash
# Router benchmark: cutover's weighted router beside nginx and HAProxy, all three in front of the
# same three demo-service instances (two of version 1.0.0, one of 2.0.0) at 80/20, on this machine.
#
#   benches/router.sh [seconds-per-run] [pinned|unpinned]     (default: 10 pinned)
#   ROUNDS=N (default 3): each proxy is run N times, in turn with the others; medians are shown
#   (one run on this shared 2-core machine can be 30% off the next).
#
# Pinned: the proxies and the backends on core 0 (cutover's host and the instances it starts,
# nginx's one worker, HAProxy's one thread), the load generator on core 1. Unpinned: no
# affinity. Installs what it needs with apt-get when missing (wrk, nginx-light, haproxy) and
# builds the release binary. Prints, per proxy (medians over the rounds):
#   - saturation: wrk, one thread, 64 keep-alive connections: requests/s, failures, latency;
#   - an open-loop rate of 2000 req/s (`cutover load`): median and p99 latency, and the proxy's
#     own CPU time per request over that run (utime + stime from /proc/PID/stat: cutover's host
#     without its instances but with its other work, probes included; nginx's worker; HAProxy's
#     process);
#   - failed: wrk's errors and non-2xx answers plus the open-loop run's failures, all rounds;
#   - the share of requests each version answered (the demo-service instances' own counters).
# PROFILE=FILE: also record the host with `perf record -g` while wrk loads cutover's router.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
MODE=${2:-pinned}
ROUNDS=${ROUNDS:-3}
if [ "$MODE" = pinned ] && [ "$(nproc)" -ge 2 ]; then
  PROXY="taskset -c 0"
  LOAD="taskset -c 1"
else
  PROXY=""
  LOAD=""
  MODE=unpinned
fi
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v haproxy >/dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi
cargo build --release --quiet
B=$PWD/target/release/cutover
D=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$B" --state-dir "$D" host stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CUT=$(free_port)
NGX=$(free_port)
HAP=$(free_port)
spec() { # version replicas [canary]
  cat <<SPEC
id: bench
name: bench
version: '$1'
strategy: canary
environment: bench
components:
  - id: web
    name: web
    version: '$1'
    replicas: $2
    listen: 127.0.0.1:$CUT
    run:
      command: ['{self}', demo-service, --port, '{port}', --version, '{version}']
    healthCheck: {type: http, endpoint: /health, port: 8080, periodSeconds: 5}
infrastructure:
  provider: local
metadata:
  canaryConfig:
    stages:
      - {name: twenty, percentage: 20, duration: 0, autoPromote: false}
      - {name: all, percentage: 100, duration: 0, autoPromote: true}
    metrics: []
    analysisInterval: 3600000
SPEC
}
# The host (and so the instances it starts) on the proxies' core.
$PROXY "$B" --state-dir "$D" host supervise 2>"$D/host.err" &
PIDS+=($!)
for _ in $(seq 100); do "$B" --state-dir "$D" host status >/dev/null 2>&1 && break; sleep 0.1; done
spec 1.0.0 2 >"$D/v1.yaml"
spec 2.0.0 1 >"$D/v2.yaml"
"$B" --state-dir "$D" apply "$D/v1.yaml" --headless >/dev/null
# The canary stops at 20% at its gate and waits there while the benchmark runs.
"$B" --state-dir "$D" apply "$D/v2.yaml" --headless >"$D/v2.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
  "$B" --state-dir "$D" host status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); w=sorted(r["weight"] for r in s["components"][0]["revisions"]); r=[i for x in s["components"][0]["revisions"] for i in x["instances"] if i["ready"]]; sys.exit(0 if w==[20,80] and len(r)==3 else 1)' && break
  sleep 0.2
done
read -r -a BACKENDS <<<"$("$B" --state-dir "$D" host status --json | python3 -c '
import json,sys
s=json.load(sys.stdin)
out=[]
for r in s["components"][0]["revisions"]:
    for i in r["instances"]:
        out.append("%s:%d:%d" % (r["version"], i["ports"]["http"], r["weight"] * 100 // len(r["instances"])))
print(" ".join(out))')"
[ ${#BACKENDS[@]} -eq 3 ] || { echo "expected 3 instances at 80/20, got: ${BACKENDS[*]}" >&2; exit 1; }
mkdir -p "$D/nginx"
{
  echo "worker_processes 1; daemon off; pid $D/nginx/pid; error_log $D/nginx/error.log;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off;"
  for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $D/nginx/$t;"; done
  echo "  upstream app { keepalive 64;"
  for b in "${BACKENDS[@]}"; do IFS=: read -r _ port w <<<"$b"; echo "    server 127.0.0.1:$port weight=$((w / 100));"; done
  echo "  }"
  echo "  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
  echo "}"
} >"$D/nginx/nginx.conf"
{
  echo "global"
  echo "  nbthread 1"
  echo "  maxconn 4096"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 30s"
  echo "  timeout server 30s"
  echo "  http-reuse always"
  echo "frontend f"
  echo "  bind 127.0.0.1:$HAP"
  echo "  default_backend b"
  echo "backend b"
  echo "  balance roundrobin"
  n=0
  for b in "${BACKENDS[@]}"; do IFS=: read -r _ port w <<<"$b"; n=$((n + 1)); echo "  server s$n 127.0.0.1:$port weight $((w / 100))"; done
} >"$D/haproxy.cfg"
$PROXY nginx -c "$D/nginx/nginx.conf" -p "$D/nginx" 2>>"$D/nginx/error.log" &
NGXPID=$!
PIDS+=($NGXPID)
$PROXY haproxy -f "$D/haproxy.cfg" -db 2>"$D/haproxy.err" &
HAPPID=$!
PIDS+=($HAPPID)
sleep 1
HOSTPID=$("$B" --state-dir "$D" host status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
# The processes whose CPU is the proxy's: its own threads, not its children's.
proxy_pids() {
  case $1 in
    cutover) echo "$HOSTPID" ;;
    nginx) pgrep -P "$NGXPID" nginx || true ;;
    haproxy) echo "$HAPPID" ;;
  esac
}
TCK=$(getconf CLK_TCK)
cpu_ns() { # PIDS...: nanoseconds on CPU of each whole process (threads gone since included)
  local total=0 stat f
  for p in "$@"; do
    stat=$(cat /proc/"$p"/stat 2>/dev/null) || continue
    read -r -a f <<<"${stat##*) }"
    # utime and stime, fields 14 and 15 (11 and 12 after the command's name).
    total=$((total + (f[11] + f[12]) * 1000000000 / TCK))
  done
  echo "$total"
}
# Requests each version answered, from the instances' own counters.
answered() {
  for b in "${BACKENDS[@]}"; do
    IFS=: read -r v port _ <<<"$b"
    n=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^demo_requests_total/ {s+=$2} END {print s+0}')
    echo "$v $n"
  done
}
share() { # before after
  python3 - "$1" "$2" <<'PY'
import sys
def read(t):
    d={}
    for line in t.strip().splitlines():
        v,n=line.split(); d[v]=d.get(v,0)+float(n)
    return d
a,b=read(sys.argv[1]),read(sys.argv[2])
diff={v:b[v]-a.get(v,0) for v in b}
tot=sum(diff.values()) or 1
print("  ".join("%s %.2f%%" % (v, 100*diff[v]/tot) for v in sorted(diff)))
PY
}
echo "router benchmark, $MODE, ${SECS}s per run, $ROUNDS rounds (medians), $(nproc) cores; backends: ${BACKENDS[*]} (version:port:weight x100)"
: >"$D/results"
for round in $(seq "$ROUNDS"); do
  for target in "direct:${BACKENDS[0]#*:}" "cutover:$CUT" "nginx:$NGX" "haproxy:$HAP"; do
    name=${target%%:*}
    port=${target#*:}
    port=${port%%:*}
    url="http://127.0.0.1:$port/"
    before=$(answered)
    if [ "$name" = cutover ] && [ -n "${PROFILE:-}" ] && [ "$round" = 1 ]; then
      perf record -g -o "$PROFILE" -p "$HOSTPID" -- sleep "$SECS" >/dev/null 2>&1 &
      PERF=$!
    fi
    w=$($LOAD wrk -t1 -c64 -d"${SECS}s" --latency "$url" 2>&1)
    if [ "$name" = cutover ] && [ -n "${PROFILE:-}" ] && [ "$round" = 1 ]; then wait "$PERF" || true; fi
    after=$(answered)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$w")
    errs=$(awk '/Non-2xx|Socket errors/ {gsub(/,/, ""); for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i} END {print s+0}' <<<"$w")
    p50=$(awk '$1=="50%" {print $2}' <<<"$w")
    p99=$(awk '$1=="99%" {print $2}' <<<"$w")
    read -r -a pp <<<"$(proxy_pids "$name" | tr '\n' ' ')"
    c0=$(cpu_ns "${pp[@]}")
    open=$($LOAD "$B" load --target "$url" --rps 2000 --duration "${SECS}s" --concurrency 256 --json |
      python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latency_ms"]; print(l["p50"], l["p99"], r["errors"]+r["transport_errors"], r["ok"]+r["errors"])')
    c1=$(cpu_ns "${pp[@]}")
    answered_n=${open##* }
    open=${open% *}
    # Microseconds of the proxy's CPU per request (none for direct).
    us=$(python3 -c "import sys; n=int(sys.argv[3]); print('%.1f' % ((int(sys.argv[2]) - int(sys.argv[1])) / 1000 / n) if n and sys.argv[4] else '-')" "$c0" "$c1" "$answered_n" "${pp[*]}")
    echo "$name $rps $errs $p50 $p99 $open $us $(share "$before" "$after" | tr ' ' '_')" >>"$D/results"
    echo "  round $round $name: $rps req/s, p50 at 2000 req/s ${open%% *} ms, CPU $us us/request" >&2
  done
done
python3 - "$D/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, errs, p50, p99, op50, op99, ofail, us, share = line.split()
    rows.setdefault(name, []).append((float(rps), int(errs), p50, p99, float(op50), float(op99), int(ofail), share.replace("_", " "), us))
def med(xs): return statistics.median(xs)
def cpu(rs):
    xs = [float(x[8]) for x in rs if x[8] != "-"]
    return "%.1f" % med(xs) if xs else "-"
print("%-8s %12s %8s %9s %9s   %-24s %8s   %-22s %s" % ("proxy", "wrk req/s", "failed", "wrk p50", "wrk p99", "2000 req/s p50 / p99", "CPU/req", "answered by version", "each round: req/s, p50 at 2000"))
for name, rs in rows.items():
    r = sorted(rs, key=lambda x: x[0])[len(rs) // 2]
    failed = sum(x[1] + x[6] for x in rs)
    print("%-8s %12.0f %8d %9s %9s   %-24s %8s   %-22s %s" % (name, med([x[0] for x in rs]), failed, r[2], r[3],
        "%.3f / %.3f ms" % (med([x[4] for x in rs]), med([x[5] for x in rs])), cpu(rs) + " us", r[7],
        " ".join("%.0f/%.3f" % (x[0], x[4]) for x in rs)))
PY
