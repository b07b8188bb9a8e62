#!/usr/bin/env python3
"""The service runtime end to end, with the count service (live facts per indicator) as the calculation:
outputs are complete; replaying the same facts emits nothing new; poison input (garbage bytes, a valid
message failing validation, a 1 MB record) goes to hs.dlq.v1 with its headers while processing continues
and /metrics counts it; a tombstone is a deletion; /healthz and /readyz answer; SIGTERM exits 0 within 10 s;
the per-partition lag in /metrics follows the assignment when a second instance joins and leaves.
Against real Kafka (HS_BROKER_KIND=kafka) also: a restart rebuilds its state without emitting, and two
instances in one group, one stopped mid-stream, end with complete outputs and no value emitted twice.
(librdkafka's mock does not store offsets sent in a transaction, so those two need real Kafka.)

usage: test_runtime.py COUNT_BINARY HSCTL PRODUCE_RAW
"""
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

COUNT, HSCTL, PRODUCE_RAW = sys.argv[1:4]
BOOTSTRAP, RUN, work = hstest.environment("runtime")
REAL_KAFKA = os.environ.get("HS_BROKER_KIND") == "kafka"
# Instances run with static membership (--instance-id): a stopped one leaves the group only when its session
# times out. 6 s (real Kafka's minimum) instead of 45 s, with a heartbeat every second, keeps the assignment,
# restart and scale-out checks short (the assignment check: 93 s -> 16 s on the embedded broker).
os.environ.setdefault("HS_KAFKA_SESSION_TIMEOUT_MS", "6000")
os.environ.setdefault("HS_KAFKA_HEARTBEAT_INTERVAL_MS", "1000")




hsctl = hstest.hsctl_runner(HSCTL, BOOTSTRAP, timeout=120)


def fact(indicator, region, period, value):
    return hstest.indicator_fact(indicator, region, period, value, "PERCENT")


def output_records(prefix):
    """Every record of hs.fact-counts.v1 whose key starts with prefix, in log order per partition."""
    proc = hsctl("tail", "hs.fact-counts.v1", "--from-beginning")
    return [json.loads(line) for line in proc.stdout.splitlines()
            if line.strip() and json.loads(line)["subject"].startswith(prefix)]


def final_table(records):
    table = {}
    for r in records:
        if r["data"] is None:
            table.pop(r["subject"], None)
        else:
            table[r["data"]["group"]] = int(r["data"]["facts"])
    return table


class Service(hstest.Service):
    def __init__(self, name, group):
        super().__init__(COUNT, name, group, BOOTSTRAP, work, RUN)

    def wait_consumed(self, count, timeout=60):
        """Waits until the instance has consumed `count` input records and committed them (a commit may
        still be running when the last records are consumed, and they then go into the one after it)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (self.metric("hs_records_in_total", topic="hs.indicators.v1") or 0) >= count and \
                    (self.metric("hs_consumer_lag") or 0) == 0 and \
                    (self.metric("hs_uncommitted_records") or 0) == 0:
                return True
            time.sleep(0.1)
        fail(f"{self.name} consumed {self.metric('hs_records_in_total')} records, want {count}")
        return False


def encode_observation(indicator, region, period, value):
    """IndicatorObservation in protobuf wire format, written by hand: the test must be able to send a
    message that decodes but breaks validation, which no well-behaved publisher would."""
    def string(field, text):
        data = text.encode()
        return bytes([field << 3 | 2, len(data)]) + data
    scope = bytes([1 << 3 | 0, 2]) + string(2, region)
    return (string(1, indicator) + bytes([2 << 3 | 2, len(scope)]) + scope + string(3, period) +
            bytes([4 << 3 | 1]) + struct.pack("<d", value) + bytes([5 << 3 | 0, 1]))


def produce_raw(key, value_arg):
    """One raw record in the partition its key's grouping key (first component) chooses."""
    proc = subprocess.run([PRODUCE_RAW, BOOTSTRAP, "hs.indicators.v1", "=" + key.split("/")[0], key, value_arg],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        fail(f"produce_raw {key}: {proc.stderr}")


hsctl("topics", "create")
group = f"hs-count-test-{RUN}"
prefix = f"rt{RUN}."
indicators = [f"{prefix}ind{i}" for i in range(5)]
regions = ["1081", "1082", "1083", "1084", "1085"]
periods = ["2022Q1", "2022Q2", "2022Q3", "2022Q4", "2023Q1", "2023Q2"]
facts = [fact(i, r, p, 50 + k % 40) for k, (i, r, p) in
         enumerate((i, r, p) for i in indicators for r in regions for p in periods)]
expected = {i: len(regions) * len(periods) for i in indicators}

# --- outputs are complete --------------------------------------------------------------------------------
a = Service("a", group)
a.wait_ready()
status, body = a.get("/healthz")
if status != 200:
    fail(f"/healthz: {status} {body}")
hstest.publish_events(hsctl, work, facts)
a.wait_consumed(len(facts))
records = output_records(prefix)
if final_table(records) != expected:
    fail(f"final table {final_table(records)}, want {expected}")
ok(f"{len(facts)} facts -> counts {expected}; /healthz and /readyz answer")

# --- idempotence: the same facts again emit nothing ----------------------------------------------------------
before = len(records)
hstest.publish_events(hsctl, work, facts)
a.wait_consumed(2 * len(facts))
after = len(output_records(prefix))
if after != before:
    fail(f"replaying the facts emitted {after - before} new outputs")
ok(f"the same {len(facts)} facts again: {before} output records before, {after} after")

# --- order independence: the same facts in reverse order give the same table ------------------------------------
reversed_prefix = f"rev{RUN}."
reversed_facts = [json.loads(json.dumps(f).replace(prefix, reversed_prefix)) for f in reversed(facts)]
hstest.publish_events(hsctl, work, reversed_facts)
a.wait_consumed(3 * len(facts))
forward_table = {k[len(prefix):]: v for k, v in final_table(output_records(prefix)).items()}
reverse_table = {k[len(reversed_prefix):]: v for k, v in final_table(output_records(reversed_prefix)).items()}
if forward_table != reverse_table:
    fail(f"order matters: forward {forward_table}, reversed {reverse_table}")
ok("the same facts in reverse order give the same final table")

# --- poison input -------------------------------------------------------------------------------------------
garbage = os.path.join(work, "garbage.bin")
with open(garbage, "wb") as f:
    f.write(b"\xff\xfe this is not protobuf \x00\x01\x02")
too_high = os.path.join(work, "percent130.bin")
with open(too_high, "wb") as f:
    f.write(encode_observation(indicators[0], "1084", "2024Q1", 130.0))
produce_raw("poison/garbage", garbage)
produce_raw(f"{indicators[0]}/region:1084/2024Q1", too_high)
produce_raw("poison/huge", "@1000000")
# A tombstone deletes a fact: indicators[1] loses one.
produce_raw(f"{indicators[1]}/region:1081/2022Q1", "-")
# Processing goes on: a good fact after the poison is counted.
hstest.publish_events(hsctl, work, [fact(indicators[2], "1081", "2024Q1", 70)])
a.wait_consumed(3 * len(facts) + 5)
table = final_table(output_records(prefix))
want = dict(expected)
want[indicators[1]] -= 1
want[indicators[2]] += 1
if table != want:
    fail(f"after poison, tombstone and one good fact: {table}, want {want}")
tailed = hsctl("tail", "hs.dlq.v1", "--from-beginning")
dlq = [json.loads(line) for line in tailed.stdout.splitlines()]
if not dlq:
    fail(f"hs.dlq.v1 is empty: {tailed.stderr}")
codes = {d["subject"]: d.get("hserrorcode") for d in dlq if d.get("hsservice") == "count"}
want_codes = {"poison/garbage": "decode", f"{indicators[0]}/region:1084/2024Q1": "validation",
              "poison/huge": "too_large"}
for key, code in want_codes.items():
    if codes.get(key) != code:
        fail(f"dead letter {key}: code {codes.get(key)}, want {code} (dlq: {codes})")
for d in dlq:
    if d.get("hsservice") == "count" and not (d.get("hssourcetopic") == "hs.indicators.v1" and "hssourceoffset" in d
                                               and "hserror" in d and "hssourcepartition" in d):
        fail(f"dead letter without its headers: {d}")
for code in ("decode", "validation", "too_large"):
    if a.metric("hs_records_dlq_total", code=code) != 1:
        fail(f"/metrics hs_records_dlq_total{{code={code}}} = {a.metric('hs_records_dlq_total', code=code)}")
ok("garbage, 130 % and a 1 MB record dead-lettered with headers and counted; a tombstone deletes; "
   "processing continued")

# --- SIGTERM ---------------------------------------------------------------------------------------------
code, seconds = a.stop()
if code != 0 or seconds >= 10:
    fail(f"SIGTERM: exit {code} after {seconds:.1f} s, want 0 within 10 s")
ok(f"SIGTERM: exit {code} after {seconds:.1f} s")

# --- per-partition metrics follow the assignment -------------------------------------------------------------
def lag_partitions(service):
    """The input partitions an instance reports hs_consumer_lag for."""
    _, text = service.get("/metrics")
    return {int(m.group(1)) for m in re.finditer(r'^hs_consumer_lag\{partition="(\d+)",topic="hs.indicators.v1"\}',
                                                text, re.M)}


group3 = f"hs-count-assign-{RUN}"
x = Service("x", group3)
x.wait_ready()
# The partitions on the broker, not x's first report: an instance reports a partition once it knows its
# watermarks, which for some partitions comes a fetch later (seen on real Kafka: 6 of 8 at first).
described = hsctl("topics", "describe", "hs.indicators.v1")
m = re.search(r"^on broker:\s+(\d+) partitions", described.stdout, re.M)
if not m:
    fail(f"hsctl topics describe hs.indicators.v1: {described.stdout}{described.stderr}")
    x.stop()
    finish("test_runtime")
everything = set(range(int(m.group(1))))
hstest.wait_for(lambda: lag_partitions(x) == everything,
                lambda: f"x reports lag for {sorted(lag_partitions(x))}, want {sorted(everything)}", timeout=60)
# Not y.wait_ready(): the embedded broker sometimes takes over a minute to finish this rebalance under load
# (seen in CI); what is checked here is the split once it has happened.
y = Service("y", group3)
hstest.wait_for(lambda: lag_partitions(x) and lag_partitions(y) and not lag_partitions(x) & lag_partitions(y)
                and lag_partitions(x) | lag_partitions(y) == everything,
                lambda: f"after y joined, x reports lag for partitions {sorted(lag_partitions(x))} and y for "
                        f"{sorted(lag_partitions(y))} of {sorted(everything)}: revoked partitions must leave "
                        f"/metrics", timeout=180)
y.stop()
hstest.wait_for(lambda: lag_partitions(x) == everything,
                lambda: f"x reports lag for {sorted(lag_partitions(x))} after y left, want {sorted(everything)}",
                timeout=180)
x.stop()
ok(f"hs_consumer_lag follows the assignment: {len(everything)} partitions, split between two instances "
   "and taken back, none reported by two")

if REAL_KAFKA:
    # --- restart: rebuild without emitting, then live ---------------------------------------------------------
    before = len(output_records(prefix))
    a = Service("a-restarted", group)
    a.wait_ready()
    time.sleep(1)
    if len(output_records(prefix)) != before:
        fail("the restarted instance emitted while rebuilding")
    hstest.publish_events(hsctl, work, [fact(indicators[3], "1081", "2024Q1", 70)])
    deadline = time.time() + 60
    while time.time() < deadline and len(output_records(prefix)) == before:
        time.sleep(0.5)
    time.sleep(1)  # time enough for a wrong second output to show
    records = output_records(prefix)
    if len(records) != before + 1 or final_table(records)[indicators[3]] != expected[indicators[3]] + 1:
        fail(f"after restart one new fact should make one output: {len(records) - before}")
    code, _ = a.stop()
    ok("restart: state rebuilt from the committed offsets without emitting; the next fact emits once")

    # --- scale-out: two instances, one stopped mid-stream -----------------------------------------------------
    prefix2 = f"so{RUN}."
    group2 = f"hs-count-scale-{RUN}"
    inds = [f"{prefix2}ind{i}" for i in range(40)]
    stream = [fact(i, r, f"20{y}Q{q}", 60) for i in inds for r in regions for y in (20, 21) for q in (1, 2, 3, 4)]
    b = Service("b", group2)
    c = Service("c", group2)
    b.wait_ready()
    c.wait_ready()
    half = len(stream) // 2
    hstest.publish_events(hsctl, work, stream[:half])
    time.sleep(1)
    code, _ = b.stop()
    hstest.publish_events(hsctl, work, stream[half:])
    c.wait_consumed(0)
    deadline = time.time() + 60
    want2 = {i: len(regions) * 8 for i in inds}
    while time.time() < deadline and final_table(output_records(prefix2)) != want2:
        time.sleep(1)
    records = output_records(prefix2)
    if final_table(records) != want2:
        fail(f"scale-out final table incomplete: {len(final_table(records))} of {len(want2)} keys right")
    seen = {}
    for r in records:
        k = (r["subject"], r["data"]["facts"] if r["data"] else None)
        seen[k] = seen.get(k, 0) + 1
    dups = {k: n for k, n in seen.items() if n > 1}
    if dups:
        fail(f"scale-out: {len(dups)} output values emitted more than once, e.g. {list(dups.items())[:3]}")
    c.stop()
    ok(f"scale-out: {len(stream)} facts over two instances, one stopped mid-stream: "
       f"{len(want2)} complete counts, no value emitted twice")
else:
    print("note: restart and scale-out checks run in the e2e tier (real Kafka): the librdkafka mock does not "
          "store offsets sent in a transaction", flush=True)

finish("test_runtime")
