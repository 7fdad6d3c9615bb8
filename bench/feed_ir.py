#!/usr/bin/env python3
"""feed_ir.py BIN K: user-space instructions of fleetmock under callgrind while
one live feed (GET /admin/events?interval_ms=100) receives K windows, no
inference requests. Run it twice (K1, K2) and divide the difference by
K2 - K1 for the cost of one window (its state and requests events):

  a=$(python3 bench/feed_ir.py BIN 10 | tail -1)
  b=$(python3 bench/feed_ir.py BIN 50 | tail -1)
  echo $(( (b - a) / 40 ))

Deterministic (instructions, not time); standard library only; needs valgrind.
KEEP=FILE keeps the callgrind output for callgrind_annotate.
"""
import http.client, os, re, subprocess, sys, tempfile, time
bin_, k = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp(); pf = os.path.join(d, "port"); out = os.path.join(d, "cg.out")
p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, bin_, "--timing", "instant", "--port", "0", "--port-file", pf, "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(300):
    if os.path.exists(pf) and open(pf).read().strip(): break
    time.sleep(0.1)
port = int(open(pf).read().split()[0])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/admin/events?interval_ms=100")
r = c.getresponse()
n = 0
buf = b""
while n < 2 * k:
    buf += r.read1(65536)
    n = buf.count(b"\n\n")
c.close()
time.sleep(0.5)
p.terminate(); p.wait()
import shutil
if os.environ.get("KEEP"): shutil.copy(out, os.environ["KEEP"])
for line in open(out):
    m = re.match(r"summary: (\d+)", line) or re.match(r"totals: (\d+)", line)
    if m: print(int(m.group(1)))
