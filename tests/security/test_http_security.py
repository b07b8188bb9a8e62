"""The HTTP endpoint's TLS and bearer token (common/io/src/http.c, docs/security.md), on a real service (count)
with no broker (its endpoint answers whatever Kafka does), at debug level:

- HS_HTTP_TLS_CERT_FILE/HS_HTTP_TLS_KEY_FILE (made here with openssl): HTTPS verified against the test CA;
  plain HTTP gets no answer;
- HS_HTTP_TOKEN_FILE: /metrics without the token, or with a wrong one, is 401 with WWW-Authenticate; with
  it, the metrics; /healthz and /readyz need none (probes);
- an endpoint bound beyond loopback without a token is warned of; a token too short, or a certificate without
  its key, stops the start with a clear error;
- the token appears in no output (the service's debug log, the responses).

usage: test_http_security.py COUNT_BINARY
"""
import http.client
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from hstest import fail, finish, ok  # noqa: E402

COUNT = sys.argv[1]
work = tempfile.mkdtemp(prefix="hs-http-security-")
TOKEN = "tok-" + os.urandom(16).hex()
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HS_")}
BASE_ENV.update({"HS_LOG_LEVEL": "debug", "HS_BOOTSTRAP_SERVERS": "127.0.0.1:1"})


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=work)


openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
        "/CN=test CA", "-keyout", "ca.key", "-out", "ca.pem")
openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
with open(os.path.join(work, "san.ext"), "w") as f:
    f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "server.pem")
token_file = os.path.join(work, "token")
with open(token_file, "w") as f:
    f.write(TOKEN + "\n")
outputs = []


def start(name, env, addr="127.0.0.1:0"):
    log = open(os.path.join(work, f"{name}.log"), "w+")
    proc = subprocess.Popen([COUNT, "--http-addr", addr], stdout=log, stderr=log, env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r'"msg":"http endpoint listening","port":(\d+)', log.read())
        if m:
            return proc, log, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    return proc, log, None


def stop(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.seek(0)
    text = log.read()
    outputs.append(text)
    return text


def get(port, path, token=None, tls=True):
    context = ssl.create_default_context(cafile=os.path.join(work, "ca.pem"))
    conn = (http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10) if tls
            else http.client.HTTPConnection("127.0.0.1", port, timeout=5))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read().decode()
    outputs.append(body)
    return r.status, dict(r.getheaders()), body


env = dict(BASE_ENV, HS_HTTP_TLS_CERT_FILE=os.path.join(work, "server.pem"),
           HS_HTTP_TLS_KEY_FILE=os.path.join(work, "server.key"), HS_HTTP_TOKEN_FILE=token_file)
proc, log, port = start("tls", env)
if port is None:
    log.seek(0)
    raise SystemExit(f"FAIL: count with TLS and a token did not start:\n{log.read()[-3000:]}")
try:
    status, headers, body = get(port, "/metrics")
    if status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"):
        ok("HTTPS /metrics without the token: 401 with WWW-Authenticate: Bearer")
    else:
        fail(f"/metrics without the token: {status} {headers} {body[:200]}")
    status, _, body = get(port, "/metrics", token=TOKEN[:-1] + "x")
    if status != 401:
        fail(f"/metrics with a wrong token: {status}")
    status, _, body = get(port, "/metrics", token=TOKEN)
    if status == 200 and "hs_build_info" in body:
        ok("HTTPS /metrics with the bearer token: the metrics (certificate verified against the test CA)")
    else:
        fail(f"/metrics with the token: {status} {body[:200]}")
    for path in ("/healthz", "/readyz"):
        status, _, _ = get(port, path)
        if status not in (200, 503):
            fail(f"{path} without a token: {status} (probes need none)")
    ok("/healthz and /readyz answer without a token")
    try:
        get(port, "/healthz", tls=False)
        fail("plain HTTP was answered on the HTTPS endpoint")
    except (http.client.HTTPException, OSError):
        ok("plain HTTP gets no answer from the HTTPS endpoint")
finally:
    text = stop(proc, log)
if '"tls":true' not in text or '"token":true' not in text:
    fail("the start-up log does not say TLS and the token are on")

# Beyond loopback without a token: served, with a warning.
proc, log, port = start("open", dict(BASE_ENV), addr=":0")
text = stop(proc, log)
if port and "reachable beyond loopback and /metrics needs no token" in text:
    ok("an endpoint bound to every interface without a token is warned of")
else:
    fail(f"no warning for an open endpoint:\n{text[-2000:]}")

# Refused configurations: a clear error, exit 6.
for name, extra, want in [
    ("short token", {"HS_HTTP_TOKEN": "short"}, "too few to be a secret"),
    ("cert without key", {"HS_HTTP_TLS_CERT_FILE": os.path.join(work, "server.pem")}, "HS_HTTP_TLS_KEY_FILE"),
    ("token twice", {"HS_HTTP_TOKEN": TOKEN, "HS_HTTP_TOKEN_FILE": token_file}, "set one"),
]:
    proc = subprocess.run([COUNT, "--http-addr", "127.0.0.1:0"], env=dict(BASE_ENV, **extra), capture_output=True,
                          text=True, timeout=20)
    outputs.append(proc.stdout + proc.stderr)
    if proc.returncode == 6 and want in proc.stdout + proc.stderr:
        ok(f"{name}: refused at start (exit 6)")
    else:
        fail(f"{name}: exit {proc.returncode}, output:\n{(proc.stdout + proc.stderr)[-1500:]}")

leaks = [i for i, text in enumerate(outputs) if TOKEN in text]
if leaks:
    fail(f"the token appears in {len(leaks)} outputs")
else:
    ok(f"the token appears in none of {len(outputs)} outputs (debug logs, responses, errors)")
finish("http_security")
