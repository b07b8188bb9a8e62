#!/usr/bin/env python3
"""The capacity README's one-time upgrade to the shared alert identity (issue 16, item 3), run as written:
hs.alerts.v1 holds the daily medical-beds series' alerts under the keys the previous version wrote; the README's
step 2 (tombstones) and step 3 (the new version under a new consumer group) leave exactly the alerts
`hsctl calc capacity` computes, under their new keys, and none under an old one.

usage: test_capacity_upgrade.py CAPACITY_BINARY HSCTL CAPACITY_README DEMO_DATA_DIR
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "lib"))
from hstest import fail, finish, ok  # noqa: E402

CAPACITY, HSCTL, README, DATA = sys.argv[1:5]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
FACTS = os.path.join(DATA, "capacity-medical-daily.ndjson")
# The keys the previous version gave these alerts: hs_alert_fingerprint("capacity:level-L", "region:1085",
# "beds.medical") in its three-part form (unit.test_alert proves the three-part digest unchanged).
OLD_KEYS = {"3": "cd8cbdf1a94b652d", "4": "2190f645f6ac5ccb"}


def hsctl(*args, stdin=None):
    proc = subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], input=stdin, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        fail(f"hsctl {' '.join(args)}: exit {proc.returncode}: {proc.stderr}")
    return proc.stdout


def alerts_table():
    table = {}
    for line in hsctl("tail", "hs.alerts.v1", "--from-beginning").splitlines():
        e = json.loads(line)
        if e["data"] is None:
            table.pop(e["subject"], None)
        else:
            table[e["subject"]] = e["data"]
    return table


hsctl("topics", "create")
hsctl("publish", "hs.capacity.v1", "--ndjson", FACTS)
with open(FACTS) as f:
    calc = subprocess.run([HSCTL, "calc", "capacity"], stdin=f, capture_output=True, text=True, timeout=120)
want = {e["subject"]: e["data"] for e in map(json.loads, calc.stdout.splitlines()) if e["type"].endswith(".Alert")}
if sorted(d["labels"]["level"] for d in want.values()) != ["3", "4"]:
    fail(f"hsctl calc capacity: alerts {want}")

# What the previous version left on the topic: these alerts under its keys.
old = []
for data in want.values():
    data = dict(data, fingerprint=OLD_KEYS[data["labels"]["level"]])
    old.append(json.dumps({"specversion": "1.0", "id": "", "source": "previous-version",
                           "type": "healthsignals.v1.Alert", "data": data}))
hsctl("publish", "hs.alerts.v1", "-", stdin="\n".join(old) + "\n")
if sorted(alerts_table()) != sorted(OLD_KEYS.values()):
    fail(f"the previous version's alerts: {sorted(alerts_table())}")

# Step 2, verbatim from the README (hsctl on PATH, the broker from HS_BOOTSTRAP_SERVERS).
with open(README) as f:
    step2 = re.search(r"^# 2\. .*?\n(.*?)^# 3\.", f.read(), re.S | re.M).group(1)
subprocess.run(["bash", "-euo", "pipefail", "-c", step2], check=True, timeout=120,
               env={**os.environ, "PATH": os.path.dirname(os.path.abspath(HSCTL)) + os.pathsep + os.environ["PATH"]})
if alerts_table():
    fail(f"after the README's tombstones: {sorted(alerts_table())} left")
ok("step 2: every capacity alert of the previous version deleted")

# Step 3: the new version under a new consumer group publishes every alert again, under its new key.
service = subprocess.Popen([CAPACITY, "--bootstrap-servers", BOOTSTRAP, "--http-addr", "127.0.0.1:0",
                            "--group-id", "hs-capacity-2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
try:
    deadline = time.monotonic() + 60
    while (got := alerts_table()) != want and time.monotonic() < deadline:
        time.sleep(0.3)
finally:
    service.terminate()
    _, err = service.communicate(timeout=30)
if got != want:
    fail(f"after step 3: {sorted(got)}, want {sorted(want)} (hsctl calc capacity); service log:\n{err[-2000:]}")
if set(got) & set(OLD_KEYS.values()):
    fail("an old key is back")
ok(f"step 3: the alerts {sorted(got)} equal hsctl calc capacity's, no old key left")
finish("capacity_upgrade")
