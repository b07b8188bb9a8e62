#!/usr/bin/env python3
"""The subscriber examples of docs/subscribers.md (examples/subscribers/{python,go,java}) against real Kafka:
each is built as the guide says — code generated from proto/ by protoc with no options but the output
directory, Python with confluent-kafka, Go with franz-go, Java with kafka-clients — and must print, for
hs.target-status.v1 and hs.alerts.v1 read from the beginning, exactly the records `hsctl tail
--from-beginning` shows: the same keys, in the same order per key, with the same event ids and values.

The topics get what the guide describes, from the running targets service: statuses with and without a
target (THRESHOLD and a NO_BASELINE rule of this run), an alert that fires and resolves, tombstones (a
fact's tombstone deletes its statuses), records compressed by the runtime (lz4), and, written by this test,
an aborted transaction on each topic, which a reader that is not read_committed would show.

usage: test_subscribers.py TARGETS_BINARY HSCTL SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok, run  # noqa: E402

TARGETS, HSCTL, SOURCE = sys.argv[1:4]
BOOTSTRAP, RUN, work = hstest.environment("subscribers")
EXAMPLES = os.path.join(SOURCE, "examples", "subscribers")
BUILD = os.path.join(os.environ.get("HS_BUILD_DIR", tempfile.gettempdir()), "subscriber-examples")
INDICATOR = f"subscribers.example.r{RUN}"
THRESHOLD_RULE = f"subscribers.threshold.r{RUN}"
BASELINE_RULE = f"subscribers.baseline.r{RUN}"
TOPICS = ("hs.target-status.v1", "hs.alerts.v1")



def hsctl(*args, stdin=None):
    return run([HSCTL, "--bootstrap", BOOTSTRAP, *args], input=stdin)


# --- the examples, built as docs/subscribers.md says ---------------------------------------------------------
def build():
    """Generates the code of proto/ for each language and builds the examples into BUILD; returns the command
    line of each example (to be followed by BOOTSTRAP TOPIC) and the seconds each build took."""
    tools = run([os.path.join(SOURCE, "tools", "devtools"), "protoc-gen-go", "franz-go", "protobuf-java",
                 "protobuf-python", "confluent-kafka"]).split()
    protoc_gen_go, gomodcache, protobuf_java, protobuf_python, confluent_kafka = tools
    sys.path[:0] = [confluent_kafka, protobuf_python]  # for the aborted transaction below
    protos = sorted(os.path.join("proto", "healthsignals", "v1", f)
                    for f in os.listdir(os.path.join(SOURCE, "proto", "healthsignals", "v1")) if f.endswith(".proto"))
    shutil.rmtree(BUILD, ignore_errors=True)
    commands, seconds = {}, {}

    start = time.monotonic()
    os.makedirs(f"{BUILD}/python/gen")
    run(["protoc", "-I", "proto", f"--python_out={BUILD}/python/gen", *protos], cwd=SOURCE)
    commands["python"] = ["env", f"PYTHONPATH={BUILD}/python/gen:{confluent_kafka}:{protobuf_python}",
                          sys.executable, os.path.join(EXAMPLES, "python", "subscribe.py")]
    seconds["python"] = time.monotonic() - start

    start = time.monotonic()
    go = f"{BUILD}/go"
    os.makedirs(f"{go}/gen")
    for name in ("go.mod", "go.sum", "main.go"):
        shutil.copy(os.path.join(EXAMPLES, "go", name), go)
    run(["protoc", f"--plugin=protoc-gen-go={protoc_gen_go}", f"--go_out={go}/gen", "-I", "proto", *protos],
        cwd=SOURCE)
    with open(f"{go}/gen/healthsignals/contracts/go/go.mod", "w", encoding="utf-8") as f:
        f.write("module healthsignals/contracts/go\n\ngo 1.19\n\nrequire google.golang.org/protobuf v1.33.0\n")
    cache = os.path.dirname(gomodcache)
    go_env = dict(os.environ, GOMODCACHE=gomodcache, GOPATH=cache, GOCACHE=f"{cache}/build", GOTOOLCHAIN="local",
                  GOFLAGS="-modcacherw")
    run(["go", "build", "-o", f"{go}/subscribe", "."], cwd=go, env=go_env)
    run(["go", "vet", "."], cwd=go, env=go_env)
    commands["go"] = [f"{go}/subscribe"]
    seconds["go"] = time.monotonic() - start

    start = time.monotonic()
    java = f"{BUILD}/java"
    os.makedirs(f"{java}/gen")
    run(["protoc", f"--java_out={java}/gen", "-I", "proto", *protos], cwd=SOURCE)
    libs = kafka_libs()
    jars = [protobuf_java] + [os.path.join(libs, j) for j in sorted(os.listdir(libs))
                              if j.startswith(("kafka-clients-", "lz4-java-", "snappy-java-", "zstd-jni-",
                                               "slf4j-api-"))]
    sources = [os.path.join(d, f) for d, _, fs in os.walk(f"{java}/gen") for f in fs if f.endswith(".java")]
    run(["javac", "-nowarn", "-encoding", "UTF-8", "-cp", ":".join(jars), "-d", f"{java}/classes", *sources,
         os.path.join(EXAMPLES, "java", "Subscribe.java")])
    commands["java"] = ["java", "-cp", ":".join([f"{java}/classes"] + jars), "Subscribe"]
    seconds["java"] = time.monotonic() - start
    return commands, seconds


def kafka_libs():
    """The Kafka jars tools/kafka fetched (the broker of this tier runs from them): kafka-clients is one."""
    with open(os.path.join(SOURCE, "tools", "kafka"), encoding="utf-8") as f:
        version = next(line.split("=", 1)[1].strip() for line in f if line.startswith("KAFKA_VERSION="))
    cache = os.environ.get("HS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "healthsignals")
    return os.path.join(cache, f"kafka-{version}", "libs")


# --- what hsctl tail shows, and what an example prints, as the same rows ------------------------------------
def tail_rows(topic):
    """{key: [row, ...]} in log order from `hsctl tail --from-beginning`."""
    rows = {}
    for line in hsctl("tail", topic, "--from-beginning").splitlines():
        event = json.loads(line)
        data = event["data"]
        if data is None:
            row = (event["id"], "deleted")
        elif topic == "hs.alerts.v1":
            row = (event["id"], data["state"], data["severity"], data["period"], float(data.get("value", 0)),
                   float(data.get("threshold", 0)), data.get("startsAt", ""), data.get("endsAt"))
        else:
            row = (event["id"], data.get("status", "TARGET_STATE_UNSPECIFIED"), float(data.get("value", 0)),
                   float(data["target"]) if "target" in data else None)
        rows.setdefault(event["subject"], []).append(row)
    return rows


def example_rows(topic, lines):
    """{key: [row, ...]} from an example's lines (docs/subscribers.md gives their layout)."""
    rows = {}
    for line in lines:
        key, event_id, *rest = line.split(" ")
        if rest == ["deleted"]:
            row = (event_id, "deleted")
        elif topic == "hs.alerts.v1":
            state, severity, *fields = rest
            f = dict(field.split("=", 1) for field in fields)
            row = (event_id, state, severity, f["period"], float(f["value"]), float(f["threshold"]), f["startsAt"],
                   None if f["endsAt"] == "-" else f["endsAt"])
        else:
            status, *fields = rest
            f = dict(field.split("=", 1) for field in fields)
            row = (event_id, status, float(f["value"]), None if f["target"] == "-" else float(f["target"]))
        rows.setdefault(key, []).append(row)
    return rows


def differences(got, want):
    out = []
    for key in sorted(set(got) | set(want)):
        if got.get(key) != want.get(key):
            out.append(f"{key}: example {got.get(key)}, hsctl tail {want.get(key)}")
    return out


# --- the topics' contents -------------------------------------------------------------------------------------
def publish(events):
    hsctl("publish", "hs.indicators.v1", "--ndjson", "-", stdin="".join(json.dumps(e) + "\n" for e in events))


def fill_topics():
    rules = [
        {"id": THRESHOLD_RULE, "service": "targets", "subject": INDICATOR, "kind": "THRESHOLD",
         "direction": "HIGHER_IS_BETTER", "severity": "WARNING", "forPeriods": 1, "threshold": 80,
         "summary": "subscriber guide test: at least 80"},
        # Its baseline period has no fact: every status is NO_BASELINE, without a target.
        {"id": BASELINE_RULE, "service": "targets", "subject": INDICATOR, "kind": "BASELINE_MARGIN",
         "direction": "HIGHER_IS_BETTER", "severity": "WARNING", "forPeriods": 1, "baselinePeriods": ["2019Q1"],
         "margin": 2, "summary": "subscriber guide test: no baseline"},
    ]
    path = os.path.join(work, "rules.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rules, f)
    hsctl("topics", "create")
    hsctl("rules", "apply", path)
    service = hstest.Service(TARGETS, "targets", f"hs-subscribers-test-{RUN}", BOOTSTRAP, work, RUN)
    service.wait_ready(timeout=120)
    publish([hstest.indicator_fact(INDICATOR, "DK", "2023Q1", 70, "PERCENT"),   # missed: FIRING
             hstest.indicator_fact(INDICATOR, "DK", "2023Q2", 85, "PERCENT"),   # met: RESOLVED
             hstest.indicator_fact(INDICATOR, "DK", "2023Q3", 90, "PERCENT")])
    deleted = f"{INDICATOR}/national:DK/2023Q3"
    publish([{"specversion": "1.0", "id": "", "source": "test_subscribers", "subject": deleted,
              "type": "healthsignals.v1.IndicatorObservation", "data": None}])
    q3 = [f"{INDICATOR}/{rule}/national:DK/2023Q3" for rule in (THRESHOLD_RULE, BASELINE_RULE)]

    def settled():
        rows = tail_rows("hs.target-status.v1")
        return all(rows.get(key, [("", "")])[-1][1] == "deleted" for key in q3)

    hstest.wait_for(settled, lambda: f"the statuses of the deleted fact {deleted} were not deleted",
                    timeout=120)
    code, _ = service.stop()
    if code != 0:
        fail(f"targets: SIGTERM: exit {code}")
    abort_a_transaction()


def abort_a_transaction():
    """A valid record on each topic in a transaction that is aborted: in the log, but not committed."""
    from confluent_kafka import Producer
    from healthsignals.v1 import alert_pb2, target_status_pb2  # noqa: F401 (generated into BUILD)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": f"hs-subscribers-test-{RUN}"})
    producer.init_transactions(60)
    producer.begin_transaction()
    status = target_status_pb2.TargetStatus(rule="aborted", subject=INDICATOR, period="2023Q4", value=1, target=2)
    alert = alert_pb2.Alert(fingerprint="00000000000000ab", state=alert_pb2.FIRING, rule="aborted")
    producer.produce("hs.target-status.v1", key=f"{INDICATOR}/aborted/national:DK/2023Q4",
                     value=status.SerializeToString(), headers=[("ce_id", b"aborted")])
    producer.produce("hs.alerts.v1", key="00000000000000ab", value=alert.SerializeToString(),
                     headers=[("ce_id", b"aborted")])
    producer.flush(60)
    producer.abort_transaction(60)


def check_contents(want):
    """That the topics hold what the examples must show, so that their agreement with hsctl tail means
    something: a status with a target and one without, the two statuses of the deleted fact deleted, and
    this run's alert FIRING for 2023Q1 (70 < 80), then RESOLVED in 2023Q2 (85)."""
    ours = {key: rows for key, rows in want["hs.target-status.v1"].items() if key.startswith(INDICATOR + "/")}

    def last(key):
        return (ours.get(key) or [()])[-1][1:]

    events = [json.loads(line) for line in hsctl("tail", "hs.alerts.v1", "--from-beginning").splitlines()]
    states = [e["data"]["state"] for e in events if (e["data"] or {}).get("rule") == THRESHOLD_RULE]
    if last(f"{INDICATOR}/{THRESHOLD_RULE}/national:DK/2023Q1") != ("MISSED", 70.0, 80.0) \
            or last(f"{INDICATOR}/{BASELINE_RULE}/national:DK/2023Q1") != ("NO_BASELINE", 70.0, None) \
            or sum(rows[-1][1] == "deleted" for rows in ours.values()) != 2 \
            or states[:1] != ["FIRING"] or states[-1:] != ["RESOLVED"]:
        fail(f"the topics lack what the examples must show: statuses {ours}, alert states {states}")


# --- the test -------------------------------------------------------------------------------------------------
commands, build_seconds = build()
ok("built: " + ", ".join(f"{lang} {s:.1f} s" for lang, s in build_seconds.items()))
sys.path.insert(0, f"{BUILD}/python/gen")
fill_topics()

want = {topic: tail_rows(topic) for topic in TOPICS}
check_contents(want)
if any("aborted" in key for topic in TOPICS for key in want[topic]):
    fail("hsctl tail (read_committed) shows the aborted transaction")
ok(f"topics: {sum(map(len, want['hs.target-status.v1'].values()))} statuses and "
   f"{sum(map(len, want['hs.alerts.v1'].values()))} alert records committed, tombstones among them, "
   f"and an aborted transaction on each")

for lang, command in commands.items():
    for topic in TOPICS:
        start = time.monotonic()
        proc = subprocess.run([*command, BOOTSTRAP, topic], capture_output=True, text=True, timeout=300)
        took = time.monotonic() - start
        if proc.returncode != 0:
            fail(f"{lang} {topic}: exit {proc.returncode}: {proc.stderr[-2000:]}")
            continue
        try:
            got = example_rows(topic, proc.stdout.splitlines())
        except (ValueError, KeyError) as e:
            fail(f"{lang} {topic}: a line not in the documented layout ({e!r}):\n{proc.stdout[:2000]}")
            continue
        diff = differences(got, want[topic])
        if diff:
            fail(f"{lang} {topic}: differs from hsctl tail in {len(diff)} keys:\n  " + "\n  ".join(diff[:10]))
        else:
            ok(f"{lang} {topic}: {sum(map(len, got.values()))} records of {len(got)} keys, as hsctl tail "
               f"shows them ({took:.1f} s)")

shutil.rmtree(work, ignore_errors=True)
finish("test_subscribers")
