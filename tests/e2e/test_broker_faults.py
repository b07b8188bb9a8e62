#!/usr/bin/env python3
"""Broker faults against real Kafka (the e2e tier), with the count service (issue 15, items 3 and 4):

1. A commit interval of 45 s, longer than the transaction timeout was (a fixed 30 s): the first commit comes
   45 s into its transaction and must not be fenced; after a restart with the same instance id every output
   is in the committed topic exactly once.
2. The broker is killed with SIGKILL while the service commits under a steady load, and started again, three
   rounds in a row: the service never exits, /readyz answers throughout (503 while the broker is away), and
   every output is in the committed topic exactly once (read_committed). The transaction timeout is set to
   10 s, shorter than most outages here, so that the broker may abort the transaction in flight for its age
   and fence the producer, which the service must survive by replacing it.
3. No broker at start-up: the service stays up past the 30 s after which it used to exit, /readyz answers 503
   "broker unreachable" at once, SIGTERM stops it promptly; when the broker starts it becomes ready and
   processes facts.

usage: test_broker_faults.py COUNT_BINARY HSCTL KAFKA_SCRIPT [PARTS]   (PARTS: e.g. 2,3; default all)
"""
import atexit
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok, wait_for  # noqa: E402

COUNT, HSCTL, KAFKA = sys.argv[1:4]
PARTS = {int(p) for p in sys.argv[4].split(",")} if len(sys.argv) > 4 else {1, 2, 3}
BOOTSTRAP, RUN, work = hstest.environment("broker-faults")


started_services = []


@atexit.register
def kill_leftovers():
    """A script that dies half-way leaves no service behind."""
    for service in started_services:
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait()


class Service:
    """The count service with its own flags and environment; its HTTP port is read from its log."""

    def __init__(self, name, args, env=None):
        self.name = name
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([COUNT, "--bootstrap-servers", BOOTSTRAP, "--http-addr", "127.0.0.1:0"] + args,
                                     stdout=self.log, stderr=self.log, env={**os.environ, **(env or {})})
        started_services.append(self)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None and self.proc.poll() is None:
            m = re.search(r'"msg":"http endpoint listening","port":(\d+)', open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            raise SystemExit(f"FAIL: service {name} did not start:\n{open(self.log_path).read()[-3000:]}")

    def get(self, path, timeout=10):
        """(status, body), or (None, reason) when the endpoint does not answer within `timeout` s."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (OSError, urllib.error.URLError) as e:
            return None, str(e)

    def metric(self, name):
        status, text = self.get("/metrics")
        if status != 200:
            return None
        total = None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig=signal.SIGTERM, timeout=15):
        start = time.time()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = f"still running after {timeout} s"
            self.proc.wait()
        return code, time.time() - start

    def tail(self, n=15):
        return "".join(open(self.log_path).readlines()[-n:])


def kafka(command):
    started = time.time()
    subprocess.run([KAFKA, command], check=True, capture_output=True)
    return time.time() - started


def fact(prefix, group, k):
    return json.dumps({"specversion": "1.0", "id": "", "source": "test", "type": "healthsignals.v1.IndicatorObservation",
                       "data": {"indicator": f"{prefix}g{group}", "scope": {"kind": "NATIONAL", "code": "DK"},
                                "period": f"{1900 + k // 12}-{k % 12 + 1:02d}", "value": k, "unit": "COUNT"}})


def publish(prefix, groups, per_group, first=0):
    """Publishes facts first..per_group-1 of each group at once, and waits for hsctl."""
    lines = [fact(prefix, g, k) for k in range(first, per_group) for g in range(groups)]
    proc = subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "publish", "hs.indicators.v1", "--ndjson", "-"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        fail(f"publishing {prefix}: {proc.stderr[-2000:]}")


class SteadyPublisher(threading.Thread):
    """Streams facts into `hsctl publish` at about `rate` a second, the next fact of every group in turn,
    until stop(); then `per_group` facts of each group were published. hsctl's idempotent producer waits out
    a broker restart; only its final flush is bounded (30 s), so the stream ends while the broker runs."""

    def __init__(self, prefix, groups, rate):
        super().__init__(daemon=True)
        self.prefix, self.groups, self.rate = prefix, groups, rate
        self.per_group = 0
        self.stopping = threading.Event()
        # Its log goes to a file: a pipe nobody reads while it runs would fill with the outage's errors and
        # block it.
        self.log_path = os.path.join(work, f"publish-{prefix}log")
        self.proc = subprocess.Popen([HSCTL, "--bootstrap", BOOTSTRAP, "publish", "hs.indicators.v1", "--ndjson",
                                      "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log_path, "w"), text=True)

    def run(self):
        started = time.time()
        while not self.stopping.is_set():
            k = self.per_group
            self.proc.stdin.write("\n".join(fact(self.prefix, g, k) for g in range(self.groups)) + "\n")
            self.proc.stdin.flush()
            self.per_group += 1
            ahead = started + self.per_group * self.groups / self.rate - time.time()
            if ahead > 0:
                time.sleep(ahead)
        self.proc.stdin.close()

    def stop(self):
        self.stopping.set()
        self.join()
        self.proc.wait(timeout=300)
        return self.per_group


def expect_exit(service, want, what):
    code, seconds = service.stop()
    if code != want:
        fail(f"{what}: exit {code} (want {want}) after {seconds:.1f} s:\n{service.tail()}")
    else:
        ok(f"{what}: exit {code} after {seconds:.2f} s")


subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "topics", "create"], capture_output=True)

# --- 1. a commit interval longer than the old fixed transaction timeout ------------------------------------------
def slow_commits():
    prefix = f"slow{RUN}."
    groups, per_group = 20, 20
    slow_args = ["--group-id", f"hs-count-slow-{RUN}", "--instance-id", f"slow-{RUN}", "--commit-interval", "45s"]
    service = Service("slow-1", slow_args)
    publish(prefix, groups, per_group // 2)
    # The first commit is due 45 s after the start.
    got = hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix, groups, per_group // 2, timeout=120)
    if service.proc.poll() is not None:
        fail(f"--commit-interval 45s: the service exited {service.proc.returncode} at its first commit:\n{service.tail()}")
    hstest.check_exactly_once(got, groups, per_group // 2,
                              "--commit-interval 45s, first commit 45 s into its transaction")
    expect_exit(service, 0, "--commit-interval 45s, SIGTERM")
    service = Service("slow-2", slow_args)  # the same instance id: a restart
    publish(prefix, groups, per_group, first=per_group // 2)
    # Rebuilt (ready), then everything consumed: what the stop commits.
    wait_for(lambda: service.get("/readyz")[0] == 200 and service.metric("hs_consumer_lag") == 0,
             lambda: f"the restarted service: {service.get('/readyz')}, lag {service.metric('hs_consumer_lag')}",
             timeout=120)
    expect_exit(service, 0, "--commit-interval 45s after a restart, SIGTERM (commits)")
    hstest.check_exactly_once(hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix, groups, per_group, timeout=60),
                              groups, per_group,
                              "--commit-interval 45s across a restart")


# --- 2. the broker killed with SIGKILL during commits, three rounds ----------------------------------------------
def broker_kills():
    prefix = f"kill{RUN}."
    groups, rate = 100, 1000  # facts a second, for as long as the three rounds take (about 100 s)
    service = Service("kill", ["--group-id", f"hs-count-kill-{RUN}", "--instance-id", f"kill-{RUN}"],
                      env={"HS_KAFKA_TRANSACTION_TIMEOUT_MS": "10000"})
    publisher = SteadyPublisher(prefix, groups, rate)
    publisher.start()
    probe_worst, probe_failures, not_ready_seen = 0.0, [], set()
    for round_no in range(1, 4):
        consumed = service.metric("hs_records_in_total") or 0
        wait_for(lambda: (service.metric("hs_records_in_total") or 0) > consumed + 2000,
                 lambda: f"round {round_no}: the service consumes nothing before the kill", timeout=60)
        kafka("kill")
        down_at = time.time()
        time.sleep(1)  # down for a moment, the service's commit in flight waiting for it
        restart_s = kafka("start")
        # Probe while the broker comes back, until the service is ready again.
        ready_at = None
        while time.time() - down_at < 120 and service.proc.poll() is None:
            asked = time.time()
            status, body = service.get("/readyz", timeout=5)
            took = time.time() - asked
            probe_worst = max(probe_worst, took)
            if status is None:
                probe_failures.append(f"round {round_no}: /readyz did not answer: {body}")
            elif status == 503:
                not_ready_seen.add(body.strip())
            elif status == 200 and (service.metric("hs_records_in_total") or 0) > consumed + 4000:
                ready_at = time.time()
                break
            time.sleep(0.2)
        if service.proc.poll() is not None:
            fail(f"round {round_no}: the service exited {service.proc.returncode}:\n{service.tail(30)}")
            break
        if ready_at is None:
            fail(f"round {round_no}: not ready and consuming 120 s after the kill: {service.get('/readyz')}")
        else:
            ok(f"round {round_no}: broker killed, started again in {restart_s:.1f} s; service ready and consuming "
               f"{ready_at - down_at:.1f} s after the kill")
    time.sleep(2)  # a last moment of load with the broker up
    per_group = publisher.stop()
    if publisher.proc.returncode != 0:
        fail(f"publishing through the broker kills: {open(publisher.log_path).read()[-2000:]}")
    got = hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix, groups, per_group, timeout=300)
    if service.proc.poll() is not None:
        fail(f"the service exited {service.proc.returncode} during the broker kills:\n{service.tail(30)}")
    hstest.check_exactly_once(got, groups, per_group, f"3 broker SIGKILLs during {groups * per_group} facts")
    if probe_failures:
        fail(f"/readyz hung during the outages: {probe_failures[:3]}")
    else:
        ok(f"/readyz answered every probe during the outages (slowest {probe_worst * 1000:.0f} ms; "
           f"not ready: {sorted(not_ready_seen)})")
    ok(f"transactions aborted {service.metric('hs_transactions_aborted_total') or 0:.0f}, producers replaced "
       f"{service.metric('hs_producer_recoveries_total') or 0:.0f} across the three kills")
    expect_exit(service, 0, "SIGTERM after the broker kills")


# --- 3. no broker at start-up -------------------------------------------------------------------------------------
def no_broker_at_start():
    kafka("stop")
    prefix = f"late{RUN}."
    groups, per_group = 10, 10
    service = Service("late", ["--group-id", f"hs-count-late-{RUN}", "--instance-id", f"late-{RUN}"])
    quitter = Service("late-quitter", ["--group-id", f"hs-count-late-{RUN}", "--instance-id", f"quitter-{RUN}"])
    started = time.time()
    answers, worst = [], 0.0
    while time.time() - started < 32:  # past the 30 s after which the service used to give up
        asked = time.time()
        answers.append(service.get("/readyz", timeout=5))
        worst = max(worst, time.time() - asked)
        if service.proc.poll() is not None:
            break
        time.sleep(1)
    if service.proc.poll() is not None:
        fail(f"no broker: the service exited {service.proc.returncode}:\n{service.tail()}")
        quitter.stop()
        kafka("start")
        return
    ok("no broker: the service stays up for 32 s")
    unreachable = [a for a in answers if a[0] == 503 and "broker unreachable" in a[1]]
    if not answers or any(a[0] != 503 for a in answers) or len(unreachable) < len(answers) - 3:
        fail(f"no broker: /readyz answered {answers[:6]}")
    else:
        ok(f"no broker: /readyz answered 503 {len(answers)} times (slowest {worst * 1000:.0f} ms), "
           f"'broker unreachable' from the {len(answers) - len(unreachable) + 1}th s")
    expect_exit(quitter, 0, "no broker: SIGTERM")
    kafka("start")
    wait_for(lambda: service.get("/readyz")[0] == 200,
             lambda: f"the broker started, but the service is not ready: {service.get('/readyz')}", timeout=90)
    ok(f"no broker: ready {time.time() - started:.0f} s after the start, once the broker runs")
    publish(prefix, groups, per_group)
    hstest.check_exactly_once(hstest.wait_fact_counts(HSCTL, BOOTSTRAP, prefix, groups, per_group, timeout=60),
                              groups, per_group,
                              "started without a broker, then the broker came")
    expect_exit(service, 0, "started without a broker: SIGTERM")


for number, part in ((1, slow_commits), (2, broker_kills), (3, no_broker_at_start)):
    if number in PARTS:
        part()
finish("test_broker_faults")
