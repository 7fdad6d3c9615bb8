# lib.sh — what the clients' shell tests share: a temporary directory, the
# real server started on a free port (--port 0, --port-file) and stopped by
# its PID at exit, and the check counter. Source it, then:
#
#   start_fleetmock --time-scale 10 --timing instant   # sets $url; server log in $tmp/server.log
#   check "DESCRIPTION" "AWK-CONDITION"                 # ok or FAIL, counted
#   fail "DESCRIPTION"                                  # a FAIL decided by the caller
#   finish                                              # exit 1 when any check failed
: "${FLEETMOCK_BIN:?set FLEETMOCK_BIN to the fleetmock binary}"
: "${FLEETDRILL_BIN:?set FLEETDRILL_BIN to the fleetdrill binary}"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

start_fleetmock() {
  "$FLEETMOCK_BIN" --port 0 --port-file "$tmp/port" --log-level warn "$@" 2>"$tmp/server.log" &
  pid=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
  [ -s "$tmp/port" ] || { echo "fleetmock did not start:"; cat "$tmp/server.log"; exit 1; }
  url="http://127.0.0.1:$(cat "$tmp/port")"
}

failures=0
fail() {
  echo "FAIL $1"
  failures=$((failures + 1))
}
check() {
  if awk "BEGIN { exit !($2) }"; then
    echo "ok   $1"
  else
    fail "$1 ($2)"
  fi
}
finish() {
  [ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
}
