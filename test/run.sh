#!/usr/bin/env bash
# The whole test suite: installs the real servers it needs (Debian's Celery,
# redis-server, PostgreSQL, Chromium), runs every test with Bun, and ends with
# one line `N passed, N failed`. Exits non-zero on any failure or if no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."

bash test/support/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Integration tests start servers and workers: generous per-test time, so a
# slow, busy machine does not fail them. Speed is measured by `bun run bench`.
bun test --timeout 120000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
errors=$(grep -Eo '^ *[0-9]+ errors?$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$((failed + errors))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
