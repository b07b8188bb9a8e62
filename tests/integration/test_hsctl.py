#!/usr/bin/env python3
"""hsctl end to end against a broker (HS_BOOTSTRAP_SERVERS; hs-broker in the integration tier, real Kafka
in e2e): topics are created from the registry; the fixture tables of docs/domain.md §10 publish cleanly and tail
back identically; a CSV with one bad row publishes the good rows and names the bad one by line; rules
round-trip through hs.rules.v1; the offline calculation agrees with the published table; exit codes are
the documented ones.

usage: test_hsctl.py HSCTL FIXTURES_DIR
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from hstest import fail, finish, ok  # noqa: E402

HSCTL, FIXTURES = sys.argv[1], sys.argv[2]
TABLES = ["udredningsret-somatik.csv", "ventetid-somatik.csv"]  # Tabel 8 and Tabel 1
REGION_KIND = {"DK": "NATIONAL"}


def run(*args, stdin=None, check_status=None):
    proc = subprocess.run([HSCTL, *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check_status is not None and proc.returncode != check_status:
        fail(f"hsctl {' '.join(args)}: exit {proc.returncode}, want {check_status}\n"
             f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
    return proc




def key_of(row):
    kind = "national" if row["scope"] == "DK" else "region"
    return f"{row['indicator']}/{kind}:{row['scope']}/{row['period']}"


def tail_all(topic):
    out = run("tail", topic, "--from-beginning", check_status=0).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- topics ---------------------------------------------------------------------------------------------
# hs-broker creates the registry's topics itself (the mock has no CreateTopics); real Kafka starts without.
created = run("topics", "create", check_status=0).stdout
for topic in ["hs.indicators.v1", "hs.rules.v1", "hs.alerts.v1", "hs.dlq.v1"]:
    if f"created  {topic}" not in created and f"exists   {topic}" not in created:
        fail(f"topics create did not mention {topic}: {created}")
again = run("topics", "create", check_status=0).stdout
if "created" in again or "exists   hs.indicators.v1" not in again:
    fail(f"second topics create should only report existing topics: {again}")
listing = run("topics", "list", check_status=0).stdout
if "hs.indicators.v1" not in listing or "missing" in listing.split("hs.indicators.v1")[1].splitlines()[0]:
    fail(f"topics list: {listing}")
described = run("topics", "describe", "hs.indicators.v1", check_status=0).stdout
if "on broker:    8 partitions" not in described:
    fail(f"topics describe: {described}")
ok("topics create/list/describe from the registry")

# --- publish the fixture tables and tail them back ------------------------------------------------------
expected = {}
for name in TABLES:
    path = os.path.join(FIXTURES, name)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    proc = run("publish", "hs.indicators.v1", "--csv", path, check_status=0)
    summary = f"{len(rows)} rows, {len(rows)} published, 0 rejected"
    if summary not in proc.stderr:
        fail(f"publish {name}: summary should say '{summary}': {proc.stderr}")
    for row in rows:
        expected[key_of(row)] = row
ok(f"published {len(expected)} rows of Tabel 8 and Tabel 1")

events = tail_all("hs.indicators.v1")
by_key = {e["subject"]: e for e in events}
if len(events) != len(expected):
    fail(f"tail returned {len(events)} records, want {len(expected)}")
for key, row in expected.items():
    event = by_key.get(key)
    if event is None:
        fail(f"record {key} missing from tail")
        continue
    data = event["data"]
    want = {
        "indicator": row["indicator"],
        "scope": {"kind": REGION_KIND.get(row["scope"], "REGION"), "code": row["scope"]},
        "period": row["period"],
        "value": float(row["value"]),
        "unit": row["unit"],
    }
    if row["provisional"] == "true":
        want["provisional"] = True
    if row["flags"]:
        want["qualityFlags"] = row["flags"].split(";")
    if row["source"]:
        want["source"] = row["source"]
    if data != want:
        fail(f"{key}: tailed {data}, want {want}")
    if event["type"] != "healthsignals.v1.IndicatorObservation" or event["specversion"] != "1.0":
        fail(f"{key}: envelope {event}")
ok("every row tails back identically, as CloudEvents with the fact identity as subject")

# Tabel 8, 2023Q2: Midtjylland 61, provisional; Nordjylland 2022Q2 80 with the EPJ flag.
mid = by_key["udredningsret.somatik.compliance/region:1082/2023Q2"]["data"]
if mid["value"] != 61 or not mid.get("provisional"):
    fail(f"Midtjylland 2023Q2: {mid}")
nord = by_key["udredningsret.somatik.compliance/region:1081/2022Q2"]["data"]
if nord["value"] != 80 or nord.get("qualityFlags") != ["epj-transition"]:
    fail(f"Nordjylland 2022Q2: {nord}")
ok("docs/domain.md §10.1 figures: Midtjylland 2023Q2 = 61 (provisional), Nordjylland 2022Q2 = 80 (epj-transition)")

# --- tail options: --key, -n ----------------------------------------------------------------------------
only = run("tail", "hs.indicators.v1", "--from-beginning", "--key",
           "udredningsret.somatik.compliance/region:1082/2023Q2", check_status=0).stdout.splitlines()
if len(only) != 1 or json.loads(only[0])["data"]["value"] != 61:
    fail(f"tail --key: {only}")
first3 = run("tail", "hs.indicators.v1", "--from-beginning", "-n", "3", check_status=0).stdout.splitlines()
if len(first3) != 3:
    fail(f"tail --from-beginning -n 3 printed {len(first3)} records")
# Without --from-beginning, -n N starts N records before the end of each partition: the two indicators sit
# in two partitions, so -n 2 shows 2 + 2 records.
last = run("tail", "hs.indicators.v1", "-n", "2", check_status=0).stdout.splitlines()
want_last = sorted(f"{i}/national:DK/{q}" for i in ("udredningsret.somatik.compliance", "ventetid.somatik.oplevet")
                   for q in ("2023Q1", "2023Q2"))  # each file ends with the nation's last two quarters
if sorted(json.loads(line)["subject"] for line in last) != want_last:
    fail(f"tail -n 2: {last}")
text = run("tail", "hs.indicators.v1", "--from-beginning", "--format", "text", "--key",
           "ventetid.somatik.oplevet/national:DK/2023Q2", check_status=0).stdout
if "value=43 unit=DAYS" not in text:
    fail(f"tail --format text: {text}")
ok("tail --key, -n (from the start and from the end) and --format text (Tabel 1: the nation 2023Q2 = 43 days)")

# --- one bad row among good ones ------------------------------------------------------------------------
with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as f:
    f.write("indicator,scope,period,value,unit\n")
    f.write("test.mixed,1084,2023Q1,50,PERCENT\n")
    f.write("test.mixed,1084,2023Q2,130,PERCENT\n")  # line 3: percent above 100
    f.write("test.mixed,Sjaelland,2023Q2,40,PERCENT\n")
    mixed = f.name
proc = run("publish", "hs.indicators.v1", "--csv", mixed, check_status=1)
if f"{mixed}:3:" not in proc.stderr or "130" not in proc.stderr:
    fail(f"bad row not reported as FILE:3: reason: {proc.stderr}")
if "3 rows, 2 published, 1 rejected" not in proc.stderr:
    fail(f"summary of the mixed file: {proc.stderr}")
mixed_events = [e for e in tail_all("hs.indicators.v1") if e["subject"].startswith("test.mixed/")]
if sorted(e["subject"] for e in mixed_events) != ["test.mixed/region:1084/2023Q1", "test.mixed/region:1085/2023Q2"]:
    fail(f"good rows of the mixed file: {[e['subject'] for e in mixed_events]}")
os.unlink(mixed)
ok("one bad row: named by line, not published; the good rows (region name -> 1085) published; exit 1")

# --- dry run publishes nothing --------------------------------------------------------------------------
before = len(tail_all("hs.indicators.v1"))
with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False, encoding="utf-8") as f:
    f.write(json.dumps({"specversion": "1.0", "id": "x", "source": "test", "type":
                        "healthsignals.v1.IndicatorObservation", "data": {
                            "indicator": "test.dry", "scope": {"code": "DK"}, "period": "2023",
                            "value": 1, "unit": "COUNT"}}) + "\n")
    dry = f.name
run("publish", "hs.indicators.v1", "--ndjson", dry, "--dry-run", check_status=0)
if len(tail_all("hs.indicators.v1")) != before:
    fail("--dry-run published something")
run("publish", "hs.indicators.v1", "--ndjson", dry, check_status=0)
if not any(e["subject"] == "test.dry/national:DK/2023" for e in tail_all("hs.indicators.v1")):
    fail("NDJSON event not published under its identity key")
os.unlink(dry)
ok("--dry-run validates only; NDJSON events publish under their identity key")

# --- rules round trip ------------------------------------------------------------------------------------
rules = [
    {"id": "akutplan.udredningsret.somatik", "service": "targets", "subject": "udredningsret.somatik.compliance",
     "kind": "BASELINE_BAND", "direction": "HIGHER_IS_BETTER", "band": 3, "baselineValue": 82, "severity": "WARNING"},
    {"id": "kapacitet.intensiv", "service": "capacity", "subject": "beds.intensive", "kind": "ESCALATION_LEVELS",
     "direction": "LOWER_IS_BETTER", "levelThresholdsPct": [85, 92, 97], "alertLevel": 3},
]
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
    json.dump(rules, f)
    rules_path = f.name
run("rules", "apply", rules_path, check_status=0)
listed = [json.loads(line) for line in run("rules", "list", check_status=0).stdout.splitlines()]
if [r["id"] for r in listed] != sorted(r["id"] for r in rules) or listed[1].get("levelThresholdsPct") != [85, 92, 97]:
    fail(f"rules list after apply: {listed}")
run("rules", "delete", "kapacitet.intensiv", check_status=0)
listed = [json.loads(line) for line in run("rules", "list", check_status=0).stdout.splitlines()]
if [r["id"] for r in listed] != ["akutplan.udredningsret.somatik"]:
    fail(f"rules list after delete: {listed}")
os.unlink(rules_path)
ok("rules apply, list (sorted by id) and delete round-trip through hs.rules.v1")

# Label names Alertmanager refuses (400, invalid label name) are refused here, naming the label; the good rule
# of the same file is published.
bad_labels = [dict(rules[1], id="kapacitet.medicinsk", subject="beds.medical", labels={"team": "akut"}),
              dict(rules[1], id="kapacitet.kirurgisk", subject="beds.surgical", labels={"team-name": "akut"}),
              dict(rules[1], id="kapacitet.ambulant", subject="slots.outpatient", labels={"0owner": "akut"})]
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
    json.dump(bad_labels, f)
    rules_path = f.name
proc = run("rules", "apply", rules_path, check_status=1)
for rule_id, label in (("kapacitet.kirurgisk", "team-name"), ("kapacitet.ambulant", "0owner")):
    if f"({rule_id}): labels: '{label}' is not a label name Alertmanager accepts" not in proc.stderr:
        fail(f"rules apply with label {label}: {proc.stderr}")
listed = [json.loads(line)["id"] for line in run("rules", "list", check_status=0).stdout.splitlines()]
if listed != ["akutplan.udredningsret.somatik", "kapacitet.medicinsk"]:
    fail(f"rules list after applying bad label names: {listed}")
run("rules", "delete", "kapacitet.medicinsk", check_status=0)
os.unlink(rules_path)
ok("rules apply refuses label names Alertmanager refuses (team-name, 0owner), naming them; publishes the rest")

# --- offline calculation over the tailed table ----------------------------------------------------------
table = "\n".join(json.dumps(e) for e in tail_all("hs.indicators.v1")) + "\n"
proc = run("calc", "count", stdin=table, check_status=0)
counts = {json.loads(line)["data"]["group"]: int(json.loads(line)["data"]["facts"]) for line in proc.stdout.splitlines()}
want_counts = {}
for row in expected.values():
    want_counts[row["indicator"]] = want_counts.get(row["indicator"], 0) + 1
want_counts.update({"test.mixed": 2, "test.dry": 1})
if counts != want_counts:
    fail(f"calc count: {counts}, want {want_counts}")
ok(f"hsctl calc count over the tailed table: {counts}")

# --- JSON written against a newer schema: --ignore-unknown-fields; open enums -----------------------------
def newer_event(**data):
    base = {"indicator": "test.newer", "scope": {"kind": "REGION", "code": "1084"}, "period": "2023Q2",
            "value": 50, "unit": "PERCENT"}
    return json.dumps({"specversion": "1.0", "id": "", "source": "test",
                       "type": "healthsignals.v1.IndicatorObservation", "data": {**base, **data}})


newer = "\n".join([newer_event(confidence=0.9, scope={"kind": "REGION", "code": "1084", "ward": "7"}),
                    newer_event(unit=42)]) + "\n"
strict = run("publish", "hs.indicators.v1", "-", "--dry-run", stdin=newer, check_status=1)
if "-:1: data: " not in strict.stderr or "unknown field" not in strict.stderr:
    fail(f"an unknown field without --ignore-unknown-fields: {strict.stderr}")
lenient = run("publish", "hs.indicators.v1", "-", "--dry-run", "--ignore-unknown-fields", stdin=newer,
              check_status=1)
for line in ["-:1: ignored unknown field data.scope.ward", "-:1: ignored unknown field data.confidence",
             "-:2: unit: 42 is unknown to this version of healthsignals.v1.Unit",
             "2 rows, 1 valid (dry run, nothing published), 1 rejected, 2 unknown fields ignored"]:
    if line not in lenient.stderr:
        fail(f"--ignore-unknown-fields: no '{line}' in:\n{lenient.stderr}")
if "--ignore-unknown-fields" not in run("publish", "--help", check_status=0).stdout:
    fail("publish --help does not document --ignore-unknown-fields")
offline_newer = run("calc", "count", "--ignore-unknown-fields", stdin=newer, check_status=1)
if "-:1: ignored unknown field data.scope.ward" not in offline_newer.stderr or \
        "1 facts applied, 1 rejected" not in offline_newer.stderr or \
        "2 unknown fields ignored" not in offline_newer.stderr:
    fail(f"calc --ignore-unknown-fields: {offline_newer.stderr}")
if "1 facts applied" in run("calc", "count", stdin=newer, check_status=1).stderr:
    fail("calc without --ignore-unknown-fields applied a fact with unknown fields")
ok("unknown fields refuse a line, or with --ignore-unknown-fields are skipped and reported (publish and "
   "calc); an enum number this version does not know is refused with the reason")

# --- a subject must be the identity of its data ------------------------------------------------------------
def with_subject(subject, scope):
    return json.dumps({"specversion": "1.0", "id": "", "source": "test", "subject": subject,
                       "type": "healthsignals.v1.IndicatorObservation",
                       "data": {"indicator": "test.subject", "scope": scope, "period": "2023Q2", "value": 50,
                                "unit": "PERCENT"}})


subjects = "\n".join([with_subject("test.subject/region:1081/2023Q2", {"kind": "REGION", "code": "1084"}),
                      with_subject("test.subject/region:1085/2023Q2", {"code": "Sjælland"})]) + "\n"
checked = run("publish", "hs.indicators.v1", "-", "--dry-run", stdin=subjects, check_status=1)
for line in ["-:1: subject: record key 'test.subject/region:1081/2023Q2' is not its value's identity "
             "'test.subject/region:1084/2023Q2' (indicator/scope/period)",
             "2 rows, 1 valid (dry run, nothing published), 1 rejected"]:
    if line not in checked.stderr:
        fail(f"a subject that is not the data's identity: no '{line}' in:\n{checked.stderr}")
offline = run("calc", "count", stdin=subjects, check_status=1)
if "-:1: subject: record key 'test.subject/region:1081/2023Q2' is not its value's identity" not in offline.stderr \
        or [json.loads(line)["data"]["facts"] for line in offline.stdout.splitlines()] != ["1"]:
    fail(f"calc count with a subject that is not its data's identity: {offline.stdout} {offline.stderr}")
ok("a subject that is not its data's identity is rejected naming both keys, by publish and by calc; one "
   "that is (after the region name is normalised) is valid")

# --- exit codes -----------------------------------------------------------------------------------------
run("tail", "hs.nothing.v1", check_status=4)
run("publish", "hs.indicators.v1", check_status=2)
run("frobnicate", check_status=2)
run("--bootstrap", "127.0.0.1:1", "--timeout", "2", "topics", "list", check_status=3)
run("--help", check_status=0)
for sub in ["topics", "publish", "tail", "rules", "calc"]:
    if "usage: hsctl" not in run(sub, "--help", check_status=0).stdout:
        fail(f"{sub} --help")
ok("exit codes: not found 4, usage 2, broker unreachable 3; --help everywhere")

finish("test_hsctl")
