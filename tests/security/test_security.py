"""Security against a real Kafka broker in secure mode (tools/kafka with HS_LOCAL_KAFKA_SECURITY=1: SASL_SSL with
SCRAM, SSL with client certificates, Kafka's StandardAuthorizer), every program at debug level:

- SASL_SSL: the admin creates the topics and publishes rules and facts with hsctl, its password handed over
  in a file (HS_KAFKA_SASL_PASSWORD_FILE);
- least privilege (deploy/kafka/acls from `hsctl acls`): the targets service whose ACLs lack one of its
  outputs stops with a clear fatal error and leaves nothing on any output; with the missing ACL added, the
  same service computes its outputs;
- mTLS: a read-only principal (client certificate, its key's password in a file) tails an output, and its
  publish is refused with a clear error;
- redaction: no password appears in any output of any of these runs (debug logs of the service and of
  hsctl, librdkafka's own debug output, /metrics, error messages, the dead letters), nor in the service's
  command line or environment.

usage: test_security.py TARGETS HSCTL SOURCE_DIR   (HS_BUILD_DIR: the secure broker's build directory)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

TARGETS, HSCTL, SOURCE = sys.argv[1:4]
KAFKA = os.path.join(SOURCE, "tools", "kafka")
ACLS = os.path.join(SOURCE, "deploy", "kafka", "acls")
RULES = os.path.join(SOURCE, "deploy", "rules", "akutplan.json")
CSV = os.path.join(SOURCE, "tests", "fixtures", "ventetid-somatik.csv")
STATE = os.path.join(os.environ["HS_BUILD_DIR"], "kafka")
work = tempfile.mkdtemp(prefix="hs-security-test-")
outputs = []  # (what, text) of every program run: all are searched for the secrets at the end

# Only what the test sets reaches the programs: no HS_* or Kafka setting of the caller's.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HS_") or k.startswith("HS_LOCAL_KAFKA_")}
BASE_ENV["HS_BUILD_DIR"] = os.environ["HS_BUILD_DIR"]
# librdkafka's own debug output too (security: the SASL/SSL handshakes), through our log at debug level.
DEBUG = {"HS_LOG_LEVEL": "debug", "HS_KAFKA_DEBUG": "security,broker,protocol"}


def client_env(mode, name):
    proc = subprocess.run([KAFKA, "client-env", mode, name], capture_output=True, text=True, env=BASE_ENV,
                          timeout=30)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: tools/kafka client-env {mode} {name}: {proc.stderr}")
    env = dict(BASE_ENV)
    env.update(line.split("=", 1) for line in proc.stdout.splitlines())
    env.update(DEBUG)
    return env


def secret(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


ADMIN = client_env("sasl", "admin")
SERVICE = client_env("sasl", "targets")
READER = client_env("mtls", "reader")
SECRETS = {name: secret(os.path.join(STATE, "secrets", f"{name}.password")) for name in ("admin", "targets")}
SECRETS["reader key"] = secret(os.path.join(STATE, "secrets", "reader.key.password"))


def hsctl(env, *args, stdin=None, timeout=120):
    proc = subprocess.run([HSCTL, "--timeout", "20", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout)
    outputs.append((f"hsctl {' '.join(args)}", proc.stdout + proc.stderr))
    return proc


def acls(*args, stdin=None):
    env = dict(BASE_ENV, HSCTL=HSCTL, KAFKA_ACLS=f"{KAFKA} acls")
    proc = subprocess.run([ACLS, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)
    outputs.append((f"acls {' '.join(args)}", proc.stdout + proc.stderr))
    if proc.returncode != 0:
        fail(f"deploy/kafka/acls {' '.join(args)}: {proc.stderr[-2000:]}")
    return proc


def start_targets(name):
    log_path = os.path.join(work, f"{name}.log")
    log = open(log_path, "w+")
    proc = subprocess.Popen([TARGETS, "--instance-id", name, "--http-addr", "127.0.0.1:0",
                             "--commit-interval", "50ms"], stdout=log, stderr=log, env=SERVICE)
    return proc, log, log_path


def read_log(log):
    log.seek(0)
    return log.read()


def http_port(log, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        m = re.search(r'"msg":"http endpoint listening","port":(\d+)', read_log(log))
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    return None


def committed(topic, env=ADMIN):
    proc = hsctl(env, "tail", topic, "--from-beginning")
    if proc.returncode != 0:
        fail(f"tail {topic}: {proc.stderr[-1000:]}")
        return []
    denied = [line for line in proc.stderr.splitlines() if re.search(r"authori[sz]ation failed", line, re.I)]
    if denied:
        fail(f"tail {topic} as {env.get('HS_KAFKA_SASL_USERNAME', 'the mTLS principal')}: {denied[0][:300]}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


started = time.time()

# --- SASL_SSL as admin: topics, rules, facts -----------------------------------------------------------------
proc = hsctl(ADMIN, "topics", "create")
if proc.returncode != 0:
    raise SystemExit(f"FAIL: hsctl topics create over SASL_SSL: {proc.stderr[-3000:]}")
ok("SASL_SSL (SCRAM, password from a file): the admin created the topics")
if hsctl(ADMIN, "rules", "apply", RULES).returncode != 0:
    fail("rules apply over SASL_SSL")
if hsctl(ADMIN, "publish", "hs.indicators.v1", "--csv", CSV).returncode != 0:
    fail("publish over SASL_SSL")

# --- least privilege: targets without WRITE on hs.target-status.v1 ------------------------------------------
generated = subprocess.run([HSCTL, "acls", "targets"], capture_output=True, text=True, check=True).stdout
missing = [line for line in generated.splitlines() if line.split("\t")[-1] == "hs.target-status.v1"]
if len(missing) != 1 or missing[0].split("\t")[1] != "WRITE":
    fail(f"hsctl acls targets should hold one WRITE on hs.target-status.v1:\n{generated}")
acls("apply", "-", stdin="\n".join(line for line in generated.splitlines() if line not in missing) + "\n")
acls("apply", "reader")

proc, log, _ = start_targets("denied")
try:
    code = proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    proc.kill()
    code = None
text = read_log(log)
outputs.append(("targets without its output ACL", text))
fatal = [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"level":"error"' in line]
if code is None:
    fail(f"targets without WRITE on hs.target-status.v1 kept running:\n{text[-3000:]}")
elif code == 0:
    fail("targets without WRITE on hs.target-status.v1 exited 0")
elif not any("hs.target-status.v1" in json.dumps(e) and "authoriz" in json.dumps(e).lower() for e in fatal):
    fail(f"targets exited {code} without a clear error naming the denied topic:\n{text[-3000:]}")
else:
    ok(f"targets without WRITE on hs.target-status.v1 stopped (exit {code}) naming the topic")
for topic in ("hs.target-status.v1", "hs.alerts.v1"):
    records = committed(topic)
    if records:
        fail(f"the denied run left {len(records)} committed records on {topic}")
ok("the denied run left nothing on hs.target-status.v1 or hs.alerts.v1")

# --- the missing ACL added: the service computes its outputs -----------------------------------------------
acls("apply", "-", stdin="\n".join(missing) + "\n")
proc, log, log_path = start_targets("allowed")
port = http_port(log, proc)
status = []
try:
    if port is None:
        fail(f"targets did not start:\n{read_log(log)[-3000:]}")
    deadline = time.time() + 60
    while time.time() < deadline and not status:
        status = committed("hs.target-status.v1")
        time.sleep(0.5)
    if status:
        ok(f"with its ACLs complete, targets wrote {len(status)} statuses over SASL_SSL")
    else:
        fail(f"targets wrote no status:\n{read_log(log)[-3000:]}")
    if port:
        for path in ("/metrics", "/readyz", "/healthz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                outputs.append((f"targets {path}", r.read().decode()))
        try:
            with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
                outputs.append(("targets command line (ps)", f.read().decode(errors="replace")))
            with open(f"/proc/{proc.pid}/environ", "rb") as f:
                outputs.append(("targets environment", f.read().decode(errors="replace")))
        except OSError as e:
            fail(f"reading /proc/{proc.pid}: {e}")
finally:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    outputs.append(("targets log", read_log(log)))

# --- mTLS, read-only: tail yes, publish no --------------------------------------------------------------------
tailed = committed("hs.target-status.v1", READER)
if status and len(tailed) == len(status):
    ok(f"mTLS (client certificate, key password from a file): the read-only principal tailed {len(tailed)} records")
else:
    fail(f"the read-only principal tailed {len(tailed)} records, the admin {len(status)}")
proc = hsctl(READER, "publish", "hs.indicators.v1", "--csv", CSV)
if proc.returncode == 0:
    fail("the read-only principal could publish")
elif not re.search(r"not delivered to hs.indicators.v1: .*not authorized", proc.stderr):
    fail(f"the read-only principal's publish failed without a clear error:\n{proc.stderr[-2000:]}")
else:
    ok(f"the read-only principal's publish is refused: {proc.stderr.strip().splitlines()[-1][:200]}")
committed("hs.dlq.v1")  # the dead letters' headers are searched too

# --- redaction --------------------------------------------------------------------------------------------------
if not any("SASL authentication" in t or "SCRAM" in t for _, t in outputs):
    fail("the debug output shows no SASL handshake: the redaction check would prove nothing")
leaks = [(what, name) for what, text in outputs for name, value in SECRETS.items() if value in text]
for what, name in leaks:
    fail(f"the {name} password appears in: {what}")
if not leaks:
    size = sum(len(t) for _, t in outputs)
    ok(f"no secret in {len(outputs)} outputs ({size // 1024} KiB of debug logs, /metrics, errors, dead letters)")

print(f"security test took {time.time() - started:.1f} s")
finish("security")
