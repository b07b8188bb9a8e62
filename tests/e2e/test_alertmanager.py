#!/usr/bin/env python3
"""The alertmanager sink end to end, on real Kafka with real Alertmanagers (Debian's prometheus-alertmanager,
started and stopped here on loopback, each with a temporary configuration and storage). The targets service
evaluates deploy/rules/akutplan.json over Tabel 1 of docs/domain.md §10.2 (tests/fixtures/ventetid-somatik.csv):

1. Nordjylland's waiting time for 2023Q2 published first as 46 days (the target is 39 + 2 = 41): the targets
   alert fires, and appears in GET /api/v2/alerts of both Alertmanagers (and in `amtool alert query`) with
   the labels of hs.alerts.v1.
   The rule's labels then change (team=waiting_times added): the alert under the old labels resolves in both
   Alertmanagers, the one under the new labels is active; changed back, the first one is active again at once.
2. The published figure, 41 days, meets the target: the alert resolves there — within a time far shorter
   than the endsAt the sink gave it while firing (resend interval 30 s: 120 s), so the sink did send it
   RESOLVED rather than let it expire.
3. The sink restarted with a 2 s resend interval; one Alertmanager stopped and started again (it keeps no
   alerts): every FIRING alert of hs.alerts.v1 is back within one resend interval (plus slack).
4. A second Alertmanager stopped and a third that never answers: the one left up gets a new alert at once
   and holds every FIRING alert; the stopped one, started again, gets them all back.

usage: test_alertmanager.py SINK TARGETS HSCTL SOURCE_DIR
Ports: free loopback ports, or AM_TEST_PORT_BASE, BASE+1, BASE+2 when set.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

SINK, TARGETS, HSCTL, SOURCE = sys.argv[1:5]
BOOTSTRAP, RUN, work = hstest.environment("alertmanager")
RULES = os.path.join(SOURCE, "deploy", "rules", "akutplan.json")
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
NORD_RULE = "akutplan.ventetid.somatik"
started = []  # processes to stop, whatever happens


def free_port(offset):
    base = os.environ.get("AM_TEST_PORT_BASE")
    if base:
        return int(base) + offset
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Alertmanager:
    """Debian's Alertmanager on 127.0.0.1:PORT, no cluster, a receiver that notifies nobody."""

    def __init__(self, name, port):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.dir = os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.config = os.path.join(self.dir, "alertmanager.yml")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.dir, "alertmanager.log"), "a")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={self.config}", f"--storage.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=self.log, stderr=self.log)
        started.append(self.proc)
        hstest.wait_for(self.ready, lambda: f"{self.name} not ready on {self.url}: {self.tail()}")

    def ready(self):
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def tail(self):
        with open(os.path.join(self.dir, "alertmanager.log"), encoding="utf-8", errors="replace") as f:
            return f.read()[-2000:]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()

    def active(self):
        """The active alerts as Alertmanager returns them; None when it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as r:
                return json.load(r)
        except (urllib.error.URLError, OSError):
            return None

    def alerts(self):
        """The active alerts' label sets, as frozensets of (name, value); None when it does not answer."""
        active = self.active()
        return None if active is None else {frozenset(a["labels"].items()) for a in active}

    def annotations(self, labels):
        """The annotations of the active alert with exactly `labels`, or None."""
        for a in self.active() or []:
            if a["labels"] == labels:
                return a.get("annotations")
        return None


hsctl = hstest.hsctl_runner(HSCTL, BOOTSTRAP)


def nordjylland_2023q2(days):
    return hstest.indicator_fact("ventetid.somatik.oplevet", "1081", "2023Q2", days, "DAYS",
                                 event_source="test_alertmanager")


def alerts_table():
    proc = hsctl("tail", "hs.alerts.v1", "--from-beginning")
    if proc.returncode != 0:
        fail(f"tail hs.alerts.v1: {proc.stderr}")
    return hstest.latest_table(proc.stdout.splitlines())


def nord_alert(table):
    for data in table.values():
        if data.get("rule") == NORD_RULE and data.get("scope", {}).get("code") == "1081":
            return data
    return None


def am_name(name):
    """A label name as the sink maps it for Alertmanager (services/alertmanager/README.md, "The mapping")."""
    raw = name.encode()
    mapped = "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) == "_") else "_" for b in raw)
    if not name or name[0].isdigit() or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")) \
            or name.startswith("__"):
        mapped = "x_" + mapped
    return mapped


def am_labels(labels):
    """The label set Alertmanager holds for an alert of hs.alerts.v1 (alertname = the rule when missing)."""
    out = {}
    for name in sorted(labels):
        mapped, n = am_name(name), 2
        unique = mapped
        while unique in out:
            unique, n = f"{mapped}_{n}", n + 1
        out[unique] = labels[name]
    return out


def firing_label_sets(table):
    return {frozenset(am_labels(dict(d.get("labels", {}), **({} if "alertname" in d.get("labels", {}) else
                                                            {"alertname": d.get("rule")}))).items())
            for d in table.values() if d.get("state") == "FIRING"}


def start_sink(urls, interval, name):
    sink = hstest.Service.command(
        [SINK, "--bootstrap-servers", BOOTSTRAP, "--http-addr", "127.0.0.1:0", "--alertmanager-urls", ",".join(urls),
         "--resend-interval", interval, "--post-timeout", "20s",
         "--generator-url", "http://grafana.invalid/alerts?fingerprint={fingerprint}"], name, work)
    started.append(sink.proc)
    sink.wait_ready(timeout=120)
    return sink


def wait_alert(am, labels, present, timeout, since=None):
    """Waits until an alert with exactly `labels` is (or is no longer) active in `am`, at most until `timeout`
    seconds after `since` (default: now); returns the seconds from `since`, or None after failing."""
    since = since or time.time()
    want = frozenset(labels.items())
    if hstest.wait_for(lambda: (want in (am.alerts() or set())) == present,
                       lambda: f"{am.name}: alert {dict(labels)} {'not there' if present else 'still active'} "
                               f"{timeout} s after the change", timeout=max(0.5, since + timeout - time.time()),
                       interval=0.2):
        return time.time() - since
    return None


def main():
    if not ALERTMANAGER or not AMTOOL:
        fail("prometheus-alertmanager and amtool are not installed (tools/setup installs them)")
        return
    for args in (("topics", "create"), ("rules", "apply", RULES)):
        proc = hsctl(*args)
        if proc.returncode != 0:
            fail(f"hsctl {' '.join(args)}: {proc.stderr}")
            return
    proc = hsctl("publish", "hs.indicators.v1", "--csv", os.path.join(FIXTURES, "ventetid-somatik.csv"))
    if proc.returncode != 0:
        fail(f"publish Tabel 1: {proc.stderr}")
    am1, am2 = Alertmanager("am1", free_port(0)), Alertmanager("am2", free_port(1))
    am1.start()
    am2.start()
    targets = hstest.Service(TARGETS, "targets", f"hs-targets-am-{RUN}", BOOTSTRAP, work, RUN)
    started.append(targets.proc)
    targets.wait_ready(timeout=180)

    # --- 1. fires: 46 > 39 + 2 ---------------------------------------------------------------------------
    sink = start_sink([am1.url, am2.url], "30s", "sink-30s")
    hstest.publish_events(hsctl, work, [nordjylland_2023q2(46)])
    table = {}
    hstest.wait_for(lambda: (a := nord_alert(table.update(alerts_table()) or table)) is not None
                    and a["state"] == "FIRING" and a["value"] == 46,
                    lambda: f"targets raised no FIRING alert for Nordjylland 2023Q2 = 46: {nord_alert(table)}",
                    timeout=120, interval=1)
    nord = nord_alert(table)
    labels = nord.get("labels", {})
    if labels.get("severity") != "warning" or labels.get("plan") != "akutplan" or "1081" not in json.dumps(labels):
        fail(f"the alert's labels on hs.alerts.v1 are not those of the akutplan rule for Nordjylland: {labels}")
    for am in (am1, am2):
        took = wait_alert(am, labels, True, 60)
        if took is not None:
            ok(f"{am.name}: Nordjylland's waiting-time alert active with labels {labels}")
    proc = subprocess.run([AMTOOL, "alert", "query", f"--alertmanager.url={am1.url}", "-o", "json",
                           f"alertname={labels.get('alertname')}"], capture_output=True, text=True, timeout=60)
    queried = [a for a in json.loads(proc.stdout or "[]") if a.get("labels") == labels]
    if proc.returncode != 0 or len(queried) != 1:
        fail(f"amtool alert query: exit {proc.returncode}, {proc.stdout[:500]} {proc.stderr[:500]}")
    else:
        ok("amtool alert query shows it, with generatorURL "
           f"{queried[0].get('generatorURL')} and endsAt {queried[0].get('endsAt')}")

    # --- 1b. the rule's labels change: the alert under the old labels resolves, the new one fires --------
    # The targets service emits RESOLVED (old labels) and FIRING (new labels) under the same key, one right
    # after the other; the sink holds only the latest record per key and must still resolve the old one.
    relabelled = os.path.join(work, "relabelled.json")
    with open(RULES, encoding="utf-8") as f:
        rule = next(r for r in json.load(f) if r["id"] == NORD_RULE)
    rule["labels"] = dict(rule.get("labels", {}), team="waiting_times")
    with open(relabelled, "w", encoding="utf-8") as f:
        json.dump([rule], f)
    proc = hsctl("rules", "apply", relabelled)
    applied = time.time()
    if proc.returncode != 0:
        fail(f"rules apply {relabelled}: {proc.stderr}")
    new_labels = dict(labels, team="waiting_times")
    for am in (am1, am2):
        appeared = wait_alert(am, new_labels, True, 60, since=applied)
        gone = wait_alert(am, labels, False, 60, since=applied)  # expiry of the last FIRING send: >= 90 s
        if appeared is not None and gone is not None:
            ok(f"{am.name}: relabelled rule: the alert under the new labels active after {appeared:.1f} s, under "
               f"the old ones resolved after {gone:.1f} s")
    # ... and back: the alert under the first labels fires again at once, although the sink was still
    # sending it RESOLVED from the first change (resolved-sends: 3 POSTs, one per 30 s resend).
    proc = hsctl("rules", "apply", RULES)
    applied = time.time()
    if proc.returncode != 0:
        fail(f"rules apply {RULES}: {proc.stderr}")
    for am in (am1, am2):
        back = wait_alert(am, labels, True, 15, since=applied)
        gone = wait_alert(am, new_labels, False, 15, since=applied)
        if back is not None and gone is not None:
            ok(f"{am.name}: labels changed back: the first label set active again after {back:.1f} s")
    proc = hsctl("rules", "apply", relabelled)
    applied = time.time()
    for am in (am1, am2):
        wait_alert(am, new_labels, True, 60, since=applied)
    labels = new_labels

    # --- 2. resolves: 41 = 39 + 2 ------------------------------------------------------------------------
    hstest.publish_events(hsctl, work, [nordjylland_2023q2(41)])
    published = time.time()
    for am in (am1, am2):
        took = wait_alert(am, labels, False, 60, since=published)  # expiry of the last FIRING send: >= 90 s
        if took is not None:
            ok(f"{am.name}: resolved {took:.1f} s after the figure that meets the target was published")
    code, _ = sink.stop()
    if code != 0:
        fail(f"sink: SIGTERM: exit {code}")

    # --- 3. an Alertmanager restarted: the firing alerts are back within one resend interval -------------
    hstest.publish_events(hsctl, work, [nordjylland_2023q2(46)])  # fires again, for the rest of the test
    hstest.wait_for(lambda: (a := nord_alert(alerts_table())) is not None and a["state"] == "FIRING",
                    lambda: "the 46-day revision did not fire again", timeout=120, interval=1)
    table = alerts_table()
    firing = firing_label_sets(table)
    interval = 2.0
    hang = socket.socket()  # the third "Alertmanager": the kernel accepts its connections, nobody answers
    hang.bind(("127.0.0.1", free_port(2)))
    hang.listen(16)
    sink = start_sink([am1.url, am2.url, f"http://127.0.0.1:{hang.getsockname()[1]}"], "2s", "sink-2s")
    for am in (am1, am2):
        hstest.wait_for(lambda: firing <= (am.alerts() or set()),
                        lambda: f"{am.name} lacks FIRING alerts after the sink's restart: "
                                f"{[dict(s) for s in firing - (am.alerts() or set())][:3]}", timeout=60)
    ok(f"after the sink's restart both Alertmanagers hold every FIRING alert of hs.alerts.v1 ({len(firing)})")
    am1.stop()
    time.sleep(3 * interval)  # the sink's POSTs fail meanwhile and back off
    am1.start()
    up = time.time()
    if hstest.wait_for(lambda: firing <= (am1.alerts() or set()),
                       lambda: f"am1 restarted lacks FIRING alerts: {len(firing - (am1.alerts() or set()))} "
                               f"of {len(firing)}", timeout=interval + 10, interval=0.1):
        back = time.time() - up
        if back > interval + 1.5:
            fail(f"am1 restarted: the FIRING alerts took {back:.1f} s to come back, resend interval {interval} s")
        else:
            ok(f"am1 restarted: every FIRING alert back {back:.1f} s after it was ready (resend interval {interval} s)")

    # --- 4. one Alertmanager down, one hanging: the other one has every alert, without delay -------------
    am2.stop()
    hstest.publish_events(hsctl, work, [nordjylland_2023q2(47)])
    published = time.time()
    table = {}
    hstest.wait_for(lambda: (a := nord_alert(table.update(alerts_table()) or table)) is not None
                    and a["value"] == 47, lambda: "the 47-day revision was not evaluated", timeout=120)
    nord = nord_alert(table)
    firing = firing_label_sets(table)
    # POSTs to the hanging one time out only after 20 s: am1 must not wait for them.
    if hstest.wait_for(lambda: am1.annotations(nord["labels"]) == nord.get("annotations"),
                       lambda: f"am1 did not get the 47-day annotations within 15 s: {am1.annotations(nord['labels'])}",
                       timeout=max(0.5, published + 15 - time.time()), interval=0.1):
        ok(f"am2 down and a third hanging: am1 got the changed alert ({nord['annotations'].get('description')!r}) "
           f"{time.time() - published:.1f} s after it was published")
    if hstest.wait_for(lambda: firing <= (am1.alerts() or set()),
                       lambda: f"am1 lacks {len(firing - (am1.alerts() or set()))} FIRING alerts", timeout=30):
        ok(f"am1 holds every FIRING alert of hs.alerts.v1 ({len(firing)}) while am2 is down")
    failed = sink.metric("hs_alertmanager_posts_total", alertmanager=am2.url, result="transport_error")
    retries = sink.metric("hs_alertmanager_retries_total", alertmanager=am2.url)
    if not failed or not retries:
        fail(f"/metrics counts no failed POST to the stopped am2: posts {failed}, retries {retries}")
    am2.start()
    up = time.time()
    if hstest.wait_for(lambda: firing <= (am2.alerts() or set()), lambda: "am2 restarted lacks FIRING alerts",
                       timeout=interval + 10, interval=0.1):
        ok(f"am2 started again: every FIRING alert back in {time.time() - up:.1f} s")
    success = sink.metric("hs_alertmanager_posts_total", alertmanager=am1.url, result="success")
    last = sink.metric("hs_alertmanager_last_success_timestamp_seconds", alertmanager=am1.url)
    held = sink.metric("hs_alertmanager_alerts")
    firing_gauge = sink.metric("hs_alertmanager_alerts_firing")
    if not success or not last or abs(last - time.time()) > 30 or held != len(table) or firing_gauge != len(firing):
        fail(f"/metrics: posts {success}, last success {last}, held {held} (table {len(table)}), firing "
             f"{firing_gauge} (table {len(firing)})")
    else:
        ok(f"/metrics: {held:.0f} alerts held, {firing_gauge:.0f} firing, {success:.0f} POSTs to am1 accepted")
    hang.close()
    code, _ = sink.stop()
    if code != 0:
        fail(f"sink: SIGTERM: exit {code}")
    targets.stop()


def restore():
    """Leaves the rules and Nordjylland as Tabel 1 has them, for the tests that follow on the shared cluster."""
    hsctl("rules", "apply", RULES)
    hstest.publish_events(hsctl, work, [nordjylland_2023q2(41)])


try:
    main()
finally:
    restore()
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()
finish("test_alertmanager")
