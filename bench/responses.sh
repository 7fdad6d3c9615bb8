#!/usr/bin/env bash
# responses.sh — what the Responses API costs beside chat/completions on the
# same server (docs/performance.md, "Responses API"), and that its store
# holds its bound.
#
# One fleetmock (--timing instant, limits lifted), pinned to one CPU. wrk
# runs, in turn and ROUNDS (3) times, DURATION (5) s each:
#   chat       POST chat/completions, one user message, max_tokens TOKENS
#   responses  POST responses with the same message as input, max_output_tokens TOKENS
#              (stored: every request adds to the store, which evicts past its bound)
#   nostore    the same with "store": false
#   continue   the same continuing a stored conversation of TURNS (10) turns
#              through previous_response_id (the conversation is rebuilt from
#              the store for each request)
# and prints the median req/s of each, its ratio to chat, and the server's
# CPU time per request (utime + stime over the requests wrk counted). At the
# end it prints the store's size and bytes from /metrics, and VmRSS, after
# well over server.responses.size (here STORE_SIZE, 2000) stored responses:
# the bar is fleetmock_responses_stored <= STORE_SIZE.
#
# Builds nothing: uses build/fleetmock or $FLEETMOCK_BIN (a Release build:
# cmake -S . -B /tmp/brel -DCMAKE_BUILD_TYPE=Release). Everything it starts
# runs on 127.0.0.1, is stopped by PID, and lives in a temp dir removed at exit.
#
# Environment: FLEETMOCK_BIN, DURATION (5), ROUNDS (3), CONNS (64), TOKENS
# (64), TURNS (10), STORE_SIZE (2000), PIN (1|0).
# Exit status: 0 PASS, 1 FAIL, 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
TOKENS=${TOKENS:-64}
TURNS=${TURNS:-10}
STORE_SIZE=${STORE_SIZE:-2000}
PIN=${PIN:-1}

die() { echo "responses: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"

TMP=$(mktemp -d /tmp/fleetmock-responses.XXXXXX)
FM_PID=
cleanup() {
  bench_stop "$FM_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
bench_pin
bench_fleetmock "$BIN" "$TMP" "{\"responses\": {\"size\": $STORE_SIZE, \"bytes\": 67108864, \"ttl_s\": 2592000}}" ||
  die "fleetmock did not start"
M=accounts/fireworks/models/kimi-k2p6
MSG='Say hello to the benchmark.'
CHAT_BODY='{"model":"'$M'","messages":[{"role":"user","content":"'$MSG'"}],"max_tokens":'$TOKENS',"ignore_eos":true,"seed":7}'
RESP_BODY='{"model":"'$M'","input":"'$MSG'","max_output_tokens":'$TOKENS'}'
NOSTORE_BODY='{"model":"'$M'","input":"'$MSG'","max_output_tokens":'$TOKENS',"store":false}'

post() { curl -sS -X POST "$BASE$1" -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' --data-binary "$2"; }
# A stored conversation of TURNS turns for "continue" to go on from, made
# again before each "continue" load (the loads before it evict it).
make_conversation() {
  local prev= t body
  for t in $(seq "$TURNS"); do
    body='{"model":"'$M'","input":"turn '$t': '$MSG'","max_output_tokens":'$TOKENS${prev:+,\"previous_response_id\":\"$prev\"}'}'
    prev=$(post /v1/responses "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
      die "turn $t of the stored conversation failed"
  done
  CONT_BODY='{"model":"'$M'","input":"'$MSG'","max_output_tokens":'$TOKENS',"store":false,"previous_response_id":"'$prev'"}'
  post_lua "$TMP/continue.lua" "$CONT_BODY"
}
post_lua() { # post_lua FILE BODY
  printf '%s\n' 'wrk.method = "POST"' "wrk.body = '$2'" 'wrk.headers["Content-Type"] = "application/json"' \
    'wrk.headers["Authorization"] = "Bearer bench"' >"$1"
}
make_conversation
for b in "$CHAT_BODY:/v1/chat/completions" "$RESP_BODY:/v1/responses" "$CONT_BODY:/v1/responses"; do
  code=$(curl -sS -o "$TMP/check" -w '%{http_code}' -X POST "$BASE${b##*:}" -H 'Authorization: Bearer bench' \
    -H 'Content-Type: application/json' --data-binary "${b%:*}")
  [[ $code == 200 ]] || die "fleetmock answered $code: $(head -c 300 "$TMP/check")"
done

post_lua "$TMP/chat.lua" "$CHAT_BODY"
post_lua "$TMP/responses.lua" "$RESP_BODY"
post_lua "$TMP/nostore.lua" "$NOSTORE_BODY"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$FM_PID/stat"; }
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
reqs() { awk '/requests in/ {print $1}' "$1"; }
non2xx() { awk '/Non-2xx or 3xx responses:/ {print $NF}' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
HZ=$(getconf CLK_TCK)

echo "responses: fleetmock $("$BIN" --version 2>/dev/null | head -n1 || true) pid $FM_PID; wrk -t1 -c$CONNS -d${DURATION}s; $ROUNDS rounds; max tokens $TOKENS"
bench_quiet_check "$TMP"
FAIL=
for r in $(seq "$ROUNDS"); do
  for load in chat responses nostore continue; do
    route=/v1/responses
    [[ $load == chat ]] && route=/v1/chat/completions
    [[ $load == continue ]] && make_conversation
    c0=$(cpu_ticks)
    timeout --foreground $((DURATION + 30)) "${GEN_PIN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
      -s "$TMP/$load.lua" "$BASE$route" >"$TMP/$load.$r" 2>&1 || { cat "$TMP/$load.$r" >&2; die "wrk ($load) failed"; }
    c1=$(cpu_ticks)
    bad=$(non2xx "$TMP/$load.$r")
    [[ -z $bad ]] || FAIL="$load answered $bad non-2xx responses in round $r"
    awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$(reqs "$TMP/$load.$r")" 'BEGIN {printf "%.2f\n", t / hz * 1e6 / n}' \
      >"$TMP/$load.$r.cpu"
  done
done
declare -A MED CPU
for load in chat responses nostore continue; do
  MED[$load]=$(for r in $(seq "$ROUNDS"); do rps "$TMP/$load.$r"; done | median)
  CPU[$load]=$(for r in $(seq "$ROUNDS"); do cat "$TMP/$load.$r.cpu"; done | median)
done
printf '%-10s %12s %10s %16s\n' load 'req/s' 'vs chat' 'server us/req'
for load in chat responses nostore continue; do
  printf '%-10s %12.0f %10.3f %16s\n' "$load" "${MED[$load]}" \
    "$(awk -v a="${MED[$load]}" -v b="${MED[chat]}" 'BEGIN {printf "%.3f", a / b}')" "${CPU[$load]}"
done
metrics=$(curl -sS "$BASE/metrics")
stored=$(awk '/^fleetmock_responses_stored / {print $2}' <<<"$metrics")
bytes=$(awk '/^fleetmock_responses_store_bytes / {print $2}' <<<"$metrics")
evicted=$(awk '/^fleetmock_responses_evicted_total / {print $2}' <<<"$metrics")
rss=$(awk '/^VmRSS/ {print $2, $3}' "/proc/$FM_PID/status")
echo "store: $stored responses (bound $STORE_SIZE), $bytes bytes, $evicted evicted; server VmRSS $rss"
((stored <= STORE_SIZE)) || FAIL="the store holds $stored responses, over its bound $STORE_SIZE"
((evicted > 0)) || FAIL="nothing was evicted: the run did not pass the store's bound"
if [[ -n $FAIL ]]; then echo "responses: FAIL: $FAIL"; exit 1; fi
echo "responses: PASS"
