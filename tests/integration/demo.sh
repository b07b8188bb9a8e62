#!/usr/bin/env bash
# The README's main command, run as a user would, for a bounded time: tools/demo must create the topics,
# publish the bundled dataset without a rejected row, show the figures flowing in readable form, and stop
# everything it started. Runs against the broker of HS_BOOTSTRAP_SERVERS (with-hs-broker provides one).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Every process the demo starts inherits this marker (and nothing else here has it), so the test can find
# leftovers of this run only. Not an HS_* variable: services refuse unknown HS_* settings at start-up.
marker="demo-test-$$-$RANDOM"
DEMO_TEST_RUN=$marker "$root/tools/demo" --duration 4 >"$out" 2>&1 || { echo "FAIL: tools/demo exited non-zero"; cat "$out"; exit 1; }

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
# The akutplan targets (deploy/rules/akutplan.json): Midtjylland 61 % misses the national udredningsret target
# of 79 % in 2023Q2 and fires — shown in the stream and in the closing list of alerts.
expect "applying the akutplan targets"
expect "as Prometheus metrics (services/exporter) — try: curl -s 127.0.0.1:"
grep -E '^[0-9a-f]{16} +fingerprint=[0-9a-f]{16} state=FIRING .*rule=akutplan.udredningsret.somatik.national-baseline .*scope.code=1082 .*period=2023Q2 value=61 threshold=79' "$out" >/dev/null ||
  { echo "FAIL: the Midtjylland udredningsret alert does not fire in the stream"; cat "$out"; exit 1; }
grep -E '^ +FIRING +akutplan.udredningsret.somatik.national-baseline +Midtjylland +2023Q2: 61 against 79$' "$out" >/dev/null ||
  { echo "FAIL: the Midtjylland udredningsret alert is not listed as firing"; cat "$out"; exit 1; }
echo "ok: akutplan udredningsret Midtjylland 2023Q2 61 < 79 FIRING"
# The regional variation (deploy/rules/variation.json): Tabel 10 2023Q2 in the table — best Nordjylland 87,
# worst Sjælland 66, variation 21 — and its spread alert firing at 21 against 15.
grep -E '^ +kraeft.standardforloeb.compliance +2023Q2 +77 +Nordjylland 87 +Sjælland 66 +21 \(provisional\)$' "$out" >/dev/null ||
  { echo "FAIL: the variation table lacks Tabel 10 2023Q2"; cat "$out"; exit 1; }
grep -E '^ +FIRING +variation.kraeft.spread +Hele landet +2023Q2: 21 against 15$' "$out" >/dev/null ||
  { echo "FAIL: the kraeft spread alert is not listed as firing"; cat "$out"; exit 1; }
echo "ok: variation Tabel 10 2023Q2 Nordjylland 87 / Sjælland 66 / 21 shown, spread alert FIRING"
# With Debian's Alertmanager installed (tools/setup), the demo starts one and the alertmanager sink feeds it:
# the Midtjylland alert is active there, as amtool shows it.
if command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; then
  expect "fed by the alertmanager sink"
  grep -E '^ +akutplan.udredningsret.somatik.national-baseline .*Midtjylland misses the target +active' "$out" >/dev/null ||
    { echo "FAIL: amtool does not show the Midtjylland udredningsret alert active in the demo's Alertmanager"; cat "$out"; exit 1; }
  echo "ok: the demo's Alertmanager holds the Midtjylland alert (amtool alert query)"
fi
expect "stopping after 4 s"

# Nothing the demo started may outlive it.
nothing_left() {
  sleep 0.5
  local left f p
  left=$(grep -l "DEMO_TEST_RUN=$1" /proc/[0-9]*/environ 2>/dev/null || true)
  if [ -n "$left" ]; then
    echo "FAIL: the demo left processes running:"
    for f in $left; do p=${f#/proc/}; p=${p%/environ}; tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; done
    exit 1
  fi
  echo "ok: nothing left running"
}
nothing_left "$marker"

# As the README runs it, with a broker of its own: it stops its readers and services before that broker, so
# the stop is quiet (stopping the broker first left every reader logging refused connections).
marker="demo-test-$$-$RANDOM"
env -u HS_BOOTSTRAP_SERVERS DEMO_TEST_RUN=$marker "$root/tools/demo" --duration 4 >"$out" 2>&1 ||
  { echo "FAIL: tools/demo with its own broker exited non-zero"; cat "$out"; exit 1; }
# With Debian's Alertmanager installed (tools/setup), the demo starts one and the alertmanager sink feeds it:
# the Midtjylland alert is active there, as amtool shows it.
if command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; then
  expect "fed by the alertmanager sink"
  grep -E '^ +akutplan.udredningsret.somatik.national-baseline .*Midtjylland misses the target +active' "$out" >/dev/null ||
    { echo "FAIL: amtool does not show the Midtjylland udredningsret alert active in the demo's Alertmanager"; cat "$out"; exit 1; }
  echo "ok: the demo's Alertmanager holds the Midtjylland alert (amtool alert query)"
fi
expect "stopping after 4 s"
if grep -F '"level":"error"' "$out"; then
  echo "FAIL: errors logged by the demo with its own broker (above)"
  exit 1
fi
echo "ok: with its own broker, no errors logged"
nothing_left "$marker"
