#!/usr/bin/env python3
"""Rule changes are input, exactly once, against real Kafka (the e2e tier), with the targets service: one
THRESHOLD rule over 40 quarterly facts gives 40 statuses, each carrying the threshold as its target.

1. The threshold is changed and the service killed with SIGKILL 0-20 ms after `hsctl rules apply` returns
   (the commit interval is 1 s, so the change's outputs are usually not committed yet, and sometimes the
   rule not even read), then restarted under the same instance id: every one of the 40 statuses must come
   to use the new threshold. Several rounds, each with a new threshold.
2. The threshold is changed while no instance runs: after the restart every status uses it.
3. Applying the same rules file again changes nothing: no status is produced again.
And each change reached each status exactly once: 40 committed records per threshold, none twice.
4. Bad rules written raw to hs.rules.v1 (bytes that do not decode, a NaN threshold, forPeriods 4 294 967 295,
   threshold -1e308) go to hs.dlq.v1 with the headers facts get, once for the service: a second instance
   and a restart do not dead-letter them again. Before, they were a log line.

Before the runtime committed the rules digest with its offsets, (1) and (2) left the statuses on the old
threshold for good (the restart rebuilt with the new rule silently).

On the embedded broker (integration.rule_changes, also run under the sanitizers) only (4) runs, within one
run of the service: the mock keeps no offsets committed in a transaction.

usage: test_rule_changes.py TARGETS_BINARY HSCTL PRODUCE_RAW
"""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

TARGETS, HSCTL, PRODUCE_RAW = sys.argv[1:4]
BOOTSTRAP, RUN, work = hstest.environment("rule-changes")
REAL_KAFKA = os.environ.get("HS_BROKER_KIND") == "kafka"
INDICATOR = f"rulechange{RUN}.share"
RULE = f"rulechange{RUN}.floor"
PERIODS = [f"{2014 + k // 4}Q{k % 4 + 1}" for k in range(40)]
ROUNDS = 6
# A SIGKILLed member leaves the group only when its session times out: 6 s (the broker's minimum) instead of
# 45 s keeps each restart short.
os.environ["HS_KAFKA_SESSION_TIMEOUT_MS"] = "6000"


def hsctl(*args):
    return subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], capture_output=True, text=True, timeout=300)


def apply_threshold(threshold):
    path = os.path.join(work, "rules.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump([{"id": RULE, "service": "targets", "subject": INDICATOR, "kind": "THRESHOLD",
                    "direction": "HIGHER_IS_BETTER", "scopes": [{"kind": "NATIONAL", "code": "DK"}],
                    "threshold": threshold}], f)
    proc = hsctl("rules", "apply", path)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: hsctl rules apply: {proc.stderr}")


def statuses():
    """period -> target of the rule's statuses in the committed table."""
    proc = hsctl("tail", "hs.target-status.v1", "--from-beginning")
    table = hstest.latest_table(proc.stdout.splitlines(), lambda key, data: key.split("/")[1:2] == [RULE])
    return {data["period"]: data.get("target") for data in table.values()}


def status_records():
    proc = hsctl("tail", "hs.target-status.v1", "--from-beginning")
    return sum(1 for line in proc.stdout.splitlines() if f'"rule":"{RULE}"' in line)


def wait_all(threshold, what, timeout=60):
    last = {}

    def check():
        nonlocal last
        last = statuses()
        return len(last) == len(PERIODS) and all(t == threshold for t in last.values())

    def failure():
        stale = sorted(p for p, t in last.items() if t != threshold)
        return (f"{what}: {len(last)} statuses, {len(stale)} not on threshold {threshold} after {timeout} s "
                f"(e.g. {stale[:3]} -> {[last[p] for p in stale[:3]]})")

    if hstest.wait_for(check, failure, timeout=timeout, interval=0.5):
        ok(f"{what}: all {len(PERIODS)} statuses use threshold {threshold}")
        return True
    return False


def start(name):
    service = hstest.Service(TARGETS, name, f"hs-targets-rules-{RUN}", BOOTSTRAP, work, RUN, commit_interval="1s",
                             instance=f"rules-{RUN}")
    service.wait_ready(timeout=120)
    return service


hsctl("topics", "create")
facts = os.path.join(work, "facts.ndjson")
with open(facts, "w", encoding="utf-8") as f:
    for k, period in enumerate(PERIODS):
        fact = hstest.indicator_fact(INDICATOR, "DK", period, (k * 37) % 101, "PERCENT", event_source="rules")
        f.write(json.dumps(fact) + "\n")
proc = hsctl("publish", "hs.indicators.v1", "--ndjson", facts)
if proc.returncode != 0:
    raise SystemExit(f"FAIL: publish: {proc.stderr}")
apply_threshold(50)
service = start("first")
wait_all(50, "before any change")

# On the embedded broker (integration tier) only the bad rules are checked, within one run: the mock keeps
# no offsets committed in a transaction, so every restart there starts afresh.
threshold = 50
if REAL_KAFKA:
    # --- 1. SIGKILL 0-20 ms after a change ------------------------------------------------------------------
    rng = random.Random(int(RUN))
    for round_no in range(1, ROUNDS + 1):
        threshold = 50 + 5 * round_no
        apply_threshold(threshold)
        delay = rng.uniform(0, 0.020)
        time.sleep(delay)
        service.stop(signal.SIGKILL)
        service = start(f"round{round_no}")
        if not wait_all(threshold, f"round {round_no}: SIGKILL {delay * 1000:.0f} ms after the change, restart"):
            break

    # --- 2. a change while no instance runs -----------------------------------------------------------------
    code, _ = service.stop()
    if code != 0:
        fail(f"SIGTERM: exit {code}")
    threshold = 42
    apply_threshold(threshold)
    service = start("after-offline-change")
    wait_all(threshold, "changed while no instance ran, then started")

    # Every change moved every status, and a rule change reaches each output once: 40 records per change, the
    # first threshold included; a change whose outputs died uncommitted was aborted, not committed twice.
    before = status_records()
    changes = ROUNDS + 2
    if before != len(PERIODS) * changes:
        fail(f"{before} committed status records for {changes} thresholds, expected {len(PERIODS)} per threshold")
    else:
        ok(f"{before} committed status records: each of the {changes} thresholds reached each status once")

    # --- 3. the same file again ---------------------------------------------------------------------------------
    apply_threshold(threshold)
    time.sleep(3)  # three commit intervals: a re-emission would be committed by now
    after = status_records()
    if after != before:
        fail(f"applying the same rule again produced {after - before} status records")
    else:
        ok(f"applying the same rule again produced nothing ({before} status records before and after)")


# --- 4. bad rules: dead-lettered once per service, through restarts and a second instance ---------------------
def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def pb_string(number, text):
    data = text.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def threshold_rule(rule_id, threshold, for_periods=0):
    """A THRESHOLD rule of the targets service, packed by hand: hsctl refuses to publish a bad one."""
    value = (pb_string(1, rule_id) + pb_string(2, "targets") + pb_string(3, INDICATOR) + varint(4 << 3) +
             varint(4) + varint(5 << 3) + varint(1))
    if for_periods:
        value += varint(8 << 3) + varint(for_periods)
    return value + varint(20 << 3 | 1) + struct.pack("<d", threshold)


bad = {f"{RULE}.garbage": (b"\xff\xfe this is not protobuf \x00\x01\x02", "decode"),
       f"{RULE}.nan": (threshold_rule(f"{RULE}.nan", float("nan")), "validation"),
       f"{RULE}.forever": (threshold_rule(f"{RULE}.forever", 60, for_periods=4294967295), "validation"),
       f"{RULE}.tiny": (threshold_rule(f"{RULE}.tiny", -1e308), "validation")}
for key, (value, _) in bad.items():
    path = os.path.join(work, "bad.bin")
    with open(path, "wb") as f:
        f.write(value)
    subprocess.run([PRODUCE_RAW, BOOTSTRAP, "hs.rules.v1", "0", key, path], check=True, capture_output=True)


def dead_letters():
    proc = hsctl("tail", "hs.dlq.v1", "--from-beginning")
    letters = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [d for d in letters if d.get("hsservice") == "targets" and d.get("subject") in bad]


def check_dead_letters(what):
    letters = dead_letters()
    keys = sorted(d["subject"] for d in letters)
    if keys != sorted(bad):
        fail(f"{what}: dead letters {keys}, want each of {sorted(bad)} once")
        return
    for d in letters:
        if d.get("hserrorcode") != bad[d["subject"]][1] or d.get("hssourcetopic") != "hs.rules.v1" or \
                "hssourceoffset" not in d or "hssourcepartition" not in d or not d.get("hserror"):
            fail(f"{what}: dead letter without its headers: {d}")
            return
    ok(f"{what}: the {len(bad)} bad rules are on hs.dlq.v1 once each, with their headers")


hstest.wait_for(lambda: len(dead_letters()) >= len(bad),
                lambda: f"bad rules not dead-lettered: {sorted(d['subject'] for d in dead_letters())}")
check_dead_letters("bad rules on hs.rules.v1")
if REAL_KAFKA:
    second = hstest.Service(TARGETS, "second", f"hs-targets-rules-{RUN}", BOOTSTRAP, work, RUN,
                            commit_interval="1s")
    second.wait_ready(timeout=120)
    service.wait_ready(timeout=120)
    code, _ = service.stop()
    if code != 0:
        fail(f"SIGTERM: exit {code}")
    service = start("after-bad-rules")
    time.sleep(3)  # three commit intervals: a second copy would be committed by now
    check_dead_letters("a second instance and a restart later")
    second.stop()
if statuses().get(PERIODS[0]) != threshold:
    fail("the bad rules changed a status")

code, _ = service.stop()
if code != 0:
    fail(f"SIGTERM at the end: exit {code}")
finish("test_rule_changes")
