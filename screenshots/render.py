#!/usr/bin/env python3
"""Render a captured terminal screen (text + ANSI SGR escapes) to a PNG.

The input is what `tmux capture-pane -e -p [-N] -t PANE` prints: one line per
screen row, with SGR sequences for colours and attributes.  Every character is
placed in a fixed-size grid cell, so box-drawing borders join up the way they
do in a real terminal.

Usage:
    python3 screenshots/render.py IN.ansi OUT.png [--cols 120 --rows 40]
                                  [--title TEXT] [--font-size 16]
                                  [--padding 12] [--bold-is-bright]

IN may be "-" to read from stdin.  Requires Pillow (`pip install pillow`).

Supported SGR: 0 reset, 1 bold, 2 dim, 3 italic, 4 underline (and 4:N / 21
double), 7 reverse, 8 hidden, 9 strike, 53 overline and their "off" codes
(22/23/24/27/28/29/55); 30-37/90-97 and 40-47/100-107 16-colour; 38;5;N and
48;5;N 256-colour; 38;2;R;G;B / 48;2;R;G;B truecolour (also the colon
forms); 39/49 default colours.  Other escape sequences are ignored.

Box drawing (U+2500-257F), block elements (U+2580-259F), braille
(U+2800-28FF) and sextants (U+1FB00-1FB3B) are drawn geometrically to fill
their cell exactly; everything else comes from DejaVu Sans Mono, falling back
to DejaVu Sans (and a few other fonts if installed) for missing glyphs.
"""

import argparse
import os
import re
import sys
import unicodedata

try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError:
    sys.stderr.write(
        "render.py: the Python imaging library Pillow is not installed.\n"
        "Install it with:\n\n    pip install pillow\n\n"
    )
    sys.exit(2)

# --------------------------------------------------------------------------
# Colours

DEFAULT_BG = (0x1E, 0x1E, 0x1E)
DEFAULT_FG = (0xD4, 0xD4, 0xD4)

# Standard xterm palette for the 16 ANSI colours.
XTERM16 = [
    (0x00, 0x00, 0x00), (0xCD, 0x00, 0x00), (0x00, 0xCD, 0x00), (0xCD, 0xCD, 0x00),
    (0x00, 0x00, 0xEE), (0xCD, 0x00, 0xCD), (0x00, 0xCD, 0xCD), (0xE5, 0xE5, 0xE5),
    (0x7F, 0x7F, 0x7F), (0xFF, 0x00, 0x00), (0x00, 0xFF, 0x00), (0xFF, 0xFF, 0x00),
    (0x5C, 0x5C, 0xFF), (0xFF, 0x00, 0xFF), (0x00, 0xFF, 0xFF), (0xFF, 0xFF, 0xFF),
]


def _build_palette():
    pal = list(XTERM16)
    levels = [0, 95, 135, 175, 215, 255]
    for r in range(6):
        for g in range(6):
            for b in range(6):
                pal.append((levels[r], levels[g], levels[b]))
    for i in range(24):
        v = 8 + 10 * i
        pal.append((v, v, v))
    return pal


PALETTE = _build_palette()


def parse_hex_colour(s):
    s = s.lstrip("#")
    if len(s) == 3:
        s = "".join(c * 2 for c in s)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", s):
        raise argparse.ArgumentTypeError("colour must look like #rrggbb")
    return tuple(int(s[i:i + 2], 16) for i in (0, 2, 4))


def blend(a, b, t):
    """Mix colour a towards b by fraction t."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


# --------------------------------------------------------------------------
# Parsing

BOLD, DIM, ITALIC, UNDERLINE, REVERSE, HIDDEN, STRIKE, OVERLINE, DUNDERLINE = (
    1 << i for i in range(9))

# A colour is None (terminal default), an int 0-255 (palette) or an (r,g,b).


class Style:
    __slots__ = ("fg", "bg", "attrs", "ulc")

    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.attrs = 0
        self.ulc = None  # underline colour (SGR 58)


def _ext_colour(nums):
    """Decode the part after 38/48/58: ['5', N] or ['2', R, G, B] (colon form
    may carry an extra colour-space id: ['2', '', R, G, B]).  Returns
    (colour, how_many_items_consumed) or (None, consumed)."""
    if not nums:
        return None, 0
    kind = nums[0]
    if kind == "5" and len(nums) >= 2:
        try:
            return max(0, min(255, int(nums[1] or 0))), 2
        except ValueError:
            return None, 2
    if kind == "2" and len(nums) >= 4:
        try:
            rgb = tuple(max(0, min(255, int(n or 0))) for n in nums[1:4])
        except ValueError:
            return None, 4
        return rgb, 4
    return None, 1


def apply_sgr(params, st):
    if params == "":
        params = "0"
    parts = params.split(";")
    i = 0
    while i < len(parts):
        p = parts[i]
        i += 1
        if ":" in p:  # ITU colon sub-parameters, e.g. 38:2::R:G:B or 4:3
            sub = p.split(":")
            try:
                code = int(sub[0] or 0)
            except ValueError:
                continue
            if code in (38, 48, 58):
                rest = sub[1:]
                if rest and rest[0] == "2" and len(rest) >= 5:
                    rest = ["2"] + rest[-3:]  # drop colour-space id
                col, _ = _ext_colour(rest)
                if col is not None:
                    if code == 38:
                        st.fg = col
                    elif code == 48:
                        st.bg = col
                    else:
                        st.ulc = col
            elif code == 4:
                style = sub[1] if len(sub) > 1 else "1"
                st.attrs &= ~(UNDERLINE | DUNDERLINE)
                if style == "2":
                    st.attrs |= UNDERLINE | DUNDERLINE
                elif style not in ("0", ""):
                    st.attrs |= UNDERLINE
            continue
        try:
            code = int(p) if p else 0
        except ValueError:
            continue
        if code == 0:
            st.reset()
        elif code == 1:
            st.attrs |= BOLD
        elif code == 2:
            st.attrs |= DIM
        elif code == 3:
            st.attrs |= ITALIC
        elif code == 4:
            st.attrs = (st.attrs & ~DUNDERLINE) | UNDERLINE
        elif code == 7:
            st.attrs |= REVERSE
        elif code == 8:
            st.attrs |= HIDDEN
        elif code == 9:
            st.attrs |= STRIKE
        elif code == 21:
            st.attrs |= UNDERLINE | DUNDERLINE
        elif code == 22:
            st.attrs &= ~(BOLD | DIM)
        elif code == 23:
            st.attrs &= ~ITALIC
        elif code == 24:
            st.attrs &= ~(UNDERLINE | DUNDERLINE)
        elif code == 27:
            st.attrs &= ~REVERSE
        elif code == 28:
            st.attrs &= ~HIDDEN
        elif code == 29:
            st.attrs &= ~STRIKE
        elif code == 53:
            st.attrs |= OVERLINE
        elif code == 55:
            st.attrs &= ~OVERLINE
        elif 30 <= code <= 37:
            st.fg = code - 30
        elif 40 <= code <= 47:
            st.bg = code - 40
        elif 90 <= code <= 97:
            st.fg = code - 90 + 8
        elif 100 <= code <= 107:
            st.bg = code - 100 + 8
        elif code == 39:
            st.fg = None
        elif code == 49:
            st.bg = None
        elif code == 59:
            st.ulc = None
        elif code in (38, 48, 58):
            col, used = _ext_colour(parts[i:])
            i += used
            if col is not None:
                if code == 38:
                    st.fg = col
                elif code == 48:
                    st.bg = col
                else:
                    st.ulc = col
        # 5/6 blink, 25 blink off, fonts etc.: ignored


def char_width(ch):
    o = ord(ch)
    if o < 0x20 or 0x7F <= o < 0xA0:
        return 0
    if o in (0x200B, 0x200C, 0x200D, 0x2060) or 0xFE00 <= o <= 0xFE0F \
            or 0xE0100 <= o <= 0xE01EF:
        return 0
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


# ESC [ params intermediates final  |  OSC ... (BEL | ST)  |  DCS/SOS/PM/APC
# ... ST  |  charset designation  |  any other two-byte escape  |  text run
TOKEN_RE = re.compile(
    r"\x1b\[([0-?]*)([ -/]*)([@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[()*+\-./].?"
    r"|\x1b.?"
    r"|([^\x1b]+)",
    re.S,
)

# Grid cell: [text, fg, bg, attrs, ulc, width]; width 0 marks the right half
# of a double-width character (text None).


def blank_cell():
    return [" ", None, None, 0, None, 1]


def parse_screen(text, cols, rows):
    grid = [[blank_cell() for _ in range(cols)] for _ in range(rows)]
    st = Style()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    clipped_rows = max(0, len(lines) - rows)
    clipped_cols = False

    for y, line in enumerate(lines):
        row = grid[y] if y < rows else None
        x = 0
        for m in TOKEN_RE.finditer(line):
            run = m.group(4)
            if run is None:
                if m.group(3) == "m" and not m.group(2) and \
                        not m.group(1).startswith(("?", "<", "=", ">")):
                    apply_sgr(m.group(1), st)
                continue
            if row is None:
                continue
            for ch in run:
                if ch == "\t":
                    x = min(cols, (x // 8 + 1) * 8)
                    continue
                if ch == "\r":
                    x = 0
                    continue
                o = ord(ch)
                if o < 0x20 or o == 0x7F:
                    continue
                w = char_width(ch)
                if w == 0:
                    # combining mark / variation selector: attach to previous
                    px = x - 1
                    if 0 <= px < cols:
                        if row[px][5] == 0 and px > 0:
                            px -= 1
                        if row[px][0] is not None:
                            row[px][0] += ch
                    continue
                if x + w > cols:
                    clipped_cols = True
                    x += w
                    continue
                # don't leave half of a wide character behind
                if row[x][5] == 0 and x > 0:
                    row[x - 1][0], row[x - 1][5] = " ", 1
                if x + w < cols and row[x + w - 1][5] == 2:
                    row[x + w][0], row[x + w][5] = " ", 1
                row[x] = [ch, st.fg, st.bg, st.attrs, st.ulc, w]
                if w == 2:
                    row[x + 1] = [None, st.fg, st.bg, st.attrs, st.ulc, 0]
                x += w
    return grid, clipped_rows, clipped_cols


# --------------------------------------------------------------------------
# Fonts

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
EXTRA_FALLBACKS = [  # used only if present on the machine
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSymbols2-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSymbols-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
    "/usr/share/fonts/truetype/unifont/unifont.ttf",
    "/usr/share/fonts/opentype/unifont/unifont.otf",
]


class Fonts:
    def __init__(self, size, font_dir=FONT_DIR):
        self.size = size
        d = font_dir

        def p(name):
            return os.path.join(d, name)

        mono = p("DejaVuSansMono.ttf")
        if not os.path.exists(mono):
            sys.exit("render.py: monospaced font not found: %s" % mono)
        mono_b, mono_i, mono_bi = (p("DejaVuSansMono-Bold.ttf"),
                                   p("DejaVuSansMono-Oblique.ttf"),
                                   p("DejaVuSansMono-BoldOblique.ttf"))
        sans, sans_b, sans_i, sans_bi = (p("DejaVuSans.ttf"), p("DejaVuSans-Bold.ttf"),
                                         p("DejaVuSans-Oblique.ttf"),
                                         p("DejaVuSans-BoldOblique.ttf"))
        tail = [sans, p("DejaVuMathTeXGyre.ttf")] + EXTRA_FALLBACKS
        chains = {
            (False, False): [mono] + tail,
            (True, False): [mono_b, sans_b, mono] + tail,
            (False, True): [mono_i, sans_i, mono] + tail,
            (True, True): [mono_bi, sans_bi, mono_b, mono_i, mono] + tail,
        }
        self.chains = {k: [f for f in v if os.path.exists(f)] for k, v in chains.items()}
        self._fonts = {}
        self._notdef = {}
        self._has = {}
        self._pick = {}
        self.missing = set()

        base = self.font(mono)
        self.ascent, self.descent = base.getmetrics()
        self.cell_w = max(1, int(round(base.getlength("M"))))
        self.cell_h = self.ascent + self.descent
        self.advance = base.getlength("M")

    def font(self, path, size=None):
        key = (path, size or self.size)
        f = self._fonts.get(key)
        if f is None:
            f = self._fonts[key] = ImageFont.truetype(path, key[1])
        return f

    @staticmethod
    def _sig(font, ch):
        m = font.getmask(ch)
        w, h = m.size
        return (w, h, bytes(m) if w and h else b"")

    def has_glyph(self, path, ch):
        key = (path, ch)
        r = self._has.get(key)
        if r is None:
            f = self.font(path)
            nd = self._notdef.get(path)
            if nd is None:
                nd = self._notdef[path] = self._sig(f, "\U0010FFFD")
            r = self._has[key] = self._sig(f, ch) != nd
        return r

    def pick(self, ch, bold, italic):
        """Font path for the base character ch (first font that has it)."""
        key = (ch, bold, italic)
        r = self._pick.get(key)
        if r is None:
            chain = self.chains[(bold, italic)]
            r = next((f for f in chain if self.has_glyph(f, ch)), None)
            if r is None:
                self.missing.add(ch)
                r = chain[0]
            self._pick[key] = r
        return r


# --------------------------------------------------------------------------
# Geometric glyphs (box drawing, blocks, braille, sextants)

SS = 4  # supersampling factor for anti-aliased masks

_DIRS = {"UP": "u", "DOWN": "d", "LEFT": "l", "RIGHT": "r",
         "VERTICAL": "ud", "HORIZONTAL": "lr"}
_WEIGHTS = {"LIGHT": 1, "SINGLE": 1, "HEAVY": 2, "DOUBLE": 3}


def box_segments(ch):
    """{'u'|'d'|'l'|'r': weight} for a plain box-drawing char, from its name
    (e.g. 'BOX DRAWINGS DOWN LIGHT AND RIGHT HEAVY'), else None."""
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    if not name.startswith("BOX DRAWINGS "):
        return None
    rest = name[len("BOX DRAWINGS "):]
    seg, prev = {}, None
    for part in rest.split(" AND "):
        words = part.split()
        if any(w not in _DIRS and w not in _WEIGHTS for w in words):
            return None  # DASH / ARC / DIAGONAL: handled elsewhere
        ws = [_WEIGHTS[w] for w in words if w in _WEIGHTS]
        wt = ws[0] if ws else prev
        if wt is None:
            return None
        for w in words:
            for d in _DIRS.get(w, ""):
                seg[d] = wt
        prev = wt
    return seg or None


class GlyphPainter:
    def __init__(self, cell_w, cell_h):
        self.cw, self.ch = cell_w, cell_h
        self.light = max(1, int(round(cell_w / 10.0)))
        self.heavy = max(self.light + 1, int(round(self.light * 2.2)))
        self.gap = max(1, int(round(cell_w / 5.0)))
        self._cache = {}

    @staticmethod
    def handles(ch):
        o = ord(ch[0])
        return len(ch) == 1 and (0x2500 <= o <= 0x259F or 0x2800 <= o <= 0x28FF
                                 or 0x1FB00 <= o <= 0x1FB3B)

    def mask(self, ch, width_cells=1):
        key = (ch, width_cells)
        m = self._cache.get(key)
        if m is None:
            m = self._cache[key] = self._make(ch, self.cw * width_cells, self.ch)
        return m

    # ranges (in final pixels) across a line of the given weight, centred in
    # a span of n pixels.  For DOUBLE returns the whole band.
    def _band(self, n, wt):
        t = {1: self.light, 2: self.heavy, 3: 2 * self.light + self.gap}[wt]
        a = (n - t) // 2
        return a, a + t

    def _gap(self, n):
        a, _ = self._band(n, 3)
        return a + self.light, a + self.light + self.gap

    def _make(self, ch, W, H):
        o = ord(ch)
        img = Image.new("L", (W * SS, H * SS), 0)
        d = ImageDraw.Draw(img)

        def rect(x0, y0, x1, y1, v=255):  # pixel coords, end exclusive
            if x1 > x0 and y1 > y0:
                d.rectangle([x0 * SS, y0 * SS, x1 * SS - 1, y1 * SS - 1], fill=v)

        if 0x2580 <= o <= 0x259F:
            self._block(o, W, H, rect)
        elif 0x2800 <= o <= 0x28FF:
            self._braille(o - 0x2800, W, H, d)
        elif 0x1FB00 <= o <= 0x1FB3B:
            n = o - 0x1FB00 + 1
            if n >= 21:
                n += 1
            if n >= 42:
                n += 1
            self._cells(n, 2, 3, W, H, rect)
        else:
            name = unicodedata.name(ch, "")
            seg = box_segments(ch)
            if seg:
                self._box(seg, W, H, rect)
            elif "DASH" in name:
                self._dash(name, W, H, rect)
            elif "ARC" in name:
                self._arc(name, W, H, d)
            elif "DIAGONAL" in name:
                t = self.light * SS
                if "CROSS" in name or "UPPER RIGHT" in name:
                    d.line([(W * SS, 0), (0, H * SS)], fill=255, width=t)
                if "CROSS" in name or "UPPER LEFT" in name:
                    d.line([(0, 0), (W * SS, H * SS)], fill=255, width=t)
            else:
                return None
        return img.resize((W, H), Image.BOX)

    def _block(self, o, W, H, rect):
        def ey(k):  # k eighths down from the top
            return int(round(H * k / 8.0))

        def ex(k):
            return int(round(W * k / 8.0))

        if o == 0x2580:
            rect(0, 0, W, ey(4))
        elif 0x2581 <= o <= 0x2588:
            rect(0, ey(8 - (o - 0x2580)), W, H)
        elif 0x2589 <= o <= 0x258F:
            rect(0, 0, ex(8 - (o - 0x2588)), H)
        elif o == 0x2590:
            rect(ex(4), 0, W, H)
        elif o in (0x2591, 0x2592, 0x2593):
            rect(0, 0, W, H, v=int(255 * (o - 0x2590) / 4.0))
        elif o == 0x2594:
            rect(0, 0, W, ey(1))
        elif o == 0x2595:
            rect(ex(7), 0, W, H)
        else:  # quadrants: bits UL=1 UR=2 LL=4 LR=8
            q = {0x2596: 4, 0x2597: 8, 0x2598: 1, 0x2599: 1 | 4 | 8, 0x259A: 1 | 8,
                 0x259B: 1 | 2 | 4, 0x259C: 1 | 2 | 8, 0x259D: 2, 0x259E: 2 | 4,
                 0x259F: 2 | 4 | 8}[o]
            self._cells(q, 2, 2, W, H, rect)

    @staticmethod
    def _cells(bits, nx, ny, W, H, rect):
        xs = [int(round(W * i / float(nx))) for i in range(nx + 1)]
        ys = [int(round(H * i / float(ny))) for i in range(ny + 1)]
        for j in range(ny):
            for i in range(nx):
                if bits & (1 << (j * nx + i)):
                    rect(xs[i], ys[j], xs[i + 1], ys[j + 1])

    @staticmethod
    def _braille(bits, W, H, d):
        # dot number -> (column, row): 1,2,3,7 left; 4,5,6,8 right
        pos = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
        r = min(W / 2.0, H / 4.0) * 0.36 * SS
        for bit, (cx, cy) in enumerate(pos):
            if bits & (1 << bit):
                x = (cx * 2 + 1) * W / 4.0 * SS
                y = (cy * 2 + 1) * H / 8.0 * SS
                d.ellipse([x - r, y - r, x + r, y + r], fill=255)

    def _box(self, seg, W, H, rect):
        hw = {k: v for k, v in seg.items() if k in "lr"}
        vw = {k: v for k, v in seg.items() if k in "ud"}
        gx0, gx1 = self._gap(W)
        gy0, gy1 = self._gap(H)
        bx0, bx1 = self._band(W, 3)
        by0, by1 = self._band(H, 3)

        def extent(d, wt):
            """(start, end) along the segment axis for direction d."""
            horiz = d in "lr"
            n = W if horiz else H
            perp = vw if horiz else hw
            opp = {"u": "d", "d": "u", "l": "r", "r": "l"}[d]
            near_end = d in "ul"  # segment runs from the cell edge at 0
            if opp in seg and (seg[opp] == 3) == (wt == 3):
                lo, hi = n // 2, n // 2  # continues straight through
            elif perp:
                pd = list(perp.values())
                if 3 in pd:
                    b0, b1 = self._band(n, 3)
                    g0, g1 = self._gap(n)
                    through = len(perp) == 2 and all(w == 3 for w in pd)
                    if wt == 3:
                        lo, hi = b0, b1
                    elif through:  # stem on a continuous double line:
                        lo, hi = g1, g0  # reach the near line only
                    else:  # corner/tee: cross both lines
                        lo, hi = b0, b1
                else:
                    lo = min(self._band(n, w)[0] for w in pd)
                    hi = max(self._band(n, w)[1] for w in pd)
            else:
                lo, hi = self._band(n, wt)
            return (0, hi) if near_end else (lo, n)

        # 1. double bands, 2. carve their gaps, 3. light/heavy lines on top
        for d, wt in seg.items():
            if wt != 3:
                continue
            a, b = extent(d, wt)
            if d in "lr":
                rect(a, by0, b, by1)
            else:
                rect(bx0, a, bx1, b)
        for d, wt in seg.items():
            if wt != 3:
                continue
            a, b = extent(d, wt)
            perp = vw if d in "lr" else hw
            if 3 in perp.values():
                g0, g1 = (gx0, gx1) if d in "lr" else (gy0, gy1)
                if d in "ul":
                    b = g1
                elif d in "dr":
                    a = g0
            if d in "lr":
                rect(a, gy0, b, gy1, v=0)
            else:
                rect(gx0, a, gx1, b, v=0)
        for d, wt in seg.items():
            if wt == 3:
                continue
            a, b = extent(d, wt)
            if d in "lr":
                y0, y1 = self._band(H, wt)
                rect(a, y0, b, y1)
            else:
                x0, x1 = self._band(W, wt)
                rect(x0, a, x1, b)

    def _dash(self, name, W, H, rect):
        wt = 2 if name.startswith("BOX DRAWINGS HEAVY") else 1
        n = 2 if "DOUBLE DASH" in name else 3 if "TRIPLE" in name else 4
        horiz = "HORIZONTAL" in name
        L = W if horiz else H
        for i in range(n):
            a = int(round(L * i / float(n)))
            b = int(round(L * (i + 1) / float(n)))
            g = max(1, (b - a) // 3)
            a0, b0 = a + g // 2, b - (g - g // 2)
            if horiz:
                y0, y1 = self._band(H, wt)
                rect(a0, y0, b0, y1)
            else:
                x0, x1 = self._band(W, wt)
                rect(x0, a0, x1, b0)

    def _arc(self, name, W, H, d):
        t = self.light
        x0, x1 = self._band(W, 1)
        y0, y1 = self._band(H, 1)
        cx = (x0 + x1) / 2.0 * SS  # centre line of the strokes
        cy = (y0 + y1) / 2.0 * SS
        Ws, Hs, ts = W * SS, H * SS, t * SS
        r = min(cx, Ws - cx, cy, Hs - cy) - ts / 2.0
        down, right = "DOWN" in name, "RIGHT" in name
        # centre of the arc circle
        ax = cx + r if right else cx - r
        ay = cy + r if down else cy - r
        # straight vertical piece (from the cell edge to the arc)
        if down:
            d.rectangle([x0 * SS, ay, x1 * SS - 1, Hs], fill=255)
        else:
            d.rectangle([x0 * SS, 0, x1 * SS - 1, ay], fill=255)
        if right:
            d.rectangle([ax, y0 * SS, Ws, y1 * SS - 1], fill=255)
        else:
            d.rectangle([0, y0 * SS, ax, y1 * SS - 1], fill=255)
        start = {(True, True): 180, (True, False): 270,
                 (False, False): 0, (False, True): 90}[(down, right)]
        R = r + ts / 2.0
        d.arc([ax - R, ay - R, ax + R, ay + R], start, start + 90, fill=255,
              width=int(ts))


# --------------------------------------------------------------------------
# Rendering

def resolve(colour, default, bold_bright=False, bold=False):
    if colour is None:
        return default
    if isinstance(colour, int):
        if bold_bright and bold and colour < 8:
            colour += 8
        return PALETTE[colour]
    return colour


def draw_title_bar(img, draw, width, height, title, font_size):
    bar_bg = (0x32, 0x32, 0x32)
    draw.rectangle([0, 0, width - 1, height - 1], fill=bar_bg)
    draw.line([0, height - 1, width - 1, height - 1], fill=(0x14, 0x14, 0x14))
    r = max(4, height // 5)
    cy = height // 2
    for i, col in enumerate([(0xFF, 0x5F, 0x56), (0xFF, 0xBD, 0x2E), (0x27, 0xC9, 0x3F)]):
        cx = height // 2 + i * (r * 3)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col)
    if title:
        path = os.path.join(FONT_DIR, "DejaVuSans.ttf")
        if not os.path.exists(path):
            path = os.path.join(FONT_DIR, "DejaVuSansMono.ttf")
        f = ImageFont.truetype(path, max(8, int(font_size * 0.85)))
        draw.text((width / 2.0, cy), title, font=f, fill=(0xC8, 0xC8, 0xC8), anchor="mm")


def render(grid, args):
    fonts = Fonts(args.font_size)
    cw, chh = fonts.cell_w, fonts.cell_h
    painter = GlyphPainter(cw, chh)
    rows, cols = len(grid), len(grid[0]) if grid else 0
    pad = args.padding
    bar_h = int(round(chh * 1.6)) if args.title is not None else 0
    width = cols * cw + 2 * pad
    height = bar_h + rows * chh + 2 * pad
    dbg, dfg = args.bg, args.fg

    img = Image.new("RGB", (width, height), dbg)
    draw = ImageDraw.Draw(img)
    if bar_h:
        draw_title_bar(img, draw, width, bar_h, args.title, args.font_size)
    ox, oy = pad, bar_h + pad

    def colours(cell):
        _, fg, bg, attrs, ulc, _ = cell
        bold = bool(attrs & BOLD)
        f = resolve(fg, dfg, args.bold_is_bright, bold)
        b = resolve(bg, dbg)
        if attrs & REVERSE:
            f, b = b, f
        if attrs & DIM:
            f = blend(f, b, 0.5)
        if attrs & HIDDEN:
            f = b
        u = resolve(ulc, f) if ulc is not None else f
        return f, b, u

    # pass 1: backgrounds (so glyphs that overhang are not painted over)
    for y, row in enumerate(grid):
        for x, cell in enumerate(row):
            _, b, _ = colours(cell)
            if b != dbg:
                px, py = ox + x * cw, oy + y * chh
                draw.rectangle([px, py, px + cw - 1, py + chh - 1], fill=b)

    # pass 2: glyphs and decorations
    t = painter.light
    for y, row in enumerate(grid):
        for x, cell in enumerate(row):
            text, _, _, attrs, _, w = cell
            if w == 0:
                continue
            f, b, u = colours(cell)
            px, py = ox + x * cw, oy + y * chh
            span = cw * w
            if text and text != " " and not (attrs & HIDDEN):
                if painter.handles(text):
                    m = painter.mask(text, w)
                    if m is not None:
                        draw.bitmap((px, py), m, fill=f)
                        text = None
                if text:
                    bold, italic = bool(attrs & BOLD), bool(attrs & ITALIC)
                    path = fonts.pick(text[0], bold, italic)
                    font = fonts.font(path)
                    adv = font.getlength(text)
                    if adv > span * 1.08:  # too wide (proportional fallback)
                        size = max(6, int(args.font_size * span / adv))
                        font = fonts.font(path, size)
                        adv = font.getlength(text)
                    draw.text((px + (span - adv) / 2.0, py + fonts.ascent), text,
                              font=font, fill=f, anchor="ls")
            if attrs & UNDERLINE:
                uy = py + fonts.ascent + max(1, fonts.descent // 3)
                draw.rectangle([px, uy, px + span - 1, uy + t - 1], fill=u)
                if attrs & DUNDERLINE:
                    uy2 = min(py + chh - t, uy + 2 * t)
                    draw.rectangle([px, uy2, px + span - 1, uy2 + t - 1], fill=u)
            if attrs & STRIKE:
                sy = py + fonts.ascent - int(round(fonts.ascent * 0.3))
                draw.rectangle([px, sy, px + span - 1, sy + t - 1], fill=f)
            if attrs & OVERLINE:
                draw.rectangle([px, py, px + span - 1, py + t - 1], fill=f)

    return img, fonts.missing


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Render `tmux capture-pane -e -p` output (ANSI text) to a PNG.")
    ap.add_argument("input", help="captured .ansi text file, or - for stdin")
    ap.add_argument("output", help="PNG file to write")
    ap.add_argument("--cols", type=int, default=120, help="terminal width in cells (120)")
    ap.add_argument("--rows", type=int, default=40, help="terminal height in cells (40)")
    ap.add_argument("--title", default=None, help="draw a window title bar with TEXT")
    ap.add_argument("--font-size", type=int, default=16, help="font size in px (16)")
    ap.add_argument("--padding", type=int, default=12, help="margin around the screen in px (12)")
    ap.add_argument("--bg", type=parse_hex_colour, default=DEFAULT_BG,
                    help="default background colour (#1e1e1e)")
    ap.add_argument("--fg", type=parse_hex_colour, default=DEFAULT_FG,
                    help="default foreground colour (#d4d4d4)")
    ap.add_argument("--bold-is-bright", action="store_true",
                    help="render bold text in colours 0-7 with the bright variant")
    args = ap.parse_args(argv)
    if args.cols < 1 or args.rows < 1:
        ap.error("--cols and --rows must be positive")

    if args.input == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.input, "rb") as fh:
            data = fh.read()
    text = data.decode("utf-8", errors="replace")

    grid, clipped_rows, clipped_cols = parse_screen(text, args.cols, args.rows)
    if clipped_rows:
        sys.stderr.write("render.py: warning: %d line(s) beyond --rows %d were dropped\n"
                         % (clipped_rows, args.rows))
    if clipped_cols:
        sys.stderr.write("render.py: warning: text beyond --cols %d was clipped\n" % args.cols)

    img, missing = render(grid, args)
    if missing:
        sys.stderr.write("render.py: warning: no font has a glyph for: %s\n"
                         % " ".join("U+%04X" % ord(c) for c in sorted(missing)))
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    img.save(args.output, "PNG", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
