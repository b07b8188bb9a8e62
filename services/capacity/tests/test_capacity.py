#!/usr/bin/env python3
"""The capacity service end to end through hs-broker: the demo's capacity series (a quarter series of
intensive care and a daily series of medical beds crossing levels 2 -> 3 -> 4 -> 2) and a rule go in; the final
hs.capacity-status.v1 and hs.alerts.v1 tables equal `hsctl calc capacity` over the same facts; the daily series'
alerts of levels 3 and 4 fired and then resolved with unchanged labels, and a subscriber counting alerts by their
labels has as many active as are firing after every record; a negative count, a missing `available` and an unknown resource go to hs.dlq.v1.

usage: test_capacity.py CAPACITY_BINARY HSCTL PRODUCE_RAW DEMO_DATA_DIR
"""
import atexit
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

CAPACITY, HSCTL, PRODUCE_RAW, DATA = sys.argv[1:5]
BOOTSTRAP, RUN, work = hstest.environment("capacity")
SERIES = [os.path.join(DATA, f) for f in ("capacity-intensive-quarters.ndjson", "capacity-medical-daily.ndjson")]
RULES = os.path.join(work, "rules.json")
with open(RULES, "w") as f:
    json.dump([{"id": "capacity.psychiatric", "service": "capacity", "subject": "beds.psychiatric",
                "kind": "ESCALATION_LEVELS", "levelThresholdsPct": [80, 90, 95], "alertLevel": 2,
                "hysteresis": 1, "labels": {"team": "psychiatry"}}], f)
EXTRA = os.path.join(work, "extra.ndjson")  # a resource known through the rule, and one nobody knows


def obs(resource, code, period, available, occupied):
    return {"specversion": "1.0", "id": "", "source": "test", "type": "healthsignals.v1.CapacityObservation",
            "data": {"resource": resource, "scope": {"kind": "REGION", "code": code}, "period": period,
                     "available": available, "occupied": occupied}}


with open(EXTRA, "w") as f:
    f.write(json.dumps(obs("beds.psychiatric", "1083", "2023Q1", 100, 91)) + "\n")
UNKNOWN = os.path.join(work, "unknown.ndjson")
with open(UNKNOWN, "w") as f:
    f.write(json.dumps(obs("beds.unknown", "1083", "2023Q1", 100, 50)) + "\n")


def hsctl(*args):
    return subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], capture_output=True, text=True, timeout=120)


def run_ok(*args):
    proc = hsctl(*args)
    if proc.returncode != 0:
        fail(f"hsctl {' '.join(args)}: exit {proc.returncode}: {proc.stderr}")
    return proc


def tail(topic):
    return [json.loads(line) for line in run_ok("tail", topic, "--from-beginning").stdout.splitlines() if line]


def table(records):
    """Latest value per key, as {subject: data}; tombstones delete."""
    t = {}
    for r in records:
        if r["data"] is None:
            t.pop(r["subject"], None)
        else:
            t[r["subject"]] = r["data"]
    return t


def start_service():
    log = open(os.path.join(work, "capacity.log"), "w+")
    proc = subprocess.Popen([CAPACITY, "--bootstrap-servers", BOOTSTRAP, "--group-id", f"hs-capacity-test-{RUN}",
                             "--instance-id", f"capacity-{RUN}", "--http-addr", "127.0.0.1:0",
                             "--commit-interval", "50ms"], stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r'"msg":"http endpoint listening","port":(\d+)', log.read())
        if m:
            return proc, int(m.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log.seek(0)
    raise SystemExit(f"FAIL: capacity did not start:\n{log.read()[-3000:]}")


def metric(port, name, **labels):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, value = line.rsplit(" ", 1)
        if series.split("{")[0] == name and all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def wait_ready(port):
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    fail("capacity not ready after 60 s")


def encode(resource, code, period, available, occupied):
    """CapacityObservation in protobuf wire format by hand, to send what validation refuses; available None
    leaves the field out."""
    def string(field, text):
        data = text.encode()
        return bytes([field << 3 | 2, len(data)]) + data
    scope = bytes([1 << 3 | 0, 2]) + string(2, code)
    out = string(1, resource) + bytes([2 << 3 | 2, len(scope)]) + scope + string(3, period)
    if available is not None:
        out += bytes([4 << 3 | 1]) + struct.pack("<d", available)
    return out + bytes([5 << 3 | 1]) + struct.pack("<d", occupied)


def produce_raw(key, value):
    path = os.path.join(work, f"raw-{time.monotonic_ns()}.bin")
    with open(path, "wb") as f:
        f.write(value)
    proc = subprocess.run([PRODUCE_RAW, BOOTSTRAP, "hs.capacity.v1", "=" + key.split("/")[0], key, path],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        fail(f"produce_raw {key}: {proc.stderr}")


run_ok("topics", "create")
run_ok("rules", "apply", RULES)
service, port, log = start_service()
atexit.register(lambda: service.poll() is None and service.kill())  # also when a check raises
wait_ready(port)
facts = 0
for path in SERIES + [EXTRA]:
    run_ok("publish", "hs.capacity.v1", "--ndjson", path)
    facts += sum(1 for line in open(path) if line.strip())
proc = hsctl("publish", "hs.capacity.v1", "--ndjson", UNKNOWN)  # valid to the shared validation: published
produce_raw("beds.medical/region:1081/2023Q1", encode("beds.medical", "1081", "2023Q1", -5, 3))
produce_raw("beds.medical/region:1082/2023Q1", encode("beds.medical", "1082", "2023Q1", None, 3))
want_in = facts + 3
deadline = time.time() + 60
while time.time() < deadline:
    # Consumed, and committed: outputs of records consumed while a commit ran go into the transaction after it.
    if metric(port, "hs_records_in_total", topic="hs.capacity.v1") >= want_in and \
            metric(port, "hs_consumer_lag") == 0 and metric(port, "hs_uncommitted_records") == 0:
        break
    time.sleep(0.2)
else:
    fail(f"consumed {metric(port, 'hs_records_in_total', topic='hs.capacity.v1')} records, want {want_in}")

# --- the running service agrees with hsctl calc capacity --------------------------------------------------------
with open(os.path.join(work, "all.ndjson"), "w") as f:
    for path in SERIES + [EXTRA]:
        f.write(open(path).read())
with open(os.path.join(work, "all.ndjson")) as f:
    calc = subprocess.run([HSCTL, "calc", "capacity", "--rules", RULES], stdin=f, capture_output=True, text=True,
                          timeout=60)
if calc.returncode != 0:
    fail(f"hsctl calc capacity: {calc.returncode} {calc.stderr}")
offline = [json.loads(line) for line in calc.stdout.splitlines() if line]
want_status = {e["subject"]: e["data"] for e in offline if e["type"] == "healthsignals.v1.CapacityStatus"}
want_alerts = {e["subject"]: e["data"] for e in offline if e["type"] == "healthsignals.v1.Alert"}
status_records = tail("hs.capacity-status.v1")
alert_records = [r for r in tail("hs.alerts.v1") if (r["data"] or {}).get("service", "capacity") == "capacity"]
got_status, got_alerts = table(status_records), table(alert_records)
if got_status != want_status:
    diff = sorted(k for k in set(got_status) | set(want_status) if got_status.get(k) != want_status.get(k))[:5]
    fail(f"hs.capacity-status.v1: {len(got_status)} keys, hsctl calc {len(want_status)}; differing e.g. {diff}")
if got_alerts != want_alerts:
    fail(f"hs.alerts.v1: {json.dumps(got_alerts)[:800]}\nwant {json.dumps(want_alerts)[:800]}")
ok(f"{len(got_status)} statuses and {len(got_alerts)} alerts equal hsctl calc capacity over the same facts")

# --- the daily series: 2 -> 3 -> 4 -> 2, the alerts of levels 3 and 4 fired and then resolved ---------------
key = "beds.medical/region:1085/2023-01-"
levels = [got_status.get(f"{key}{d:02d}", {}).get("level") for d in range(1, 15)]
if levels != [2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 2, 2, 2, 2]:
    fail(f"daily levels {levels}")
history = [r["data"] for r in alert_records if r["data"] and r["data"]["scope"].get("code") == "1085"
           and r["data"]["subject"] == "beds.medical"]
# One alert per level from the alert level (3) up: an escalation fires the level-4 alert beside the level-3 one,
# and never changes an alert's labels (issue 14: a subscriber ended with 14 active against 12 firing).
by_level = {}
for h in history:
    by_level.setdefault(h["labels"].get("level"), []).append(h)
# startsAt / endsAt: the ends of the days they fired (01-04, 01-07) and resolved (01-11) in, as every service's.
want = {"3": ("WARNING", "2023-01-05T00:00:00Z"), "4": ("CRITICAL", "2023-01-08T00:00:00Z")}
if sorted(by_level) != sorted(want):
    fail(f"the daily series' alerts by level label: {sorted(by_level)}, want {sorted(want)}")
for level, (severity, starts) in want.items():
    records = by_level.get(level) or [{"state": "", "labels": {}, "fingerprint": "", "severity": ""}]
    states = [h["state"] for h in records]
    if len({json.dumps(h["labels"], sort_keys=True) for h in records}) != 1 or \
            len({h["fingerprint"] for h in records}) != 1:
        fail(f"the level-{level} alert changed its labels or fingerprint: {[h['labels'] for h in records]}")
    if states[0] != "FIRING" or states[-1] != "RESOLVED" or {h["severity"] for h in records} != {severity}:
        fail(f"the level-{level} alert's history {states}, severities {[h['severity'] for h in records]}")
    bounds = (records[-1].get("startsAt"), records[-1].get("endsAt"))
    if bounds != (starts, "2023-01-12T00:00:00Z"):
        fail(f"level-{level} alert bounds {bounds[0]} .. {bounds[1]}")
    if not re.fullmatch(r"[0-9a-f]{16}", records[0]["fingerprint"]):
        fail(f"fingerprint {records[0]['fingerprint']!r}: not the 16 hex digits of every service")
ok(f"daily medical beds in 1085: levels {levels}; alerts of level 3 and 4 fired and resolved, labels unchanged")

# A subscriber that knows an alert by its labels, as Alertmanager does, has as many active alerts as the table
# has firing ones, after every record of the topic (in each partition's order: labels never change, so any
# interleaving of the partitions gives the same counts).
active, firing, most = set(), set(), 0
for r in alert_records:
    d = r["data"]
    if d is None:
        continue
    identity = json.dumps(d["labels"], sort_keys=True)
    if d["state"] == "FIRING":
        active.add(identity)
        firing.add(d["fingerprint"])
    else:
        active.discard(identity)
        firing.discard(d["fingerprint"])
    if len(active) != len(firing):
        fail(f"{len(active)} alerts active by their labels against {len(firing)} firing, after {d['fingerprint']}")
        break
    most = max(most, len(active))
want_firing = {k for k, v in got_alerts.items() if v["state"] == "FIRING"}
if firing != want_firing:
    fail(f"firing by fingerprint {sorted(firing)}, the final table {sorted(want_firing)}")
ok(f"{len(alert_records)} alert records: active by labels == firing after each (at most {most}, {len(firing)} at "
   f"the end)")
psych = got_status.get("beds.psychiatric/region:1083/2023Q1", {})
if psych.get("level") != 3 or psych.get("rule") != "capacity.psychiatric":
    fail(f"the rule's resource: {psych}")
ok("a resource named by a rule is known and evaluated with its thresholds (91 % -> level 3 of 80/90/95)")

# --- bad input ---------------------------------------------------------------------------------------------
dlq = [d for d in tail("hs.dlq.v1") if d.get("hsservice") == "capacity"]
codes = {d["subject"]: d.get("hserrorcode") for d in dlq}
for k in ("beds.medical/region:1081/2023Q1", "beds.medical/region:1082/2023Q1", "beds.unknown/region:1083/2023Q1"):
    if codes.get(k) != "validation":
        fail(f"dead letter {k}: {codes.get(k)} (dlq: {codes})")
if metric(port, "hs_records_dlq_total", code="validation") != 3:
    fail(f"hs_records_dlq_total{{code=validation}} = {metric(port, 'hs_records_dlq_total', code='validation')}")
ok("a negative count, a missing available and an unknown resource dead-lettered (validation) and counted")

service.terminate()
try:
    code = service.wait(timeout=15)
except subprocess.TimeoutExpired:
    service.kill()
    code = service.wait()
if code != 0:
    fail(f"SIGTERM: exit {code}")
finish("test_capacity")
