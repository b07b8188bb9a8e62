#!/usr/bin/env bash
# The README's main command, run as a user would: tools/demo must create the topics, publish the bundled
# dataset without a rejected row, show the alerts firing and resolving and the latest status of every target
# in readable form, and stop everything it started. Run once for a bounded time against the broker of
# HS_BOOTSTRAP_SERVERS (with-hs-broker provides one), and once as the README runs it, with a broker of its own,
# stopped by Ctrl-C in a terminal: SIGINT to its whole process group, which must end quietly.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

failed() {
  echo "FAIL: $1"
  cat "$out"
  exit 1
}
expect() {
  grep -qF -- "$1" "$out" || failed "demo output lacks: $1"
  echo "ok: $1"
}
expect_line() { # REGEX WHAT: a line of the demo's output matches REGEX
  grep -E -- "$1" "$out" >/dev/null || failed "$2"
}
# With Debian's Alertmanager installed (tools/setup), the demo starts one and the alertmanager sink feeds it:
# the Midtjylland alert is active there, as amtool shows it. With Prometheus, it scrapes the services.
expect_monitoring() {
  if command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; then
    expect "fed by the alertmanager sink"
    expect_line '^ +akutplan.udredningsret.somatik.national-baseline .*Midtjylland misses the target +active' \
      "amtool does not show the Midtjylland udredningsret alert active in the demo's Alertmanager"
    echo "ok: the demo's Alertmanager holds the Midtjylland alert (amtool alert query)"
  fi
  if command -v prometheus >/dev/null; then
    expect_line '==> Prometheus at http://127\.0\.0\.1:[0-9]+, scraping .*targets' "the demo does not say where Prometheus is"
    expect_line '^ +up\{job="hs-targets", +instance="127\.0\.0\.1:[0-9]+"\} 1$' \
      "the demo's Prometheus does not scrape the targets service (up 1)"
    echo "ok: the demo's Prometheus scrapes the targets service"
  fi
}
# Nothing the demo started may outlive it: every process it starts inherits the marker (and nothing else here
# has it). Not an HS_* variable: services refuse unknown HS_* settings at start-up.
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

marker="demo-test-$$-$RANDOM"
DEMO_TEST_RUN=$marker "$root/tools/demo" --duration 4 >"$out" 2>&1 || failed "tools/demo exited non-zero"
expect "exists   hs.indicators.v1"
expect "udredningsret-somatik.csv: 36 rows, 36 published, 0 rejected"
expect "ventetid-somatik.csv: 42 rows, 42 published, 0 rejected"
# The akutplan targets (deploy/rules/akutplan.json): Tabel 8, Midtjylland misses the national udredningsret
# target of 79 % from 2022Q1 (67) on, so its alert fires as the live view shows it; its latest status is 2023Q2,
# 61 (provisional), MISSED; it is in the closing list of firing alerts.
expect "applying the akutplan targets"
expect "as Prometheus metrics (services/exporter) — try: curl -s 127.0.0.1:"
expect_line '^  [0-9]{2}:[0-9]{2}:[0-9]{2} FIRING +akutplan.udredningsret.somatik.national-baseline +Midtjylland +2022Q1: 67 against 79$' \
  "the Midtjylland udredningsret alert is not shown firing live"
expect_line '^ +MISSED +akutplan.udredningsret.somatik.national-baseline +Midtjylland +2023Q2: 61 against 79$' \
  "the latest status of the Midtjylland udredningsret target (2023Q2: 61, missed) is not shown"
expect_line '^ +FIRING +akutplan.udredningsret.somatik.national-baseline +Midtjylland +2023Q2: 61 against 79$' \
  "the Midtjylland udredningsret alert is not listed as firing"
echo "ok: akutplan udredningsret Midtjylland fires live (2022Q1 67 < 79), latest status 2023Q2 61 < 79 MISSED"
# Tabel 9: Nordjylland's waiting time misses its target in 2022Q4 and meets it in 2023Q2 (41 against 41): the
# alert fires, then resolves, one line each; no line for the quarters it stays firing.
expect_line '^  [0-9:]{8} FIRING +akutplan.ventetid.somatik +Nordjylland +2022Q4: 44 against 41$' \
  "the Nordjylland waiting-time alert is not shown firing live"
expect_line '^  [0-9:]{8} RESOLVED akutplan.ventetid.somatik +Nordjylland +2023Q2: 41 against 41$' \
  "the Nordjylland waiting-time alert is not shown resolving live"
[ "$(grep -cE '^  [0-9:]{8} [A-Z]+ +akutplan.ventetid.somatik +Nordjylland ' "$out")" = 2 ] ||
  failed "the Nordjylland waiting-time alert is shown other than once firing, once resolving"
expect_line '^ +MET +akutplan.ventetid.somatik +Nordjylland +2023Q2: 41 against 41$' \
  "the latest status of the Nordjylland waiting-time target (2023Q2 met) is not shown"
echo "ok: akutplan ventetid Nordjylland fires 2022Q4 and resolves 2023Q2, once each; MET now"
# The regional variation (deploy/rules/variation.json): Tabel 10 2023Q2 in the table — best Nordjylland 87,
# worst Sjælland 66, variation 21 — and its spread alert firing at 21 against 15.
expect_line '^ +kraeft.standardforloeb.compliance +2023Q2 +77 +Nordjylland 87 +Sjælland 66 +21 \(provisional\)$' \
  "the variation table lacks Tabel 10 2023Q2"
expect_line '^ +FIRING +variation.kraeft.spread +Hele landet +2023Q2: 21 against 15$' \
  "the kraeft spread alert is not listed as firing"
echo "ok: variation Tabel 10 2023Q2 Nordjylland 87 / Sjælland 66 / 21 shown, spread alert FIRING"
expect_monitoring
expect "stopping after 4 s"
nothing_left "$marker"

# As the README runs it, with a broker of its own, until Ctrl-C: the terminal sends SIGINT to the demo's
# whole process group at once. It must close (the firing alerts, Alertmanager) and stop everything quietly:
# no reader may outlive its broker and log refused connections.
marker="demo-test-$$-$RANDOM"
# In a process group of its own (its id is the group's), with SIGINT as a terminal leaves it: a background job
# of this script would start with it ignored.
env -u HS_BOOTSTRAP_SERVERS DEMO_TEST_RUN=$marker python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.setsid()
os.execv(sys.argv[1], sys.argv[1:])' "$root/tools/demo" >"$out" 2>&1 &
demo=$!
for _ in $(seq 1 600); do
  grep -qF 'latest status per target' "$out" && break
  kill -0 "$demo" 2>/dev/null || break
  sleep 0.1
done
grep -qF 'latest status per target' "$out" || { kill -TERM -- "-$demo" 2>/dev/null; failed "the live view did not start"; }
kill -INT -- "-$demo"
code=0
wait "$demo" || code=$?
[ "$code" = 0 ] || failed "tools/demo exited $code on Ctrl-C"
expect "alerts now (hs.alerts.v1, the latest state of each)"
expect_monitoring
expect "==> stopping"
if grep -E '^\{|"level":"(error|warn)"|Traceback' "$out"; then
  failed "the demo did not stop quietly on Ctrl-C (above)"
fi
echo "ok: Ctrl-C to the demo's process group: it closes and stops quietly"
nothing_left "$marker"
