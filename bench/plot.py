#!/usr/bin/env python3
"""plot.py — a line chart from a CSV file, drawn into a PNG with the standard
library only (bench/scaling.sh draws docs/perf/*.png with it).

    python3 bench/plot.py docs/perf/accounts.csv --x accounts --y req_s --logx \\
        --title "req/s against accounts" -o docs/perf/accounts_req_s.png

Every --y column is a series: a line through its rows in file order, with a
marker at each; --hline Y=TEXT adds a dashed line across (a bar to meet). A
cell that is empty or not a number is left out of its series, so one CSV can
hold series measured at different x. The y axis starts at 0 unless --ymin
says otherwise, so a chart does not flatter a small change.

How it draws: an RGB canvas in a bytearray; lines are 2-pixel Bresenham
strokes, text is a built-in 5×9 bitmap font (ASCII, µ, §) scaled 2×, the y
label turned a quarter. The PNG is one IDAT, every row with filter 0, through
zlib. Known limits: no anti-aliasing, ticks only at 1-2-5 steps (decades with
--logx), one y axis for every series.
"""
import argparse
import csv
import math
import struct
import sys
import zlib

# The font: glyph i is the character FONT_CHARS[i]; each is up to 9 rows of 5
# bits (two hex digits a row, the top row first, bit 4 the leftmost pixel),
# rows left out at the end are blank. Rows 0-6 hold capitals, row 6 is the
# baseline, rows 7-8 the descenders of g, j, p, q, y and µ.
FONT_CHARS = "".join(chr(c) for c in range(32, 127)) + "µ§"
FONT_HEX = """
    0 04040404040004 0a0a 0a0a1f0a1f0a0a 040f140e051e04 18190204081303
    0c12140815120d 0404 02040808080402 08040202020408 0004150e1504 0004041f0404
    00000000000c0408 0000001f 00000000000c0c 000102040810 0e11131519110e 040c040404040e
    0e11010204081f 1f02040201110e 02060a121f0202 1f101e0101110e 0608101e11110e 1f010204080808
    0e11110e11110e 0e11110f01020c 000c0c000c0c 000c0c000c0408 02040810080402 00001f001f
    08040201020408 0e110102040004 0e11010d15150e 0e11111f111111 1e11111e11111e 0e11101010110e
    1c12111111121c 1f10101e10101f 1f10101e101010 0e11101711110f 1111111f111111 0e04040404040e
    0702020202120c 11121418141211 1010101010101f 111b1515111111 11111915131111 0e11111111110e
    1e11111e101010 0e11111115120d 1e11111e141211 0f10100e01011e 1f040404040404 1111111111110e
    11111111110a04 1111111515150a 11110a040a1111 11110a04040404 1f01020408101f 0e08080808080e
    001008040201 0e02020202020e 040a11 000000000000001f 0804 00000e010f110f
    1010161911111e 00000e1010110e 01010d1311110f 00000e111f100e 0609081c080808 00000f1111110f010e
    10101619111111 04000c0404040e 02000602020202120c 10101214181412 0c04040404040e 00001a15151515
    00001619111111 00000e1111110e 00001e1111111e1010 00000f1111110f0101 00001619101010 00000f100e011e
    08081c08080906 0000111111130d 00001111110a04 0000111115150a 0000110a040a11 0000111111110f010e
    00001f0204081f 02040408040402 04040404040404 08040402040408 0000081502 00001111111b151010
    0e100e110e010e
"""
FONT = dict(zip(FONT_CHARS, (bytes.fromhex(h if h != "0" else "") for h in FONT_HEX.split())))
GLYPH_W, GLYPH_H = 5, 9  # a character advances GLYPH_W + 1 columns

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
GRID, FRAME, MUTED = (225, 225, 225), (90, 90, 90), (60, 60, 60)
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


class Canvas:
    """An RGB picture; every drawing call clips to the edges."""

    def __init__(self, width, height, background=WHITE):
        self.w, self.h = width, height
        self.px = bytearray(bytes(background) * (width * height))

    def dot(self, x, y, color):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i : i + 3] = bytes(color)

    def rect(self, x0, y0, x1, y1, color):
        """Fills the box from (x0, y0) to (x1, y1), both corners included."""
        x0, x1 = max(0, min(x0, x1)), min(self.w - 1, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h - 1, max(y0, y1))
        if x0 > x1:
            return
        row = bytes(color) * (x1 - x0 + 1)
        for y in range(y0, y1 + 1):
            i = (y * self.w + x0) * 3
            self.px[i : i + len(row)] = row

    def line(self, x0, y0, x1, y1, color, width=2):
        """Bresenham's line, each step a width × width square."""
        x0, y0, x1, y1 = round(x0), round(y0), round(x1), round(y1)
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err, off = dx + dy, width // 2
        while True:
            self.rect(x0 - off, y0 - off, x0 - off + width - 1, y0 - off + width - 1, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err, x0 = err + dy, x0 + sx
            if e2 <= dx:
                err, y0 = err + dx, y0 + sy

    def text(self, x, y, s, color=BLACK, scale=2, up=False):
        """Writes s with its top left at (x, y); up=True turns it a quarter
        to read bottom to top, (x, y) then its bottom left."""
        for n, ch in enumerate(s):
            rows = FONT.get(ch, FONT["?"])
            for r, bits in enumerate(rows):
                for c in range(GLYPH_W):
                    if not bits & (0x10 >> c):
                        continue
                    gx, gy = n * (GLYPH_W + 1) + c, r
                    px, py = (x + gy * scale, y - (gx + 1) * scale) if up else (x + gx * scale, y + gy * scale)
                    self.rect(px, py, px + scale - 1, py + scale - 1, color)

    def png(self):
        """The picture as PNG bytes: 8-bit RGB, filter 0 on every row."""
        stride = self.w * 3
        raw = b"".join(b"\x00" + bytes(self.px[y * stride : (y + 1) * stride]) for y in range(self.h))

        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        ihdr = struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def text_width(s, scale=2):
    return len(s) * (GLYPH_W + 1) * scale - scale


def label(v):
    """A tick's number, short: 1500, 20k, 1.5M, 0.25."""
    if v == 0:
        return "0"
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= 10 * div or (abs(v) >= div and suffix == "M"):
            return ("%.3g" % (v / div)) + suffix
    return str(int(v)) if v == int(v) else "%.3g" % v


def linear_ticks(lo, hi):
    """Tick values every 1, 2 or 5 × 10^k, about five of them, covering lo..hi."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1)
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def log_ticks(lo, hi):
    """Every power of ten from the one at or below lo to the one at or above hi."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return [10.0**k for k in range(a, max(b, a + 1) + 1)]


def number(cell):
    try:
        v = float(cell)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_series(path, xcol, ycols):
    """[(name, [(x, y), ...]), ...] for every y column; exits on a missing column."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cols = rows[0].keys() if rows else []
    for c in [xcol] + ycols:
        if c not in cols:
            sys.exit("plot: %s has no column %r (it has: %s)" % (path, c, ", ".join(cols)))
    out = []
    for c in ycols:
        pts = [(number(r[xcol]), number(r[c])) for r in rows]
        out.append((c, [(x, y) for x, y in pts if x is not None and y is not None]))
    return out


def draw(series, labels, logx, title, xlabel, ylabel, ymin, ymax, width, height, hlines=()):
    """Renders the chart, with a dashed line across it at each (y, text) of
    hlines (a bar to meet); returns the Canvas."""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts] + [y for y, _ in hlines]
    if not xs:
        sys.exit("plot: no rows with numbers to draw")
    if logx and min(xs) <= 0:
        sys.exit("plot: --logx needs every x above 0")
    xt = log_ticks(min(xs), max(xs)) if logx else linear_ticks(min(xs), max(xs))
    yt = linear_ticks(min(ys) if ymin is None else ymin, max(ys) if ymax is None else ymax)
    if ymax is not None:
        yt = [t for t in yt if t <= ymax] + ([ymax] if yt[-1] < ymax else [])

    cv = Canvas(width, height)
    left = 40 + max(text_width(label(t)) for t in yt)
    right, top, bottom = 30, 56, 78
    x0, x1, y0, y1 = left, width - right, height - bottom, top  # plot area; y grows downward

    def fx(v):
        a, b, v = (math.log10(xt[0]), math.log10(xt[-1]), math.log10(v)) if logx else (xt[0], xt[-1], v)
        return x0 + (v - a) / (b - a) * (x1 - x0)

    def fy(v):
        return y0 - (v - yt[0]) / (yt[-1] - yt[0]) * (y0 - y1)

    for t in yt:  # grid, then y tick labels right-aligned to the axis
        cv.rect(x0, round(fy(t)), x1, round(fy(t)), GRID)
        cv.text(x0 - 10 - text_width(label(t)), round(fy(t)) - 8, label(t), MUTED)
    for t in xt:
        cv.rect(round(fx(t)), y1, round(fx(t)), y0, GRID)
        cv.rect(round(fx(t)), y0, round(fx(t)), y0 + 6, FRAME)
        cv.text(round(fx(t)) - text_width(label(t)) // 2, y0 + 12, label(t), MUTED)
    cv.rect(x0, y1, x0 + 1, y0, FRAME)  # the axes
    cv.rect(x0, y0, x1, y0 + 1, FRAME)
    cv.text((width - text_width(title)) // 2, 16, title)
    cv.text(x0 + (x1 - x0 - text_width(xlabel)) // 2, height - 30, xlabel)
    cv.text(10, y0 - (y0 - y1 - text_width(ylabel)) // 2, ylabel, up=True)

    for y, _ in hlines:
        py = round(fy(y))
        for px in range(x0 + 2, x1, 14):
            cv.rect(px, py, min(px + 7, x1), py + 1, FRAME)

    drawn = []  # pixels on the lines, every few along each segment, for legend()
    for i, (_, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pix = [(fx(x), fy(y)) for x, y in pts]
        for (ax, ay), (bx, by) in zip(pix, pix[1:]):
            cv.line(ax, ay, bx, by, color)
            n = 1 + int(math.hypot(bx - ax, by - ay) / 8)
            drawn += [(ax + (bx - ax) * k / n, ay + (by - ay) * k / n) for k in range(n + 1)]
        for px, py in pix:
            cv.rect(round(px) - 4, round(py) - 4, round(px) + 4, round(py) + 4, color)
        drawn += pix

    for y, text in hlines:  # each label above or below its line, at either end, where it hides least
        py, tw = round(fy(y)), text_width(text)
        spots = [(x, y) for x in (x1 - 8 - tw, x0 + 10) for y in (py - 24, py + 8)]
        tx, ty = min(spots, key=lambda p: sum(p[0] - 4 <= dx <= p[0] + tw + 4 and p[1] - 4 <= dy <= p[1] + 22
                                              for dx, dy in drawn))
        cv.rect(tx - 3, ty - 3, tx + tw + 3, ty + 2 * GLYPH_H, WHITE)
        cv.text(tx, ty, text, MUTED)

    if len(series) > 1 or labels:
        legend(cv, drawn, labels or [name for name, _ in series], (x0, y1, x1, y0))
    return cv


def legend(cv, points, names, area):
    """A box naming each series, in the corner of the plot area that hides the fewest drawn points."""
    x0, y1, x1, y0 = area
    w, h = 48 + max(text_width(n) for n in names), 12 + 26 * len(names)
    corners = [(x0 + 12, y1 + 12), (x1 - 12 - w, y1 + 12), (x1 - 12 - w, y0 - 12 - h), (x0 + 12, y0 - 12 - h)]

    def covered(c):
        return sum(1 for px, py in points if c[0] - 10 <= px <= c[0] + w + 10 and c[1] - 10 <= py <= c[1] + h + 10)

    lx, ly = min(corners, key=covered)
    cv.rect(lx, ly, lx + w, ly + h, FRAME)
    cv.rect(lx + 1, ly + 1, lx + w - 1, ly + h - 1, WHITE)
    for i, name in enumerate(names):
        color, cy = PALETTE[i % len(PALETTE)], ly + 19 + 26 * i
        cv.line(lx + 8, cy, lx + 34, cy, color)
        cv.rect(lx + 17, cy - 4, lx + 25, cy + 4, color)
        cv.text(lx + 42, cy - 7, name)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Draw a line chart from a CSV into a PNG.")
    ap.add_argument("csv")
    ap.add_argument("--x", required=True, help="the x column")
    ap.add_argument("--y", required=True, action="append", help="a y column (repeat, or a,b)")
    ap.add_argument("--label", action="append", default=[], help="legend name of each --y, in order")
    ap.add_argument("--logx", action="store_true", help="a log-scale x axis (every x > 0)")
    ap.add_argument("--title", default="")
    ap.add_argument("--xlabel")
    ap.add_argument("--ylabel")
    ap.add_argument("--ymin", type=float, default=0.0, help="bottom of the y axis (default 0)")
    ap.add_argument("--ymax", type=float)
    ap.add_argument("--auto-ymin", action="store_true", help="start the y axis near the data, not at 0")
    ap.add_argument("--hline", action="append", default=[], metavar="Y=TEXT",
                    help="a dashed line across at Y, labelled TEXT (a bar to meet)")
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("-o", "--output", required=True, help="the PNG to write")
    a = ap.parse_args(argv)
    ycols = [c for y in a.y for c in y.split(",") if c]
    if a.label and len(a.label) != len(ycols):
        ap.error("give one --label per y column (%d), or none" % len(ycols))
    if a.width < 200 or a.height < 150:
        ap.error("the picture is at least 200 × 150")
    hlines = []
    for h in a.hline:
        y, _, text = h.partition("=")
        if number(y) is None:
            ap.error("--hline takes Y=TEXT, Y a number: %r" % h)
        hlines.append((number(y), text))
    series = read_series(a.csv, a.x, ycols)
    cv = draw(series, a.label, a.logx, a.title, a.xlabel or a.x, a.ylabel or ", ".join(ycols),
              None if a.auto_ymin else a.ymin, a.ymax, a.width, a.height, hlines)
    with open(a.output, "wb") as f:
        f.write(cv.png())


if __name__ == "__main__":
    main()
