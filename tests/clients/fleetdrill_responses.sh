#!/usr/bin/env bash
# fleetdrill --api responses against the real server: every request goes to
# POST /v1/responses (as the server's own /metrics count them), agent chains
# of tool calls complete over function_call / function_call_output items,
# streamed interactive turns are read from typed events, and a 503 on
# Standard is escalated exactly as on chat.
#
# Starts $FLEETMOCK_BIN on port 0 with --timing instant at --time-scale 10
# (a 20 s drill takes 2 s of wall clock), scripts 3 Standard 503s
# (POST /admin/faults; no --scenario, so fleetdrill does not reset them away),
# runs $FLEETDRILL_BIN, and checks counts and outcomes only, never durations.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_fleetmock --time-scale 10 --timing instant

curl -sf -X POST "$url/admin/faults" \
  -d '{"match":{"tier":"standard"},"action":{"status":503},"count":3}' >/dev/null

"$FLEETDRILL_BIN" --url "$url" --api responses --duration 20 --users 6 --seed 3 \
  --mix interactive=30,agent=60,batch=10 --csv --no-progress >"$tmp/drill.csv"
cat "$tmp/drill.csv"
curl -sf "$url/metrics" >"$tmp/metrics"
grep '^fleetmock_requests_total' "$tmp/metrics" || true

# value COLUMN: the one run's cell, found by the header's names.
value() {
  awk -F, -v c="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    NR == 2 { if (!(c in col)) { print "no column " c > "/dev/stderr"; exit 2 } print $col[c] }' \
    "$tmp/drill.csv"
}
# served ROUTE [STATUS]: fleetmock_requests_total summed over the route's series.
served() {
  awk -v r="route=\"$1\"" -v s="${2:+status=\"$2\"}" '
    /^fleetmock_requests_total\{/ && index($0, r) && (s == "" || index($0, s)) { n += $NF }
    END { print n + 0 }' "$tmp/metrics"
}

if [ "$(value api)" = responses ]; then
  echo "ok   the report says the Responses API was drilled"
else
  fail "the report's api is \"$(value api)\""
fi
attempts=$(value attempts)
check "the drill sent requests" "$attempts >= 6"
check "the server answered every attempt on the responses route" "$(served responses) == $attempts"
check "nothing went to chat completions" "$(served chat/completions) == 0"
# Which clients meet the 3 scripted 503s depends on arrival order (an
# escalated client leaves Standard), so the count is checked for agreement.
check "the drill saw the 503s the server sent, and at least one" \
  "$(served responses 503) >= 1 && $(served responses 503) == $(value status_503)"
check "a 503 opened a Priority window" "$(value escalations) >= 1"
check "Priority served the escalated requests" "$(value priority_share_pct) > 0"
check "agent chains ran" "$(value chains) >= 1"
check "every agent chain completed" "$(value chains_completed) == $(value chains)"
check "no chain broken by a reply of the wrong kind" "$(value chains_broken) == 0"
check ">= 2 tool-calling steps per completed chain" \
  "$(value tool_steps) >= 2 * $(value chains_completed)"
check "streamed interactive turns were served" \
  "$(value interactive_requests) >= 1 && $(value interactive_ok_pct) == 100"
check "every request succeeded (the policy retried every 503)" "$(value success_pct) == 100"
check "no other errors" "$(value errors) == 0"
check "no request was left unfinished" "$(value unfinished) == 0"

finish
