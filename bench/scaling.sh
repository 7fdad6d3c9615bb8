#!/usr/bin/env bash
# scaling.sh — how fleetmock's cost grows with the work it holds (issue 17):
# three sweeps, each printed as a table, written as a CSV into OUT_DIR
# (docs/perf) and drawn as PNGs there with bench/plot.py.
#
#   (a) accounts: req/s, server CPU per request and server RSS against the
#       number of accounts held, ACCOUNTS (1 100 10000 100000). Each point is
#       a fresh fleetmock (--timing instant, every limit lifted, as
#       throughput.sh; server.max_accounts MAX_ACCOUNTS, by default the
#       largest count, so every key stays in the table). keyload first sends
#       one request per key (the table fills), then A_REQUESTS (300 000) more
#       over the same K keys in turn over CONNS (64) connections: req/s and
#       the server's CPU (utime + stime from /proc/PID/stat) of that second
#       run, VmRSS and VmHWM after it; and the same two for the filling run,
#       whose every request creates its account (fill_req_s and
#       fill_cpu_us_per_req, blank below 10 000 keys: too few requests to
#       time). The request is throughput.sh's (max_tokens 64).
#       -> accounts.csv, accounts_req_s.png, accounts_cpu.png, accounts_rss.png
#   (b) CPU per token: STREAMS_B (500 1000 2000) concurrent streams, TOKENS_B
#       (500) tokens each at RATE (50) tok/s, from a fresh fleetmock with
#       streams.sh's pinned cadence; the server's CPU over the streamload run
#       (streamload reads /proc/PID/stat before and after) divided by the
#       tokens streamload received. The same load against bench/pacer (one
#       loop, PACER_THREADS 1, as fleetmock's one) is the yardstick.
#       The quotient includes each stream's request (parse, admission, head),
#       about 1/TOKENS_B of a request per token. -> cpu_per_token.csv,
#       cpu_per_token.png
#   (c) held streams: server RSS with HELD (1000 10000 50000) streams open at
#       once (RATE_C 5 tok/s, 1 500 tokens, streamload --hold HOLD_S 3, then
#       closed by the client), a fresh fleetmock each. If STREAMS_CSV
#       (OUT_DIR/streams_rss.csv) exists it is read and drawn, not measured
#       again, unless C_RUN=1. A count needs a descriptor per stream in both
#       processes (the hard RLIMIT_NOFILE, which a bench cannot raise) and,
#       from one source address, a local port per stream
#       (net.ipv4.ip_local_port_range, ~28 000); counts over what this machine
#       allows are skipped, and the most it allows (rounded down to 500) is
#       measured in their place. STREAMLOAD_ARGS are passed to streamload
#       (for a way to spread connections over loopback source addresses),
#       and lift the port bound. -> streams_rss.csv, streams_rss.png
#
# DRAW_ONLY=1 measures nothing: it prints the CSVs in OUT_DIR and draws them
# again (after a change to plot.py; give the REPEATS they were measured with,
# which the chart titles name).
#
# Every point is measured REPEATS (3) times, in rounds (every count once, then
# again), and the table holds the median, with the spread. Other processes'
# CPU during each run is measured as lib.sh does (OTHER_MAX, % of a core) and
# printed beside it: throughput on a shared machine moves with that load, CPU
# time per request or token much less.
#
# Builds nothing: uses build/{fleetmock,keyload,streamload,pacer}, or
# FLEETMOCK_BIN, KEYLOAD_BIN, STREAMLOAD_BIN and PACER_BIN. Loopback only;
# everything it starts is stopped by its PID; one temp dir, removed at exit.
# Each keyload and streamload run is bounded (TIMEOUT_S, 300 s).
# Environment: PARTS (abc), OUT_DIR (docs/perf), PLOT (1: draw the PNGs),
# REPEATS (3), ACCOUNTS, MAX_ACCOUNTS, A_REQUESTS, CONNS, TOKENS (64),
# STREAMS_B, TOKENS_B, RATE, PACER (1: measure pacer too), PACER_THREADS,
# HELD, RATE_C, TOKENS_C (1500), HOLD_S, REPEATS_C (1), C_RUN (0|1),
# DRAW_ONLY (0|1), STREAMS_CSV, STREAMLOAD_ARGS, TIMEOUT_S, OTHER_MAX (10),
# PIN (1|0).
# Exit status: 0 every sweep ran, 1 a run failed (errors, streams not all
# served), 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
KEYLOAD=${KEYLOAD_BIN:-$ROOT/build/keyload}
LOAD=${STREAMLOAD_BIN:-$ROOT/build/streamload}
PACER_BIN=${PACER_BIN:-$ROOT/build/pacer}
PARTS=${PARTS:-abc}
OUT_DIR=${OUT_DIR:-$ROOT/docs/perf}
PLOT=${PLOT:-1}
REPEATS=${REPEATS:-3}
ACCOUNTS=${ACCOUNTS:-1 100 10000 100000}
MAX_ACCOUNTS=${MAX_ACCOUNTS:-$(tr ' ' '\n' <<<"$ACCOUNTS" | sort -n | tail -n1)}
A_REQUESTS=${A_REQUESTS:-300000}
CONNS=${CONNS:-64}
TOKENS=${TOKENS:-64}
STREAMS_B=${STREAMS_B:-500 1000 2000}
TOKENS_B=${TOKENS_B:-500}
RATE=${RATE:-50}
PACER=${PACER:-1}
PACER_THREADS=${PACER_THREADS:-1}
HELD=${HELD:-1000 10000 50000}
RATE_C=${RATE_C:-5}
TOKENS_C=${TOKENS_C:-1500}
HOLD_S=${HOLD_S:-3}
REPEATS_C=${REPEATS_C:-1}
C_RUN=${C_RUN:-0}
DRAW_ONLY=${DRAW_ONLY:-0}
STREAMS_CSV=${STREAMS_CSV:-$OUT_DIR/streams_rss.csv}
STREAMLOAD_ARGS=${STREAMLOAD_ARGS:-}
TIMEOUT_S=${TIMEOUT_S:-300}
PIN=${PIN:-1}

die() { echo "scaling: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
[[ $PARTS != *a* || -x $KEYLOAD ]] || die "no keyload binary at $KEYLOAD (set KEYLOAD_BIN)"
[[ $PARTS != *[bc]* || -x $LOAD ]] || die "no streamload binary at $LOAD (set STREAMLOAD_BIN)"
[[ $PARTS != *b* || $PACER != 1 || -x $PACER_BIN ]] || die "no pacer binary at $PACER_BIN (or PACER=0)"
command -v python3 >/dev/null || PLOT=0
mkdir -p "$OUT_DIR"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # each stream is a descriptor on both sides

TMP=$(mktemp -d /tmp/fleetmock-scaling.XXXXXX)
FM_PID='' PC_PID=''
cleanup() {
  bench_stop "$FM_PID"
  bench_stop "$PC_PID"
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
bench_pin
STATUS=0

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; } # utime + stime
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
span() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }
jnum() { sed -n "s/.*\"$1\":\([-0-9.]*\).*/\1/p" <<<"$2"; }
# run_begin / run_end: the CPU other processes took meanwhile, % of a core (lib.sh).
run_begin() { bench_snapshot >"$TMP/snap.0"; RUN_T0=$(date +%s.%N); }
run_end() {
  bench_snapshot >"$TMP/snap.1"
  local secs
  secs=$(awk -v a="$RUN_T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
  OTHER=$(bench_foreign_pct "$TMP/snap.0" "$TMP/snap.1" "$secs")
}
plot() { # csv png args...: draws when PLOT=1, says where
  ((PLOT)) || return 0
  local csv=$1 png=$2
  shift 2
  python3 "$ROOT/bench/plot.py" "$csv" -o "$png" "$@" && echo "scaling: drew $png"
}
bench_quiet_check "$TMP"
echo "scaling: $("$BIN" --version 2>/dev/null | head -n1), $(nproc) CPUs, $(date -u +%FT%TZ); server on" \
  "${SRV_PIN[*]:-any CPU}, load generators on ${GEN_PIN[*]:-any CPU}"

# ---- (a) accounts ------------------------------------------------------------
if [[ $PARTS == *a* ]]; then
  CSV=$OUT_DIR/accounts.csv
  if [[ $DRAW_ONLY != 1 ]]; then
    echo "== (a) accounts $ACCOUNTS: $A_REQUESTS requests over the K keys after one each (max_accounts $MAX_ACCOUNTS), $REPEATS rounds"
    BODY='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":'$TOKENS',"ignore_eos":true,"seed":7}'
    : >"$TMP/a.runs"
    for r in $(seq "$REPEATS"); do
      for k in $ACCOUNTS; do
        rm -f "$TMP/fm.port" # bench_fleetmock waits for it to appear
        bench_fleetmock "$BIN" "$TMP" "{\"max_accounts\": $MAX_ACCOUNTS}" || die "fleetmock did not start"
        port=${BASE##*:}
        idle=$(kib "$FM_PID" VmRSS)
        # Fill the table: one request per key (index 0..K-1, the keys the run reuses);
        # each of these requests creates its account, so its cost is printed too.
        f0=$(ticks "$FM_PID")
        "${GEN_PIN[@]}" "$KEYLOAD" --port "$port" --keys "$k" --requests "$k" --conns "$CONNS" \
          --timeout-s "$TIMEOUT_S" --body "$BODY" >"$TMP/fill.out" 2>&1 ||
          { cat "$TMP/fill.out"; die "keyload could not fill $k accounts"; }
        f1=$(ticks "$FM_PID")
        fill_rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' "$TMP/fill.out" | head -n1)
        fill_us=$(awk -v t=$((f1 - f0)) -v hz="$HZ" -v n="$k" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
        run_begin
        c0=$(ticks "$FM_PID")
        set +e
        "${GEN_PIN[@]}" "$KEYLOAD" --port "$port" --keys "$k" --requests "$A_REQUESTS" --conns "$CONNS" \
          --timeout-s "$TIMEOUT_S" --body "$BODY" >"$TMP/a.out" 2>&1
        rc=$?
        set -e
        c1=$(ticks "$FM_PID")
        run_end
        rps=$(sed -n 's/.* rps=\([0-9]*\).*/\1/p' "$TMP/a.out" | head -n1)
        ok=$(sed -n 's/.* 200=\([0-9]*\).*/\1/p' "$TMP/a.out" | head -n1)
        held=$(curl -sS "$BASE/metrics" | awk '$1 == "fleetmock_accounts" {printf "%.0f", $2}')
        rss=$(kib "$FM_PID" VmRSS) hwm=$(kib "$FM_PID" VmHWM)
        us=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="${ok:-0}" 'BEGIN {printf "%.2f", n ? t * 1e6 / hz / n : 0}')
        bench_stop "$FM_PID"
        FM_PID=
        if ((rc != 0)) || [[ ${ok:-0} != "$A_REQUESTS" ]]; then
          echo "scaling: FAIL: $k accounts: keyload exit $rc, ${ok:-0} of $A_REQUESTS answered 200"
          cat "$TMP/a.out"
          STATUS=1
        fi
        printf '  round %d  %6d accounts (%d held)  %6s req/s  %6s µs CPU/request  RSS %6.1f MiB (idle %.1f, peak %.1f)  other %s%%;  filling: %s req/s, %s µs/request\n' \
          "$r" "$k" "$held" "$rps" "$us" "$(awk -v a="$rss" 'BEGIN {print a / 1024}')" \
          "$(awk -v a="$idle" 'BEGIN {print a / 1024}')" "$(awk -v a="$hwm" 'BEGIN {print a / 1024}')" "$OTHER" \
          "$fill_rps" "$fill_us"
        echo "$k $rps $us $rss $hwm $idle $OTHER $held $fill_rps $fill_us" >>"$TMP/a.runs"
      done
    done
    echo "accounts,req_s,req_s_range,cpu_us_per_req,rss_mib,hwm_mib,idle_rss_mib,bytes_per_account,other_pct_max,held,fill_req_s,fill_cpu_us_per_req" >"$CSV"
    rss1=
    for k in $ACCOUNTS; do
      col() { awk -v k="$k" -v c="$1" '$1 == k {print $c}' "$TMP/a.runs"; }
      rss=$(col 4 | median)
      [[ -n $rss1 ]] || rss1=$rss # the first count (1) is the base: what the request path costs with one account
      awk -v k="$k" -v rps="$(col 2 | median)" -v range="$(col 2 | span)" -v us="$(col 3 | median)" -v rss="$rss" \
        -v hwm="$(col 5 | median)" -v idle="$(col 6 | median)" -v base="$rss1" -v first="$(echo "$ACCOUNTS" | awk '{print $1}')" \
        -v other="$(col 7 | sort -n | tail -n1)" -v held="$(col 8 | median)" -v frps="$(col 9 | median)" \
        -v fus="$(col 10 | median)" 'BEGIN {
          per = (k > first) ? sprintf("%.0f", (rss - base) * 1024 / (k - first)) : ""
          fill = (k >= 10000) ? sprintf("%.0f,%.2f", frps, fus) : "," # fewer keys: too short to time
          printf "%d,%.0f,%s,%.2f,%.1f,%.1f,%.1f,%s,%d,%d,%s\n", k, rps, range, us, rss / 1024, hwm / 1024,
            idle / 1024, per, other, held, fill }' >>"$CSV"
    done
  fi
  [[ -s $CSV ]] || die "no $CSV to draw"
  echo "(a) medians of $REPEATS rounds ($CSV):"
  column -s, -t "$CSV" | sed 's/^/  /'
  plot "$CSV" "$OUT_DIR/accounts_req_s.png" --x accounts --y req_s --logx --xlabel "accounts held (log scale)" \
    --ylabel "requests / s" --title "Non-streaming req/s against accounts held (median of $REPEATS)"
  plot "$CSV" "$OUT_DIR/accounts_cpu.png" --x accounts --y cpu_us_per_req --logx --xlabel "accounts held (log scale)" \
    --ylabel "server CPU per request, µs" --title "Server CPU per request against accounts held (median of $REPEATS)"
  plot "$CSV" "$OUT_DIR/accounts_rss.png" --x accounts --y rss_mib --y idle_rss_mib --label "VmRSS after the run" \
    --label "VmRSS at start" --logx --xlabel "accounts held (log scale)" --ylabel "server RSS, MiB" \
    --title "Server memory against accounts held"
fi

# ---- streams: a fresh fleetmock (realistic timing) with streams.sh's cadence ---
cat >"$TMP/streams.json" <<'EOF'
{"pools": {"kimi-k2p6": {"decode_tps": RATE, "ttft_ms": 100, "jitter": 0, "slowdown_at_full": 0,
  "slots": 100000, "output_tokens": {"min": 16, "mean": 150, "max": 100000}}},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
EOF
start_stream_server() { # rate: sets FM_PID and PORT
  sed "s/RATE/$1/" "$TMP/streams.json" >"$TMP/run.json"
  rm -f "$TMP/port"
  "${SRV_PIN[@]}" "$BIN" --port 0 --port-file "$TMP/port" --log-level warn --config "$TMP/run.json" \
    2>>"$TMP/fleetmock.log" &
  FM_PID=$!
  for _ in $(seq 100); do [[ -s $TMP/port ]] && break; kill -0 "$FM_PID" 2>/dev/null || break; sleep 0.1; done
  [[ -s $TMP/port ]] || { cat "$TMP/fleetmock.log" >&2; die "fleetmock did not start"; }
  PORT=$(head -n1 "$TMP/port")
}
# One streamload run against PORT (server pid $1); the JSON line in LINE.
stream_run() { # pid out-name streamload-args...
  local pid=$1 name=$2
  shift 2
  run_begin
  set +e
  # shellcheck disable=SC2086 # STREAMLOAD_ARGS is a list of options
  "${GEN_PIN[@]}" "$LOAD" --port "$PORT" --server-pid "$pid" --connect-rate 50 --timeout-s "$TIMEOUT_S" \
    --json --quiet $STREAMLOAD_ARGS "$@" >"$TMP/$name.out" 2>&1
  set -e
  run_end
  LINE=$(grep '^{' "$TMP/$name.out" || true)
  [[ -n $LINE ]] || { cat "$TMP/$name.out"; die "streamload printed no result for $name"; }
}

# ---- (b) CPU per token ---------------------------------------------------------
if [[ $PARTS == *b* ]]; then
  CSV=$OUT_DIR/cpu_per_token.csv
  if [[ $DRAW_ONLY != 1 ]]; then
    echo "== (b) server CPU per token: $STREAMS_B streams x $TOKENS_B tokens at $RATE tok/s, $REPEATS rounds"
    : >"$TMP/b.runs"
    for r in $(seq "$REPEATS"); do
      for n in $STREAMS_B; do
        start_stream_server "$RATE"
        stream_run "$FM_PID" "b-fm" --streams "$n" --tokens "$TOKENS_B" --rate "$RATE"
        bench_stop "$FM_PID"
        FM_PID=
        fm_tok=$(jnum tokens "$LINE") fm_cpu=$(jnum cpu_server_s "$LINE") fm_done=$(jnum completed "$LINE")
        fm_other=$OTHER
        ((fm_done == n)) || { echo "scaling: FAIL: fleetmock completed $fm_done of $n streams"; STATUS=1; }
        pc_tok=0 pc_cpu=0 pc_other=0
        if [[ $PACER == 1 ]]; then
          rm -f "$TMP/pport"
          "${SRV_PIN[@]}" "$PACER_BIN" --port-file "$TMP/pport" --tokens "$TOKENS_B" --rate "$RATE" --ttft-ms 100 \
            --threads "$PACER_THREADS" &
          PC_PID=$!
          for _ in $(seq 50); do [[ -s $TMP/pport ]] && break; sleep 0.1; done
          [[ -s $TMP/pport ]] || die "pacer did not start"
          PORT=$(head -n1 "$TMP/pport")
          stream_run "$PC_PID" "b-pc" --streams "$n" --tokens "$TOKENS_B" --rate "$RATE"
          bench_stop "$PC_PID"
          PC_PID=
          pc_tok=$(jnum tokens "$LINE") pc_cpu=$(jnum cpu_server_s "$LINE") pc_other=$OTHER
        fi
        read -r fm_us pc_us < <(awk -v a="$fm_cpu" -v b="$fm_tok" -v c="$pc_cpu" -v d="$pc_tok" \
          'BEGIN {printf "%.3f %.3f\n", b ? a * 1e6 / b : 0, d ? c * 1e6 / d : 0}')
        printf '  round %d  %5d streams  fleetmock %7s tokens %6.2f s CPU %6s µs/token  pacer %6s µs/token  other %s%%, %s%%\n' \
          "$r" "$n" "$fm_tok" "$fm_cpu" "$fm_us" "$pc_us" "$fm_other" "$pc_other"
        echo "$n $fm_us $fm_tok $fm_cpu $pc_us $fm_other $pc_other" >>"$TMP/b.runs"
      done
    done
    echo "streams,us_per_token,us_per_token_range,tokens,server_cpu_s,pacer_us_per_token,ratio,other_pct_max" >"$CSV"
    for n in $STREAMS_B; do
      col() { awk -v k="$n" -v c="$1" '$1 == k {print $c}' "$TMP/b.runs"; }
      fm=$(col 2 | median) pc=$(col 5 | median)
      awk -v n="$n" -v fm="$fm" -v range="$(col 2 | span)" -v tok="$(col 3 | median)" -v cpu="$(col 4 | median)" \
        -v pc="$pc" -v other="$( (col 6; col 7) | sort -n | tail -n1)" -v pacer="$PACER" 'BEGIN {
          printf "%d,%.3f,%s,%d,%.2f,%s,%s,%d\n", n, fm, range, tok, cpu, (pacer == 1 ? sprintf("%.3f", pc) : ""),
            (pacer == 1 && pc > 0 ? sprintf("%.2f", fm / pc) : ""), other }' >>"$CSV"
    done
  fi
  [[ -s $CSV ]] || die "no $CSV to draw"
  echo "(b) medians of $REPEATS rounds ($CSV):"
  column -s, -t "$CSV" | sed 's/^/  /'
  ys=(--y us_per_token --label "fleetmock (1 loop)")
  [[ $PACER == 1 ]] && ys+=(--y pacer_us_per_token --label "pacer, $PACER_THREADS loop (yardstick)")
  plot "$CSV" "$OUT_DIR/cpu_per_token.png" --x streams "${ys[@]}" --xlabel "concurrent streams at $RATE tok/s" \
    --ylabel "server CPU per token, µs" --title "Server CPU per streamed token (median of $REPEATS)"
fi

# ---- (c) held streams ----------------------------------------------------------
if [[ $PARTS == *c* ]]; then
  if [[ $DRAW_ONLY == 1 || (-s $STREAMS_CSV && $C_RUN != 1) ]]; then
    [[ -s $STREAMS_CSV ]] || die "no $STREAMS_CSV to draw"
    echo "== (c) held streams: read from $STREAMS_CSV (C_RUN=1 measures again)"
  else
    fds=$(ulimit -n)
    limit=$(( (fds - 100) / 500 * 500 ))
    why="RLIMIT_NOFILE $fds (hard), one descriptor per stream in each process"
    read -r plo phi </proc/sys/net/ipv4/ip_local_port_range
    if [[ -z $STREAMLOAD_ARGS ]] && ((phi - plo + 1 - 500 < limit)); then
      limit=$(( (phi - plo + 1 - 500) / 500 * 500 ))
      why="net.ipv4.ip_local_port_range $plo-$phi: one local port per stream from 127.0.0.1"
    fi
    counts=() skipped=()
    for n in $HELD; do if ((n <= limit)); then counts+=("$n"); else skipped+=("$n"); fi; done
    if ((${#skipped[@]})); then
      echo "scaling: (c) skipped ${skipped[*]} streams: this machine allows $limit ($why); measuring $limit instead"
      counts+=("$limit")
    fi
    echo "== (c) held streams ${counts[*]} at $RATE_C tok/s, $TOKENS_C tokens each, held $HOLD_S s"
    : >"$TMP/c.runs"
    for r in $(seq "$REPEATS_C"); do
      for n in "${counts[@]}"; do
        start_stream_server "$RATE_C"
        idle=$(kib "$FM_PID" VmRSS)
        stream_run "$FM_PID" "c" --streams "$n" --tokens "$TOKENS_C" --rate "$RATE_C" --hold --hold-s "$HOLD_S"
        bench_stop "$FM_PID"
        FM_PID=
        conc=$(jnum max_concurrent "$LINE") open=$(jnum rss_all_open_kib "$LINE") hwm=$(jnum vmhwm_kib "$LINE")
        ((conc == n)) || { echo "scaling: FAIL: only $conc of $n streams open at once"; STATUS=1; }
        printf '  round %d  %6d streams (%d open at once)  RSS all open %6.1f MiB, peak %6.1f, idle %.1f  other %s%%\n' \
          "$r" "$n" "$conc" "$(awk -v a="$open" 'BEGIN {print a / 1024}')" \
          "$(awk -v a="$hwm" 'BEGIN {print a / 1024}')" "$(awk -v a="$idle" 'BEGIN {print a / 1024}')" "$OTHER"
        echo "$n $open $hwm $idle $OTHER $conc" >>"$TMP/c.runs"
      done
    done
    echo "streams,rss_mib,hwm_mib,idle_rss_mib,kib_per_stream,concurrent,other_pct_max" >"$STREAMS_CSV"
    for n in "${counts[@]}"; do
      col() { awk -v k="$n" -v c="$1" '$1 == k {print $c}' "$TMP/c.runs"; }
      awk -v n="$n" -v open="$(col 2 | median)" -v hwm="$(col 3 | median)" -v idle="$(col 4 | median)" \
        -v other="$(col 5 | sort -n | tail -n1)" -v conc="$(col 6 | median)" 'BEGIN {
          printf "%d,%.1f,%.1f,%.1f,%.2f,%d,%d\n", n, open / 1024, hwm / 1024, idle / 1024, (open - idle) / n, conc, other }' \
        >>"$STREAMS_CSV"
    done
  fi
  echo "(c) $STREAMS_CSV:"
  column -s, -t "$STREAMS_CSV" | sed 's/^/  /'
  plot "$STREAMS_CSV" "$OUT_DIR/streams_rss.png" --x streams --y rss_mib --label "VmRSS, all streams open" \
    --hline "128=issue 17 bar at 10 000: 128 MiB" --xlabel "streams held open at once" --ylabel "server RSS, MiB" \
    --title "Server memory against held streams"
fi
if [[ -s $TMP/fleetmock.log ]] && grep -qiE 'error|fatal|abort' "$TMP/fleetmock.log"; then
  echo "scaling: fleetmock log (warn and above):"
  tail -n 20 "$TMP/fleetmock.log"
fi
exit $STATUS
