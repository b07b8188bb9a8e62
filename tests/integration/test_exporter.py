#!/usr/bin/env python3
"""The exporter end to end through hs-broker: the demo's facts (tests/fixtures' Tabels 8, 1, 9 and 10, and
tools/demo-data's capacity series) published with the akutplan and variation rules, the targets, variation and
capacity services computing the derived tables, and the exporter serving them on /metrics. Checked:

- /metrics holds exactly the samples an independent reading of the three tables predicts (`hsctl tail
  --from-beginning`, latest record per key, the latest period per series), and the figures of docs/domain.md
  §10 on the way: Tabel 10 2023Q2's variation 21 (Nordjylland 87, Sjælland 66), Midtjylland missing the udredningsret
  target (61 < 79), a capacity level;
- `promtool check metrics` finds nothing on the page;
- a tombstone on hs.variation.v1 removes its series, and the series shows the previous period instead;
- started while no broker answers, an exporter stays up with /readyz 503 "not ready: broker unreachable", and
  serves the same page once the broker is reachable; restarted, it answers /readyz 503 until rebuilt, then
  serves the same page;
- `hsctl export --format openmetrics` writes every period, `promtool tsdb create-blocks-from openmetrics`
  backfills it, and the block holds the 2022 quarters at their periods' ends.

usage: test_exporter.py EXPORTER TARGETS VARIATION CAPACITY HSCTL SOURCE_DIR DEVTOOLS
"""
import calendar
import json
import os
import re
import subprocess
import sys
import socket
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

EXPORTER, TARGETS, VARIATION, CAPACITY, HSCTL, SOURCE, DEVTOOLS = sys.argv[1:8]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
RUN = f"{os.getpid()}"
work = tempfile.mkdtemp(prefix="hs-exporter-test-")
TABLES = ("hs.target-status.v1", "hs.variation.v1", "hs.capacity-status.v1")
OURS = re.compile(r"^hs_(target|variation|capacity)_")
REGION_NAMES = {"1081": "Nordjylland", "1082": "Midtjylland", "1083": "Syddanmark", "1084": "Hovedstaden",
                "1085": "Sjælland", "DK": "Hele landet"}


def hsctl(*args):
    proc = subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        fail(f"hsctl {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


# --- the oracle: the samples the tables imply, computed here from `hsctl tail` -------------------------------

def period_bounds(p):
    """(start, end) of a period in Unix seconds."""
    def day(y, m, d):
        return calendar.timegm((y, m, d, 0, 0, 0))

    def month_end(y, m):
        return day(y + 1, 1, 1) if m == 12 else day(y, m + 1, 1)
    y = int(p[:4])
    if len(p) == 4:
        return day(y, 1, 1), day(y + 1, 1, 1)
    if p[4] == "H":
        h = int(p[5])
        return day(y, 6 * h - 5, 1), month_end(y, 6 * h)
    if p[4] == "Q":
        q = int(p[5])
        return day(y, 3 * q - 2, 1), month_end(y, 3 * q)
    if p[4] == "W":
        jan4 = day(y, 1, 4)
        monday = jan4 - ((time.gmtime(jan4).tm_wday) * 86400)
        start = monday + (int(p[5:7]) - 1) * 7 * 86400
        return start, start + 7 * 86400
    if len(p) == 7:
        m = int(p[5:7])
        return day(y, m, 1), month_end(y, m)
    start = day(y, int(p[5:7]), int(p[8:10]))
    return start, start + 86400


def scope_labels(scope):
    kind, code = scope.get("kind", "SCOPE_KIND_UNSPECIFIED"), scope.get("code", "")
    region = code if kind in ("NATIONAL", "REGION") else code[:4] if kind == "HOSPITAL" and code[:4] in \
        REGION_NAMES else ""
    return {"scope": f"{kind.lower()}:{code}", "region": region, "region_name": REGION_NAMES.get(region, "")}


def samples_of(topic, d):
    """[(metric, labels dict, value)] of one record's data."""
    out = []
    if topic == "hs.target-status.v1":
        labels = {"rule": d["rule"], "indicator": d["subject"], "period": d["period"],
                  "unit": d["unit"].lower(), **scope_labels(d["scope"])}
        out.append(("hs_target_value", labels, d.get("value", 0)))
        if "target" in d:
            out.append(("hs_target_threshold", labels, d["target"]))
        if "gap" in d:
            out.append(("hs_target_gap", labels, d["gap"]))
        if d.get("status") in ("MET", "MISSED"):
            out.append(("hs_target_met", labels, 1 if d["status"] == "MET" else 0))
    elif topic == "hs.variation.v1":
        labels = {"indicator": d["indicator"], "period": d["period"], "unit": d["unit"].lower()}
        out.append(("hs_variation_spread", labels, d.get("spread", 0)))
        out.append(("hs_variation_national_value", labels, d.get("nationalValue", 0)))
        for r in d.get("regions", []):
            rl = {**labels, "region": r["code"], "region_name": r["name"]}
            out.append(("hs_variation_region_value", rl, r.get("value", 0)))
            out.append(("hs_variation_region_rank", rl, r.get("rank", 0)))
    else:
        labels = {"resource": d["resource"], "period": d["period"], "rule": d["rule"],
                  "rollup": "true" if d.get("rollup") else "false", **scope_labels(d["scope"])}
        if "utilisationPct" in d:
            out.append(("hs_capacity_utilisation_ratio", labels, d["utilisationPct"] / 100))
        out.append(("hs_capacity_level", labels, d.get("level", 0)))
        out.append(("hs_capacity_available", labels, d.get("available", 0)))
        out.append(("hs_capacity_occupied", labels, d.get("occupied", 0)))
    return [(m, {k: v for k, v in lab.items() if v != ""}, float(v)) for m, lab, v in out]


def table(topic):
    return hstest.latest_table(hsctl("tail", topic, "--from-beginning").stdout.splitlines())


def expected(every_period=False):
    """{(metric, labels): value} of the latest period of every series (of every period)."""
    want = {}
    for topic in TABLES:
        latest = {}
        for key, d in table(topic).items():
            identity = key.rsplit("/", 1)[0]
            start, end = period_bounds(d["period"])
            rank = (end, start, key)
            if every_period:
                latest[key] = (rank, d)
            elif identity not in latest or rank > latest[identity][0]:
                latest[identity] = (rank, d)
        for rank, d in latest.values():
            for metric, labels, value in samples_of(topic, d):
                want[(metric, tuple(sorted(labels.items())))] = value
    return want


def parse_labels(text):
    return tuple(sorted((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                        for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)))


def page_samples(page):
    got = {}
    for line in page.splitlines():
        if line.startswith("#") or not OURS.match(line):
            continue
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if not m:
            fail(f"unparsable line on /metrics: {line}")
            continue
        labels = tuple((k, v) for k, v in parse_labels(m.group(2) or "") if v != "")
        got[(m.group(1), labels)] = float(m.group(3))
    return got


def differences(got, want):
    out = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            out.append(f"{k[0]}{dict(k[1])}: /metrics {got.get(k)}, tables {want.get(k)}")
    return out


# --- the exporter process -----------------------------------------------------------------------------------

def start_exporter(name, bootstrap=BOOTSTRAP):
    return hstest.Service.command([EXPORTER, "--bootstrap-servers", bootstrap, "--http-addr", "127.0.0.1:0"], name,
                                  work)


def metrics(x):
    status, page = x.get("/metrics")
    if status != 200:
        fail(f"/metrics answered {status}")
    return page


def wait_equal(x, want, what, timeout=60):
    deadline = time.time() + timeout
    got = page_samples(metrics(x))
    while time.time() < deadline and differences(got, want):
        time.sleep(0.3)
        got = page_samples(metrics(x))
    diff = differences(got, want)
    if diff:
        fail(f"{what}: /metrics and the tables differ in {len(diff)} series:\n  " + "\n  ".join(diff[:10]))
    else:
        ok(f"{what}: /metrics holds exactly the {len(want)} samples of the tables' latest periods")
    return got


fetched = subprocess.run([DEVTOOLS, "promtool"], capture_output=True, text=True, timeout=600)
if fetched.returncode != 0:
    raise SystemExit(f"FAIL: promtool could not be fetched (tools/devtools promtool): {fetched.stderr}")
PROMTOOL = fetched.stdout.strip()

# A second exporter started while nothing answers at its bootstrap address (a port a forwarder to the broker
# opens only after the facts are processed): it stays up and not ready, saying why, then catches up.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    late_port = probe.getsockname()[1]
late = start_exporter("exporter-late", bootstrap=f"127.0.0.1:{late_port}")
hsctl("topics", "create")
hsctl("rules", "apply", os.path.join(SOURCE, "deploy", "rules", "akutplan.json"))
hsctl("rules", "apply", os.path.join(SOURCE, "deploy", "rules", "variation.json"))
services = [hstest.Service(binary, os.path.basename(binary), f"hs-exporter-test-{os.path.basename(binary)}-{RUN}",
                           BOOTSTRAP, work, RUN) for binary in (TARGETS, VARIATION, CAPACITY)]
exporter = start_exporter("exporter")
for s in services + [exporter]:
    s.wait_ready()

# The demo's facts (tools/demo publishes the same files).
for name in ("udredningsret-somatik", "ventetid-somatik", "udredning-somatik-forloebstid", "kraeft-standardforloeb"):
    hsctl("publish", "hs.indicators.v1", "--csv", os.path.join(SOURCE, "tests", "fixtures", f"{name}.csv"))
for name in ("capacity-intensive-quarters", "capacity-medical-daily"):
    hsctl("publish", "hs.capacity.v1", "--ndjson", os.path.join(SOURCE, "tools", "demo-data", f"{name}.ndjson"))

# The services are done when their tables stop growing.
last, deadline = None, time.time() + 60
while time.time() < deadline:
    counts = [len(hsctl("tail", t, "--from-beginning").stdout.splitlines()) for t in TABLES]
    if counts == last and all(counts):
        break
    last = counts
    time.sleep(1.5)

want = expected()
got = wait_equal(exporter, want, "live")
spread = [(k, v) for k, v in got.items() if k[0] == "hs_variation_spread" and
          dict(k[1]).get("indicator") == "kraeft.standardforloeb.compliance"]
if [(dict(k[1])["period"], v) for k, v in spread] != [("2023Q2", 21.0)]:
    fail(f"Tabel 10: hs_variation_spread {spread}, want 21 for 2023Q2")
else:
    ok("Tabel 10 2023Q2: hs_variation_spread 21")
regions = {dict(k[1])["region_name"]: v for k, v in got.items() if k[0] == "hs_variation_region_value" and
           dict(k[1]).get("indicator") == "kraeft.standardforloeb.compliance"}
if regions.get("Nordjylland") != 87 or regions.get("Sjælland") != 66:
    fail(f"Tabel 10 2023Q2 regions: {regions}")
midt = [(dict(k[1]), v) for k, v in got.items() if k[0] == "hs_target_met" and dict(k[1]).get("region") == "1082"
        and dict(k[1]).get("indicator") == "udredningsret.somatik.compliance"]
if not midt or any(v != 0 for _, v in midt):
    fail(f"Midtjylland's udredningsret target: hs_target_met {midt}, want 0 (61 < 79)")
else:
    labels = midt[0][0]
    value = got.get(("hs_target_value", tuple(sorted(labels.items()))))
    threshold = got.get(("hs_target_threshold", tuple(sorted(labels.items()))))
    if (value, threshold) != (61, 79):
        fail(f"Midtjylland udredningsret: value {value}, threshold {threshold}, want 61 and 79")
    else:
        ok(f"Midtjylland misses {labels['rule']} in {labels['period']}: hs_target_met 0, value 61 < 79")
if not any(k[0] == "hs_capacity_level" and dict(k[1]).get("resource") == "beds.medical" for k in got):
    fail("no hs_capacity_level for beds.medical")

# --- the late exporter: not ready while no broker answers, then caught up --------------------------------------
status, body = late.get("/readyz")
if late.proc.poll() is not None or status != 503 or body.strip() != "not ready: broker unreachable":
    fail(f"no broker at start: exit {late.proc.poll()}, /readyz {status} {body!r}")
else:
    ok(f"no broker at start: still up, /readyz 503 {body.strip()!r}")
listener = socket.create_server(("127.0.0.1", late_port))
broker_host, broker_port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
threading.Thread(target=hstest.forward, args=(listener, broker_host, int(broker_port)), daemon=True).start()

page = metrics(exporter)
lint = subprocess.run([PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
    fail(f"promtool check metrics (exit {lint.returncode}):\n{lint.stdout}{lint.stderr}")
else:
    ok(f"promtool check metrics finds nothing ({len(page.splitlines())} lines)")

opened = time.time()
if late.wait_ready():
    diff = differences(page_samples(metrics(late)), want)
    if diff:
        fail("the late exporter, ready, differs:\n  " + "\n  ".join(diff[:10]))
    else:
        ok(f"broker reachable: the late exporter ready {time.time() - opened:.1f} s later with the same samples")
code, _ = late.stop()
if code != 0:
    fail(f"the late exporter: SIGTERM: exit {code}")
listener.close()

# --- a tombstone: the series of the deleted key disappears, the previous period takes its place --------------
tombstone = os.path.join(work, "tombstone.ndjson")
with open(tombstone, "w", encoding="utf-8") as f:
    f.write(json.dumps({"specversion": "1.0", "id": "", "source": "test_exporter",
                        "type": "healthsignals.v1.RegionalVariation",
                        "subject": "kraeft.standardforloeb.compliance/2023Q2", "data": None}) + "\n")
hsctl("publish", "hs.variation.v1", "--ndjson", tombstone)
want = expected()
got = wait_equal(exporter, want, "after a tombstone")
periods = {dict(k[1])["period"] for k in got if dict(k[1]).get("indicator") == "kraeft.standardforloeb.compliance"}
if periods != {"2023Q1"}:
    fail(f"after deleting kraeft 2023Q2, its series carry the periods {periods}, want only 2023Q1")
else:
    ok("a tombstone of kraeft 2023Q2 removed its series; 2023Q1 is the latest now")

# --- restart: rebuilt from the compacted topics ---------------------------------------------------------------
code, _ = exporter.stop()
if code != 0:
    fail(f"SIGTERM: exit {code}")
exporter = start_exporter("exporter-restarted")
if exporter.wait_ready():
    got = page_samples(metrics(exporter))  # no waiting: ready means rebuilt
    diff = differences(got, want)
    if diff:
        fail("restarted: /metrics right after /readyz differs:\n  " + "\n  ".join(diff[:10]))
    else:
        ok(f"restarted: ready with all {len(want)} samples at once")

# --- history: hsctl export, backfilled by promtool -----------------------------------------------------------
history = os.path.join(work, "history.om")
hsctl("export", "--format", "openmetrics", "--output", history)
with open(history, encoding="utf-8") as f:
    text = f.read()
if not text.endswith("# EOF\n"):
    fail("the export does not end in '# EOF'")
every = expected(every_period=True)
exported = {}
for line in text.splitlines():
    if line.startswith("#"):
        continue
    m = re.match(r"^(\w+)\{(.*)\} (\S+) (\d+)$", line)
    if not m:
        fail(f"export: unparsable line {line}")
        continue
    labels = tuple((k, v) for k, v in parse_labels(m.group(2)) if v != "")
    exported[(m.group(1), labels)] = float(m.group(3))
    if int(m.group(4)) != period_bounds(dict(labels)["period"])[1]:
        fail(f"export: {line}: the timestamp is not the end of the period")
diff = differences(exported, every)
if diff:
    fail(f"export and the tables differ in {len(diff)} samples:\n  " + "\n  ".join(diff[:10]))
else:
    ok(f"hsctl export: every period of every series ({len(every)} samples)")
blocks = os.path.join(work, "tsdb")
backfill = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", history, blocks],
                          capture_output=True, text=True, timeout=120)
if backfill.returncode != 0:
    fail(f"promtool tsdb create-blocks-from openmetrics: exit {backfill.returncode}: {backfill.stderr[-2000:]}")
os.makedirs(os.path.join(blocks, "wal"), exist_ok=True)  # promtool tsdb dump opens the directory as a TSDB
dump = subprocess.run([PROMTOOL, "tsdb", "dump", "--match",
                       'hs_variation_spread{indicator="kraeft.standardforloeb.compliance"}', blocks],
                      capture_output=True, text=True, timeout=120)
found = {}
for line in dump.stdout.splitlines():
    m = re.search(r'period="(\d{4}Q\d)".* (\S+) (\d+)$', line)
    if m:
        found[m.group(1)] = (float(m.group(2)), int(m.group(3)))
want_2022 = {p: (v, period_bounds(p)[1] * 1000) for (metric, labels), v in every.items()
             if metric == "hs_variation_spread" and dict(labels)["indicator"] == "kraeft.standardforloeb.compliance"
             for p in [dict(labels)["period"]] if p.startswith("2022")}
if len(want_2022) != 4 or any(found.get(p) != want_2022[p] for p in want_2022):
    fail(f"backfilled block: kraeft spread {found}, want the 2022 quarters {want_2022}\n{dump.stderr[-1000:]}")
else:
    ok(f"backfilled with promtool: the 2022 quarters of Tabel 10's spread at their periods' ends "
       f"({', '.join(f'{p} {v[0]:g}' for p, v in sorted(want_2022.items()))})")

code, _ = exporter.stop()
if code != 0:
    fail(f"SIGTERM: exit {code}")
for s in services:
    s.stop()
finish("test_exporter")
