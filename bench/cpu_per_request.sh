#!/usr/bin/env bash
# cpu_per_request.sh — the server CPU time one non-streaming chat completion
# costs, for comparing builds on a machine that is not idle.
#
# Requests per second move with whatever else runs on the machine; the CPU
# time the server process itself spends per request (user + system, from
# /proc/PID/stat) moves far less. For each binary given, alternating, ROUNDS
# times: start it with --timing instant and the limits lifted (as
# throughput.sh does), warm up 2 s, then run wrk for DURATION s and divide the
# server's CPU time by the requests served. Prints each run and the median per
# binary.
#
#   bench/cpu_per_request.sh OLD_BINARY NEW_BINARY   # e.g. a main build and this branch's
#   bench/cpu_per_request.sh build/fleetmock build/mhdyard
#
# A binary named mhdyard (bench/mhdyard.c) answers with the head and body the
# first fleetmock binary given sent to the same request (captured once, at
# the start), as in throughput.sh; the medians are then also printed as a
# ratio, mhdyard's CPU per request over each binary's: throughput.sh's ratio
# in the unit that holds on a busy machine (a server that is the bottleneck
# serves 1 / its CPU time per request).
#
# Environment: DURATION (s, 10), ROUNDS (5), CONNS (64), TOKENS (max_tokens, 64),
# BODY (the request body; default the plain 159-byte chat request).
# Everything it starts listens on 127.0.0.1, is stopped by PID, and lives in a
# temp dir removed at exit. Exit status: 0, or 2 when it could not run.
set -euo pipefail
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
TOKENS=${TOKENS:-64}
die() { echo "cpu_per_request: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: bench/cpu_per_request.sh BINARY [BINARY...]"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
for b in "$@"; do [ -x "$b" ] || die "not an executable: $b"; done

TMP=$(mktemp -d /tmp/fleetmock-cpu.XXXXXX)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
cat >"$TMP/config.json" <<'J'
{"pool_defaults": {"slots": 100000},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
J
BODY=${BODY:-'{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":'$TOKENS',"ignore_eos":true,"seed":7}'}
cat >"$TMP/post.lua" <<L
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
L
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

is_yard() { [[ $(basename "$1") == mhdyard ]]; }

start() { # start BINARY: runs it in the background on a free port (PID)
  rm -f "$TMP/port"
  if is_yard "$1"; then
    "$1" --headers "$TMP/head" --body "$TMP/body" --port 0 --port-file "$TMP/port" 2>"$TMP/log" &
  else
    "$1" --timing instant --port 0 --port-file "$TMP/port" --log-level error \
      --config "$TMP/config.json" 2>"$TMP/log" &
  fi
  PID=$!
  for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
  [ -s "$TMP/port" ] || die "$1 did not start: $(cat "$TMP/log")"
}

run_one() { # run_one BINARY: prints "us_per_request requests"
  start "$1"
  local url="http://127.0.0.1:$(head -n1 "$TMP/port")/inference/v1/chat/completions" t0 t1 out n bad
  wrk -t1 -c"$CONNS" -d2s -s "$TMP/post.lua" "$url" >/dev/null
  t0=$(cpu_ticks "$PID")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/post.lua" "$url")
  t1=$(cpu_ticks "$PID")
  kill -TERM "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -z "$bad" ] || die "$1 answered $bad non-2xx responses"
  awk -v a="$t0" -v b="$t1" -v n="$n" -v hz="$HZ" 'BEGIN {printf "%.2f %d\n", (b - a) / hz / n * 1e6, n}'
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

for b in "$@"; do # mhdyard's answer: what the first fleetmock sends
  is_yard "$b" && continue
  start "$b"
  curl -sS -D "$TMP/head" -o "$TMP/body" -X POST -H 'Authorization: Bearer bench' \
    -H 'Content-Type: application/json' --data-binary "$BODY" \
    "http://127.0.0.1:$(head -n1 "$TMP/port")/inference/v1/chat/completions" ||
    die "$b did not answer the request"
  kill -TERM "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  break
done
for b in "$@"; do
  is_yard "$b" && [ ! -s "$TMP/body" ] && die "mhdyard needs a fleetmock binary before it to copy"
done

for r in $(seq "$ROUNDS"); do
  for b in "$@"; do
    run_one "$b" >"$TMP/run" # not in a subshell: PID stays visible to cleanup
    read -r us n <"$TMP/run"
    printf 'round %d: %-40s %6.2f us CPU per request (%d requests in %d s)\n' "$r" "$b" "$us" "$n" "$DURATION"
    echo "$us" >>"$TMP/$(echo "$b" | md5sum | cut -c1-8)"
  done
done
yard=
for b in "$@"; do
  m=$(median <"$TMP/$(echo "$b" | md5sum | cut -c1-8)")
  printf 'median %-40s %6.2f us CPU per request (%d rounds)\n' "$b" "$m" "$ROUNDS"
  is_yard "$b" && yard=$m
done
if [ -n "$yard" ]; then
  for b in "$@"; do
    is_yard "$b" && continue
    m=$(median <"$TMP/$(echo "$b" | md5sum | cut -c1-8)")
    awk -v y="$yard" -v m="$m" -v b="$b" 'BEGIN {printf "ratio mhdyard/%s = %.3f (CPU per request; bar 0.9)\n", b, y / m}'
  done
fi
