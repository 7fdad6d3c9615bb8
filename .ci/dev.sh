#!/usr/bin/env bash
# fleetmock's one entry point for people and CI: installs what is missing,
# builds, then runs the server or the tests. The Dockerfile's build stage
# calls this same script, so CI proves the recipe.
#
#   bash .ci/dev.sh run [fleetmock options]   install, build, start on the default config
#   bash .ci/dev.sh test                      install, build, run the whole suite (ctest)
#   bash .ci/dev.sh test-sanitize             the suite again, built with clang's ASan+UBSan
#   bash .ci/dev.sh test-valgrind             the integration tests with the server under valgrind
#                                             (all but the time-scaled scenario and drill runs,
#                                             whose timing valgrind's slowdown would distort)
#   bash .ci/dev.sh test-tsan                 the multi-loop (--workers) tests under ThreadSanitizer
#   bash .ci/dev.sh fuzz [SECONDS]            every libFuzzer harness in tests/fuzz for SECONDS
#                                             each (default 60), two at a time, built with clang
#                                             into build-fuzz; fails on any crash, leak or timeout
#   bash .ci/dev.sh deps | build              just that step
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Dependencies, all from Debian 12's own archive: what a build needs, and
# what the tests and benches add (the Docker build stage installs only the first).
# libjs-chart.js: Chart.js, embedded in the binary for the dashboard (/ui).
build_packages=(build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libuv1-dev
  libcurl4-openssl-dev libjs-chart.js)
test_packages=(valgrind wrk nginx-light curl ca-certificates prometheus python3 chromium clang
  libclang-rt-14-dev)
# The fuzzers need clang and its runtime libraries (libFuzzer, the sanitizers).
fuzz_packages=(clang libclang-rt-14-dev)

log() { printf '\033[1m[fleetmock]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; exit 1; fi
}

install_deps() { # install_deps [build|fuzz]: only what a build (or the fuzz build) needs
  local missing=() wanted=("${build_packages[@]}")
  # (ifs, not a case: tests/docker/dockerfile.test.mjs finds the commands by their "name)")
  if [ "${1:-}" = fuzz ]; then
    wanted+=("${fuzz_packages[@]}")
  elif [ "${1:-}" != build ]; then
    wanted+=("${test_packages[@]}")
  fi
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ -z "${1:-}" ]; then
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  if [ -z "${1:-}" ]; then
    npm_install_locked tests/conformance
    # promptfoo's install scripts would fetch a browser build and GPU
    # libraries from outside the npm registry; its eval needs neither.
    npm_install_locked tests/promptfoo --ignore-scripts
    # puppeteer-core drives Debian's chromium (test_packages); it downloads no browser.
    npm_install_locked tests/browser
  fi
}

npm_install_locked() { # npm_install_locked DIR [npm ci flags...]: npm ci in DIR from its lockfile, only when it changed
  local dir="$root/$1" name=$1
  shift
  [ -f "$dir/package-lock.json" ] || return 0
  cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed" 2>/dev/null && return 0
  log "installing npm packages for $name (from the lockfile)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error "$@")
  cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"
}

build() { # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

# ---- fuzzing (docs/fuzzing.md) ----------------------------------------------
fuzzers=(chat completions messages responses embeddings admin config scenario fault_header http1)
fuzz_dir="$root/build-fuzz"
fuzz_out="$fuzz_dir/fuzz"

fuzz_progress() { # fuzz_progress LOG: "N execs, corpus C"; libFuzzer's last status line
  local line execs corp
  line=$(grep -a -E '^#[0-9]+' "$1" 2>/dev/null | tail -n 1 || true)
  execs=${line%%[[:space:]]*}
  corp=$(sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$line")
  echo "${execs#\#} execs, corpus ${corp:-?}"
}

fuzz_report() { # fuzz_report NAME EXIT: says how a harness ended; 0 when it was clean
  local name=$1 rc=$2 log="$fuzz_out/logs/$1.log" found=()
  local a
  for a in "$fuzz_out/crashes/$name"/*; do
    case "${a##*/}" in crash-* | leak-* | timeout-* | oom-*) found+=("$a") ;; esac
  done
  if [ "$rc" = 0 ] && [ ${#found[@]} = 0 ]; then
    log "fuzz_$name: ok, $(fuzz_progress "$log")"
    return 0
  fi
  log "fuzz_$name: FAILED (exit $rc), $(fuzz_progress "$log"); what it reported:"
  grep -a -m 1 -A 24 -E '==ERROR|ERROR: libFuzzer|promise broken|runtime error' "$log" | sed 's/^/    /' >&2 || true
  for a in "${found[@]}"; do
    log "fuzz_$name: input $a"
    log "fuzz_$name: reproduce with: $fuzz_dir/fuzz_$name $a"
  done
  [ ${#found[@]} -gt 0 ] || log "fuzz_$name: no input was saved; the whole log is $log"
  return 1
}

fuzz_all() { # fuzz_all SECONDS: builds, then runs every harness SECONDS, two at a time
  local secs=$1 name rc last=$SECONDS failed=() queue=("${fuzzers[@]}")
  local -A pid=() began=()
  log "building the fuzzers into build-fuzz (clang, -fsanitize=fuzzer,address,undefined)"
  cmake -S "$root" -B "$fuzz_dir" -DCMAKE_C_COMPILER=clang -DFLEETMOCK_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$fuzz_dir" -j "$jobs" --target fuzzers >/dev/null
  rm -rf "$fuzz_out/logs" "$fuzz_out/crashes"
  mkdir -p "$fuzz_out/logs"
  while [ ${#queue[@]} -gt 0 ] || [ ${#pid[@]} -gt 0 ]; do
    while [ ${#pid[@]} -lt 2 ] && [ ${#queue[@]} -gt 0 ]; do
      name=${queue[0]}
      queue=("${queue[@]:1}")
      # The working corpus (build-fuzz/fuzz/corpus) grows from run to run;
      # the committed seeds are read, never written.
      mkdir -p "$fuzz_out/corpus/$name" "$fuzz_out/crashes/$name"
      timeout -k 10 $((secs + 120)) "$fuzz_dir/fuzz_$name" -max_total_time="$secs" -timeout=10 \
        -use_value_profile=1 \
        -rss_limit_mb=2048 -dict="$root/tests/fuzz/fleetmock.dict" -print_final_stats=1 \
        -artifact_prefix="$fuzz_out/crashes/$name/" \
        "$fuzz_out/corpus/$name" "$root/tests/fuzz/corpus/$name" >"$fuzz_out/logs/$name.log" 2>&1 &
      pid[$name]=$!
      began[$name]=$SECONDS
      log "fuzz_$name: running for ${secs}s (log: $fuzz_out/logs/$name.log)"
    done
    sleep 1
    for name in "${!pid[@]}"; do
      kill -0 "${pid[$name]}" 2>/dev/null && continue
      rc=0
      wait "${pid[$name]}" || rc=$?
      unset "pid[$name]"
      fuzz_report "$name" "$rc" || failed+=("$name")
    done
    if [ $((SECONDS - last)) -ge 15 ] && [ ${#pid[@]} -gt 0 ]; then
      for name in "${!pid[@]}"; do
        log "fuzz_$name: $((SECONDS - began[$name]))s, $(fuzz_progress "$fuzz_out/logs/$name.log")"
      done
      last=$SECONDS
    fi
  done
  if [ ${#failed[@]} -gt 0 ]; then
    log "fuzzing FAILED: ${failed[*]} (docs/fuzzing.md: reproducing a crash)"
    return 1
  fi
  log "fuzzing passed: ${#fuzzers[@]} harnesses, ${secs}s each"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  deps) install_deps ;;
  build) install_deps build; build "$root/build" ;;
  run)
    install_deps build
    build "$root/build"
    log "starting fleetmock (Ctrl-C to stop)"
    exec "$root/build/fleetmock" "$@"
    ;;
  test)
    install_deps
    build "$root/build"
    cd "$root/build" && ctest --output-on-failure -j "$jobs" --timeout 600 "$@"
    ;;
  test-sanitize)
    install_deps
    # clang: its UBSan checks more than gcc's (pointer overflow, NULL + 0,
    # float-to-int overflow are all part of -fsanitize=undefined there).
    build "$root/build-sanitize-clang" -DCMAKE_C_COMPILER=clang -DFLEETMOCK_SANITIZE=ON \
      -DCMAKE_BUILD_TYPE=Debug
    cd "$root/build-sanitize-clang" &&
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$jobs" --timeout 900 "$@"
    ;;
  test-valgrind)
    install_deps
    build "$root/build"
    cd "$root/build" &&
      FLEETMOCK_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
        ctest --output-on-failure -L integration -E '^clients\.|chaos_scenarios|^workers3\.' -j "$jobs" \
        --timeout 900 "$@"
    ;;
  test-tsan)
    install_deps
    build "$root/build-tsan" -DFLEETMOCK_TSAN=ON
    cd "$root/build-tsan" &&
      TSAN_OPTIONS="exitcode=66 suppressions=$root/tests/tsan.supp" \
        ctest --output-on-failure -L workers -j "$jobs" --timeout 900 "$@"
    ;;
  fuzz)
    secs=${1:-60}
    case "$secs" in '' | *[!0-9]*) log "usage: bash .ci/dev.sh fuzz [SECONDS]"; exit 2 ;; esac
    install_deps fuzz
    fuzz_all "$secs"
    ;;
  *)
    sed -n '2,16p' "$0"
    ;;
esac
