#!/usr/bin/env bash
# Capture a tmux pane as screenshots/NAME.png: rich draws the pane's text and colours (as
# `tmux capture-pane -e` prints them) to an SVG, and rsvg-convert turns that into the PNG in
# Fira Code, with the ligatures off (fonts.conf).
#
#   screenshots/capture.sh SESSION NAME        # run it, or
#   source screenshots/capture.sh              # load the function and call
#   capture_screenshot SESSION NAME            #   it from your own script
#
# SESSION is any tmux target; the picture is as wide as the pane.  KEEP_SVG=1 keeps NAME.svg.
# Needs tmux, rich (pip install rich), rsvg-convert and the Fira Code font that rich's SVG
# names (apt-get install tmux librsvg2-bin fonts-firacode).

SCREENSHOTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

check_screenshot_tools() {
    local missing=()
    command -v tmux >/dev/null || missing+=("tmux: apt-get install tmux")
    python3 -c 'import rich' 2>/dev/null || missing+=("rich: pip install rich")
    command -v rsvg-convert >/dev/null || missing+=("rsvg-convert: apt-get install librsvg2-bin")
    fc-list 2>/dev/null | grep -q 'Fira Code' || missing+=("the Fira Code font: apt-get install fonts-firacode")
    if ((${#missing[@]})); then
        printf 'screenshots: missing %s\n' "${missing[@]}" >&2
        return 1
    fi
}

capture_screenshot() (
    set -euo pipefail
    if [[ $# -ne 2 || -z $1 || -z $2 ]]; then
        echo "usage: capture.sh SESSION NAME" >&2
        return 2
    fi
    local svg="$SCREENSHOTS_DIR/$2.svg" png="$SCREENSHOTS_DIR/$2.png"
    local cols
    cols=$(tmux display-message -p -t "$1" '#{pane_width}')
    # -N keeps trailing spaces, so coloured or reversed cells at the end of a row stay.
    tmux capture-pane -e -p -N -t "$1" | python3 -c '
import os, sys
from rich.console import CONSOLE_SVG_FORMAT, Console
from rich.terminal_theme import TerminalTheme
from rich.text import Text
svg, cols, title = sys.argv[1], int(sys.argv[2]), sys.argv[3]
console = Console(record=True, width=cols, file=open(os.devnull, "w"), color_system="truecolor")
console.print(Text.from_ansi(sys.stdin.read()), no_wrap=True, overflow="crop", end="")
# The 16 colours as xterm has them (src/tui/colour.rs takes the same ones).
xterm = TerminalTheme((30, 30, 30), (212, 212, 212),
    [(0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229)],
    [(127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255)])
# rsvg-convert would drop the spaces that start a run of text, and ignores textLength: so keep
# spaces, and give rich the exact advance of Fira Code (1200/1950 em) so that every cell lines up.
fmt = CONSOLE_SVG_FORMAT.replace("<svg ", "<svg xml:space=\"preserve\" ", 1)
console.save_svg(svg, title=title, theme=xterm, code_format=fmt, font_aspect_ratio=1200 / 1950)
' "$svg" "$cols" "$2"
    FONTCONFIG_FILE="$SCREENSHOTS_DIR/fonts.conf" rsvg-convert "$svg" -o "$png"
    [[ ${KEEP_SVG:-0} == 1 ]] || rm -f "$svg"
    echo "$png"
)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    check_screenshot_tools
    capture_screenshot "$@"
fi
