#!/usr/bin/env bash
# throughput.sh — non-streaming throughput of fleetmock against yardsticks that
# answer the same POST with the same bytes, in the same run (issue 17).
#
# It starts fleetmock with --timing instant and the limits lifted, captures one
# real non-streaming chat completion from it (status line, headers and body),
# and runs the same wrk POST, alternating, ROUNDS times, against:
#
#  (b) mhdyard (bench/mhdyard.c): bare libmicrohttpd, one epoll thread, a
#      16 KiB connection pool, answering with fleetmock's captured headers and
#      body. What a mature C HTTP library does for these bytes on the wire when
#      nothing else runs (fleetmock's own library until it got its own HTTP
#      layer, server/http.c): the ratio to it is THE BAR (BAR 0.9, issue 17's
#      done-when 1).
#  (a) nginx `return 200 '<the same body>'` (default_type application/json) for
#      the same POST: the cheapest answer of a tuned C server; nginx writes its
#      own 5 headers instead of fleetmock's 21, so this ratio also holds the
#      cost of the bigger head. Printed, not a bar.
#  (s) nginx serving the body as a static file to a GET (sendfile, open file
#      cache; nginx's static handler answers POST with 405): the yardstick of
#      SPEC §8's original wording ("nginx serving an equal body", 0.7x) and of
#      every earlier result in docs/performance.md. It measures nginx's file
#      path (a header write plus a sendfile per answer), about half what nginx
#      does with `return`, so it flatters fleetmock; kept for continuity with
#      the earlier numbers (STATIC=0 skips it).
#
# The medians of each side are compared. Any non-2xx answer from fleetmock
# fails the run. Further fleetmock loads in every round (below): a tool call,
# plain text padded to the tool request's bytes, a json_schema answer (the
# same bytes), 100 reply rules, and the plain load with FEEDS dashboards
# watching. The request journal is on in all of them (the default config's
# 1 000 entries).
#
# Builds nothing: uses build/fleetmock and build/mhdyard, or $FLEETMOCK_BIN and
# $MHDYARD_BIN. Everything it starts runs on 127.0.0.1, is stopped by PID, and
# lives in a temp dir removed at exit.
#
# Environment: FLEETMOCK_BIN, MHDYARD_BIN, DURATION (s, 10), CONNS (64),
# THREADS (1), ROUNDS (3), WARMUP (s, 2), TOKENS (max_tokens of the request,
# 64), PIN (1|0), BAR (0.9: fleetmock over mhdyard), STATIC (1|0), TOOL_BAR
# (0.9: tool-call req/s over the req/s of plain text with the same prompt
# bytes, see below), NGINX_BIN (nginx), FEEDS (2: dashboards watching, see
# below), DASH_BAR (0.95), OTHER_MAX (10, % of a core; see lib.sh).
# Exit status: 0 PASS, 1 FAIL, 2 could not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
BIN=${FLEETMOCK_BIN:-$ROOT/build/fleetmock}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
TOKENS=${TOKENS:-64}
PIN=${PIN:-1}
BAR=${BAR:-0.9}
STATIC=${STATIC:-1}
MHDYARD_BIN=${MHDYARD_BIN:-$(dirname "$BIN")/mhdyard}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
ROUTE=/inference/v1/chat/completions

die() { echo "throughput: $*" >&2; exit 2; }
[[ -x $BIN ]] || die "no fleetmock binary at $BIN (build it, or set FLEETMOCK_BIN)"
[[ -x $MHDYARD_BIN ]] || die "no mhdyard binary at $MHDYARD_BIN (make mhdyard, or set MHDYARD_BIN)"
[[ -x $NGINX_BIN ]] || die "nginx not found (apt-get install nginx-light)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"

TMP=$(mktemp -d /tmp/fleetmock-throughput.XXXXXX)
FM_PID= NGX_PID= RULES_PID= MHD_PID= FEED_PIDS=()
cleanup() {
  # Stop only what this script started, by PID.
  stop_feeds
  if [[ -n $FM_PID ]]; then kill -TERM "$FM_PID" 2>/dev/null || true; fi
  if [[ -n $RULES_PID ]]; then kill -TERM "$RULES_PID" 2>/dev/null || true; fi
  if [[ -n $MHD_PID ]]; then kill -TERM "$MHD_PID" 2>/dev/null || true; fi
  if [[ -n $NGX_PID ]]; then kill -QUIT "$NGX_PID" 2>/dev/null || true; fi
  for pid in $FM_PID $NGX_PID $RULES_PID $MHD_PID; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
# FEEDS dashboards watching the plain fleetmock: curl reading its live feed
# (GET /admin/events, the 250 ms default, what the /ui page opens) to
# /dev/null, on the load generator's CPUs. The plain load runs once more with
# them open; the ratio with/without is what a watched server pays (bar
# DASH_BAR: within 5 %).
FEEDS=${FEEDS:-2}
start_feeds() {
  local i
  for i in $(seq "$FEEDS"); do
    "${GEN_PIN[@]}" curl -sS -N -o /dev/null "http://127.0.0.1:$FM_PORT/admin/events" &
    FEED_PIDS+=($!)
  done
}
stop_feeds() {
  local p
  for p in "${FEED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${FEED_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  FEED_PIDS=()
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# CPU pinning. fleetmock serves from one event loop and nginx here from one
# worker, so each server needs exactly one core. On a 2-core box, leaving the
# scheduler free lets wrk and the server land on the same core for part of a
# run, which adds noise that differs run to run. Pinning both servers to the
# same last CPU and wrk to the others gives each server the same dedicated
# core and wrk the rest, which makes the two numbers comparable. PIN=0 turns
# it off (and it is skipped on a 1-CPU machine).
bench_pin
WRK_PIN=("${GEN_PIN[@]}")

# ---- fleetmock --------------------------------------------------------------
# Lift every account and fleet limit that could turn this into a test of
# 429/503 answers: one bearer key sends tens of thousands of requests a second.
cat >"$TMP/fleetmock.json" <<'EOF'
{"pool_defaults": {"slots": 100000},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
EOF
"${SRV_PIN[@]}" "$BIN" --timing instant --port 0 --port-file "$TMP/fm.port" \
  --log-level error --config "$TMP/fleetmock.json" 2>"$TMP/fm.log" &
FM_PID=$!
for _ in $(seq 100); do [[ -s $TMP/fm.port ]] && break; kill -0 $FM_PID 2>/dev/null || break; sleep 0.1; done
[[ -s $TMP/fm.port ]] || { cat "$TMP/fm.log" >&2; die "fleetmock did not write its port file"; }
FM_PORT=$(head -n1 "$TMP/fm.port")

# A second fleetmock, the same config plus RULES (100) reply rules that never
# match the bench's requests: half on another model (a string compare each),
# half on the last user message (the body parsed once more, a substring
# search each), so the plain request pays for looking at every one of them.
RULES=${RULES:-100}
python3 - "$TMP/fleetmock.json" "$RULES" >"$TMP/rules.json" <<'PYEOF2'
import json, sys
cfg = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
cfg["replies"] = [
    {"match": {"model": "accounts/fireworks/models/glm-5p1"}, "reply": {"content": "x"}} if i % 2 == 0
    else {"match": {"last_user": "never said %d" % i}, "reply": {"content": "y"}}
    for i in range(n)]
print(json.dumps(cfg))
PYEOF2
"${SRV_PIN[@]}" "$BIN" --timing instant --port 0 --port-file "$TMP/rules.port" \
  --log-level error --config "$TMP/rules.json" 2>"$TMP/rules.log" &
RULES_PID=$!
for _ in $(seq 100); do [[ -s $TMP/rules.port ]] && break; kill -0 $RULES_PID 2>/dev/null || break; sleep 0.1; done
[[ -s $TMP/rules.port ]] || { cat "$TMP/rules.log" >&2; die "fleetmock with $RULES rules did not start"; }
RULES_URL="http://127.0.0.1:$(head -n1 "$TMP/rules.port")$ROUTE"
FM_URL="http://127.0.0.1:$FM_PORT$ROUTE"

REQ_BODY='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":'$TOKENS',"ignore_eos":true,"seed":7}'
mkdir -p "$TMP/www${ROUTE%/*}"
BODY_FILE="$TMP/www$ROUTE"
code=$(curl -sS -D "$TMP/fm.head" -o "$BODY_FILE" -w '%{http_code}' -X POST "$FM_URL" \
  -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' --data-binary "$REQ_BODY") ||
  die "curl to fleetmock failed"
[[ $code == 200 ]] || die "fleetmock answered $code: $(head -c 300 "$BODY_FILE")"
BODY_BYTES=$(stat -c %s "$BODY_FILE")

# The same request asking for a tool call of about the same size ($TOKENS tokens
# of arguments: 4 bytes a token), to show what the agent surface costs
# (docs/agents.md): its arguments are generated from a JSON Schema per request.
ARG_BYTES=$((TOKENS * 4 - 12))
TOOL_BODY='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"seed":7,"tool_choice":"required","tools":[{"type":"function","function":{"name":"note","parameters":{"type":"object","properties":{"text":{"type":"string","minLength":'$ARG_BYTES',"maxLength":'$ARG_BYTES'}},"required":["text"],"additionalProperties":false}}}]}'
code=$(curl -sS -o "$TMP/tool.body" -w '%{http_code}' -X POST "$FM_URL" \
  -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' --data-binary "$TOOL_BODY") ||
  die "fleetmock did not answer the tool request"
[[ $code == 200 ]] && grep -q '"finish_reason":"tool_calls"' "$TMP/tool.body" ||
  die "fleetmock answered the tool request $code: $(head -c 300 "$TMP/tool.body")"
TOOL_BYTES=$(stat -c %s "$TMP/tool.body")
# Plain text again, its prompt padded with words so the request has exactly
# the tool request's bytes: what a longer prompt costs (parsing, hashing the
# prompt for the cache) is paid by both, so the ratio of the tool call to this
# one is what the agent surface itself costs. The ratio to the short plain
# request is printed too.
PAD_BYTES=$((${#TOOL_BODY} - ${#REQ_BODY}))
PAD=$(printf 'the benchmark prompt goes on %.0s' $(seq $((PAD_BYTES / 30 + 1))))
PAD=${PAD:0:$PAD_BYTES}
LONG_BODY=${REQ_BODY/benchmark./benchmark.$PAD}
((${#LONG_BODY} == ${#TOOL_BODY})) || die "the padded request is ${#LONG_BODY} bytes, not ${#TOOL_BODY}"
code=$(curl -sS -o "$TMP/long.body" -w '%{http_code}' -X POST "$FM_URL" \
  -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' --data-binary "$LONG_BODY") ||
  die "fleetmock did not answer the padded request"
[[ $code == 200 ]] || die "fleetmock answered the padded request $code: $(head -c 300 "$TMP/long.body")"
# A JSON answer under the same schema (response_format json_schema): a
# structured-output call, its prompt padded to the same request bytes too.
SCHEMA_BODY='{"model":"accounts/fireworks/models/kimi-k2p6","messages":[{"role":"user","content":"Say hello to the benchmark."}],"seed":7,"response_format":{"type":"json_schema","json_schema":{"name":"note","schema":{"type":"object","properties":{"text":{"type":"string","minLength":'$ARG_BYTES',"maxLength":'$ARG_BYTES'}},"required":["text"],"additionalProperties":false}}}}'
SPAD_BYTES=$((${#TOOL_BODY} - ${#SCHEMA_BODY}))
((SPAD_BYTES >= 0)) || die "the json_schema request is longer than the tool request"
SCHEMA_BODY=${SCHEMA_BODY/benchmark./benchmark.${PAD:0:$SPAD_BYTES}}
code=$(curl -sS -o "$TMP/schema.body" -w '%{http_code}' -X POST "$FM_URL" \
  -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' --data-binary "$SCHEMA_BODY") ||
  die "fleetmock did not answer the json_schema request"
[[ $code == 200 ]] && grep -q '"finish_reason":"stop"' "$TMP/schema.body" ||
  die "fleetmock answered the json_schema request $code: $(head -c 300 "$TMP/schema.body")"
# A wrk script that POSTs the body given.
post_lua() { # post_lua FILE BODY
  printf '%s\n' 'wrk.method = "POST"' "wrk.body = '$2'" 'wrk.headers["Content-Type"] = "application/json"' \
    'wrk.headers["Authorization"] = "Bearer bench"' >"$1"
}
post_lua "$TMP/long.lua" "$LONG_BODY"
post_lua "$TMP/tool.lua" "$TOOL_BODY"
post_lua "$TMP/schema.lua" "$SCHEMA_BODY"

post_lua "$TMP/post.lua" "$REQ_BODY"

# ---- mhdyard (b) ------------------------------------------------------------
# Bare libmicrohttpd with the head and body fleetmock just sent (its Date,
# Content-Length and Connection libmicrohttpd writes itself).
"${SRV_PIN[@]}" "$MHDYARD_BIN" --headers "$TMP/fm.head" --body "$BODY_FILE" --port 0 \
  --port-file "$TMP/mhd.port" 2>"$TMP/mhd.log" &
MHD_PID=$!
for _ in $(seq 100); do [[ -s $TMP/mhd.port ]] && break; kill -0 $MHD_PID 2>/dev/null || break; sleep 0.1; done
[[ -s $TMP/mhd.port ]] || { cat "$TMP/mhd.log" >&2; die "mhdyard did not write its port file"; }
MHD_URL="http://127.0.0.1:$(head -n1 "$TMP/mhd.port")$ROUTE"
curl -sS -D "$TMP/mhd.head" -o "$TMP/mhd.body" -X POST "$MHD_URL" -H 'Authorization: Bearer bench' \
  -H 'Content-Type: application/json' --data-binary "$REQ_BODY" || die "curl to mhdyard failed"
cmp -s "$BODY_FILE" "$TMP/mhd.body" || die "mhdyard does not send the same body"
# The same header lines, in the same order (Date aside: it is the clock's).
cmp -s <(grep -iv '^date:' "$TMP/fm.head") <(grep -iv '^date:' "$TMP/mhd.head") ||
  die "mhdyard does not send fleetmock's head: $(diff <(grep -iv '^date:' "$TMP/fm.head") <(grep -iv '^date:' "$TMP/mhd.head") | head -5)"
FM_HEAD_BYTES=$(stat -c %s "$TMP/fm.head")

# ---- nginx (a) and (s) --------------------------------------------------------
# One server: a POST to the route is answered with `return 200` and the body
# inline (a), a GET with the body as a static file (s). nginx would read `$`
# as a variable and a quote or backslash as the end or an escape of the
# string, so a body with any of them cannot be inlined.
case $(cat "$BODY_FILE") in
*[\$\'\\]*) die "the body holds \$, ' or a backslash; nginx's return cannot carry it as is" ;;
esac
RETURN_BODY=$(cat "$BODY_FILE")
# A free port: ask the kernel for an ephemeral one via bash's /dev/tcp is not
# possible, so try random high ports until nginx binds one.
USER_LINE=
if [[ $(id -u) == 0 ]]; then USER_LINE="user $(id -un) $(id -gn);"; fi
start_nginx() {
  local port=$1
  cat >"$TMP/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  open_file_cache max=16 inactive=60s;
  client_body_temp_path $TMP/nginx-body;
  proxy_temp_path $TMP/nginx-proxy;
  fastcgi_temp_path $TMP/nginx-fastcgi;
  uwsgi_temp_path $TMP/nginx-uwsgi;
  scgi_temp_path $TMP/nginx-scgi;
  server {
    listen 127.0.0.1:$port;
    root $TMP/www;
    location / { }
    location = $ROUTE {
      if (\$request_method = POST) { return 200 '$RETURN_BODY'; }
    }
  }
}
EOF
  "${SRV_PIN[@]}" "$NGINX_BIN" -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" &
  NGX_PID=$!
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port$ROUTE" && return 0
    kill -0 $NGX_PID 2>/dev/null || break
    sleep 0.1
  done
  kill -QUIT $NGX_PID 2>/dev/null || true
  wait $NGX_PID 2>/dev/null || true
  NGX_PID=
  return 1
}
NGX_PORT=
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 12000))
  if start_nginx $p; then NGX_PORT=$p; break; fi
done
[[ -n $NGX_PORT ]] || { cat "$TMP/nginx-error.log" >&2 2>/dev/null; die "nginx did not start"; }
NGX_URL="http://127.0.0.1:$NGX_PORT$ROUTE"
curl -sS -o "$TMP/nginx.body" "$NGX_URL"
cmp -s "$BODY_FILE" "$TMP/nginx.body" || die "nginx does not serve the same body"
curl -sS -o "$TMP/nginx-return.body" -X POST "$NGX_URL" -H 'Authorization: Bearer bench' \
  -H 'Content-Type: application/json' --data-binary "$REQ_BODY" || die "curl POST to nginx failed"
cmp -s "$BODY_FILE" "$TMP/nginx-return.body" || die "nginx's return does not send the same body"


# ---- runs -------------------------------------------------------------------
WRK=(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency)
# Runs wrk against one server and writes, next to its output, the CPU (% of
# a core) that processes not started by this script used meanwhile.
# With the server's PID (not "-"), it also writes to out-file.cpu the server's
# CPU time (user + system) per request served, in µs: what the ratios below
# also use, because it holds when other work takes the CPUs and req/s does not.
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run_wrk() { # name out-file server-pid|- wrk-args...
  local name=$1 out=$2 pid=$3 t0=0
  shift 3
  bench_snapshot >"$TMP/snap.0"
  [[ $pid == - ]] || t0=$(cpu_ticks "$pid")
  timeout --foreground $((DURATION + 30)) "${WRK_PIN[@]}" "${WRK[@]}" "$@" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk against $name failed"; }
  if [[ $pid != - ]]; then
    awk -v a="$t0" -v b="$(cpu_ticks "$pid")" -v hz="$HZ" '/ requests in / {n = $1}
      END {printf "%.2f\n", (n > 0 ? (b - a) / hz / n * 1e6 : 0)}' "$out" >"$out.cpu"
  fi
  bench_snapshot >"$TMP/snap.1"
  bench_foreign_pct "$TMP/snap.0" "$TMP/snap.1" "$DURATION" >"$out.other"
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
pct() { awk -v p="$2%" '$1 == p {print $2}' "$1"; }
non2xx() { awk '/Non-2xx or 3xx responses:/ {print $NF}' "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "throughput: fleetmock $("$BIN" --version 2>/dev/null | head -n1 || true) on 127.0.0.1:$FM_PORT (pid $FM_PID)," \
  "mhdyard on 127.0.0.1:$(head -n1 "$TMP/mhd.port") (pid $MHD_PID)," \
  "nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$NGX_PORT (pid $NGX_PID)"
PIN_NOTE="no CPU pinning"
((${#SRV_PIN[@]} == 0)) || PIN_NOTE="servers pinned with '${SRV_PIN[*]}', wrk with '${WRK_PIN[*]}'"
echo "throughput: body $BODY_BYTES bytes, head $FM_HEAD_BYTES bytes; ${WRK[*]}; $ROUNDS rounds, alternating; $PIN_NOTE"
if ((WARMUP > 0)); then
  timeout --foreground $((WARMUP + 10)) "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$TMP/post.lua" "$FM_URL" >/dev/null 2>&1 || true
  timeout --foreground $((WARMUP + 10)) "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$TMP/post.lua" "$MHD_URL" >/dev/null 2>&1 || true
  timeout --foreground $((WARMUP + 10)) "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" -s "$TMP/post.lua" "$NGX_URL" >/dev/null 2>&1 || true
fi

bench_quiet_check "$TMP"
FAIL_NOTE=
for r in $(seq "$ROUNDS"); do
  run_wrk fleetmock "$TMP/fm.$r" "$FM_PID" -s "$TMP/post.lua" "$FM_URL"
  run_wrk mhdyard "$TMP/mhd.$r" "$MHD_PID" -s "$TMP/post.lua" "$MHD_URL"
  run_wrk "nginx return" "$TMP/ret.$r" - -s "$TMP/post.lua" "$NGX_URL"
  if ((STATIC)); then run_wrk "nginx static" "$TMP/ngx.$r" - "$NGX_URL"; fi
  run_wrk fleetmock "$TMP/tool.$r" "$FM_PID" -s "$TMP/tool.lua" "$FM_URL"
  run_wrk fleetmock "$TMP/long.$r" "$FM_PID" -s "$TMP/long.lua" "$FM_URL"
  run_wrk fleetmock "$TMP/schema.$r" "$FM_PID" -s "$TMP/schema.lua" "$FM_URL"
  run_wrk fleetmock "$TMP/rules.$r" "$RULES_PID" -s "$TMP/post.lua" "$RULES_URL"
  start_feeds
  run_wrk fleetmock "$TMP/feed.$r" "$FM_PID" -s "$TMP/post.lua" "$FM_URL"
  stop_feeds
  bad=$(non2xx "$TMP/tool.$r")
  [[ -z $bad ]] || FAIL_NOTE="fleetmock answered $bad non-2xx tool-call responses in round $r"
  bad=$(non2xx "$TMP/schema.$r")
  [[ -z $bad ]] || FAIL_NOTE="fleetmock answered $bad non-2xx json_schema responses in round $r"
  bad=$(non2xx "$TMP/long.$r")
  [[ -z $bad ]] || FAIL_NOTE="fleetmock answered $bad non-2xx padded plain-text responses in round $r"
  bad=$(non2xx "$TMP/fm.$r")
  [[ -z $bad ]] || FAIL_NOTE="fleetmock answered $bad non-2xx responses in round $r"
  printf 'round %d: fleetmock %7.0f req/s (p50 %s p99 %s)  mhdyard %7.0f req/s (p50 %s p99 %s)  other load %s%%/%s%%\n' \
    "$r" "$(rps "$TMP/fm.$r")" "$(pct "$TMP/fm.$r" 50)" "$(pct "$TMP/fm.$r" 99)" \
    "$(rps "$TMP/mhd.$r")" "$(pct "$TMP/mhd.$r" 50)" "$(pct "$TMP/mhd.$r" 99)" \
    "$(cat "$TMP/fm.$r.other")" "$(cat "$TMP/mhd.$r.other")"
  printf '         nginx return %7.0f req/s (p50 %s p99 %s)  other load %s%%' \
    "$(rps "$TMP/ret.$r")" "$(pct "$TMP/ret.$r" 50)" "$(pct "$TMP/ret.$r" 99)" "$(cat "$TMP/ret.$r.other")"
  if ((STATIC)); then
    printf '  nginx static file (GET) %7.0f req/s (p50 %s p99 %s)' \
      "$(rps "$TMP/ngx.$r")" "$(pct "$TMP/ngx.$r" 50)" "$(pct "$TMP/ngx.$r" 99)"
  fi
  echo
  printf '         fleetmock tool call %7.0f req/s (p50 %s p99 %s)  plain, same bytes %7.0f req/s (p50 %s p99 %s)\n' \
    "$(rps "$TMP/tool.$r")" "$(pct "$TMP/tool.$r" 50)" "$(pct "$TMP/tool.$r" 99)" \
    "$(rps "$TMP/long.$r")" "$(pct "$TMP/long.$r" 50)" "$(pct "$TMP/long.$r" 99)"
  printf '         fleetmock json_schema answer %7.0f req/s (p50 %s p99 %s)\n' \
    "$(rps "$TMP/schema.$r")" "$(pct "$TMP/schema.$r" 50)" "$(pct "$TMP/schema.$r" 99)"
  printf '         fleetmock with %d reply rules %7.0f req/s (p50 %s p99 %s)\n' "$RULES" \
    "$(rps "$TMP/rules.$r")" "$(pct "$TMP/rules.$r" 50)" "$(pct "$TMP/rules.$r" 99)"
  printf '         fleetmock with %d dashboards watching %7.0f req/s (p50 %s p99 %s)\n' "$FEEDS" \
    "$(rps "$TMP/feed.$r")" "$(pct "$TMP/feed.$r" 50)" "$(pct "$TMP/feed.$r" 99)"
  for f in "$TMP/fm.$r.other" "$TMP/mhd.$r.other" "$TMP/ret.$r.other"; do
    (($(cat "$f") <= ${OTHER_MAX:-10})) || DISTURBED="round $r"
  done
done
# "other load" is the CPU (in % of one core) that processes this script did not
# start used during the run (see lib.sh). Above OTHER_MAX (10) % of a core the
# round counts as disturbed.
[[ -z ${DISTURBED:-} ]] ||
  echo "WARNING: other work competed for the CPUs ($DISTURBED and maybe others); rerun on an idle machine"
kill -0 $FM_PID 2>/dev/null || die "fleetmock died during the run: $(tail -n5 "$TMP/fm.log")"

FM_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/fm.$r"; done | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
MHD_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/mhd.$r"; done | median)
RET_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/ret.$r"; done | median)
NGX_RPS=0
((STATIC)) && NGX_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/ngx.$r"; done | median)
RATIO=$(ratio "$FM_RPS" "$MHD_RPS")
RET_RATIO=$(ratio "$FM_RPS" "$RET_RPS")
STATIC_RATIO=$(ratio "$FM_RPS" "$NGX_RPS")
TOOL_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/tool.$r"; done | median)
LONG_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/long.$r"; done | median)
RULES_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/rules.$r"; done | median)
RULES_RATIO=$(awk -v a="$RULES_RPS" -v b="$FM_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
FEED_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/feed.$r"; done | median)
FEED_RATIO=$(awk -v a="$FEED_RPS" -v b="$FM_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
FEED_VERDICT=$(awk -v r="$FEED_RATIO" -v bar="${DASH_BAR:-0.95}" 'BEGIN {print (r >= bar ? "PASS" : "FAIL")}')
TOOL_RATIO=$(awk -v a="$TOOL_RPS" -v b="$LONG_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
TOOL_SHORT_RATIO=$(awk -v a="$TOOL_RPS" -v b="$FM_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
LONG_RATIO=$(awk -v a="$LONG_RPS" -v b="$FM_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
cpu() { for r in $(seq "$ROUNDS"); do cat "$TMP/$1.$r.cpu"; done | median; } # cpu LOAD: median µs a request
CPU_FM=$(cpu fm) CPU_MHD=$(cpu mhd) CPU_TOOL=$(cpu tool) CPU_LONG=$(cpu long) CPU_SCHEMA=$(cpu schema)
CPU_RATIO=$(ratio "$CPU_MHD" "$CPU_FM")
CPU_TOOL_RATIO=$(ratio "$CPU_LONG" "$CPU_TOOL")
CPU_SCHEMA_RATIO=$(ratio "$CPU_LONG" "$CPU_SCHEMA")
SCHEMA_RPS=$(for r in $(seq "$ROUNDS"); do rps "$TMP/schema.$r"; done | median)
SCHEMA_RATIO=$(awk -v a="$SCHEMA_RPS" -v b="$LONG_RPS" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
TOOL_VERDICT=$(awk -v r="$TOOL_RATIO" -v bar="${TOOL_BAR:-0.9}" 'BEGIN {print (r >= bar ? "PASS" : "FAIL")}')
VERDICT=$(awk -v r="$RATIO" -v bar="$BAR" 'BEGIN {print (r >= bar ? "PASS" : "FAIL")}')
[[ -z $FAIL_NOTE ]] || VERDICT=FAIL

printf 'fleetmock  POST %s  %.0f req/s (median of %d)\n' "$ROUTE" "$FM_RPS" "$ROUNDS"
printf 'mhdyard    POST %s  %.0f req/s (median; bare libmicrohttpd, fleetmock'"'"'s %d-byte head and %d-byte body)\n' \
  "$ROUTE" "$MHD_RPS" "$FM_HEAD_BYTES" "$BODY_BYTES"
printf 'nginx      POST %s  %.0f req/s (median; return 200 with the same body, nginx'"'"'s own head)\n' \
  "$ROUTE" "$RET_RPS"
if ((STATIC)); then
  printf 'nginx      GET  %s  %.0f req/s (median; the body as a static file, sendfile: SPEC §8'"'"'s original yardstick)\n' \
    "$ROUTE" "$NGX_RPS"
fi
printf 'ratio fleetmock/mhdyard      = %s (bar %s): %s\n' "$RATIO" "$BAR" "$VERDICT"
printf 'ratio fleetmock/nginx return = %s\n' "$RET_RATIO"
((STATIC)) && printf 'ratio fleetmock/nginx static = %s (SPEC §8 bar 0.7, for continuity with earlier results)\n' "$STATIC_RATIO"
printf 'fleetmock  POST %s  %.0f req/s with a tool call (%d-byte body, arguments from a schema)\n' \
  "$ROUTE" "$TOOL_RPS" "$TOOL_BYTES"
printf 'fleetmock  POST %s  %.0f req/s with plain text and the same %d request bytes (prompt padded)\n' \
  "$ROUTE" "$LONG_RPS" "${#LONG_BODY}"
printf 'ratio tool call/plain text, same request bytes = %s (bar %s): %s\n' "$TOOL_RATIO" "${TOOL_BAR:-0.9}" "$TOOL_VERDICT"
printf 'ratio tool call/plain text, short request     = %s (the %d-byte request against %d bytes; a plain request of\n' \
  "$TOOL_SHORT_RATIO" "${#TOOL_BODY}" "${#REQ_BODY}"
printf '                                                 the same bytes does %s of the short one)\n' "$LONG_RATIO"
printf 'ratio json_schema answer/plain text, same request bytes = %s\n' "$SCHEMA_RATIO"
printf 'ratio with %d reply rules that do not match/without = %s\n' "$RULES" "$RULES_RATIO"
printf 'ratio with %d dashboards watching (GET /admin/events)/without = %s (bar %s): %s\n' "$FEEDS" \
  "$FEED_RATIO" "${DASH_BAR:-0.95}" "$FEED_VERDICT"
printf 'server CPU a request (median): fleetmock %s µs, mhdyard %s µs; tool call %s, plain same bytes %s, json_schema %s µs\n' \
  "$CPU_FM" "$CPU_MHD" "$CPU_TOOL" "$CPU_LONG" "$CPU_SCHEMA"
printf 'ratio by CPU a request: mhdyard/fleetmock = %s, plain same bytes/tool call = %s, plain same bytes/json_schema = %s\n' \
  "$CPU_RATIO" "$CPU_TOOL_RATIO" "$CPU_SCHEMA_RATIO"
echo "   (req/s ratios above are the bars; these hold when other work shares the CPUs, as req/s does not)"
if [[ -n $FAIL_NOTE ]]; then
  echo "throughput: FAIL: $FAIL_NOTE; a request now gets:"
  curl -sS -i -X POST "$FM_URL" -H 'Authorization: Bearer bench' -H 'Content-Type: application/json' \
    --data-binary "$REQ_BODY" | head -c 600
  echo
fi
echo "RESULT throughput fleetmock_rps=$FM_RPS mhdyard_rps=$MHD_RPS nginx_return_rps=$RET_RPS nginx_static_rps=$NGX_RPS ratio=$RATIO return_ratio=$RET_RATIO static_ratio=$STATIC_RATIO body_bytes=$BODY_BYTES head_bytes=$FM_HEAD_BYTES tool_rps=$TOOL_RPS long_rps=$LONG_RPS tool_ratio=$TOOL_RATIO tool_short_ratio=$TOOL_SHORT_RATIO long_ratio=$LONG_RATIO rules_rps=$RULES_RPS rules_ratio=$RULES_RATIO feed_rps=$FEED_RPS feed_ratio=$FEED_RATIO feed_verdict=$FEED_VERDICT tool_verdict=$TOOL_VERDICT schema_rps=$SCHEMA_RPS schema_ratio=$SCHEMA_RATIO cpu_fm_us=$CPU_FM cpu_mhd_us=$CPU_MHD cpu_ratio=$CPU_RATIO cpu_tool_ratio=$CPU_TOOL_RATIO cpu_schema_ratio=$CPU_SCHEMA_RATIO verdict=$VERDICT"
[[ $VERDICT == PASS ]]
