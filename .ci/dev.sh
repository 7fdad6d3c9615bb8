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
#   bash .ci/dev.sh deps | build              just that step
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Dependencies, all from Debian 12's own archive: what a build needs, and
# what the tests and benches add (the Docker build stage installs only the first).
build_packages=(build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libuv1-dev
  libcurl4-openssl-dev)
test_packages=(valgrind wrk nginx-light curl ca-certificates prometheus python3 chromium clang
  libclang-rt-14-dev)

log() { printf '\033[1m[fleetmock]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; exit 1; fi
}

install_deps() { # install_deps [build]: only what a build needs
  local missing=() wanted=("${build_packages[@]}")
  [ "${1:-}" = build ] || wanted+=("${test_packages[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${1:-}" != build ]; then
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  local conf="$root/tests/conformance"
  if [ "${1:-}" != build ] && [ -f "$conf/package-lock.json" ]; then
    # npm ci only when the lockfile changed since the last install.
    if ! cmp -s "$conf/package-lock.json" "$conf/node_modules/.package-lock.json.installed" 2>/dev/null; then
      log "installing npm packages for the conformance tests (from the lockfile)"
      (cd "$conf" && npm ci --no-audit --no-fund --loglevel=error)
      cp "$conf/package-lock.json" "$conf/node_modules/.package-lock.json.installed"
    fi
  fi
}

build() { # build DIR [cmake args...]
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
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
  *)
    sed -n '2,13p' "$0"
    ;;
esac
