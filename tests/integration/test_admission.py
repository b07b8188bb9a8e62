#!/usr/bin/env python3
"""What a service admits as a fact, end to end with the count service (issue 14, issue 15 item 8): a fact
written to a partition other than its grouping key's — as a client's default partitioner hashing the whole
key would — goes to hs.dlq.v1 with a reason naming the partition it belongs on, and does not change the
outputs; a revision of a counted fact and a tombstone on the wrong partition likewise; a record whose key is
not its value's identity is dead-lettered with both keys named, on hs.indicators.v1 and hs.capacity.v1; a
fact whose unit is a number this version does not know is dead-lettered saying so; and the same fact on the
partition that the Python function documented in docs/producers.md computes is counted — which proves the
documented rule for any producer, since the function is taken from the document itself. `hsctl topics
partition` names the same partitions; `hsctl calc` over the tailed topics refuses what the service refused;
`hsctl dlq replay` mends a misplaced record and skips a mismatched key.

usage: test_admission.py COUNT_BINARY HSCTL PRODUCE_RAW DOCS_PRODUCERS_MD
"""
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

COUNT, HSCTL, PRODUCE_RAW, PRODUCERS_MD = sys.argv[1:5]
BOOTSTRAP, RUN, work = hstest.environment("admission")
INDICATORS, CAPACITY = "hs.indicators.v1", "hs.capacity.v1"


# The Python block of docs/producers.md marked as tested here, executed: what producers are told to use is what
# this test checks against the running service.
partition_for = hstest.documented_partitioner(PRODUCERS_MD)
# Kafka's own vectors (UtilsTest.testMurmur2): toPositive(murmur2("foobar")) = 1357151166, of "21" 1173551340.
if partition_for("foobar", 2**31 - 1) != 1357151166 or partition_for("21", 8) != 1173551340 % 8:
    fail("the documented partition_for() is not Kafka's murmur2")


hsctl = hstest.hsctl_runner(HSCTL, BOOTSTRAP, timeout=120)


def string(field, text):
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def encode_scope(region):
    inner = bytes([1 << 3 | 0, 2]) + string(2, region)  # kind REGION, code
    return bytes([2 << 3 | 2, len(inner)]) + inner


def encode_observation(indicator, region, period, value, unit=1):
    """IndicatorObservation in protobuf wire format, by hand: produce_raw sends bytes, to any partition.
    Unit 1 is PERCENT."""
    return (string(1, indicator) + encode_scope(region) + string(3, period) + bytes([4 << 3 | 1]) +
            struct.pack("<d", value) + bytes([5 << 3 | 0, unit]))


def encode_capacity(resource, region, period, available, occupied):
    return (string(1, resource) + encode_scope(region) + string(3, period) + bytes([4 << 3 | 1]) +
            struct.pack("<d", available) + bytes([5 << 3 | 1]) + struct.pack("<d", occupied))


def produce_raw(topic, partition, key, value):
    """One record with `value` bytes (None: a tombstone) on an explicit partition."""
    arg = "-"
    if value is not None:
        arg = os.path.join(work, f"value-{time.monotonic_ns()}.bin")
        with open(arg, "wb") as f:
            f.write(value)
    proc = subprocess.run([PRODUCE_RAW, BOOTSTRAP, topic, str(partition), key, arg], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        fail(f"produce_raw {key}: {proc.stderr}")


def fact(indicator, region, period, value):
    return hstest.indicator_fact(indicator, region, period, value, "PERCENT")


def counts(prefix):
    """The hs.fact-counts.v1 table for groups starting with prefix: {(group, topic): facts}."""
    proc = hsctl("tail", "hs.fact-counts.v1", "--from-beginning")
    table = hstest.latest_table(proc.stdout.splitlines(), keep=lambda key, data: key.startswith(prefix))
    return {tuple(key.split("/")): int(data["facts"]) for key, data in table.items()}


def dead_letters():
    """This run's dead letters of the count service: {key: (code, reason)}."""
    proc = hsctl("tail", "hs.dlq.v1", "--from-beginning")
    out = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            d = json.loads(line)
            if d.get("hsservice") == "count" and d.get("subject", "").startswith(prefix):
                out.setdefault(d["subject"], []).append((d.get("hserrorcode"), d.get("hserror")))
    return out


def wait_consumed(service, records):
    hstest.wait_for(lambda: (service.metric("hs_records_in_total") or 0) >= records and
                    (service.metric("hs_consumer_lag") or 0) == 0 and
                    (service.metric("hs_uncommitted_records") or 0) == 0,
                    lambda: f"consumed {service.metric('hs_records_in_total')} records, want {records}", timeout=90)


hsctl("topics", "create")
prefix = f"adm{RUN}."
kraeft = f"{prefix}kraeft.standardforloeb.compliance"
beds = f"{prefix}beds.medical"
service = hstest.Service(COUNT, "adm", f"hs-count-admission-{RUN}", BOOTSTRAP, work, RUN)
service.wait_ready()

# Two facts published the right way (hsctl), then a capacity fact: the starting table.
hstest.publish_events(hsctl, work, [fact(kraeft, "1081", "2023Q2", 40), fact(kraeft, "1082", "2023Q2", 41)])
hstest.publish_events(hsctl, work, [{"specversion": "1.0", "id": "", "source": "test",
                                     "type": "healthsignals.v1.CapacityObservation",
                                     "data": {"resource": beds, "scope": {"kind": "REGION", "code": "1084"},
                                              "period": "2023-07-14", "available": 100, "occupied": 80}}],
                      topic=CAPACITY)
consumed = 3
wait_consumed(service, consumed)
want = {(kraeft, INDICATORS): 2, (beds, CAPACITY): 1}
if counts(prefix) != want:
    fail(f"before: {counts(prefix)}, want {want}")

home = partition_for(kraeft, 8)
away = (home + 3) % 8
key_new = f"{kraeft}/region:1083/2023Q2"
key_counted = f"{kraeft}/region:1081/2023Q2"
# --- facts on the wrong partition: a new fact, a revision of a counted one, a tombstone ----------------------
produce_raw(INDICATORS, away, key_new, encode_observation(kraeft, "1083", "2023Q2", 42))
produce_raw(INDICATORS, away, key_counted, encode_observation(kraeft, "1081", "2023Q2", 43))
produce_raw(INDICATORS, away, f"{kraeft}/region:1082/2023Q2", None)
# --- keys that are not their values' identities, on the right partition --------------------------------------
mismatch = f"{kraeft}/region:1084/2023Q2"
produce_raw(INDICATORS, home, mismatch, encode_observation(kraeft, "1085", "2023Q2", 44))
beds_mismatch = f"{beds}/region:1084/2023-07-15"
produce_raw(CAPACITY, partition_for(beds, 8), beds_mismatch, encode_capacity(beds, "1084", "2023-07-14", 100, 90))
# --- an enum number this version does not know (a newer schema's unit), on the right partition -------------
newer_unit = f"{kraeft}/region:1085/2023Q2"
produce_raw(INDICATORS, home, newer_unit, encode_observation(kraeft, "1085", "2023Q2", 45, unit=42))
consumed += 6
wait_consumed(service, consumed)
failures_before = hstest.failures
if counts(prefix) != want:
    fail(f"misplaced and mismatched records changed the outputs: {counts(prefix)}, want {want}")
letters = dead_letters()
expected_reason = f"record on partition {away}, its grouping key '{kraeft}' belongs on partition {home} of 8"
for key in (key_new, key_counted, f"{kraeft}/region:1082/2023Q2"):
    if letters.get(key) != [("wrong_partition", expected_reason)]:
        fail(f"dead letter of {key}: {letters.get(key)}, want wrong_partition '{expected_reason}'")
mismatch_reasons = {
    mismatch: f"record key '{mismatch}' is not its value's identity '{kraeft}/region:1085/2023Q2' "
              "(indicator/scope/period)",
    beds_mismatch: f"record key '{beds_mismatch}' is not its value's identity '{beds}/region:1084/2023-07-14' "
                   "(resource/scope/period)",
}
for key, reason in mismatch_reasons.items():
    if letters.get(key) != [("key_mismatch", reason)]:
        fail(f"dead letter of {key}: {letters.get(key)}, want key_mismatch '{reason}'")
unit_reason = "unit: 42 is unknown to this version of healthsignals.v1.Unit"
if letters.get(newer_unit) != [("validation", unit_reason)]:
    fail(f"dead letter of {newer_unit}: {letters.get(newer_unit)}, want validation '{unit_reason}'")
if service.metric("hs_records_dlq_total", code="wrong_partition") != 3 or \
        service.metric("hs_records_dlq_total", code="key_mismatch") != 2:
    fail(f"/metrics: wrong_partition {service.metric('hs_records_dlq_total', code='wrong_partition')}, "
         f"key_mismatch {service.metric('hs_records_dlq_total', code='key_mismatch')}, want 3 and 2")
if hstest.failures == failures_before:
    ok(f"a new fact, a revision and a tombstone on partition {away} instead of {home}, and two keys that are not "
       "their values' identities, and a unit unknown to this version: dead-lettered with their reasons, outputs "
       "unchanged")

# --- the same fact on the partition docs/producers.md computes is counted ----------------------------------
produce_raw(INDICATORS, home, key_new, encode_observation(kraeft, "1083", "2023Q2", 42))
consumed += 1
wait_consumed(service, consumed)
failures_before = hstest.failures
want[(kraeft, INDICATORS)] = 3
if counts(prefix) != want:
    fail(f"the fact on partition {home}: {counts(prefix)}, want {want}")
if key_new in dead_letters() and len(dead_letters()[key_new]) != 1:
    fail(f"the fact on its own partition was dead-lettered: {dead_letters()[key_new]}")
if hstest.failures == failures_before:
    ok(f"the same fact on partition {home}, as the documented partition_for() computes it, is counted")

# --- hsctl calc over the tailed topic computes what the service computed ----------------------------------
# hsctl tail says each record's partition; calc refuses what the service refused (partition, key, unit).
tailed = hsctl("tail", INDICATORS, "--from-beginning").stdout + hsctl("tail", CAPACITY, "--from-beginning").stdout
offline = subprocess.run([HSCTL, "calc", "count"], input=tailed, capture_output=True, text=True, timeout=120)
offline_counts = {tuple(e["subject"].split("/")): int(e["data"]["facts"])
                  for e in map(json.loads, offline.stdout.splitlines()) if e["subject"].startswith(prefix)}
if offline_counts != want:
    fail(f"hsctl calc count over the tailed topics: {offline_counts}, the service: {want}\n{offline.stderr[-1500:]}")
else:
    ok("hsctl calc count over the tailed topics equals the service's table: it refuses the same records")

# --- hsctl topics partition tells the same partition -----------------------------------------------------
failures_before = hstest.failures
grouping_keys = [kraeft, beds, "foobar", "21", "sjælland.ø"]
for topic, partitions in ((INDICATORS, 8), ("hs.budget.v1", 4)):
    proc = hsctl("topics", "partition", topic, *grouping_keys)
    told = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    want_told = {k: str(partition_for(k, partitions)) for k in grouping_keys}
    if proc.returncode != 0 or told != want_told:
        fail(f"hsctl topics partition {topic}: exit {proc.returncode}, {told}, want {want_told}")
if hsctl("topics", "partition", "hs.rules.v1", "targets").returncode != 2:
    fail("hsctl topics partition hs.rules.v1 (one partition, read whole): want exit 2")
if hstest.failures == failures_before:
    ok("hsctl topics partition names the partition the documented function computes, for 8 and 4 partitions")

# --- hsctl dlq replay: a misplaced record is mended by a replay, a mismatched key is not --------------------
failures_before = hstest.failures
tombstone_key = f"{kraeft}/region:1082/2023Q2"
replay = hsctl("dlq", "replay", "--code", "wrong_partition", "--key", tombstone_key)
if replay.returncode != 0:
    fail(f"dlq replay of the misplaced tombstone: exit {replay.returncode}: {replay.stderr}")
consumed += 1
wait_consumed(service, consumed)
want[(kraeft, INDICATORS)] = 2  # the tombstone, now on its grouping key's partition, deletes region 1082
if counts(prefix) != want:
    fail(f"after replaying the misplaced tombstone: {counts(prefix)}, want {want}")
replay = hsctl("dlq", "replay", "--code", "key_mismatch", "--key", mismatch)
if replay.returncode != 1 or f"is not its value's identity '{kraeft}/region:1085/2023Q2'" not in replay.stderr:
    fail(f"dlq replay of a mismatched key: exit {replay.returncode}, want 1 with the reason: {replay.stderr}")
if hstest.failures == failures_before:
    ok("hsctl dlq replay puts a misplaced tombstone on its grouping key's partition, where it is applied, and "
       "skips a record whose key is still not its value's identity")

code, _ = service.stop()
if code != 0:
    fail(f"SIGTERM: exit {code}")
finish("admission")
