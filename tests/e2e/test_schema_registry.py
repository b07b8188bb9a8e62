#!/usr/bin/env python3
"""Confluent's wire format against real Kafka and a real schema registry (Apicurio Registry, started by the
registry fixture, tools/registry): what Confluent's own Python serdes write, the services read, and what the
services write with HS_SCHEMA_REGISTRY_URL set, Confluent's serdes read.

  - a service pointed at a registry that does not answer is not ready, and /readyz says why; one that
    refuses (404 here) stops it with exit 6;
  - the targets service, with the registry, registers the schemas of its outputs under <topic>-value (the
    .proto files as in proto/, common.proto and rule.proto as references) and writes every value framed:
    magic byte 0, the id the registry has for the subject's latest version, message indexes, protobuf;
  - its inputs come framed three ways and bare: a rule and a fact from `hsctl --schema-registry-url`, a fact
    from confluent-kafka's ProtobufSerializer (with the SchemaRegistryClient), and a bare fact from hsctl;
  - confluent-kafka's ProtobufDeserializer decodes every status record to the message that `hsctl tail`
    (the project's reader of framed and bare values) shows, and the schema behind each record's id is the
    .proto file of its type.

usage: test_schema_registry.py TARGETS_BINARY HSCTL SOURCE_DIR
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok, run  # noqa: E402

TARGETS, HSCTL, SOURCE = sys.argv[1:4]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
RUN = f"{os.getpid()}"
INDICATOR = f"registry.example.r{RUN}"
RULE = f"registry.threshold.r{RUN}"
STATUS = "hs.target-status.v1"
work = tempfile.mkdtemp(prefix="hs-registry-test-")
started = time.monotonic()



REGISTRY = run([os.path.join(SOURCE, "tools", "registry"), "url"]).strip()
tools = run([os.path.join(SOURCE, "tools", "devtools"), "confluent-kafka", "protobuf-python"]).split()
gen = os.path.join(work, "gen")
os.makedirs(gen)
protos = sorted(os.path.join("proto", "healthsignals", "v1", f)
                for f in os.listdir(os.path.join(SOURCE, "proto", "healthsignals", "v1")) if f.endswith(".proto"))
run(["protoc", "-I", "proto", f"--python_out={gen}", *protos], cwd=SOURCE)
sys.path[:0] = [gen, *tools]

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from healthsignals.v1 import common_pb2, indicator_pb2, target_status_pb2  # noqa: E402

registry = SchemaRegistryClient({"url": REGISTRY})


def hsctl(*args, stdin=None, schema_registry=True):
    flags = ["--schema-registry-url", REGISTRY] if schema_registry else []
    return run([HSCTL, "--bootstrap", BOOTSTRAP, *flags, *args], input=stdin)


def proto_text(path):
    with open(os.path.join(SOURCE, "proto", path), encoding="utf-8") as f:
        return f.read()


# --- not ready while the registry cannot be reached ----------------------------------------------------------
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]  # nothing listens once the socket is closed
os.environ["HS_SCHEMA_REGISTRY_URL"] = f"http://127.0.0.1:{closed}"
waiting = hstest.Service(TARGETS, "targets-unreachable", f"hs-registry-test-u{RUN}", BOOTSTRAP, work, RUN)
hstest.wait_for(lambda: waiting.get("/readyz") == (503, "schema registry unreachable\n"),
                lambda: f"/readyz with the registry away: {waiting.get('/readyz')}", timeout=30)
waiting.stop()
ok("a service whose registry does not answer is not ready: /readyz says 'schema registry unreachable'")

# --- a registry that refuses (here: no Confluent API at that path) stops the service, exit 6 -----------------
refused = subprocess.run(
    [TARGETS, "--bootstrap-servers", BOOTSTRAP, "--group-id", f"hs-registry-test-r{RUN}", "--http-addr",
     "127.0.0.1:0"], env={**os.environ, "HS_SCHEMA_REGISTRY_URL": REGISTRY.replace("/apis/ccompat/v7", "/nothing")},
    capture_output=True, text=True, timeout=60)
if refused.returncode != 6 or not re.search(r'"cannot register the output schemas".*refused \S+ with HTTP 404',
                                             refused.stderr):
    fail(f"a registry that answers 404: exit {refused.returncode}, {refused.stderr[-600:]}")
else:
    ok("a registry that refuses the schema stops the service with exit 6 and the registry's answer")

# --- the service with the registry, and its inputs framed three ways and bare ----------------------------------
hsctl("topics", "create", schema_registry=False)
rules_path = os.path.join(work, "rules.json")
with open(rules_path, "w", encoding="utf-8") as f:
    json.dump([{"id": RULE, "service": "targets", "subject": INDICATOR, "kind": "THRESHOLD",
                "direction": "HIGHER_IS_BETTER", "severity": "WARNING", "forPeriods": 1, "threshold": 80,
                "summary": "schema registry test: at least 80"}], f)
hsctl("rules", "apply", rules_path)  # framed: the rules reader takes it all the same
os.environ["HS_SCHEMA_REGISTRY_URL"] = REGISTRY
service = hstest.Service(TARGETS, "targets", f"hs-registry-test-{RUN}", BOOTSTRAP, work, RUN)
del os.environ["HS_SCHEMA_REGISTRY_URL"]
service.wait_ready(timeout=60)

hsctl("publish", "hs.indicators.v1", "--ndjson", "-",
      stdin=json.dumps(hstest.indicator_fact(INDICATOR, "DK", "2023Q1", 70, "PERCENT")) + "\n")
run([HSCTL, "--bootstrap", BOOTSTRAP, "publish", "hs.indicators.v1", "--ndjson", "-"],
    input=json.dumps(hstest.indicator_fact(INDICATOR, "DK", "2023Q3", 90, "PERCENT")) + "\n")  # bare

# The fact a Confluent producer writes: ProtobufSerializer against the subject hsctl registered, on the
# partition docs/producers.md computes (key layout indicator/scope/period, grouping key the indicator).
with open(os.path.join(SOURCE, "docs", "producers.md"), encoding="utf-8") as f:
    m = re.search(r"<!-- tested by tests/integration/test_admission.py -->\s*```python\n(.*?)```", f.read(), re.S)
scope = {}
exec(m.group(1), scope)  # noqa: S102 - the repository's own documentation
serializer = ProtobufSerializer(indicator_pb2.IndicatorObservation, registry,
                                {"use.deprecated.format": False, "auto.register.schemas": False,
                                 "use.latest.version": True})
fact = indicator_pb2.IndicatorObservation(
    indicator=INDICATOR, scope=common_pb2.Scope(kind=common_pb2.NATIONAL, code="DK"), period="2023Q2",
    value=85, unit=common_pb2.PERCENT)
producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
value = serializer(fact, SerializationContext("hs.indicators.v1", MessageField.VALUE))
if value[:1] != b"\0" or value[5:6] != b"\0":
    fail(f"ProtobufSerializer wrote {value[:8].hex()}..., not magic byte 0 and the message index [0]")
producer.produce("hs.indicators.v1", key=f"{INDICATOR}/national:DK/2023Q2".encode(), value=value,
                 partition=scope["partition_for"](INDICATOR, 8))
if producer.flush(30) != 0:
    fail("the Confluent producer's fact was not delivered")

keys = {f"{INDICATOR}/{RULE}/national:DK/{period}": period for period in ("2023Q1", "2023Q2", "2023Q3")}


def tail():
    """hsctl tail's events of this run's statuses, by key, last one wins."""
    events = {}
    for line in hsctl("tail", STATUS, "--from-beginning", schema_registry=False).splitlines():
        event = json.loads(line)
        if event.get("subject") in keys:
            events[event["subject"]] = event
    return events


hstest.wait_for(lambda: set(tail()) == set(keys), lambda: f"statuses of this run: {sorted(tail())}", timeout=60)
events = tail()
states = {keys[k]: e["data"].get("status") for k, e in events.items()}
if states != {"2023Q1": "MISSED", "2023Q2": "MET", "2023Q3": "MET"}:
    fail(f"statuses of the three facts (hsctl framed, Confluent framed, bare): {states}")
else:
    ok("the service took a framed rule, a framed fact from hsctl, one from Confluent's ProtobufSerializer "
       "and a bare one")
if service.metric("hs_records_dlq_total"):
    fail(f"the service dead-lettered {service.metric('hs_records_dlq_total')} records")
code, _ = service.stop()
if code != 0:
    fail(f"targets: SIGTERM: exit {code}")

# --- what a Confluent consumer reads ------------------------------------------------------------------------
latest = registry.get_latest_version(f"{STATUS}-value")
schema = registry.get_schema(latest.schema_id)
if schema.schema_type != "PROTOBUF" or schema.schema_str != proto_text("healthsignals/v1/target_status.proto"):
    fail(f"{STATUS}-value: schema {latest.schema_id} is not target_status.proto: {schema.schema_str[:200]!r}")
refs = sorted((r.name, r.subject) for r in schema.references)
if refs != [("healthsignals/v1/common.proto", "healthsignals/v1/common.proto"),
            ("healthsignals/v1/rule.proto", "healthsignals/v1/rule.proto")]:
    fail(f"{STATUS}-value: references {refs}")
common = registry.get_latest_version("healthsignals/v1/common.proto")
if common.schema.schema_str != proto_text("healthsignals/v1/common.proto"):
    fail("the subject healthsignals/v1/common.proto does not hold common.proto")

deserializer = ProtobufDeserializer(target_status_pb2.TargetStatus, {"use.deprecated.format": False})
consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False,
                     "isolation.level": "read_committed", "enable.partition.eof": True})
partitions = consumer.list_topics(STATUS, timeout=30).topics[STATUS].partitions
consumer.assign([TopicPartition(STATUS, p, OFFSET_BEGINNING) for p in partitions])
decoded, at_end = {}, set()
deadline = time.time() + 60
while len(at_end) < len(partitions) and time.time() < deadline:
    record = consumer.poll(1.0)
    if record is None:
        continue
    if record.error():
        if record.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(record.partition())
        continue
    key = record.key().decode()
    if key not in keys:
        continue
    v = record.value()
    if v[:1] != b"\0" or int.from_bytes(v[1:5], "big") != latest.schema_id or v[5:6] != b"\0":
        fail(f"{key}: value starts {v[:8].hex()}, not magic 0, schema id {latest.schema_id}, index [0]")
    decoded[key] = deserializer(v, SerializationContext(STATUS, MessageField.VALUE))
consumer.close()
for key, event in events.items():
    ours = json_format.ParseDict(event["data"], target_status_pb2.TargetStatus())
    if decoded.get(key) != ours:
        fail(f"{key}: ProtobufDeserializer read {decoded.get(key)}, hsctl tail {event['data']}")
ok(f"ProtobufDeserializer decodes the {len(decoded)} framed statuses (schema id {latest.schema_id}, the "
   f"latest of {STATUS}-value, target_status.proto with common.proto and rule.proto as references) to the "
   "values hsctl tail shows")
print(f"test time besides the fixtures: {time.monotonic() - started:.1f} s")
finish("schema_registry")
