#!/usr/bin/env bash
# journal.sh — the request journal holds its bound (issue 14, done-when 4):
# server RSS stays flat once the ring is full, however many requests pass,
# and recording costs little of the throughput (SPEC §8: new features under
# 10 % of it).
#
# Part 1, memory. Starts fleetmock with --timing instant and
# server.journal {size: SIZE (1000), body_bytes: BODY_BYTES (4096)}, then
# sends REQUESTS (100 000) non-streaming chat completions with wrk, in
# phases ending at 10 000, 50 000 and REQUESTS. Each request body is
# BIG_BYTES (4600) long, so every entry keeps a whole body_bytes of it: the
# journal's worst case. Before the first request and after each phase it
# prints VmRSS and VmHWM from /proc/PID/status, the requests the server
# journaled (the newest entry's seq: its own count, not wrk's), and the
# journal's entries and dropped count from /metrics. The bar: VmRSS at the
# end at most FLAT_PCT (5) % above VmRSS after 10 000 (the ring filled at
# SIZE), entries = SIZE and entries + dropped = the count journaled.
#
# Part 2, cost. Two servers, one with server.journal.size 0 (off) and one
# with SIZE, both pinned to the same CPU; wrk runs against each in turn,
# ROUNDS (3) times, DURATION (5) s each, with the short request of
# throughput.sh and then with the BIG_BYTES one. The ratio of median req/s
# (on/off) is the journal's cost; the bar is COST_BAR (0.90). The server's
# own CPU time per request (utime + stime over the requests wrk counted) is
# printed beside it: on a busy machine it says more than req/s does.
#
# Builds nothing: uses build/fleetmock or $FLEETMOCK_BIN (build it Release:
# cmake -S . -B /tmp/bjrel -DCMAKE_BUILD_TYPE=Release). Everything it starts
# runs on 127.0.0.1, is stopped by PID, and lives in a temp dir removed at exit.
#
# Environment: FLEETMOCK_BIN, REQUESTS (100000), SIZE (1000), BODY_BYTES
# (4096), BIG_BYTES (4600), FLAT_PCT (5), DURATION (5), ROUNDS (3), CONNS
# (64), COST_BAR (0.90), PIN (1|0).
# Exit status: 0 PASS, 1 FAIL, 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
REQUESTS=${REQUESTS:-100000}
SIZE=${SIZE:-1000}
BODY_BYTES=${BODY_BYTES:-4096}
BIG_BYTES=${BIG_BYTES:-4600}
FLAT_PCT=${FLAT_PCT:-5}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
COST_BAR=${COST_BAR:-0.90}
ROUTE=/inference/v1/chat/completions

die() { echo "journal: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
((REQUESTS > 50000)) || die "REQUESTS must be over 50000 (the phases end at 10000, 50000 and REQUESTS)"

TMP=$(mktemp -d /tmp/fleetmock-journal.XXXXXX)
PIDS=()
cleanup() {
  # Stop only what this script started, by PID.
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

bench_pin
WRK_PIN=("${GEN_PIN[@]}")

# start NAME JOURNAL_SIZE: a server with every limit lifted (as throughput.sh);
# sets PORT_<NAME> and PID_<NAME>.
start() {
  local name=$1 size=$2
  cat >"$TMP/$name.json" <<EOF
{"server": {"journal": {"size": $size, "body_bytes": $BODY_BYTES}},
 "pool_defaults": {"slots": 100000},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
EOF
  "${SRV_PIN[@]}" "$BIN" --timing instant --port 0 --port-file "$TMP/$name.port" \
    --log-level error --config "$TMP/$name.json" 2>"$TMP/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do [[ -s $TMP/$name.port ]] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [[ -s $TMP/$name.port ]] || { cat "$TMP/$name.log" >&2; die "fleetmock ($name) did not write its port file"; }
  printf -v "PORT_$name" '%s' "$(head -n1 "$TMP/$name.port")"
  printf -v "PID_$name" '%s' "$pid"
}

# The short request of throughput.sh, and one padded to BIG_BYTES.
SHORT='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64,"ignore_eos":true,"seed":7}'
PAD_BYTES=$((BIG_BYTES - ${#SHORT}))
PAD=$(printf 'the benchmark prompt goes on %.0s' $(seq $((PAD_BYTES / 20 + 1))))
BIG=${SHORT/benchmark./benchmark.${PAD:0:$PAD_BYTES}}
((${#BIG} == BIG_BYTES)) || die "the padded request is ${#BIG} bytes, not $BIG_BYTES"

# lua NAME BODY [count]: a wrk script posting BODY; with "count", it stops
# its thread after the number of answers given after -- on the command line.
lua() {
  cat >"$TMP/$1.lua" <<EOF
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench"
EOF
  [[ ${3:-} == count ]] || return 0
  cat >>"$TMP/$1.lua" <<'EOF'
local left = 0
function init(args) left = tonumber(args[1]) end
function response(status, headers, body)
  left = left - 1
  if left <= 0 then wrk.thread:stop() end
end
EOF
}
lua short "$SHORT"
lua big "$BIG"
lua count "$BIG" count

mib() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
metric() { curl -sS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
journaled() { # the newest entry's seq: requests the journal recorded, by its own count
  curl -sS "http://127.0.0.1:$1/admin/requests?limit=1" | sed -n 's/^{"object":"list","data":\[{"seq":\([0-9]*\),.*/\1/p'
}

start on "$SIZE"
start off 0
echo "journal: fleetmock $("$BIN" --version 2>/dev/null | head -n1 || true); journal on: 127.0.0.1:$PORT_on (pid $PID_on," \
  "size $SIZE, body_bytes $BODY_BYTES); off: 127.0.0.1:$PORT_off (pid $PID_off, size 0)"
PIN_NOTE="no CPU pinning"
((${#SRV_PIN[@]} == 0)) || PIN_NOTE="servers pinned with '${SRV_PIN[*]}', wrk with '${WRK_PIN[*]}'"
echo "journal: requests of ${#SHORT} and ${#BIG} bytes; wrk -t1 -c$CONNS; $PIN_NOTE"
bench_quiet_check "$TMP"

# ---- part 1: memory -----------------------------------------------------------
URL_on="http://127.0.0.1:$PORT_on$ROUTE"
printf '%8s  %9s  %9s  %8s  %8s\n' requests "VmRSS MiB" "VmHWM MiB" entries dropped
row() {
  local n=$1
  printf '%8s  %9s  %9s  %8s  %8s\n' "$n" "$(mib "$PID_on" VmRSS)" "$(mib "$PID_on" VmHWM)" \
    "$(metric "$PORT_on" fleetmock_journal_entries)" "$(metric "$PORT_on" fleetmock_journal_dropped_total)"
}
row 0
RSS_AT=()
# wrk stops on a duration, not a count: it runs in 1 s slices, each stopping
# its thread after the answers still wanted, until the server has journaled
# the phase's target. The requests in flight when a slice stops are still
# answered and journaled, so a phase ends up to CONNS - 1 past its target;
# the server's own count is what is printed.
for target in 10000 50000 "$REQUESTS"; do
  for slice in $(seq 1000); do
    n=$(journaled "$PORT_on")
    want=$((target - ${n:-0}))
    ((want > 0)) || break
    timeout --foreground 30 "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d1s -s "$TMP/count.lua" "$URL_on" -- "$want" \
      >"$TMP/count.out" 2>&1 || { cat "$TMP/count.out" >&2; die "wrk failed"; }
    ! grep -q 'Non-2xx' "$TMP/count.out" || die "non-2xx answers: $(grep Non-2xx "$TMP/count.out")"
    sleep 0.2 # the answers in flight when wrk stopped
  done
  n=$(journaled "$PORT_on")
  row "$n"
  RSS_AT+=("$(kib "$PID_on" VmRSS)")
  LAST_N=$n
done
ENTRIES=$(metric "$PORT_on" fleetmock_journal_entries)
DROPPED=$(metric "$PORT_on" fleetmock_journal_dropped_total)
GROWTH=$(awk -v a="${RSS_AT[0]}" -v b="${RSS_AT[2]}" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
MEM_VERDICT=PASS
awk -v g="$GROWTH" -v bar="$FLAT_PCT" 'BEGIN {exit !(g <= bar)}' || MEM_VERDICT=FAIL
((ENTRIES == SIZE && ENTRIES + DROPPED == LAST_N)) || MEM_VERDICT=FAIL
printf 'VmRSS from 10 000 to %s requests: %+.2f %% (bar: at most +%s %%); entries %s = size %s, entries + dropped = %s journaled: %s\n' \
  "$LAST_N" "$GROWTH" "$FLAT_PCT" "$ENTRIES" "$SIZE" "$((ENTRIES + DROPPED))" "$MEM_VERDICT"

# ---- part 2: cost ---------------------------------------------------------------
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
ticks() { awk '{ c = $0; sub(/^.*\) /, "", c); split(c, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
run_wrk() { # out-file lua url server-pid
  local t0 t1
  bench_snapshot >"$TMP/snap.0"
  t0=$(ticks "$4")
  timeout --foreground $((DURATION + 30)) "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$2" "$3" >"$1" 2>&1 ||
    { cat "$1" >&2; die "wrk failed"; }
  t1=$(ticks "$4")
  bench_snapshot >"$TMP/snap.1"
  bench_foreign_pct "$TMP/snap.0" "$TMP/snap.1" "$DURATION" >"$1.other"
  ! grep -q 'Non-2xx' "$1" || die "non-2xx answers in $1: $(grep Non-2xx "$1")"
  # The server's own CPU time per request answered: what the journal costs,
  # whatever else the machine runs meanwhile (at 1/HZ s resolution).
  awk -v t=$((t1 - t0)) -v hz="$HZ" '/ requests in / {printf "%.2f", t * 1e6 / hz / $1}' "$1" >"$1.cpu"
}
DISTURBED=
for r in $(seq "$ROUNDS"); do
  for body in short big; do
    run_wrk "$TMP/off.$body.$r" "$TMP/$body.lua" "http://127.0.0.1:$PORT_off$ROUTE" "$PID_off"
    run_wrk "$TMP/on.$body.$r" "$TMP/$body.lua" "$URL_on" "$PID_on"
    for f in "$TMP/off.$body.$r.other" "$TMP/on.$body.$r.other"; do
      (($(cat "$f") <= ${OTHER_MAX:-10})) || DISTURBED="round $r"
    done
  done
  printf 'round %d: short request: off %7.0f req/s %6s us/req, on %7.0f req/s %6s us/req  (other load %s%%/%s%%)\n' \
    "$r" "$(rps "$TMP/off.short.$r")" "$(cat "$TMP/off.short.$r.cpu")" "$(rps "$TMP/on.short.$r")" \
    "$(cat "$TMP/on.short.$r.cpu")" "$(cat "$TMP/off.short.$r.other")" "$(cat "$TMP/on.short.$r.other")"
  printf '         %d-byte request: off %7.0f req/s %6s us/req, on %7.0f req/s %6s us/req  (other load %s%%/%s%%)\n' \
    "$BIG_BYTES" "$(rps "$TMP/off.big.$r")" "$(cat "$TMP/off.big.$r.cpu")" "$(rps "$TMP/on.big.$r")" \
    "$(cat "$TMP/on.big.$r.cpu")" "$(cat "$TMP/off.big.$r.other")" "$(cat "$TMP/on.big.$r.other")"
done
[[ -z $DISTURBED ]] ||
  echo "WARNING: other work competed for the CPUs ($DISTURBED and maybe others); rerun on an idle machine"
for pid in "$PID_on" "$PID_off"; do kill -0 "$pid" 2>/dev/null || die "a server died during the run"; done
med() { for r in $(seq "$ROUNDS"); do rps "$TMP/$1.$r"; done | median; }
medcpu() { for r in $(seq "$ROUNDS"); do cat "$TMP/$1.$r.cpu"; echo; done | median; }
OFF_S=$(med off.short) ON_S=$(med on.short) OFF_B=$(med off.big) ON_B=$(med on.big)
CPU_OFF_S=$(medcpu off.short) CPU_ON_S=$(medcpu on.short) CPU_OFF_B=$(medcpu off.big) CPU_ON_B=$(medcpu on.big)
RATIO_S=$(awk -v a="$ON_S" -v b="$OFF_S" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
RATIO_B=$(awk -v a="$ON_B" -v b="$OFF_B" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
COST_VERDICT=$(awk -v a="$RATIO_S" -v b="$RATIO_B" -v bar="$COST_BAR" 'BEGIN {print (a >= bar && b >= bar ? "PASS" : "FAIL")}')
printf 'short request (%d bytes): journal off %.0f req/s, on %.0f req/s (medians of %d): ratio %s\n' \
  "${#SHORT}" "$OFF_S" "$ON_S" "$ROUNDS" "$RATIO_S"
printf '%d-byte request (%d kept): journal off %.0f req/s, on %.0f req/s (medians of %d): ratio %s\n' \
  "$BIG_BYTES" "$BODY_BYTES" "$OFF_B" "$ON_B" "$ROUNDS" "$RATIO_B"
printf 'server CPU per request (medians): short %s us off, %s us on; %d-byte %s us off, %s us on\n' \
  "$CPU_OFF_S" "$CPU_ON_S" "$BIG_BYTES" "$CPU_OFF_B" "$CPU_ON_B"
printf 'journal cost: on/off at least %s: %s\n' "$COST_BAR" "$COST_VERDICT"
printf 'after the cost runs: journal on: VmRSS %s MiB, VmHWM %s MiB, entries %s, dropped %s; journal off: VmRSS %s MiB, VmHWM %s MiB\n' \
  "$(mib "$PID_on" VmRSS)" "$(mib "$PID_on" VmHWM)" "$(metric "$PORT_on" fleetmock_journal_entries)" \
  "$(metric "$PORT_on" fleetmock_journal_dropped_total)" "$(mib "$PID_off" VmRSS)" "$(mib "$PID_off" VmHWM)"

echo "RESULT journal requests=$LAST_N rss_10k_kib=${RSS_AT[0]} rss_50k_kib=${RSS_AT[1]} rss_end_kib=${RSS_AT[2]}" \
  "growth_pct=$GROWTH entries=$ENTRIES dropped=$DROPPED mem_verdict=$MEM_VERDICT off_rps=$OFF_S on_rps=$ON_S ratio=$RATIO_S" \
  "off_big_rps=$OFF_B on_big_rps=$ON_B big_ratio=$RATIO_B cpu_us_off=$CPU_OFF_S cpu_us_on=$CPU_ON_S" \
  "cpu_us_off_big=$CPU_OFF_B cpu_us_on_big=$CPU_ON_B cost_verdict=$COST_VERDICT"
[[ $MEM_VERDICT == PASS && $COST_VERDICT == PASS ]]
