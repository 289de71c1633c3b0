#!/usr/bin/env bash
# CPU and bytes written per second by the console while it watches a live canary for 30 s, and
# while it watches nothing change (finished deployments only) for 30 s.
#
# Usage: benches/console_watch.sh [SECONDS]   (needs tmux; builds the release binary)
# The console reports its own numbers (frames drawn, bytes written to the terminal, CPU time from
# getrusage) into the file named by CUTOVER_CONSOLE_STATS when it quits.
set -euo pipefail
secs=${1:-30}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/cutover
work=$(mktemp -d)
state=$work/state
sock=cutover-watch-$$
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null || true
  [ -n "${apply_pid:-}" ] && kill "$apply_pid" 2>/dev/null || true
  "$bin" --state-dir "$state" host stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for v in 1.0.0 1.1.0; do
  sed -e "s/127.0.0.1:18180/127.0.0.1:$port/" \
      -e "s/duration: 20s/duration: 10m/" \
      specs/demo/console/shop-$v.yaml > "$work/shop-$v.yaml"
done

watch() { # label
  tmux -L "$sock" new-session -d -s w -x 120 -y 40 \
    "CUTOVER_CONSOLE_STATS=$work/$1.json $bin --state-dir $state console --read-only"
  sleep "$secs"
  tmux -L "$sock" send-keys -t w q
  for _ in $(seq 50); do [ -s "$work/$1.json" ] && break; sleep 0.1; done
  python3 - "$work/$1.json" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t = s["seconds"]
print(f'{sys.argv[2]:>13}: {t:.1f}s, {s["frames"]} frames ({s["frames"]/t:.2f}/s), '
      f'{s["bytes"]} bytes ({s["bytes"]/t:.0f} B/s), cpu {s["cpu_ms"]:.0f} ms ({s["cpu_ms"]/10/t:.2f}% of one core)')
PY
}

"$bin" --state-dir "$state" apply "$work/shop-1.0.0.yaml" >/dev/null
"$bin" load --target "http://127.0.0.1:$port/" --rps 50 --duration 10m >/dev/null 2>&1 &
load_pid=$!
"$bin" --state-dir "$state" apply "$work/shop-1.1.0.yaml" --headless >/dev/null 2>&1 &
apply_pid=$!
sleep 3
echo "console at 120x40 for ${secs}s each (release build):"
watch live-canary
kill "$apply_pid" 2>/dev/null || true   # Ctrl-C semantics: the run pauses and is saved
wait "$apply_pid" 2>/dev/null || true
apply_pid=
kill "$load_pid" 2>/dev/null || true
load_pid=
"$bin" --state-dir "$state" rollback shop >/dev/null 2>&1 || true
sleep 1
watch idle
