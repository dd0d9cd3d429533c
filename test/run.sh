#!/usr/bin/env bash
# The whole test suite: installs the real servers it needs (Debian's Celery,
# redis-server, PostgreSQL, Chromium), runs every test with Bun, and ends with
# one line `N passed, N failed`. Exits non-zero on any failure or if no test ran.
#
# `bash test/run.sh file…` runs those files in one Bun process. With no
# arguments the suite runs in TEST_SHARDS Bun processes at once (default 2):
# most of a test's time is spent waiting for real servers and workers, not
# computing, and every test starts its own servers on free ports, so the
# shards share nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

bash test/support/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
export PATH="$PWD/node_modules/.bin:$PATH"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Integration tests start servers and workers: generous per-test time, so a
# slow, busy machine does not fail them. Speed is measured by `bun run bench`.
run_shard() { # log file, test files…
  local log=$1
  shift
  bun test --timeout 120000 "$@" >"$log" 2>&1
}

count() { # pattern, log: the number in bun's summary line, 0 if none
  grep -Eo "^ *[0-9]+ $1\$" "$2" | tail -1 | grep -Eo '[0-9]+' || echo 0
}

if [ "$#" -gt 0 ]; then
  bun test --timeout 120000 "$@" 2>&1 | tee "$dir/0.log"
  statuses=("${PIPESTATUS[0]}")
  logs=("$dir/0.log")
else
  shards=${TEST_SHARDS:-2}
  # The slow directories first, dealt out in turn, so each shard gets its share of them.
  mapfile -t files < <(for d in scenario browser integration unit; do find "./test/$d" -name '*.test.ts' -o -name '*.test.tsx' | sort; done)
  declare -a lists
  for i in "${!files[@]}"; do lists[$((i % shards))]+="${files[$i]} "; done
  pids=()
  logs=()
  for ((s = 0; s < shards; s++)); do
    # shellcheck disable=SC2086 # the list is file names without spaces
    run_shard "$dir/$s.log" ${lists[$s]} &
    pids+=("$!")
    logs+=("$dir/$s.log")
  done
  statuses=()
  for p in "${pids[@]}"; do
    wait "$p"
    statuses+=("$?")
  done
  for ((s = 0; s < shards; s++)); do
    echo "==== shard $((s + 1)) of $shards"
    cat "${logs[$s]}"
  done
fi

passed=0
failed=0
for i in "${!logs[@]}"; do
  p=$(count pass "${logs[$i]}")
  f=$(count fail "${logs[$i]}")
  e=$(grep -Eo '^ *[0-9]+ errors?$' "${logs[$i]}" | tail -1 | grep -Eo '[0-9]+' || echo 0)
  f=$((f + e))
  # Bun failed without saying how many: count it as one failure.
  if [ "${statuses[$i]}" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
done
echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
