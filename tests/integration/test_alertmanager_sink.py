#!/usr/bin/env python3
"""The alertmanager sink's side of Alertmanager's contract, against a recording stand-in for Alertmanager (an
HTTP server in this process that keeps every POST): alerts published straight to hs.alerts.v1 with hsctl, the
sink with a 1 s resend interval and basic auth. What Alertmanager receives is checked POST by POST:

- a FIRING alert arrives at POST /api/v2/alerts, as JSON, with basic auth, its labels (an invalid label name
  mapped: team-name -> team_name), annotations, generatorURL, and endsAt after the POST and at most four resend
  intervals ahead; it is re-sent every interval;
- once RESOLVED it is sent with its own endsAt exactly `resolved-sends` (3) times, then no more, while the
  other alerts keep being re-sent;
- POSTs answered 500 are retried (and counted) until accepted;
- a tombstone resolves its alert: sent with endsAt now `resolved-sends` times, then no more;
- started while no broker answers, the sink stays up, /readyz says "not ready: broker unreachable", and once
  the broker is reachable it rebuilds the table and sends the alerts;
- restarted, the sink sends every FIRING alert again, and not the alert that resolved long before;
- over https, the certificate is verified with --tls-ca-file (refused without it) and a bearer token sent.

usage: test_alertmanager_sink.py SINK HSCTL
"""
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

SINK, HSCTL = sys.argv[1:3]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
work = tempfile.mkdtemp(prefix="hs-alertmanager-sink-test-")
RUN = os.getpid()
# Fingerprints of this run: 16 lowercase hex digits.
FP_A, FP_B = f"{RUN:012x}000a", f"{RUN:012x}000b"


class Recorder(BaseHTTPRequestHandler):
    """Keeps every POST as (time, path, headers, body) and answers 200, or 500 while `failing` > 0."""
    posts, lock, failing = [], threading.Lock(), 0

    def do_POST(self):  # noqa: N802 (the http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Recorder.lock:
            Recorder.posts.append((time.time(), self.path, dict(self.headers), json.loads(body)))
            status = 500 if Recorder.failing > 0 else 200
            Recorder.failing = max(0, Recorder.failing - 1)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def posts_since(n):
    with Recorder.lock:
        return list(Recorder.posts[n:])


def post_count():
    with Recorder.lock:
        return len(Recorder.posts)


def alert_event(fingerprint, state, labels, ends_at=""):
    data = {"fingerprint": fingerprint, "state": state, "severity": "WARNING", "rule": "sink.test", "service": "test",
            "labels": labels, "annotations": {"summary": f"test alert {fingerprint}"},
            "startsAt": "2023-01-01T00:00:00Z"}
    if ends_at:
        data["endsAt"] = ends_at
    return {"specversion": "1.0", "id": "", "source": "test_alertmanager_sink", "type": "healthsignals.v1.Alert",
            "data": data}


def publish(*events, tombstone=None):
    path = os.path.join(work, f"alerts-{time.monotonic_ns()}.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
        if tombstone:
            f.write(json.dumps({"specversion": "1.0", "id": "", "source": "test_alertmanager_sink",
                                "type": "healthsignals.v1.Alert", "subject": tombstone, "data": None}) + "\n")
    proc = subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "publish", "hs.alerts.v1", "--ndjson", path],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        fail(f"publish: {proc.stderr}")


AUTH = ("--basic-auth-user", "hs", "--basic-auth-password", "s3cret")


def start_sink(am_url, name, extra=AUTH):
    sink = hstest.Service.command(
        [SINK, "--bootstrap-servers", BOOTSTRAP, "--http-addr", "127.0.0.1:0", "--alertmanager-urls", am_url,
         "--resend-interval", "1s", "--generator-url", "http://example.invalid/{fingerprint}", *extra], name, work)
    sink.wait_ready(timeout=60)
    return sink


def alert_in(post, fingerprint):
    for a in post[3]:
        if a.get("generatorURL", "").endswith(fingerprint):
            return a
    return None


def epoch(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_posts(predicate, what, since, timeout=30):
    """Waits until the POSTs after index `since` satisfy predicate(posts); returns them."""
    hstest.wait_for(lambda: predicate(posts_since(since)), lambda: f"{what}: {len(posts_since(since))} POSTs since",
                    timeout=timeout, interval=0.1)
    return posts_since(since)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    am_url = f"http://127.0.0.1:{server.server_address[1]}"
    subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "topics", "create"], capture_output=True, timeout=120)
    sink = start_sink(am_url, "sink")

    labels_a = {"alertname": "SinkTestA", "team-name": "waiting"}
    labels_b = {"alertname": "SinkTestB"}
    mark = post_count()
    publish(alert_event(FP_A, "FIRING", labels_a), alert_event(FP_B, "FIRING", labels_b))
    posts = wait_posts(lambda ps: any(alert_in(p, FP_A) and alert_in(p, FP_B) for p in ps), "A and B FIRING", mark)
    first = next((p for p in posts if alert_in(p, FP_A)), None)
    if first:
        at, path, headers, _ = first
        a = alert_in(first, FP_A)
        want_auth = "Basic " + base64.b64encode(b"hs:s3cret").decode()
        checks = {
            "path": path == "/api/v2/alerts",
            "content type": headers.get("Content-Type") == "application/json",
            "basic auth": headers.get("Authorization") == want_auth,
            "labels (team-name mapped)": a["labels"] == {"alertname": "SinkTestA", "team_name": "waiting"},
            "annotations": a.get("annotations") == {"summary": f"test alert {FP_A}"},
            "startsAt": a.get("startsAt") == "2023-01-01T00:00:00.000Z",
            "endsAt in the future, at most 4 intervals": at - 1 < epoch(a["endsAt"]) <= at + 4.5,
        }
        bad = [k for k, v in checks.items() if not v]
        if bad:
            fail(f"the FIRING POST: {', '.join(bad)} wrong: {path} {headers} {a}")
        else:
            ok(f"FIRING alert POSTed to /api/v2/alerts with basic auth, mapped labels {a['labels']}, endsAt "
               f"{epoch(a['endsAt']) - at:.1f} s ahead")
    mark = post_count()
    posts = wait_posts(lambda ps: sum(1 for p in ps if alert_in(p, FP_A)) >= 3, "re-sends of A", mark)
    times = [p[0] for p in posts if alert_in(p, FP_A)][:3]
    ok(f"FIRING alert re-sent: 3 POSTs in {times[-1] - times[0]:.1f} s (interval 1 s)")

    # --- RESOLVED: sent with its endsAt exactly three times, then no more ---------------------------------
    mark = post_count()
    publish(alert_event(FP_A, "RESOLVED", labels_a, ends_at="2023-07-01T00:00:00Z"))
    resolved_at = time.time()
    def resolved_a(p):
        a = alert_in(p, FP_A)
        return a if a and a["endsAt"].startswith("2023-07-01") else None

    posts = wait_posts(lambda ps: sum(1 for p in ps if resolved_a(p)) >= 3
                       and sum(1 for p in ps if alert_in(p, FP_B)) >= 8, "A RESOLVED and B re-sent", mark, 60)
    resolved = [resolved_a(p) for p in posts if resolved_a(p)]
    if len(resolved) != 3:
        fail(f"RESOLVED alert sent {len(resolved)} times over {len(posts)} POSTs, want 3 (resolved-sends)")
    else:
        ok(f"RESOLVED alert sent with endsAt {resolved[0]['endsAt']} exactly 3 times over {len(posts)} POSTs")

    # --- POSTs refused: retried until accepted -----------------------------------------------------------
    before_errors = sink.metric("hs_alertmanager_posts_total", alertmanager=am_url, result="http_error") or 0
    with Recorder.lock:
        Recorder.failing = 3
    mark = post_count()
    posts = wait_posts(lambda ps: len(ps) >= 4, "POSTs after three refused", mark)
    errors = sink.metric("hs_alertmanager_posts_total", alertmanager=am_url, result="http_error")
    retries = sink.metric("hs_alertmanager_retries_total", alertmanager=am_url)
    if errors != before_errors + 3 or not retries or retries < 3 or not alert_in(posts[3], FP_B):
        fail(f"three POSTs answered 500: http_error {errors} (before {before_errors}), retries {retries}")
    else:
        ok(f"three POSTs answered 500, then retried and accepted: http_error +3, retries {retries:.0f}")

    # --- a tombstone resolves the alert in Alertmanager: endsAt now, `resolved-sends` times, then no more ------
    mark = post_count()
    publish(tombstone=FP_B)
    deleted_at = time.time()
    hstest.wait_for(lambda: sink.metric("hs_alertmanager_alerts") == 1,
                    lambda: f"B still held after its tombstone: {sink.metric('hs_alertmanager_alerts')} alerts",
                    timeout=30)

    def resolved_b(p):
        b = alert_in(p, FP_B)
        return b if b and epoch(b["endsAt"]) <= p[0] + 0.5 else None

    wait_posts(lambda ps: sum(1 for p in ps if resolved_b(p)) >= 3, "B resolved after its tombstone", mark)
    time.sleep(3)  # three resend intervals more: nothing else is due, so no POST at all is right
    posts = posts_since(mark)
    firing_after = [p for p in posts if alert_in(p, FP_B) and not resolved_b(p) and p[0] > deleted_at + 1]
    resolved = [resolved_b(p) for p in posts if resolved_b(p)]
    if len(resolved) != 3 or firing_after or not all(deleted_at - 1 <= epoch(b["endsAt"]) for b in resolved):
        fail(f"tombstone of FIRING B: sent RESOLVED {len(resolved)} times (want 3, endsAt at the deletion), "
             f"FIRING {len(firing_after)} times after it, over {len(posts)} POSTs")
    else:
        ok(f"tombstone of FIRING B: sent RESOLVED with endsAt {resolved[0]['endsAt']} exactly 3 times over "
           f"{len(posts)} POSTs, then no more for 3 s")

    # --- restarted: every FIRING alert again, not the old resolution -------------------------------------
    code, _ = sink.stop()
    if code != 0:
        fail(f"sink: SIGTERM: exit {code}")
    publish(alert_event(FP_B, "FIRING", labels_b))
    time.sleep(max(0.0, resolved_at + 5 - time.time()))  # A resolved more than four intervals ago
    mark = post_count()
    sink = start_sink(am_url, "sink-restarted")
    posts = wait_posts(lambda ps: len(ps) >= 1, "a POST after the restart", mark)
    if not alert_in(posts[0], FP_B) or alert_in(posts[0], FP_A):
        fail(f"first POST after the restart: {posts[0][3]}")
    else:
        ok("restarted: B (FIRING) sent again at once; A, resolved long before, not")
    code, _ = sink.stop()
    if code != 0:
        fail(f"sink: SIGTERM: exit {code}")
    tls(am_url)
    broker_late(am_url)
    publish(tombstone=FP_A)
    publish(tombstone=FP_B)
    server.shutdown()


def broker_late(am_url):
    """Started while nothing answers at its bootstrap address (a port a forwarder to the broker opens only 8 s
    later, after the first metadata attempt has timed out): the sink stays up and not ready, saying why, then
    rebuilds the table and sends B."""
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        late_port = s.getsockname()[1]
    sink = hstest.Service.command(
        [SINK, "--bootstrap-servers", f"127.0.0.1:{late_port}", "--http-addr", "127.0.0.1:0",
         "--alertmanager-urls", am_url, "--resend-interval", "1s", "--generator-url",
         "http://example.invalid/{fingerprint}"], "sink-late", work)
    time.sleep(8)
    status, body = sink.get("/readyz") if sink.port else (0, "")
    if sink.proc.poll() is not None or status != 503 or body.strip() != "not ready: broker unreachable":
        fail(f"no broker at start: exit {sink.proc.poll()}, /readyz {status} {body!r}")
    else:
        ok(f"no broker at start: still up after 8 s, /readyz 503 {body.strip()!r}")
    listener = socket.create_server(("127.0.0.1", late_port))
    threading.Thread(target=hstest.forward, args=(listener, host, int(port)), daemon=True).start()
    mark = post_count()
    opened = time.time()
    if sink.wait_ready(timeout=60):
        wait_posts(lambda ps: any(alert_in(p, FP_B) for p in ps), "B sent once the broker was reachable", mark)
        ok(f"broker reachable: ready and sending {time.time() - opened:.1f} s later")
    code, _ = sink.stop()
    if code != 0:
        fail(f"sink-late: SIGTERM: exit {code}")
    listener.close()


def tls(plain_url):
    """An https Alertmanager with a certificate of its own CA: verified with --tls-ca-file (and a bearer token
    sent), refused without it."""
    cert, key = os.path.join(work, "am.crt"), os.path.join(work, "am.key")
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                          capture_output=True, text=True, timeout=120)
    if made.returncode != 0:
        fail(f"openssl could not make a test certificate: {made.stderr}")
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    mark = post_count()
    sink = start_sink(url, "sink-tls", ("--tls-ca-file", cert, "--bearer-token", "t0ken"))
    posts = wait_posts(lambda ps: len(ps) >= 1, "a POST over TLS", mark)
    if posts and posts[0][2].get("Authorization") == "Bearer t0ken" and alert_in(posts[0], FP_B):
        ok("https with --tls-ca-file: POST accepted, with the bearer token")
    else:
        fail(f"https POST: {posts[:1]}")
    sink.stop()
    sink = start_sink(url, "sink-tls-unverified", ())
    hstest.wait_for(lambda: (sink.metric("hs_alertmanager_posts_total", alertmanager=url,
                                         result="transport_error") or 0) >= 1,
                    lambda: "a certificate of an unknown CA was not refused", timeout=30)
    ok("https without the CA: refused as a transport error")
    sink.stop()
    server.shutdown()


main()
finish("test_alertmanager_sink")
