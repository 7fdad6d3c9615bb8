#!/bin/sh
# fleetmock-entrypoint: the image's entry point. It runs fleetmock (the
# default), fleetmock with the options given (`docker run IMAGE --seed 7`), or
# any other command (`docker run IMAGE fleetdrill ...`), after two container
# conveniences:
#   - FLEETMOCK_ADMIN_TOKEN_FILE names a file holding the admin token (a compose
#     secret), so fleetmock, Prometheus and fleetdrill share one token that is
#     not in the environment `docker inspect` shows. It is exported as
#     FLEETMOCK_ADMIN_TOKEN, unless that is set already.
#   - a config mounted at /etc/fleetmock/config.json is used unless
#     FLEETMOCK_CONFIG names another.
# The server listens on 0.0.0.0 in the container, and without a token its
# admin API answers loopback peers only, that is nobody outside the container:
# so it is not started without one.
set -eu

if [ -z "${FLEETMOCK_ADMIN_TOKEN:-}" ] && [ -n "${FLEETMOCK_ADMIN_TOKEN_FILE:-}" ]; then
  if [ ! -r "$FLEETMOCK_ADMIN_TOKEN_FILE" ]; then
    echo "fleetmock-entrypoint: FLEETMOCK_ADMIN_TOKEN_FILE=$FLEETMOCK_ADMIN_TOKEN_FILE is not a readable file" >&2
    exit 2
  fi
  # Whitespace is dropped, as Prometheus does for its credentials_file.
  FLEETMOCK_ADMIN_TOKEN=$(tr -d ' \t\r\n' <"$FLEETMOCK_ADMIN_TOKEN_FILE")
  export FLEETMOCK_ADMIN_TOKEN
  # Read here: fleetmock itself would take FLEETMOCK_ADMIN_TOKEN_FILE as
  # --admin-token-file and refuse it beside FLEETMOCK_ADMIN_TOKEN.
  unset FLEETMOCK_ADMIN_TOKEN_FILE
fi
config=${FLEETMOCK_CONFIG_DEFAULT:-/etc/fleetmock/config.json}
if [ -z "${FLEETMOCK_CONFIG:-}" ] && [ -f "$config" ]; then
  FLEETMOCK_CONFIG=$config
  export FLEETMOCK_CONFIG
fi

if [ $# -eq 0 ]; then set -- fleetmock; fi
case "$1" in -*) set -- fleetmock "$@" ;; esac

if [ "$1" = fleetmock ] && [ -z "${FLEETMOCK_ADMIN_TOKEN:-}" ]; then
  serves=yes
  for arg in "$@"; do
    case "$arg" in
      --admin-token | --admin-token=?* | --admin-token-file | --admin-token-file=?*) serves=no ;; # a token on the command line
      --help | --version | --check-config | --check-config=* | --healthcheck | --healthcheck=*) serves=no ;;
    esac
  done
  if [ $serves = yes ]; then
    echo "fleetmock-entrypoint: no admin token. fleetmock listens on 0.0.0.0 here, so set" \
      "FLEETMOCK_ADMIN_TOKEN (or FLEETMOCK_ADMIN_TOKEN_FILE); /admin/* and /metrics then need" \
      "'Authorization: Bearer <token>'" >&2
    exit 2
  fi
fi
exec "$@"
