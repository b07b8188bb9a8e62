#!/usr/bin/env python3
"""docs/producers.md tells producers in any language how to choose a fact's partition; this checks that its
two snippets are the same rule. The Python function is executed from the document itself (as in
integration.admission, which shows the running service admits what it computes), and the Java expression of
the document, kept in tests/e2e/PartitionRule.java, runs with the kafka-clients jar that tools/kafka fetched
for the e2e tier: both must give the same partition for grouping keys of every shape — the issue's
indicator, Kafka's own test vectors, non-ASCII text, a key whose length is each of 0..3 modulo 4 — and for
each partition count of the registry's input topics (8 and 4), for 1, and for 3 and 50, where a hash not
masked positive would give another partition (with a power of two it would not).

usage: test_producer_snippets.py DOCS_PRODUCERS_MD PARTITION_RULE_JAVA KAFKA_SCRIPT
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

PRODUCERS_MD, PARTITION_RULE, KAFKA_SCRIPT = sys.argv[1:4]


def documented_java_expression():
    with open(PRODUCERS_MD) as f:
        text = f.read()
    m = re.search(r"```java\n(.*?)```", text, re.S)
    return m.group(1) if m else ""


def kafka_libs():
    """Where tools/kafka keeps Kafka's jars: the same variables, read from the script."""
    with open(KAFKA_SCRIPT) as f:
        version = re.search(r"^KAFKA_VERSION=(\S+)", f.read(), re.M).group(1)
    cache = os.environ.get("HS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "healthsignals")
    return os.path.join(cache, f"kafka-{version}", "libs")


partition_for = hstest.documented_partitioner(PRODUCERS_MD)
java_rule = "Utils.toPositive(Utils.murmur2("
for source, text in (("docs/producers.md", documented_java_expression()),
                     ("PartitionRule.java", open(PARTITION_RULE).read())):
    if java_rule not in text or ".getBytes(StandardCharsets.UTF_8))) %" not in text:
        fail(f"{source} does not compute the partition as {java_rule}...getBytes(UTF_8))) % partitions")

keys = ["kraeft.standardforloeb.compliance", "udredningsret.somatik.compliance", "beds.intensive", "21", "foobar",
        "abc", "a-little-bit-long-string", "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "sjælland.ø",
        "region-hovedstaden", "x", "xy", "xyz", "wxyz"]
libs = kafka_libs()
if not os.path.isdir(libs):
    fail(f"Kafka's jars are not in {libs} (tools/kafka fetch)")
failures_before = hstest.failures
for partitions in (8, 4, 1, 3, 50):
    proc = subprocess.run(["java", "-cp", os.path.join(libs, "*"), PARTITION_RULE, str(partitions), *keys],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        fail(f"java PartitionRule.java: exit {proc.returncode}: {proc.stderr[-2000:]}")
        break
    java = [int(line) for line in proc.stdout.split()]
    python = [partition_for(k, partitions) for k in keys]
    if java != python:
        fail(f"{partitions} partitions: Java {java}, Python {python} for {keys}")
if hstest.failures == failures_before:
    ok(f"the Java and Python snippets of docs/producers.md agree on {len(keys)} grouping keys for 8, 4, 1, 3 and 50 "
       "partitions")
finish("producer_snippets")
