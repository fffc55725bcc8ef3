#!/usr/bin/env bash
# Runs every test suite against the built programs in $HIVE_OUT and prints one total line:
#   N passed, N failed[, N skipped]
# A suite that does not build or crashes counts as one failure, never as silence.
set -uo pipefail
cd "$(dirname "$0")/.."
export HIVE_OUT=${HIVE_OUT:-$PWD/out}
export HIVE_IMAGE_DIR=${HIVE_IMAGE_DIR:-${HIVE_IMAGE_CACHE:-/var/cache/hive/images}}
export HIVE_AGENT_BUNDLE=${HIVE_AGENT_BUNDLE:-$HIVE_OUT/agent-bundle}
results=$(mktemp -d /tmp/hive-test-results.XXXXXX)
trap 'rm -rf "$results"' EXIT

passed=0 failed=0 skipped=0
suites=(${HIVE_TEST_SUITES:-$(ls -d tests/*.Tests | sort)})
for suite in "${suites[@]}"; do
  name=$(basename "$suite")
  echo "==> test: $name"
  log="$results/$name.log"
  # Shown: failures with their message (the lines after "Error Message:", which say what was
  # expected and what came), the first frames of their stack, build errors and the totals.
  dotnet test "$suite" -c Release --nologo -v q --logger "console;verbosity=normal" 2>&1 | tee "$log" \
    | awk '/^[[:space:]]*Error Message:/ { msg = 6 }
           msg > 0 { print; msg--; next }
           /^[[:space:]]*(Failed|Skipped) [A-Za-z_]|error|Total tests|Passed!|Failed!/ { print }
           /^[[:space:]]+at / && frames++ < 3 { print }
           /^[[:space:]]*(Passed|Failed|Skipped) [A-Za-z_]/ { frames = 0 }' || true
  if ! grep -qE '^Total tests: [0-9]+' "$log"; then
    echo "!!  $name: no test summary (build failure or crash) — counted as 1 failure"
    tail -20 "$log"
    failed=$((failed + 1))
    continue
  fi
  count() { { grep -E "^\s*$1: [0-9]+\s*$" "$log" || echo "x: 0"; } | tail -1 | sed -E 's/.*: ([0-9]+).*/\1/'; }
  p=$(count Passed) f=$(count Failed) s=$(count Skipped)
  echo "    $name: $p passed, $f failed, $s skipped"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done

leftovers=$(ip netns list 2>/dev/null | grep -c '^hive-' || true)
if ((leftovers > 0)); then
  echo "!!  $leftovers hive-* network namespace(s) left behind by the tests"
fi
links=$(ip -o link show 2>/dev/null | grep -cE '^[0-9]+: hv[0-9a-f]{4}[0-9]+@' || true)
chains=$( { iptables -w 5 -S; iptables -w 5 -t nat -S; } 2>/dev/null | grep -c -- '-N HIVE-' || true)
if ((links > 0 || chains > 0)); then
  echo "!!  $links sandbox veth link(s) and $chains HIVE-* iptables chain(s) left behind by the tests"
fi

summary="$passed passed, $failed failed"
((skipped > 0)) && summary+=", $skipped skipped"
mkdir -p "$HIVE_OUT" && echo "$summary" > "$HIVE_OUT/test-summary.txt"
echo "$summary"
((failed == 0))
