#!/usr/bin/env python3
"""Crash safety and broker restarts, against real Kafka (the e2e tier), with the count service:

1. kill -9 in the middle of a stream of 100 000 facts, then a restart (same instance id, so the new
   producer fences the dead one and its open transaction is aborted): the committed output topic holds
   every expected output exactly once (read_committed), none missing — for count, each group's counts
   1, 2, ..., n appear once each.
2. The broker stops and starts again mid-stream: the service reconnects and finishes with complete
   outputs, still exactly once.

usage: test_crash_safety.py COUNT_BINARY HSCTL KAFKA_SCRIPT
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

COUNT, HSCTL, KAFKA = sys.argv[1:4]
BOOTSTRAP, RUN, work = hstest.environment("crash")




def start(name, group):
    log = open(os.path.join(work, f"{name}.log"), "w")
    return subprocess.Popen([COUNT, "--bootstrap-servers", BOOTSTRAP, "--group-id", group, "--instance-id",
                             f"crash-{RUN}", "--http-addr", "127.0.0.1:0", "--commit-interval", "100ms"],
                            stdout=log, stderr=log)


def write_facts(path, prefix, groups, per_group):
    with open(path, "w") as f:
        for k in range(per_group):
            for g in range(groups):
                f.write(json.dumps({
                    "specversion": "1.0", "id": "", "source": "test", "type": "healthsignals.v1.IndicatorObservation",
                    "data": {"indicator": f"{prefix}g{g}", "scope": {"kind": "NATIONAL", "code": "DK"},
                             "period": f"{2000 + k // 4}Q{k % 4 + 1}", "value": k, "unit": "COUNT"}}) + "\n")


def publish(path):
    return subprocess.Popen([HSCTL, "--bootstrap", BOOTSTRAP, "publish", "hs.indicators.v1", "--ndjson", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "topics", "create"], capture_output=True)

# --- 1. kill -9 mid-stream -------------------------------------------------------------------------------
prefix = f"crash{RUN}."
groups, per_group = 200, 500  # 100 000 facts
facts = os.path.join(work, "facts.ndjson")
write_facts(facts, prefix, groups, per_group)
group = f"hs-count-crash-{RUN}"
service = start("first", group)
publisher = publish(facts)
time.sleep(4)  # let it consume and commit part of the stream
service.send_signal(signal.SIGKILL)
service.wait()
ok("killed the service with SIGKILL mid-stream")
service = start("restarted", group)
publisher.wait(timeout=600)
if publisher.returncode != 0:
    fail(f"publishing the stream: {publisher.stderr[-2000:]}")
got = hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix, groups, per_group, timeout=600)
hstest.check_exactly_once(got, groups, per_group, "kill -9 and restart during 100 000 facts")

# --- 2. the broker restarts mid-stream ----------------------------------------------------------------------
prefix2 = f"brk{RUN}."
groups2, per_group2 = 50, 200
first_half, second_half = os.path.join(work, "a.ndjson"), os.path.join(work, "b.ndjson")
write_facts(first_half, prefix2, groups2, per_group2 // 2)
with open(second_half, "w") as f:
    full = os.path.join(work, "full.ndjson")
    write_facts(full, prefix2, groups2, per_group2)
    with open(full) as src:
        lines = src.readlines()
    f.writelines(lines[len(lines) // 2:])
publish(first_half).wait(timeout=300)
time.sleep(2)
subprocess.run([KAFKA, "stop"], check=True, capture_output=True)
time.sleep(3)
subprocess.run([KAFKA, "start"], check=True, capture_output=True)
ok("broker stopped and started again mid-stream")
p = publish(second_half)
p.wait(timeout=300)
if p.returncode != 0:
    fail(f"publishing after the broker restart: {p.stderr[-2000:]}")
got = hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix2, groups2, per_group2, timeout=300)
hstest.check_exactly_once(got, groups2, per_group2, "broker restart")
if service.poll() is not None:
    fail(f"the service exited during the broker restart (status {service.returncode})")

service.send_signal(signal.SIGTERM)
try:
    code = service.wait(timeout=15)
except subprocess.TimeoutExpired:
    service.kill()
    code = "timeout"
if code != 0:
    fail(f"SIGTERM after the broker restart: exit {code}")
finish("test_crash_safety")
