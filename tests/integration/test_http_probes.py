#!/usr/bin/env python3
"""The service's HTTP endpoint under conditions that used to silence it, with the count service: while
start-up is blocked on an unreachable broker (the loop not running yet) the probes answer at once — /healthz
200, /readyz 503 naming the broker ("connecting to Kafka", "broker unreachable"), /metrics with hs_ready 0; and a running service keeps answering after bursts
of idle connections and under a slowloris (64 connections trickling a header line every 2 s). Prints the
slowest answer of each part.

usage: test_http_probes.py COUNT_BINARY
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

COUNT = sys.argv[1]
BOOTSTRAP, RUN, work = hstest.environment("http-probes")


def get(port, path, timeout=10):
    """(status, body, seconds) of one GET on its own connection; status 0 when there was no answer."""
    start = time.time()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return 0, "", time.time() - start
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    status = int(head.split(" ")[1]) if head.startswith("HTTP/1.1 ") else 0
    return status, body, time.time() - start


def dead_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- start-up blocked on an unreachable broker -------------------------------------------------------------
svc = hstest.Service(COUNT, "unreachable", f"hs-probes-{RUN}", f"127.0.0.1:{dead_port()}", work, RUN)
slowest = 0.0
for _ in range(5):
    for path, want_status, want_texts in (("/healthz", 200, ("ok",)),
                                          ("/readyz", 503, ("connecting to Kafka", "broker unreachable")),
                                          ("/metrics", 200, ("hs_ready 0",))):
        status, body, seconds = get(svc.port, path)
        slowest = max(slowest, seconds)
        if status != want_status or not any(t in body for t in want_texts):
            fail(f"start-up without a broker: {path} answered {status} {body[:200]!r} after {seconds:.1f} s, "
                 f"want {want_status} with one of {want_texts!r}")
    time.sleep(0.5)
svc.log.seek(0)
if svc.proc.poll() is not None or '"msg":"running"' in svc.log.read():
    fail("the service was not blocked in its start-up while probed: the check proves nothing")
svc.proc.kill()
svc.proc.wait()
if not hstest.failures:
        ok(f"start-up blocked on an unreachable broker: /healthz 200, /readyz 503, /metrics 200; "
       f"slowest answer {slowest:.3f} s")

# --- a running service: bursts and a slowloris ----------------------------------------------------------------
svc = hstest.Service(COUNT, "loaded", f"hs-probes-{RUN}", BOOTSTRAP, work, RUN)
svc.wait_ready()
failures_before = hstest.failures
slowest = 0.0
for n in (200, 1000, 200):
    conns = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", svc.port))
        except BlockingIOError:
            pass
        conns.append(s)
    time.sleep(0.5)  # let them reach the listen queue; the check below holds however many made it
    for s in conns:
        s.close()
    status, body, seconds = get(svc.port, "/readyz")
    slowest = max(slowest, seconds)
    if status != 200:
        fail(f"after a burst of {n} idle connections: /readyz answered {status} {body!r}")
if hstest.failures == failures_before:
    ok(f"bursts of 200, 1000, 200 idle connections: /readyz answered after each; slowest {slowest:.3f} s")
failures_before = hstest.failures

stop = threading.Event()
opened = threading.Event()


def slowloris():
    socks = []
    for _ in range(64):
        s = socket.create_connection(("127.0.0.1", svc.port), timeout=10)
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        socks.append(s)
    opened.set()
    while not stop.wait(2):
        for s in socks:
            try:
                s.sendall(b"X-Slow: yes\r\n")
            except OSError:
                pass  # dropped by the server: as it should be
    for s in socks:
        s.close()


thread = threading.Thread(target=slowloris)
thread.start()
opened.wait(30)
slowest = 0.0
for _ in range(5):
    status, body, seconds = get(svc.port, "/metrics")
    slowest = max(slowest, seconds)
    if status != 200 or "hs_ready 1" not in body or "hs_event_loop_blocked_seconds 0" not in body:
        fail(f"under a slowloris: /metrics answered {status} {body[:300]!r}")
    time.sleep(0.5)
stop.set()
thread.join()
if hstest.failures == failures_before:
    ok(f"64 slowloris connections: /metrics answered 5 of 5, slowest {slowest:.3f} s")
code, _ = svc.stop()
if code != 0:
    fail(f"SIGTERM: exit {code}")

finish("test_http_probes")
