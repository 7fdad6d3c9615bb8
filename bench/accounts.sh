#!/usr/bin/env bash
# accounts.sh — the bounded account table under millions of distinct API keys
# (issue 12, defect 8): a load test with a key per simulated user must not
# grow the server without end.
#
# Starts fleetmock with --timing instant and its default server.max_accounts
# (50 000), then has keyload send REQUESTS (2 000 000) non-streaming chat
# completions over CONNS keep-alive connections, every one with an API key
# of its own, and read every answer. It samples the server's VmRSS once a
# second meanwhile, and then checks:
#
#   1. memory: VmHWM (peak) and VmRSS from /proc/PID/status under RSS_MAX_MIB
#      (200), and flat: no sample in the second half of the run more than
#      FLAT_MIB (16) above the one taken halfway;
#   2. listing: GET /admin/accounts?limit=100 answers within LIST_MS_MAX (50)
#      ms, the slowest of LIST_TRIES (5) timed with curl, on a full table;
#   3. exact totals: the 200s fleetmock_requests_total counts per tier equal
#      the 200s keyload saw on each (it sends half Standard, half Priority); fleetmock_accounts plus
#      fleetmock_accounts_evicted_total equal the keys sent; and the
#      /admin/accounts totals count every request, evicted accounts included.
#
# Builds nothing: uses build/fleetmock and build/keyload, or FLEETMOCK_BIN and
# KEYLOAD_BIN. Everything runs on 127.0.0.1, is stopped by PID, and lives in a
# temp dir removed at exit. keyload stops after REQUESTS answers, or after
# TIMEOUT_S (600) seconds as a failure.
#
# Environment: FLEETMOCK_BIN, KEYLOAD_BIN, REQUESTS (2000000), CONNS (64),
# RSS_MAX_MIB (200), FLAT_MIB (16), LIST_MS_MAX (50), LIST_TRIES (5),
# TIMEOUT_S (600), MAX_ACCOUNTS (unset: the config default), PIN (1|0).
# Exit status: 0 PASS, 1 FAIL, 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
KEYLOAD=${KEYLOAD_BIN:-$ROOT/build/keyload}
REQUESTS=${REQUESTS:-2000000}
CONNS=${CONNS:-64}
RSS_MAX_MIB=${RSS_MAX_MIB:-200}
FLAT_MIB=${FLAT_MIB:-16}
LIST_MS_MAX=${LIST_MS_MAX:-50}
LIST_TRIES=${LIST_TRIES:-5}
TIMEOUT_S=${TIMEOUT_S:-600}
PIN=${PIN:-1}

die() { echo "accounts: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
[[ -x $KEYLOAD ]] || die "no keyload binary at $KEYLOAD (build it, or set KEYLOAD_BIN)"
command -v curl >/dev/null || die "curl not found"

TMP=$(mktemp -d /tmp/fleetmock-accounts.XXXXXX)
FM_PID= SAMPLER_PID=
cleanup() {
  # Stop only what this script started, by PID.
  if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n $FM_PID ]]; then
    kill -TERM "$FM_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$FM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FM_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# The server on the last CPU, keyload on the others (see throughput.sh).
bench_pin

# Every key sends one request, so account limits never bite; lifting the
# pool slots keeps 503s out of a test about the account table.
SERVER_CFG=
[[ -z ${MAX_ACCOUNTS:-} ]] || SERVER_CFG="\"server\": {\"max_accounts\": $MAX_ACCOUNTS},"
cat >"$TMP/fleetmock.json" <<EOF
{$SERVER_CFG "pool_defaults": {"slots": 100000}}
EOF
"${SRV_PIN[@]}" "$BIN" --timing instant --port 0 --port-file "$TMP/fm.port" \
  --log-level error --config "$TMP/fleetmock.json" 2>"$TMP/fm.log" &
FM_PID=$!
for _ in $(seq 100); do [[ -s $TMP/fm.port ]] && break; kill -0 $FM_PID 2>/dev/null || break; sleep 0.1; done
[[ -s $TMP/fm.port ]] || { cat "$TMP/fm.log" >&2; die "fleetmock did not write its port file"; }
PORT=$(head -n1 "$TMP/fm.port")
URL="http://127.0.0.1:$PORT"

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
RSS0=$(kib "$FM_PID" VmRSS)

echo "accounts: fleetmock $("$BIN" --version 2>/dev/null | head -n1 || true) on $URL (pid $FM_PID)," \
  "max_accounts $(curl -sS "$URL/admin/accounts?limit=1" | sed -n 's/.*"max_accounts":\([0-9]*\).*/\1/p')"
echo "accounts: $REQUESTS requests, each with its own key, over $CONNS connections; RSS at start $(mib "$RSS0") MiB"
bench_quiet_check "$TMP"

# VmRSS once a second while the load runs.
(while kill -0 "$FM_PID" 2>/dev/null; do kib "$FM_PID" VmRSS; sleep 1; done) >"$TMP/rss" 2>/dev/null &
SAMPLER_PID=$!

bench_snapshot >"$TMP/snap.0"
T0=$(date +%s.%N)
# Half Standard, half Priority, so the per-tier totals are checked on two tiers.
BODY='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"ignore_eos":true'
"${GEN_PIN[@]}" "$KEYLOAD" --port "$PORT" --requests "$REQUESTS" --conns "$CONNS" \
  --timeout-s "$TIMEOUT_S" --body "$BODY}" --body "$BODY,\"service_tier\":\"priority\"}" \
  >"$TMP/keyload.out" 2>&1 || true
T1=$(date +%s.%N)
bench_snapshot >"$TMP/snap.1"
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
cat "$TMP/keyload.out"
kill -0 "$FM_PID" 2>/dev/null || die "fleetmock died during the run: $(tail -n5 "$TMP/fm.log")"
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.0f", b - a}')
OTHER=$(bench_foreign_pct "$TMP/snap.0" "$TMP/snap.1" "$SECS")
echo "accounts: the run took $SECS s; other processes used ${OTHER}% of a core meanwhile (lib.sh)"
((OTHER <= ${OTHER_MAX:-10})) ||
  echo "WARNING: other processes used ${OTHER}% of a core during the run; rerun on an idle machine"

field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$TMP/keyload.out" | head -n1; }
SENT=$(field sent)
OK=$(sed -n 's/.* 200=\([0-9]*\).*/\1/p' "$TMP/keyload.out" | head -n1)
OK=${OK:-0}
ERRORS=$(field errors)
RPS=$(field rps)
OK_STANDARD=$(sed -n 's/^keyload: ok_by_body 0=\([0-9]*\) 1=\([0-9]*\).*/\1/p' "$TMP/keyload.out")
OK_PRIORITY=$(sed -n 's/^keyload: ok_by_body 0=\([0-9]*\) 1=\([0-9]*\).*/\2/p' "$TMP/keyload.out")
[[ -n $SENT ]] || die "keyload printed no summary"

FAILS=()
# ---- 1. memory -----------------------------------------------------------
HWM=$(kib "$FM_PID" VmHWM)
RSS=$(kib "$FM_PID" VmRSS)
N_SAMPLES=$(wc -l <"$TMP/rss")
HALF=$(( (N_SAMPLES + 1) / 2 ))
RSS_HALF=$(sed -n "${HALF}p" "$TMP/rss")
RSS_HALF_MAX=$(tail -n +"$HALF" "$TMP/rss" | sort -n | tail -n1)
echo "memory: start $(mib "$RSS0") MiB; halfway $(mib "${RSS_HALF:-0}") MiB; highest after that" \
  "$(mib "${RSS_HALF_MAX:-0}") MiB; VmHWM $(mib "$HWM") MiB, VmRSS $(mib "$RSS") MiB after (bar $RSS_MAX_MIB MiB)"
echo "memory: VmRSS samples (MiB, one a second): $(awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1024}' "$TMP/rss")"
((HWM <= RSS_MAX_MIB * 1024)) || FAILS+=("VmHWM $(mib "$HWM") MiB over $RSS_MAX_MIB MiB")
((RSS <= RSS_MAX_MIB * 1024)) || FAILS+=("VmRSS $(mib "$RSS") MiB over $RSS_MAX_MIB MiB")
# Flat: in the second half of the run (long after the table filled) RSS may
# not climb more than FLAT_MIB over where it stood halfway.
if ((N_SAMPLES >= 6)); then
  ((RSS_HALF_MAX - RSS_HALF <= FLAT_MIB * 1024)) ||
    FAILS+=("RSS grew $(mib $((RSS_HALF_MAX - RSS_HALF))) MiB in the second half of the run (flat: under $FLAT_MIB MiB)")
else
  echo "memory: the run took under 6 s, too short to judge whether RSS stays flat"
fi

# ---- 2. listing ------------------------------------------------------------
: >"$TMP/list.ms"
for _ in $(seq "$LIST_TRIES"); do
  curl -sS -o "$TMP/list.json" -w '%{time_total}\n' "$URL/admin/accounts?limit=100" |
    awk '{printf "%.2f\n", $1 * 1000}' >>"$TMP/list.ms"
done
LIST_MAX=$(sort -g "$TMP/list.ms" | tail -n1)
LIST_MED=$(sort -g "$TMP/list.ms" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
LISTED=$(grep -o '"key_id":"k-' "$TMP/list.json" | wc -l)
ID=$(sed -n 's/.*"next_after":"\(k-[0-9a-f]*\)".*/\1/p' "$TMP/list.json")
ONE_MS=$(curl -sS -o /dev/null -w '%{time_total}' "$URL/admin/accounts/$ID" | awk '{printf "%.2f", $1 * 1000}')
echo "listing: GET /admin/accounts?limit=100 ($LISTED accounts, $(stat -c %s "$TMP/list.json") bytes):" \
  "median $LIST_MED ms, slowest $LIST_MAX ms of $LIST_TRIES (bar $LIST_MS_MAX ms); GET /admin/accounts/$ID $ONE_MS ms"
awk -v a="$LIST_MAX" -v b="$LIST_MS_MAX" 'BEGIN {exit !(a <= b)}' ||
  FAILS+=("GET /admin/accounts?limit=100 took $LIST_MAX ms (bar $LIST_MS_MAX ms)")
((LISTED == 100)) || FAILS+=("the page listed $LISTED accounts, not 100")

# ---- 3. exact totals ---------------------------------------------------------
curl -sS "$URL/metrics" >"$TMP/metrics"
metric() { # name [labels as printed, e.g. tier="standard",status="200"]: the sum of the matching samples
  awk -v n="$1" -v f="${2:-}" '!/^#/ { name = $1; sub(/\{.*/, "", name)
    if (name == n && (f == "" || index($1, f))) s += $2 } END {printf "%.0f", s}' "$TMP/metrics"
}
TIER_LINE=
SERVED=0
for tier in standard priority background fast; do
  v=$(metric fleetmock_requests_total "tier=\"$tier\",status=\"200\"")
  TIER_LINE+=" $tier=$v"
  SERVED=$((SERVED + v))
  printf -v "M_${tier^^}" '%s' "$v"
done
HELD=$(metric fleetmock_accounts)
EVICTED=$(metric fleetmock_accounts_evicted_total)
# The first "total" after "totals" is their own (totals.evicted comes later).
TOTAL_REQS=$(sed 's/.*"totals"://' "$TMP/list.json" | grep -o '"total":{"requests":[0-9]*' | head -n1 | tr -dc 0-9)
echo "totals: keyload saw $OK × 200 of $SENT sent ($OK_STANDARD Standard, $OK_PRIORITY Priority;" \
  "$ERRORS errors, $RPS req/s); /metrics 200s by tier:$TIER_LINE (sum $SERVED)"
echo "totals: fleetmock_accounts $HELD + fleetmock_accounts_evicted_total $EVICTED = $((HELD + EVICTED))" \
  "(keys sent $SENT); /admin/accounts totals.total.requests $TOTAL_REQS"
((ERRORS == 0 && SENT == REQUESTS)) || FAILS+=("keyload: $SENT of $REQUESTS sent, $ERRORS errors")
((SERVED == OK)) || FAILS+=("/metrics counts $SERVED 200s by tier, keyload saw $OK")
((M_STANDARD == OK_STANDARD && M_PRIORITY == OK_PRIORITY && M_BACKGROUND == 0 && M_FAST == 0)) ||
  FAILS+=("/metrics 200s by tier$TIER_LINE; keyload saw standard=$OK_STANDARD priority=$OK_PRIORITY")
((OK == REQUESTS)) || FAILS+=("only $OK of $REQUESTS answered 200")
((HELD + EVICTED == SENT)) || FAILS+=("accounts held + evicted = $((HELD + EVICTED)), keys sent $SENT")
[[ ${TOTAL_REQS:-x} == "$SENT" ]] || FAILS+=("/admin/accounts totals count ${TOTAL_REQS:-nothing}, keys sent $SENT")

VERDICT=PASS
((${#FAILS[@]} == 0)) || VERDICT=FAIL
for f in "${FAILS[@]}"; do echo "accounts: FAIL: $f"; done
echo "RESULT accounts requests=$SENT ok=$OK rps=$RPS rss_start_kib=$RSS0 hwm_kib=$HWM rss_kib=$RSS" \
  "list_ms_max=$LIST_MAX list_ms_median=$LIST_MED held=$HELD evicted=$EVICTED served_200=$SERVED verdict=$VERDICT"
[[ $VERDICT == PASS ]]
