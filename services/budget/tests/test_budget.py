#!/usr/bin/env python3
"""The budget service end to end through hs-broker: the chart of deploy/rules/budget.json applied to
hs.rules.v1, the Danish Regions' expected accounts 2023 (docs/domain.md §10.9, tools/demo-data) published with
`hsctl publish hs.budget.v1 --csv`, a printed operating result that does not add up and a line outside the
chart; the final hs.budget-status.v1 and hs.alerts.v1 tables of the running service must equal, data field for
data field, what `hsctl calc budget --rules deploy/rules/budget.json` computes offline over the same lines
(`hsctl tail hs.budget.v1 --from-beginning`), and what it computes over them in reverse order (order
independence). On the way: the operating result 46.2 / 34.7 mio. with its variance +11.5 mio., the INFO alert
of the misprinted total; a revision of one leaf adds exactly the records of the statuses it changes (the leaf
and the totals above it, in both kinds); the line outside the chart goes to hs.dlq.v1; SIGTERM exits 0. Against
real Kafka (HS_BROKER_KIND=kafka) the service is also stopped and restarted before the revision: it rebuilds
without emitting, and the revision still adds exactly the statuses it changes.

usage: test_budget.py BUDGET_BINARY HSCTL SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

BUDGET, HSCTL, SOURCE = sys.argv[1:4]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
REAL_KAFKA = os.environ.get("HS_BROKER_KIND") == "kafka"
RUN = f"{os.getpid()}"
RULES = os.path.join(SOURCE, "deploy", "rules", "budget.json")
CSV = os.path.join(SOURCE, "tools", "demo-data", "budget-danske-regioner-2023.csv")
OUTPUTS = ("hs.budget-status.v1", "hs.alerts.v1")
UNIT = "danske-regioner"
work = tempfile.mkdtemp(prefix="hs-budget-test-")


def hsctl(*args):
    """hsctl against the test's broker, to its end (whatever its exit status)."""
    return subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], capture_output=True, text=True, timeout=300)


def run_ok(*args):
    """hsctl's standard output; the test fails when it fails."""
    return hstest.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], timeout=300)


def line_event(line, year, kind, ore, unit=UNIT):
    return {"specversion": "1.0", "id": "", "source": "/test_budget", "type": "healthsignals.v1.BudgetLine",
            "data": {"unit": unit, "line": line, "year": year, "kind": kind, "amountOre": str(ore)}}


def publish_events(events):
    path = os.path.join(work, f"lines-{time.monotonic_ns()}.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in events)
    run_ok("publish", "hs.budget.v1", "--ndjson", path)


def records(topic):
    return [line for line in run_ok("tail", topic, "--from-beginning").splitlines() if line.strip()]


def service_tables():
    """The service's output tables; alerts of other services left out."""
    return {topic: hstest.latest_table(records(topic), lambda key, data: data is None or
                                       data.get("service", "budget") == "budget") for topic in OUTPUTS}


def offline_tables(reverse=False):
    """What hsctl calc computes over every line on hs.budget.v1 (in log order, or reversed)."""
    lines = run_ok("tail", "hs.budget.v1", "--from-beginning").splitlines()
    if reverse:
        lines.reverse()
    proc = subprocess.run([HSCTL, "calc", "budget", "--rules", RULES], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0, 1):  # 1: some input lines rejected (the line outside the chart)
        fail(f"hsctl calc budget: exit {proc.returncode}: {proc.stderr[-2000:]}")
    tables = {topic: {} for topic in OUTPUTS}
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        topic = "hs.alerts.v1" if event["type"] == "healthsignals.v1.Alert" else "hs.budget-status.v1"
        tables[topic][event["subject"]] = event["data"]
    return tables


def compare(what):
    want = offline_tables()
    got = hstest.wait_until_equal(service_tables, want)
    diff = hstest.table_differences(got, want)
    if diff:
        fail(f"{what}: service and hsctl calc differ in {len(diff)} keys:\n  " + "\n  ".join(diff[:10]))
    return got


run_ok("topics", "create")
run_ok("rules", "apply", RULES)
service = hstest.Service(BUDGET, "budget", f"hs-budget-test-{RUN}", BOOTSTRAP, work, RUN)
service.wait_ready()

# The CSV layout: Danish and plain decimals read to the øre, bad rows reported by line and not published.
layout = os.path.join(work, "layout.csv")
with open(layout, "w", encoding="utf-8") as f:
    f.write('unit,line,year,kind,amount_dkk\nx,Kontingent,2024,BUDGET,"-152.987.743,19"\nx,Løn,2024,BUDGET,25.85\n'
            "x,Løn,2024,FORECAST,1\nx,Løn,20x4,BUDGET,1\nx,Løn,2024,BUDGET,1e6\n")
proc = hsctl("publish", "hs.budget.v1", "--csv", layout, "--dry-run")
reasons = ("layout.csv:4: kind: 'FORECAST' is not", "layout.csv:5: year: '20x4' is not a year",
           "layout.csv:6: amount_dkk: amount \"1e6\" is not a DKK amount", "5 rows, 2 valid")
if proc.returncode != 1 or not all(r in proc.stderr for r in reasons):
    fail(f"hsctl publish --csv of budget lines: exit {proc.returncode}: {proc.stderr}")
else:
    ok("hsctl publish hs.budget.v1 --csv: Danish and plain decimals read, 3 bad rows reported by line")

run_ok("publish", "hs.budget.v1", "--csv", CSV)
# The expected operating result printed 100 000 kr. off (a finding, INFO alert); a line the chart has no place
# for (-> hs.dlq.v1).
publish_events([line_event("Driftsresultat", 2023, "EXPECTED_ACCOUNTS", 3480000000),
                line_event("Husleje", 2023, "BUDGET", 100000)])

got = compare("after the CSV")
statuses = got["hs.budget-status.v1"]
ok(f"service == hsctl calc budget ({len(statuses)} statuses, {len(got['hs.alerts.v1'])} alerts)")
ours = [k for k in statuses if k.startswith(UNIT + "/")]
if len(ours) != 40:  # 13 leaves and 7 totals, budget and expected
    fail(f"{len(ours)} statuses of {UNIT}, expected 40")
b = statuses.get(f"{UNIT}/Driftsresultat/2023/BUDGET", {})
e = statuses.get(f"{UNIT}/Driftsresultat/2023/EXPECTED_ACCOUNTS", {})
if (b.get("amountOre"), e.get("amountOre"), b.get("varianceExpectedOre")) != ("4620000000", "3470000000",
                                                                              "1150000000"):
    fail(f"operating result: budget {json.dumps(b)}, expected {json.dumps(e)}")
else:
    ok("operating result 46.200.000 / 34.700.000 DKK, variance +11.500.000 (better than budget)")
r = statuses.get(f"{UNIT}/Resultat inkl. projektbevillinger/2023/BUDGET", {})
if (r.get("amountOre"), r.get("varianceExpectedOre")) != ("4220000000", "2040000000"):
    fail(f"result incl. project grants: {json.dumps(r)}")
if (e.get("printedOre"), e.get("printedDifferenceOre"), e.get("printedMismatch")) != ("3480000000", "10000000",
                                                                                     True):
    fail(f"the misprinted operating result: {json.dumps(e)}")
info = [a for a in got["hs.alerts.v1"].values() if a["rule"] == "budget.danske-regioner.chart"]
if len(info) != 1 or info[0]["state"] != "FIRING" or info[0]["severity"] != "INFO":
    fail(f"the printed-total alert: {json.dumps(info)}")
else:
    ok("printed 34.800.000 vs computed 34.700.000: printed-total-mismatch, INFO alert FIRING")

reverse = offline_tables(reverse=True)
if hstest.table_differences({"hs.budget-status.v1": statuses}, {"hs.budget-status.v1":
                                                                 reverse["hs.budget-status.v1"]}):
    fail("hsctl calc over the lines in reverse order gives other statuses than the service")
else:
    ok("the same statuses from the lines in reverse order")

# --- restart (real Kafka: the mock does not store offsets committed in a transaction) ---------------------
if REAL_KAFKA:
    service = hstest.restart_without_emitting(
        service,
        lambda: hstest.Service(BUDGET, "budget-restarted", f"hs-budget-test-{RUN}", BOOTSTRAP, work, RUN),
        lambda: {t: len(records(t)) for t in OUTPUTS})

# --- a revision of one leaf: exactly the statuses it changes ------------------------------------------------
before = len(records("hs.budget-status.v1"))
consumed = service.metric("hs_records_in_total", topic="hs.budget.v1") or 0
publish_events([line_event("Løn", 2023, "EXPECTED_ACCOUNTS", 19640100000)])
service.wait_processed("hs.budget.v1", consumed)
got = compare("after the revision")
after = len(records("hs.budget-status.v1"))
# Løn, staff total, operating result, result, result incl. project grants: each in both kinds (the budget's
# status carries the variance against the expected figure).
if after != before + 10:
    fail(f"the revision of Løn added {after - before} records to hs.budget-status.v1, want exactly 10")
else:
    ok("a revision of Løn (expected +1.000 DKK) added exactly the 10 statuses above it")

# --- bad input, metrics, stop ------------------------------------------------------------------------------
dead = [json.loads(line) for line in records("hs.dlq.v1")]
if not any(d.get("hsservice") == "budget" and d.get("hserrorcode") == "validation" and
           d.get("subject") == f"{UNIT}/Husleje/2023/BUDGET" for d in dead):
    fail(f"the line outside the chart is not in hs.dlq.v1: {[(d.get('subject'), d.get('hserrorcode')) for d in dead]}")
else:
    ok("a line with no place in the chart dead-lettered (validation)")
if service.metric("hs_budget_alerts_firing") != 1:
    fail(f"hs_budget_alerts_firing = {service.metric('hs_budget_alerts_firing')}, want 1")
code, took = service.stop()
if code != 0:
    fail(f"SIGTERM: exit {code} after {took:.1f} s")
finish("test_budget")
