#!/usr/bin/env bash
# Capture a tmux pane and render it to screenshots/NAME.png.
#
#   screenshots/capture.sh SESSION NAME        # run it
#   source screenshots/capture.sh              # or load the function and call
#   capture_screenshot SESSION NAME            #   it from your own script
#
# SESSION is any tmux target (session, session:window, %pane).  The pane size
# is read from tmux, so panes other than 120x40 work too.  The intermediate
# NAME.ansi is deleted afterwards (set KEEP_ANSI=1 to keep it).  Extra
# render.py options can be passed in RENDER_ARGS, e.g. RENDER_ARGS="--font-size 20".
# Needs tmux, python3 and Pillow (pip install pillow).

SCREENSHOTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

capture_screenshot() (
    set -euo pipefail
    if [[ $# -ne 2 || -z $1 || -z $2 ]]; then
        echo "usage: capture.sh SESSION NAME" >&2
        return 2
    fi
    local target=$1 name=$2
    local ansi="$SCREENSHOTS_DIR/$name.ansi" png="$SCREENSHOTS_DIR/$name.png"
    local cols rows
    cols=$(tmux display-message -p -t "$target" '#{pane_width}')
    rows=$(tmux display-message -p -t "$target" '#{pane_height}')

    if [[ ${KEEP_ANSI:-0} != 1 ]]; then
        trap 'rm -f "$ansi"' EXIT
    fi
    # -e: keep colours/attributes, -p: to stdout, -N: keep trailing spaces
    # (otherwise coloured/reversed cells at the end of a row are lost).
    tmux capture-pane -e -p -N -t "$target" > "$ansi"
    # shellcheck disable=SC2086  # RENDER_ARGS is meant to be word-split
    python3 "$SCREENSHOTS_DIR/render.py" "$ansi" "$png" \
        --cols "$cols" --rows "$rows" --title "$name" ${RENDER_ARGS:-}
    echo "$png"
)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    capture_screenshot "$@"
fi
