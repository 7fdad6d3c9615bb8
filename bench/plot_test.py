#!/usr/bin/env python3
"""plot_test.py — ctest's smoke test of bench/plot.py (bench.plot): it draws a
tiny CSV and reads the PNG back (signature, size, CRCs, every row's filter)
to check that lines, markers and text were drawn. Standard library only."""
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "plot.py")
sys.path.insert(0, HERE)
import plot  # noqa: E402


def read_png(path):
    """(width, height, rows of RGB bytes); asserts what plot.py promises to write."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + body), "bad CRC in %r" % kind
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, ctype) == (8, 2), "not 8-bit RGB"
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * w
    assert len(raw) == h * stride
    assert all(raw[y * stride] == 0 for y in range(h)), "a row without filter 0"
    return w, h, [raw[y * stride + 1 : (y + 1) * stride] for y in range(h)]


def count(rows, color):
    c = bytes(color)
    return sum(row[i : i + 3] == c for row in rows for i in range(0, len(row), 3))


class PlotDraws(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.csv = os.path.join(self.dir.name, "t.csv")
        with open(self.csv, "w", encoding="utf-8") as f:
            f.write("accounts,req_s,rss\n1,100,5\n100,90,\n10000,80,7\n")

    def tearDown(self):
        self.dir.cleanup()

    def run_plot(self, *args):
        out = os.path.join(self.dir.name, "t.png")
        r = subprocess.run([sys.executable, PLOT, self.csv, "-o", out, *args], capture_output=True, text=True)
        return r, out

    def test_two_series_on_a_log_axis_are_drawn_in_their_colours_with_a_legend(self):
        r, out = self.run_plot("--x", "accounts", "--y", "req_s,rss", "--logx", "--title", "t µs §",
                               "--hline", "95=bar", "--width", "400", "--height", "300")
        self.assertEqual(r.returncode, 0, r.stderr)
        w, h, rows = read_png(out)
        self.assertEqual((w, h), (400, 300))
        self.assertGreater(count(rows, plot.PALETTE[0]), 200)  # a line, three markers, the legend's swatch
        self.assertGreater(count(rows, plot.PALETTE[1]), 100)  # two markers (one row has no rss), a line
        self.assertGreater(count(rows, plot.BLACK), 300)  # title, axis labels, legend names
        self.assertGreater(count(rows, plot.WHITE), w * h // 2)

    def test_a_bar_that_is_not_a_number_is_refused(self):
        r, _ = self.run_plot("--x", "accounts", "--y", "req_s", "--hline", "lots=bar")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--hline takes Y=TEXT", r.stderr)

    def test_a_missing_column_is_named_and_nothing_is_written(self):
        r, out = self.run_plot("--x", "accounts", "--y", "nope")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no column 'nope'", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_ticks_are_round_numbers_covering_the_data(self):
        self.assertEqual(plot.linear_ticks(0, 47), [0, 10, 20, 30, 40, 50])
        self.assertEqual(plot.log_ticks(1, 100000), [1, 10, 100, 1000, 10000, 100000])
        self.assertEqual([plot.label(v) for v in (0, 1500, 20000, 1.5e6, 0.25)], ["0", "1500", "20k", "1.5M", "0.25"])

    def test_every_printable_character_has_a_glyph(self):
        self.assertEqual(set(plot.FONT), set(plot.FONT_CHARS))
        self.assertTrue(all(len(g) <= plot.GLYPH_H and max(g, default=0) < 32 for g in plot.FONT.values()))


if __name__ == "__main__":
    unittest.main()
