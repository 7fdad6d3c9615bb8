#!/usr/bin/env bash
# fleetdrill --compare on launch-spike (issue 7, done when 2): the pattern
# completes its interactive work and agent chains, naive retry does not, and
# the pattern costs less than sending everything on Priority. Agent chains
# are tool-calling chains (issue 13): none may break on a reply of the wrong
# kind, and each completed one made at least two tool-calling steps.
#
# Starts $FLEETMOCK_BIN at --time-scale 10 (the 150 s scenario plays in 15 s
# real per strategy, about a minute in all; it was 5, and the longest test of
# the suite at 126 s), runs $FLEETDRILL_BIN against
# it, and checks the CSV. It also checks the HTML report is whole, and, when
# a Chromium is installed, that it renders headless without console errors.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start_fleetmock --time-scale 10 --timing realistic

"$FLEETDRILL_BIN" --url "$url" --scenario launch-spike --compare --seed 7 --csv --no-progress \
  --html "$tmp/report.html" >"$tmp/compare.csv"
cat "$tmp/compare.csv"

# value STRATEGY COLUMN: one cell of the CSV, found by the header's names.
value() {
  awk -F, -v s="$1" -v c="$2" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == s { if (!(c in col)) { print "no column " c > "/dev/stderr"; exit 2 } print $col[c] }' \
    "$tmp/compare.csv"
}

esc_i=$(value escalate interactive_ok_pct)
esc_c=$(value escalate chains_completed_pct)
naive_i=$(value naive interactive_ok_pct)
naive_c=$(value naive chains_completed_pct)
esc_cost=$(value escalate cost_vs_standard)
prio_cost=$(value always-priority cost_vs_standard)

check "escalate completes >= 99 % of interactive requests" "$esc_i >= 99"
check "escalate completes >= 99 % of agent chains" "$esc_c >= 99"
check "naive is well below on interactive requests" "$naive_i <= 80 && $naive_i <= $esc_i - 15"
check "naive is well below on agent chains" "$naive_c <= 80 && $naive_c <= $esc_c - 15"
check "escalate costs less than always-priority" "$esc_cost < $prio_cost"
check "escalate escalated" "$(value escalate escalations) >= 1"
check "escalate paid more than all-Standard (it did use Priority)" "$esc_cost > 1.0"
check "naive and backoff never use Priority" \
  "$(value naive priority_share_pct) == 0 && $(value backoff priority_share_pct) == 0"
check "always-priority sends everything on Priority" "$(value always-priority priority_share_pct) == 100"
check "the drill saw the spike (naive got 503s)" "$(value naive status_503) > 50"
# Agent chains are real tool-calling chains (issue 13): every step but the
# last must come back with tool calls, the last with text. A chain of N >= 3
# steps makes N-1 >= 2 tool steps, each with at least one call.
for s in naive backoff escalate always-priority; do
  check "$s: no chain broken by a reply of the wrong kind" "$(value "$s" chains_broken) == 0"
  check "$s: >= 2 tool-calling steps per completed chain" \
    "$(value "$s" tool_steps) >= 2 * $(value "$s" chains_completed)"
  check "$s: at least as many tool calls as tool steps" \
    "$(value "$s" tool_calls) >= $(value "$s" tool_steps)"
done
check "escalate completed chains with tool calls" \
  "$(value escalate chains_completed) >= 20 && $(value escalate tool_calls) >= 2 * $(value escalate chains_completed)"
check "no request was left unfinished" \
  "$(value naive unfinished) + $(value backoff unfinished) + $(value escalate unfinished) + $(value always-priority unfinished) == 0"

# The HTML report: whole, one section and three charts per strategy.
html="$tmp/report.html"
check "the HTML report has 12 charts" "$(grep -c '<svg' "$html") == 12"
check "the HTML report is complete" "$(grep -c '</html>' "$html") == 1"
if command -v python3 >/dev/null; then
  if python3 - "$html" <<'EOF'; then
import re, sys, xml.dom.minidom
for svg in re.findall(r"<svg.*?</svg>", open(sys.argv[1]).read(), re.S):
    xml.dom.minidom.parseString(svg)
EOF
    echo "ok   every SVG chart is well-formed XML"
  else
    fail "an SVG chart is not well-formed"
  fi
fi
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chromium" ]; then
  # The flags keep Chromium off the (closed) network and out of the user's profile.
  timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$tmp/chromium-profile" --enable-logging=stderr --v=0 \
    --dump-dom "file://$html" >"$tmp/dom.html" 2>"$tmp/chromium.log" || true
  if grep -q '<svg' "$tmp/dom.html" && ! grep -qiE 'Uncaught|CONSOLE\(.*error' "$tmp/chromium.log"; then
    echo "ok   headless Chromium renders the report without errors"
  else
    fail "headless Chromium: see below"
    cat "$tmp/chromium.log"
  fi
else
  fail "no chromium to render the report (apt-get install chromium; .ci/dev.sh test installs it)"
fi

finish
