#!/usr/bin/env bash
# ctest's clients.node_vitest: installs this example's packages from its
# lockfile when it changed (the marker is the one .ci/dev.sh uses), then runs
# Vitest once. npm ci takes 4-8 s here, from the npm registry.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if ! cmp -s package-lock.json node_modules/.package-lock.json.installed 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock.json.installed
fi
exec node node_modules/vitest/vitest.mjs run "$@"
