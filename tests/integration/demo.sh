#!/usr/bin/env bash
# The README's main command, run as a user would, for a bounded time: tools/demo must create the topics,
# publish the bundled dataset without a rejected row, show the figures flowing in readable form, and stop
# everything it started. Runs against the broker of HS_BOOTSTRAP_SERVERS (with-hs-broker provides one).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Every process the demo starts inherits this marker (and nothing else here has it), so the test can find
# leftovers of this run only.
marker="demo-test-$$-$RANDOM"
HS_DEMO_TEST_RUN=$marker "$root/tools/demo" --duration 4 >"$out" 2>&1 || { echo "FAIL: tools/demo exited non-zero"; cat "$out"; exit 1; }

expect() {
  grep -qF -- "$1" "$out" || { echo "FAIL: demo output lacks: $1"; cat "$out"; exit 1; }
  echo "ok: $1"
}
expect "exists   hs.indicators.v1"
expect "udredningsret-somatik.csv: 36 rows, 36 published, 0 rejected"
expect "ventetid-somatik.csv: 42 rows, 42 published, 0 rejected"
# Tabel 8, 2023Q2: Midtjylland 61 (provisional) — shown readably, key first.
grep -E '^udredningsret.somatik.compliance/region:1082/2023Q2 +indicator=udredningsret.somatik.compliance scope.kind=REGION scope.code=1082 period=2023Q2 value=61 unit=PERCENT provisional=true' "$out" >/dev/null ||
  { echo "FAIL: Midtjylland 2023Q2 not shown readably"; cat "$out"; exit 1; }
echo "ok: Tabel 8 Midtjylland 2023Q2 = 61 shown"
expect "stopping after 4 s"

# Nothing the demo started may outlive it.
sleep 0.5
left=$(grep -l "HS_DEMO_TEST_RUN=$marker" /proc/[0-9]*/environ 2>/dev/null || true)
if [ -n "$left" ]; then
  echo "FAIL: the demo left processes running:"
  for f in $left; do p=${f#/proc/}; p=${p%/environ}; tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; done
  exit 1
fi
echo "ok: nothing left running"
