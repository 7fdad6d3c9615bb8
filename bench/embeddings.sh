#!/usr/bin/env bash
# embeddings.sh — what an embeddings request costs, beside a chat request, on
# one server (docs/performance.md, "Embeddings").
#
# Starts fleetmock with --timing instant and every account and slot limit
# lifted (as throughput.sh does), pinned to the last CPU with wrk on the
# others, and runs the same wrk command, alternating, ROUNDS times, against:
#   chat      throughput.sh's request: one user message, max_tokens 64, ignore_eos
#   emb1      embeddings, 1 input of 44 bytes, nomic (768 floats as JSON)
#   emb1-b64  the same with encoding_format base64
#   emb1-qwen the same input on qwen3-embedding-8b (4096 floats)
#   emb16     16 inputs of 44 bytes, nomic (16 x 768 floats)
# and prints the median req/s, the median server CPU time per request (user +
# system of the server process, from /proc/PID/stat, over the requests wrk
# counted: it moves far less than req/s with other load on the machine), the
# p50 latency and the body bytes of each. Any non-2xx
# answer fails the run. Builds nothing: uses build/fleetmock or $FLEETMOCK_BIN;
# everything it starts is stopped by PID, its files live in a temp dir.
#
# Environment: FLEETMOCK_BIN, DURATION (s, 5), CONNS (64), THREADS (1),
# ROUNDS (3), WARMUP (s, 1), PIN (1|0). Exit status: 0 ran, 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}

die() { echo "embeddings: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"

TMP=$(mktemp -d /tmp/fleetmock-embeddings.XXXXXX)
FM_PID=
cleanup() {
  bench_stop "$FM_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

bench_pin
bench_fleetmock "$BIN" "$TMP" || die "fleetmock did not start"

TEXT='How do I retry a request after a 503 error?' # 44 bytes, 11 tokens
INPUTS16=$(python3 -c "import json; print(json.dumps(['$TEXT'] * 16))")
declare -A PATHS BODIES
PATHS[chat]=/inference/v1/chat/completions
BODIES[chat]='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say something."}],"max_tokens":64,"ignore_eos":true,"seed":7}'
NAMES=(chat emb1 emb1-b64 emb1-qwen emb16)
for n in emb1 emb1-b64 emb1-qwen emb16; do PATHS[$n]=/inference/v1/embeddings; done
BODIES[emb1]="{\"model\":\"nomic-ai/nomic-embed-text-v1.5\",\"input\":\"$TEXT\"}"
BODIES[emb1-b64]="{\"model\":\"nomic-ai/nomic-embed-text-v1.5\",\"input\":\"$TEXT\",\"encoding_format\":\"base64\"}"
BODIES[emb1-qwen]="{\"model\":\"fireworks/qwen3-embedding-8b\",\"input\":\"$TEXT\"}"
BODIES[emb16]="{\"model\":\"nomic-ai/nomic-embed-text-v1.5\",\"input\":$INPUTS16}"

for n in "${NAMES[@]}"; do
  printf '%s\n' 'wrk.method = "POST"' "wrk.body = '${BODIES[$n]}'" \
    'wrk.headers["Content-Type"] = "application/json"' 'wrk.headers["Authorization"] = "Bearer bench"' >"$TMP/$n.lua"
  code=$(curl -sS -o "$TMP/$n.body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer bench' -d "${BODIES[$n]}" "$BASE${PATHS[$n]}")
  [[ $code == 200 ]] || { cat "$TMP/$n.body" >&2; die "$n answered $code"; }
done

WRK=(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
ticks() { awk '{ c = $0; sub(/^.*\) /, "", c); split(c, f, " "); print f[12] + f[13] }' "/proc/$FM_PID/stat"; }
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
run() { # name round
  local t0 t1
  t0=$(ticks)
  timeout --foreground $((DURATION + 30)) "${GEN_PIN[@]}" "${WRK[@]}" -s "$TMP/$1.lua" "$BASE${PATHS[$1]}" \
    >"$TMP/$1.$2" 2>&1 || { cat "$TMP/$1.$2" >&2; die "wrk on $1 failed"; }
  t1=$(ticks)
  ! grep -q 'Non-2xx' "$TMP/$1.$2" || { cat "$TMP/$1.$2" >&2; die "$1: non-2xx answers"; }
  awk -v t=$((t1 - t0)) -v hz="$HZ" '/requests in/ { printf "%.2f\n", t * 1e6 / hz / $1 }' "$TMP/$1.$2" >"$TMP/$1.$2.cpu"
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p50() { awk '$1 == "50%" {print $2}' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

bench_quiet_check "$TMP"
echo "embeddings: $("$BIN" --version 2>/dev/null | head -n1 || true); ${WRK[*]}; $ROUNDS rounds, alternating;" \
  "${SRV_PIN[*]:-no pinning}"
for n in "${NAMES[@]}"; do timeout $((WARMUP + 10)) "${GEN_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" \
  -s "$TMP/$n.lua" "$BASE${PATHS[$n]}" >/dev/null 2>&1 || true; done
for r in $(seq "$ROUNDS"); do for n in "${NAMES[@]}"; do run "$n" "$r"; done; done

printf '%-10s %12s %14s %10s %10s\n' request 'req/s' 'CPU us/req' 'p50' 'body B'
for n in "${NAMES[@]}"; do
  med=$(for r in $(seq "$ROUNDS"); do rps "$TMP/$n.$r"; done | median)
  cpu=$(for r in $(seq "$ROUNDS"); do cat "$TMP/$n.$r.cpu"; done | median)
  lat=$(p50 "$TMP/$n.$ROUNDS")
  printf '%-10s %12.0f %14.2f %10s %10d\n' "$n" "$med" "$cpu" "$lat" "$(wc -c <"$TMP/$n.body")"
done
