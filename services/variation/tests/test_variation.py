#!/usr/bin/env python3
"""The variation service end to end through hs-broker: the rules of deploy/rules/variation.json applied to
hs.rules.v1, Tabels 8, 9, 10 and 1 of docs/domain.md §10 (tests/fixtures) published to hs.indicators.v1, plus an
indicator without a national figure but with volumes; the final hs.variation.v1 and hs.alerts.v1 tables of the
running service must equal, data field for data field, what `hsctl calc variation --rules
deploy/rules/variation.json` computes offline over the same facts (`hsctl tail hs.indicators.v1
--from-beginning`). On the way: Tabel 10's 2023Q2 (Nordjylland 87, Sjælland 66, variation 21) and its spread
alert firing; a revision of one region's value adds exactly one record to hs.variation.v1; a fact in another
unit than its period's goes to hs.dlq.v1; SIGTERM exits 0. Against real Kafka (HS_BROKER_KIND=kafka, where
other tests share the cluster and its indicator topic) the service is also stopped and restarted before the
revision: it rebuilds without emitting, and the revision still adds exactly one record.

usage: test_variation.py VARIATION_BINARY HSCTL SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

VARIATION, HSCTL, SOURCE = sys.argv[1:4]
BOOTSTRAP, RUN, work = hstest.environment("variation")
REAL_KAFKA = os.environ.get("HS_BROKER_KIND") == "kafka"
RULES = os.path.join(SOURCE, "deploy", "rules", "variation.json")
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
TABLES = ["kraeft-standardforloeb.csv", "udredningsret-somatik.csv", "udredning-somatik-forloebstid.csv",
          "ventetid-somatik.csv"]
OUTPUTS = ("hs.variation.v1", "hs.alerts.v1")


hsctl = hstest.hsctl_runner(HSCTL, BOOTSTRAP)


def run_ok(*args):
    proc = hsctl(*args)
    if proc.returncode != 0:
        fail(f"hsctl {' '.join(args)}: exit {proc.returncode}: {proc.stderr}")
    return proc


def fact(indicator, scope, period, value, unit, **extra):
    return hstest.indicator_fact(indicator, scope, period, value, unit, event_source="test_variation", **extra)


def records(topic):
    return [line for line in run_ok("tail", topic, "--from-beginning").stdout.splitlines() if line.strip()]


def service_tables():
    """The service's output tables; alerts of other services left out."""
    return {topic: hstest.latest_table(records(topic), lambda key, data: data is None or
                                       data.get("service", "variation") == "variation") for topic in OUTPUTS}


def offline_tables():
    """What hsctl calc computes over every fact on hs.indicators.v1."""
    facts = run_ok("tail", "hs.indicators.v1", "--from-beginning")
    proc = subprocess.run([HSCTL, "calc", "variation", "--rules", RULES], input=facts.stdout, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode not in (0, 1):  # 1: some input lines rejected (the fact in the wrong unit)
        fail(f"hsctl calc variation: exit {proc.returncode}: {proc.stderr[-2000:]}")
    tables = {topic: {} for topic in OUTPUTS}
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        topic = "hs.alerts.v1" if event["type"] == "healthsignals.v1.Alert" else "hs.variation.v1"
        tables[topic][event["subject"]] = event["data"]
    return tables


def alert_of(tables, rule, code):
    for data in tables["hs.alerts.v1"].values():
        if data["rule"] == rule and data["scope"]["code"] == code:
            return data
    return None


run_ok("topics", "create")
run_ok("rules", "apply", RULES)
service = hstest.Service(VARIATION, "variation", f"hs-variation-test-{RUN}", BOOTSTRAP, work, RUN)
service.wait_ready()

for name in TABLES:
    run_ok("publish", "hs.indicators.v1", "--csv", os.path.join(FIXTURES, name))
# No national figure, every region with its volume: the national value is the volume-weighted mean.
volumes = {"1081": 1000, "1082": 3000, "1083": 2500, "1084": 4000, "1085": 1500}
values = {"1081": 92, "1082": 67, "1083": 65, "1084": 82, "1085": 73}
hstest.publish_events(hsctl, work, [fact("test.weighted", code, "2022Q1", values[code], "PERCENT",
                                         volume=str(volumes[code])) for code in volumes])
# Another unit than the period's other facts: valid on its own, refused by the calculation (-> hs.dlq.v1).
hstest.publish_events(hsctl, work, [fact("kraeft.standardforloeb.compliance", "1081", "2023Q2", 30, "DAYS")])

want = offline_tables()
got = hstest.wait_until_equal(service_tables, want)
diff = hstest.table_differences(got, want)
if diff:
    fail(f"service and hsctl calc differ in {len(diff)} keys:\n  " + "\n  ".join(diff[:10]))
ok(f"service == hsctl calc variation ({len(want['hs.variation.v1'])} variations, "
   f"{len(want['hs.alerts.v1'])} alerts)")
INDICATORS = ("kraeft.standardforloeb.compliance", "udredningsret.somatik.compliance",
              "udredning.somatik.forloebstid", "ventetid.somatik.oplevet", "test.weighted")
ours = [k for k in want["hs.variation.v1"] if k.split("/")[0] in INDICATORS]
if len(ours) != 27:  # 7 quarters of Tabels 10 and 1, 6 of Tabels 8 and 9, test.weighted
    fail(f"{len(ours)} variations of the fixtures' indicators, expected 27")

v = got["hs.variation.v1"].get("kraeft.standardforloeb.compliance/2023Q2", {})
if (v.get("bestRegions"), v.get("bestValue"), v.get("worstRegions"), v.get("worstValue"), v.get("spread")) != \
        (["1081"], 87, ["1085"], 66, 21):
    fail(f"Tabel 10 2023Q2: {json.dumps(v)}")
else:
    ok("Tabel 10 2023Q2: best Nordjylland 87, worst Sjælland 66, variation 21")
w = got["hs.variation.v1"].get("test.weighted/2022Q1", {})
weighted = sum(values[c] * volumes[c] for c in volumes) / sum(volumes.values())
if w.get("nationalSource") != "NATIONAL_WEIGHTED" or abs(w.get("nationalValue", 0) - weighted) > 1e-9:
    fail(f"weighted national: {json.dumps(w)}, want {weighted}")
spread = alert_of(got, "variation.kraeft.spread", "DK")
if not spread or spread["state"] != "FIRING" or spread["value"] != 21 or spread["startsAt"] != "2023-07-01T00:00:00Z":
    fail(f"the kraeft spread alert: {json.dumps(spread)}")
else:
    ok("variation.kraeft.spread FIRING at 21 > 15 since the end of 2023Q2")
midt = alert_of(got, "variation.udredningsret.behind-national", "1082")
if not midt or midt["state"] != "FIRING" or midt["value"] != 61 or midt["threshold"] != 65:
    fail(f"Midtjylland behind the nation: {json.dumps(midt)}")

# --- restart (real Kafka: the mock does not store offsets committed in a transaction) ---------------------
if REAL_KAFKA:
    service = hstest.restart_without_emitting(
        service,
        lambda: hstest.Service(VARIATION, "variation-restarted", f"hs-variation-test-{RUN}", BOOTSTRAP, work, RUN),
        lambda: {t: len(records(t)) for t in OUTPUTS})

# --- a revision of one region's value: exactly one new variation record --------------------------------------
before = len(records("hs.variation.v1"))
consumed = service.metric("hs_records_in_total", topic="hs.indicators.v1") or 0
hstest.publish_events(hsctl, work, [fact("kraeft.standardforloeb.compliance", "1084", "2022Q4", 75, "PERCENT",
                                         revision=1)])
service.wait_processed("hs.indicators.v1", consumed)
want = offline_tables()
got = hstest.wait_until_equal(service_tables, want)
if hstest.table_differences(got, want):
    fail("after the revision, service and hsctl calc differ: " + "; ".join(hstest.table_differences(got, want)[:5]))
after = len(records("hs.variation.v1"))
if after != before + 1:
    fail(f"the revision added {after - before} records to hs.variation.v1, want exactly 1")
else:
    ok("a revision of Hovedstaden 2022Q4 (79 -> 75) added exactly one record to hs.variation.v1")

# --- bad input, metrics, stop ------------------------------------------------------------------------------
dead = [json.loads(line) for line in records("hs.dlq.v1")]
if not any(d.get("hsservice") == "variation" and d.get("hserrorcode") == "validation" and
           d.get("subject") == "kraeft.standardforloeb.compliance/region:1081/2023Q2" for d in dead):
    fail(f"the fact in DAYS is not in hs.dlq.v1: {[(d.get('subject'), d.get('hserrorcode')) for d in dead]}")
else:
    ok("a fact in another unit than its period's dead-lettered (validation)")
if service.metric("hs_variation_alerts_firing") != sum(1 for a in got["hs.alerts.v1"].values()
                                                       if a["state"] == "FIRING"):
    fail(f"hs_variation_alerts_firing = {service.metric('hs_variation_alerts_firing')}")
code, took = service.stop()
if code != 0:
    fail(f"SIGTERM: exit {code} after {took:.1f} s")
finish("test_variation")
