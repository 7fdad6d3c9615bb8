# lib.sh — helpers shared by throughput.sh and streams.sh (sourced, not run).
#
# The benches run the server and the load generator on the same machine, so
# any other busy process (a test suite, a build) lowers the numbers. These
# helpers measure how much CPU processes *not started by the bench* used while
# it ran, so a disturbed run says so instead of passing for a slow server.
# Kernel threads (ksoftirqd, kworker) are not counted: on loopback most of
# their time is the bench's own network traffic. OTHER_MAX (% of one core,
# default 10) is the most such CPU a run may see before it is called disturbed.

# Prints "pid ppid cpu-ticks" for every process.
bench_snapshot() {
  local f line
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null && echo "$line" # a process may end meanwhile
  done | awk '{ c = $0; sub(/^.*\) /, "", c); split(c, f, " "); print $1, f[2], f[12] + f[13] }'
}

# Percent of one core used between two snapshots by processes that are
# neither descendants of this script nor kernel threads.
bench_foreign_pct() { # before-file after-file seconds
  awk -v me=$$ -v secs="$3" -v hz="$(getconf CLK_TCK 2>/dev/null || echo 100)" '
    FNR == NR { before[$1] = $3; next }
    { ppid[$1] = $2; ticks[$1] = $3 }
    END {
      sum = 0
      for (p in ticks) {
        q = p; skip = (p == 2)
        for (d = 0; d < 64 && q > 1 && !skip; d++) {
          if (q == me || q == 2) skip = 1
          q = ppid[q]
        }
        if (!skip) sum += ticks[p] - (p in before ? before[p] : 0)
      }
      printf "%d", (secs > 0 ? sum * 100 / (hz * secs) : 0)
    }' "$1" "$2"
}

# Warns when other processes are busy right now (sampled over one second).
bench_quiet_check() { # tmp-dir
  bench_snapshot >"$1/quiet.0"
  sleep 1
  bench_snapshot >"$1/quiet.1"
  local pct
  pct=$(bench_foreign_pct "$1/quiet.0" "$1/quiet.1" 1)
  ((pct <= ${OTHER_MAX:-10})) ||
    echo "WARNING: other processes already use ${pct}% of a core; results will be pessimistic"
}

# bench_pin: the server on the last CPU, the load generator on the others, so
# each side keeps its cores for the whole run (throughput.sh says why). Sets
# SRV_PIN and GEN_PIN to taskset prefixes, or leaves them empty with PIN=0,
# without taskset, or on one CPU.
bench_pin() {
  local ncpu
  ncpu=$(nproc 2>/dev/null || echo 1)
  SRV_PIN=() GEN_PIN=()
  if [[ ${PIN:-1} == 1 ]] && command -v taskset >/dev/null && ((ncpu >= 2)); then
    SRV_PIN=(taskset -c $((ncpu - 1)))
    GEN_PIN=(taskset -c 0-$((ncpu - 2)))
  fi
}

# bench_stop PID: stops a process this script started, by its PID: TERM,
# up to 5 s, then KILL.
bench_stop() {
  [[ -n ${1:-} ]] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# bench_fleetmock BIN DIR [SERVER_JSON]: starts BIN on a free loopback port
# (--timing instant, pinned with SRV_PIN) with every account and fleet limit
# lifted, so a bench measures answers, not 429s and 503s; SERVER_JSON, when
# given, is the config's "server" object. Sets FM_PID and BASE
# (http://127.0.0.1:PORT); returns 1 with the server's log on stderr when it
# does not start. Call bench_pin first.
bench_fleetmock() {
  local bin=$1 dir=$2 server=${3:-}
  cat >"$dir/fleetmock.json" <<EOF2
{${server:+\"server\": $server,}
 "pool_defaults": {"slots": 100000},
 "accounts": {"limits": {"requests_per_min": {"start": 1e9, "ceiling": 1e9},
   "prompt_tps": {"start": 1e9, "ceiling": 1e9}, "uncached_prompt_tps": {"start": 1e9, "ceiling": 1e9},
   "generated_tps": {"start": 1e9, "ceiling": 1e9}}}}
EOF2
  "${SRV_PIN[@]}" "$bin" --timing instant --port 0 --port-file "$dir/fm.port" \
    --log-level error --config "$dir/fleetmock.json" 2>"$dir/fm.log" &
  FM_PID=$!
  for _ in $(seq 100); do [[ -s $dir/fm.port ]] && break; kill -0 "$FM_PID" 2>/dev/null || break; sleep 0.1; done
  [[ -s $dir/fm.port ]] || { cat "$dir/fm.log" >&2; return 1; }
  BASE="http://127.0.0.1:$(head -n1 "$dir/fm.port")"
}
