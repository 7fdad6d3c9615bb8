#!/usr/bin/env python3
"""ir_per_request.py BIN ROUTE BODYFILE N: user-space instructions of fleetmock
under callgrind for N + 1 POSTs of BODYFILE to ROUTE on one keep-alive
connection (--timing instant, account limits lifted). Prints the program's
total instructions; run it twice (N1, N2) and divide the difference by
N2 - N1 for the cost of one request, start-up and shutdown cancelled out:

  a=$(python3 bench/ir_per_request.py BIN /v1/chat/completions body.json 50)
  b=$(python3 bench/ir_per_request.py BIN /v1/chat/completions body.json 250)
  echo $(( (b - a) / 200 ))

SETUP=FILE first sends the JSON list of bodies in FILE to /v1/responses, each
continuing the one before (previous_response_id), and replaces PREV in
BODYFILE with the last response's id: the cost of continuing a stored
conversation. CONFIG_EXTRA=FILE adds the JSON object in FILE to the config
(its top-level keys: reply rules, say). KEEP=FILE keeps the callgrind output for callgrind_annotate.
Deterministic (instructions, not time), so it holds on a busy machine; kernel
time is not counted. Standard library only; needs valgrind.
"""
import http.client, json, os, re, subprocess, sys, tempfile, time
bin_, route, bodyf, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
body = open(bodyf).read()
d = tempfile.mkdtemp()
pf = os.path.join(d, "port")
out = os.path.join(d, "cg.out")
cfg = os.path.join(d, "c.json")
config = {"accounts": {"limits": {k: {"start": 1e9, "ceiling": 1e9} for k in ["requests_per_min", "prompt_tps", "uncached_prompt_tps", "generated_tps"]}}}
if os.environ.get("CONFIG_EXTRA"):  # more of the config: e.g. {"replies": [...]}
    config.update(json.load(open(os.environ["CONFIG_EXTRA"])))
open(cfg, "w").write(json.dumps(config))
p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, bin_, "--timing", "instant", "--port", "0", "--port-file", pf, "--log-level", "error", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(300):
    if os.path.exists(pf) and open(pf).read().strip(): break
    time.sleep(0.1)
port = int(open(pf).read().split()[0])
c = http.client.HTTPConnection("127.0.0.1", port)
setup = os.environ.get("SETUP")
if setup:  # a previous conversation: SETUP is a JSON list of bodies sent to /v1/responses, chained
    prev = None
    for b in json.loads(open(setup).read()):
        if prev: b["previous_response_id"] = prev
        c.request("POST", "/v1/responses", json.dumps(b), {"Authorization": "Bearer b", "Content-Type": "application/json"})
        prev = json.loads(c.getresponse().read())["id"]
    body = body.replace("PREV", prev)
for i in range(n + 1):
    c.request("POST", route, body, {"Authorization": "Bearer b", "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
p.terminate(); p.wait()
import shutil
if os.environ.get("KEEP"): shutil.copy(out, os.environ["KEEP"])
ir = 0
for line in open(out):
    m = re.match(r"summary: (\d+)", line) or re.match(r"totals: (\d+)", line)
    if m: ir = int(m.group(1))
print(ir)
