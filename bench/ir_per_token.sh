#!/usr/bin/env bash
# ir_per_token.sh BIN STREAMS TOKENS: user-space instructions of fleetmock
# under callgrind while streamload runs STREAMS streams of TOKENS tokens at
# RATE tok/s (10: slow enough that the server under valgrind keeps the
# schedule, so it does one wake per token as it would natively). Prints the
# program's total instructions; run it with two token counts and divide the
# difference by STREAMS x (T2 - T1) for the cost of one streamed token,
# start-up, connection and shutdown cancelled out:
#
#   a=$(bench/ir_per_token.sh BIN 100 20); b=$(bench/ir_per_token.sh BIN 100 70)
#   echo $(( (b - a) / (100 * 50) ))
#
# Instructions, not time, so it holds on a busy machine (as ir_per_request.py
# does for answers); kernel time (the socket writes) is not counted.
# KEEP=FILE keeps the callgrind output for callgrind_annotate.
# Needs valgrind and streamload ($STREAMLOAD_BIN or build/streamload).
# Loopback only; the server it starts is stopped by its PID.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$1 STREAMS=$2 TOKENS=$3
RATE=${RATE:-10}
LOAD=${STREAMLOAD_BIN:-$ROOT/build/streamload}
TMP=$(mktemp -d /tmp/fleetmock-irtok.XXXXXX)
PID=
trap '[[ -n $PID ]] && kill -KILL "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
cat >"$TMP/c.json" <<EOF2
{"pools": {"kimi-k2p6": {"decode_tps": $RATE, "ttft_ms": 100, "jitter": 0, "slowdown_at_full": 0,
  "slots": 20000, "output_tokens": {"min": 16, "mean": 150, "max": 100000}}},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
EOF2
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$BIN" --port 0 --port-file "$TMP/port" \
  --log-level error --config "$TMP/c.json" >/dev/null 2>&1 &
PID=$!
for _ in $(seq 300); do [[ -s $TMP/port ]] && break; sleep 0.1; done
[[ -s $TMP/port ]] || { echo "ir_per_token: fleetmock did not start" >&2; exit 2; }
"$LOAD" --port "$(head -n1 "$TMP/port")" --streams "$STREAMS" --tokens "$TOKENS" --rate "$RATE" \
  --connect-rate 1 --timeout-s 300 --quiet >"$TMP/load.out" ||
  { cat "$TMP/load.out" >&2; echo "ir_per_token: streamload failed" >&2; exit 2; }
kill -TERM "$PID"
wait "$PID" || true
PID=
[[ -n ${KEEP:-} ]] && cp "$TMP/cg.out" "$KEEP"
sed -n 's/^summary: *//p; s/^totals: *//p' "$TMP/cg.out" | head -n1
