#!/usr/bin/env bash
# Make the README's screenshots from a real run of `cutover demo` (release build) in tmux at
# 160x48 with 256 colours: the dashboard, the bad version's analysis zoomed after it rolled
# back, the dashboard at the gate, the history view's delivery measures, a drill-down into a
# past run and the help.
# Each is drawn by rich from the pane's text and turned into a PNG by rsvg-convert (capture.sh).
#
# Install first:  apt-get install tmux librsvg2-bin fonts-firacode  and  pip install rich
# Usage: screenshots/make.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source screenshots/capture.sh
check_screenshot_tools
cargo build --release --quiet
s=cutover-shots-$$
trap 'tmux kill-session -t "$s" 2>/dev/null || true' EXIT
TERM=xterm-256color tmux new-session -d -s "$s" -x 160 -y 48 "target/release/cutover demo"
keys() { tmux send-keys -t "$s" "$@"; sleep 0.7; }
wait_for() { # text, seconds
  for _ in $(seq $(($2 * 10))); do
    tmux capture-pane -p -t "$s" | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  echo "never saw: $1" >&2
  tmux capture-pane -p -t "$s" >&2
  return 1
}
# The dashboard while the shop canary is analysed (the selection follows it).
wait_for "analyse canary-20" 60
sleep 8
capture_screenshot "$s" dashboard
# The bad payments version, rolled back by itself: its analysis pane zoomed.
wait_for "RBCK" 90
keys k; keys k   # rows are by name: checkout, ledger, payments, search, shop
keys l; keys l; keys l; keys z
capture_screenshot "$s" analysis-rolled-back
keys z; keys h; keys h; keys h
keys j; keys j
wait_for "gate(s) waiting" 90
sleep 2
capture_screenshot "$s" approvals
keys a; sleep 3
# The history: 60 days of generated past, its delivery measures, then a past run drilled into.
keys H; capture_screenshot "$s" history
keys j; keys j; keys Enter; sleep 1; capture_screenshot "$s" drill-down
keys Escape; keys Escape; keys '?'; capture_screenshot "$s" help
keys Escape; keys q
# Let the demo stop its services and remove its state before the session goes.
for _ in $(seq 100); do tmux has-session -t "$s" 2>/dev/null || break; sleep 0.1; done
