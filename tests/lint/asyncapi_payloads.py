#!/usr/bin/env python3
"""lint.asyncapi_payloads: the payload schemas of docs/asyncapi.json describe the JSON healthsignals really
reads and writes. The indicator fixtures (tests/fixtures/*.csv), the capacity demo data, the deployed rules
and the JSON fuzz corpus's valid examples go through `hsctl calc` for every service; every input event and
every output hsctl writes (the C mapper's canonical JSON) must validate against the schema of its type, each
value type at least once; hand-made wrong events (an unknown enum name, a fraction for a 64-bit integer, a
string for a number, a number for a string) must not.

usage: asyncapi_payloads.py HSCTL SOURCE_DIR
"""
import atexit
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HSCTL, SRC = sys.argv[1:3]
work = tempfile.mkdtemp(prefix="hs-asyncapi-payloads-")
atexit.register(shutil.rmtree, work, ignore_errors=True)
T = "healthsignals.v1."


def cloudevent(type_name, data):
    return {"specversion": "1.0", "id": "", "source": "/healthsignals/test", "type": T + type_name, "data": data}


def indicator_facts():
    """The CSV fixtures as CloudEvents, the way hsctl publish --csv reads them."""
    facts = []
    for path in sorted(glob.glob(os.path.join(SRC, "tests", "fixtures", "*.csv"))):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                data = {"indicator": row["indicator"],
                        "scope": {"kind": "NATIONAL" if row["scope"] == "DK" else "REGION", "code": row["scope"]},
                        "period": row["period"], "value": float(row["value"]), "unit": row["unit"],
                        "provisional": row["provisional"] == "true", "suspended": row["suspended"] == "true",
                        "source": row["source"]}
                if row["volume"]:
                    data["volume"] = row["volume"]
                if row["flags"]:
                    data["qualityFlags"] = row["flags"].split(";")
                facts.append(cloudevent("IndicatorObservation", data))
    return facts


def write_lines(name, events):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return path


def calc(service, facts_path, rules=None):
    """The outputs of `hsctl calc SERVICE --changes` as CloudEvents; exits when hsctl rejects anything."""
    args = [HSCTL, "calc", service, "--changes", "--input", facts_path] + (["--rules", rules] if rules else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


checks = []


def expect(verdict, events, what):
    for e in events:
        if e.get("data") is not None:  # a tombstone has no payload
            checks.append({"type": e["type"], "data": e["data"], "expect": verdict, "what": what})


facts = indicator_facts()
indicators = write_lines("indicators.ndjson", facts)
expect("valid", facts, "indicator fixture")
capacity_facts = []
for path in sorted(glob.glob(os.path.join(SRC, "tools", "demo-data", "capacity-*.ndjson"))):
    with open(path) as f:
        capacity_facts += [json.loads(line) for line in f if line.strip()]
capacity = write_lines("capacity.ndjson", capacity_facts)
expect("valid", capacity_facts, "capacity demo data")
budget_facts = []
for path in sorted(glob.glob(os.path.join(SRC, "tools", "demo-data", "budget-*.csv"))):
    with open(path, newline="") as f:
        for row in csv.DictReader(f):  # plain whole kroner in the demo data
            budget_facts.append(cloudevent("BudgetLine", {
                "unit": row["unit"], "line": row["line"], "year": int(row["year"]), "kind": row["kind"],
                "amountOre": str(int(row["amount_dkk"]) * 100)}))
budget = write_lines("budget.ndjson", budget_facts)
expect("valid", budget_facts, "budget demo data")
for rules_path in sorted(glob.glob(os.path.join(SRC, "deploy", "rules", "*.json"))):
    with open(rules_path) as f:
        expect("valid", [cloudevent("Rule", r) for r in json.load(f)], os.path.basename(rules_path))
corpus = {"alert": "Alert", "budget": "BudgetLine", "capacity": "CapacityObservation", "fact_count": "FactCount",
          "indicator": "IndicatorObservation", "rule": "Rule"}
for name, type_name in corpus.items():
    with open(os.path.join(SRC, "tests", "fuzz", "corpus", "json", name + ".json")) as f:
        expect("valid", [cloudevent(type_name, json.load(f))], f"fuzz corpus {name}.json")

rules = os.path.join(SRC, "deploy", "rules")
expect("valid", calc("count", indicators), "hsctl calc count output")
expect("valid", calc("targets", indicators, os.path.join(rules, "akutplan.json")), "hsctl calc targets output")
expect("valid", calc("variation", indicators, os.path.join(rules, "variation.json")), "hsctl calc variation output")
expect("valid", calc("capacity", capacity), "hsctl calc capacity output")
expect("valid", calc("budget", budget, os.path.join(rules, "budget.json")), "hsctl calc budget output")

fact = facts[0]["data"]
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "unit": "PERCENTS"})], "unknown enum name")
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "volume": 1.5})], "fraction for an int64")
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "volume": "12x"})], "non-decimal int64 string")
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "value": "high"})], "a word for a double")
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "period": 2023})], "a number for a string")
expect("invalid", [cloudevent("IndicatorObservation", {**fact, "scope": {"kind": "COUNTY", "code": "1"}})],
       "unknown enum name in a nested message")

# Presence is part of the contract: an optional field is written even when zero, a plain one is not.
with open(os.path.join(SRC, "docs", "asyncapi.json")) as f:
    observation = json.load(f)["components"]["schemas"][T + "IndicatorObservation"]["properties"]
if not observation["volume"]["x-protobuf-field"].get("optional") or \
        observation["value"]["x-protobuf-field"].get("optional"):
    raise SystemExit("FAIL: IndicatorObservation: volume must be marked optional and value not: "
                     f"{observation['volume']['x-protobuf-field']}, {observation['value']['x-protobuf-field']}")

events = write_lines("checks.ndjson", checks)
parser = subprocess.run([os.path.join(SRC, "tools", "devtools"), "asyncapi-parser"], capture_output=True, text=True,
                        timeout=900)
if parser.returncode != 0:
    raise SystemExit(f"FAIL: tools/devtools asyncapi-parser:\n{parser.stderr}")
proc = subprocess.run(["node", os.path.join(SRC, "tests", "lint", "asyncapi_payloads.js"), parser.stdout.strip(),
                       os.path.join(SRC, "docs", "asyncapi.json"), events], text=True, timeout=300)
if proc.returncode != 0:
    shutil.copy(events, os.path.join(tempfile.gettempdir(), "hs-asyncapi-payloads-checks.ndjson"))
    print(f"(the events checked: {tempfile.gettempdir()}/hs-asyncapi-payloads-checks.ndjson)")
sys.exit(proc.returncode)
