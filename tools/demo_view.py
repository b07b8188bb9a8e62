#!/usr/bin/env python3
"""What tools/demo shows a person, read from the topics as CloudEvents JSON lines (`hsctl tail`):

  demo_view.py live HSCTL        until SIGINT/SIGTERM: every alert as it fires and resolves, one line each,
                                 and after each burst of changes the latest status of every target
  demo_view.py alerts            stdin hs.alerts.v1: the latest state of every alert, one line each
  demo_view.py variation         stdin hs.variation.v1: the nation, the best and the worst region, the variation
  demo_view.py prometheus URL    what the Prometheus at URL scrapes, and whether each target is up

The scopes are named as the steering documents name them; the lines are fixed-width columns.
"""
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

SCOPE_NAMES = {"1081": "Nordjylland", "1082": "Midtjylland", "1083": "Syddanmark", "1084": "Hovedstaden",
               "1085": "Sjælland", "DK": "Hele landet"}


def scope_name(scope):
    code = (scope or {}).get("code", "")
    return SCOPE_NAMES.get(code, code)


def number(value):
    return "%g" % value if isinstance(value, (int, float)) else "-"


def events(lines):
    for line in lines:
        if line.strip():
            yield json.loads(line)


def alert_line(d):
    """STATE RULE SCOPE PERIOD: VALUE against THRESHOLD — the columns of the demo's alert lines."""
    return "%-8s %-50s %-12s %s: %s against %s" % (d.get("state", ""), d.get("rule", ""), scope_name(d.get("scope")),
                                                  d.get("period", ""), number(d.get("value")),
                                                  number(d.get("threshold")))


def status_line(d):
    status = d.get("status", "")
    if d.get("target") is None:
        figure = "%s, no target (%s)" % (number(d.get("value")), status.lower().replace("_", " "))
    else:
        figure = "%s against %s" % (number(d.get("value")), number(d.get("target")))
    return "%-11s %-50s %-12s %s: %s" % (status, d.get("rule", ""), scope_name(d.get("scope")), d.get("period", ""),
                                         figure)


def alerts_now(stdin):
    latest = {}
    for e in events(stdin):
        if e.get("data") is None:
            latest.pop(e["subject"], None)
        else:
            latest[e["subject"]] = e["data"]
    for line in sorted(alert_line(d) for d in latest.values()):
        print("    " + line)


def variation_table(stdin):
    table = {}
    for e in events(stdin):
        table[e["subject"]] = e["data"]

    def names(d, codes, value):
        regions = {r["code"]: r["name"] for r in d.get("regions", [])}
        return ", ".join(regions[c] for c in codes) + " %g" % value

    how = {"NATIONAL_PUBLISHED": "", "NATIONAL_WEIGHTED": " (weighted)", "NATIONAL_UNWEIGHTED": " (unweighted)"}
    print("    %-34s %-7s %-11s %-30s %-30s %s" % ("indicator", "period", "national", "best", "worst", "variation"))
    for key in sorted(table):
        d = table[key]
        if d is None:
            continue
        note = " (provisional)" if d.get("provisional") else ""
        if d.get("missingRegions"):
            note += " missing: " + ",".join(d["missingRegions"])
        print("    %-34s %-7s %-11s %-30s %-30s %g%s" % (
            d["indicator"], d["period"], "%g%s" % (d.get("nationalValue", 0), how.get(d.get("nationalSource"), "")),
            names(d, d["bestRegions"], d.get("bestValue", 0)), names(d, d["worstRegions"], d.get("worstValue", 0)),
            d.get("spread", 0), note))


class Live:
    """Follows hs.alerts.v1 and hs.target-status.v1 from the beginning through two `hsctl tail` readers."""

    QUIET_S = 1.0  # the status table is printed once the statuses have been quiet this long

    def __init__(self, hsctl):
        self.queue = queue.Queue()
        self.readers = []
        for topic in ("hs.alerts.v1", "hs.target-status.v1"):
            proc = subprocess.Popen([hsctl, "tail", topic, "--from-beginning", "--follow"], stdout=subprocess.PIPE,
                                    text=True, encoding="utf-8")
            self.readers.append(proc)
            threading.Thread(target=self.read, args=(topic, proc), daemon=True).start()
        self.alert_state = {}  # fingerprint -> the state last shown
        self.statuses = {}  # (rule, scope code) -> the latest period's TargetStatus
        self.changed_at = None

    def read(self, topic, proc):
        for line in proc.stdout:
            self.queue.put((topic, line))
        self.queue.put((topic, None))

    def stop(self, *_):
        for proc in self.readers:  # hsctl tail stops at once on SIGTERM
            proc.terminate()
        for proc in self.readers:
            proc.wait()
        sys.stdout.flush()
        sys.exit(0)

    def on_alert(self, e):
        d = e.get("data")
        if d is None:
            self.alert_state.pop(e["subject"], None)
            return
        state, shown = d.get("state"), self.alert_state.get(e["subject"])
        # A transition only: an alert that stays FIRING into the next period is not news.
        if state != shown and (state == "FIRING" or shown == "FIRING"):
            print("  %s %s" % (e.get("time", "")[11:19], alert_line(d)), flush=True)
        self.alert_state[e["subject"]] = state

    def on_status(self, e):
        d = e.get("data")
        if d is None:
            return
        key = (d.get("rule"), (d.get("scope") or {}).get("code"))
        if key not in self.statuses or d.get("period", "") >= self.statuses[key].get("period", ""):
            self.statuses[key] = d
            self.changed_at = time.monotonic()

    def print_statuses(self):
        print("  latest status per target (hs.target-status.v1, the latest period of each):", flush=True)
        for key in sorted(self.statuses, key=lambda k: (k[0] or "", SCOPE_NAMES.get(k[1], k[1] or ""))):
            print("    " + status_line(self.statuses[key]))
        sys.stdout.flush()

    def run(self):
        open_readers = len(self.readers)
        while open_readers:
            try:
                topic, line = self.queue.get(timeout=0.2)
            except queue.Empty:
                if self.changed_at is not None and time.monotonic() - self.changed_at >= self.QUIET_S:
                    self.changed_at = None
                    self.print_statuses()
                continue
            if line is None:
                open_readers -= 1
                continue
            if not line.strip():
                continue
            e = json.loads(line)
            (self.on_alert if topic == "hs.alerts.v1" else self.on_status)(e)
        self.stop()


def prometheus_now(url):
    """Waits (at most 15 s) until Prometheus has scraped every target once, then prints each with `up`."""
    deadline = time.time() + 15
    targets = []
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/v1/targets?state=active", timeout=5) as r:
                targets = json.load(r)["data"]["activeTargets"]
        except (OSError, ValueError, KeyError):
            targets = []
        if targets and all(t.get("health") != "unknown" for t in targets):
            break
        time.sleep(0.5)
    query = urllib.parse.quote("up")
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?query={query}", timeout=5) as r:
            results = json.load(r)["data"]["result"]
    except (OSError, ValueError, KeyError) as e:
        print(f"    cannot query {url}: {e}")
        return
    for s in sorted(results, key=lambda s: s["metric"].get("job", "")):
        print("    up{job=%-22s instance=%s} %s" % ('"%s",' % s["metric"].get("job", ""),
                                                   '"%s"' % s["metric"].get("instance", ""), s["value"][1]))


def main(argv):
    if len(argv) == 3 and argv[1] == "live":
        live = Live(argv[2])
        signal.signal(signal.SIGTERM, live.stop)
        signal.signal(signal.SIGINT, live.stop)
        live.run()
    elif len(argv) == 2 and argv[1] == "alerts":
        alerts_now(sys.stdin)
    elif len(argv) == 2 and argv[1] == "variation":
        variation_table(sys.stdin)
    elif len(argv) == 3 and argv[1] == "prometheus":
        prometheus_now(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
