#!/usr/bin/env bash
# Make the README's screenshots from a real run of `cutover demo` (release build) in tmux at
# 120x40 with 256 colours: the main view's panes, the approvals pane at the gate, the bad
# version's analysis after it rolled back, the history view, a drill-down and the help.
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
TERM=xterm-256color tmux new-session -d -s "$s" -x 120 -y 40 "target/release/cutover demo"
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
wait_for "shop 1.1.0" 60
keys j   # rows are by name: payments, shop
wait_for "analyse canary-20" 30
sleep 6
capture_screenshot "$s" progress
keys Tab; capture_screenshot "$s" traffic
keys Tab; capture_screenshot "$s" health
wait_for "RBCK payments" 60
keys k; keys Tab; capture_screenshot "$s" analysis-rolled-back
keys j
wait_for "gate(s) waiting" 90
keys Tab; capture_screenshot "$s" approvals
keys a; sleep 5
keys H; capture_screenshot "$s" history
keys j; keys Enter; capture_screenshot "$s" drill-down
keys Escape; keys Escape; keys '?'; capture_screenshot "$s" help
keys Escape; keys q
# Let the demo stop its services and remove its state before the session goes.
for _ in $(seq 100); do tmux has-session -t "$s" 2>/dev/null || break; sleep 0.1; done
