#!/usr/bin/env python3
"""deploy/monitoring against the real programs, on real Kafka: Debian's Prometheus and Alertmanager, started
and stopped here on free loopback ports, scrape and receive from the services as deploy/monitoring configures
them. The demo's facts (Tabels 8, 1, 9 and 10 of tests/fixtures, the capacity series of tools/demo-data) go
to the targets, variation and capacity services, the alertmanager sink and the exporter; then

1. Prometheus runs deploy/monitoring/prometheus.yml — only its targets' addresses replaced by the services'
   free ports and its intervals shortened to 1 s — and scrapes every job: all up, the rule files loaded.
2. Every query of every panel of every dashboard in deploy/monitoring/grafana/dashboards runs through
   Prometheus's HTTP API (/api/v1/query; template variables substituted with a value their own query
   returns) and must return data: a panel whose query returns nothing fails the test.
3. PromQL returns the published figures: Tabel 10's 2023Q2 spread 21, Nordjylland's waiting-time target.
4. The history, written by `hsctl export --format openmetrics` and backfilled with `promtool tsdb
   create-blocks-from openmetrics` into Prometheus's data directory before it starts, returns the 2022
   quarters.
5. Prometheus's own alert rules reach the Alertmanager running deploy/monitoring/alertmanager.yml
   (HealthsignalsDeadLetters, category="platform", for the capacity fact of an unknown resource), beside the
   health alerts the sink delivers there.

usage: test_monitoring.py TARGETS VARIATION CAPACITY SINK EXPORTER HSCTL SOURCE_DIR
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

TARGETS, VARIATION, CAPACITY, SINK, EXPORTER, HSCTL, SOURCE = sys.argv[1:8]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
RUN = f"{os.getpid()}"
MONITORING = os.path.join(SOURCE, "deploy", "monitoring")
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
DEMO_DATA = os.path.join(SOURCE, "tools", "demo-data")
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
TABEL_10 = "kraeft.standardforloeb.compliance"
work = tempfile.mkdtemp(prefix="hs-monitoring-test-")
started = []  # processes to stop, whatever happens
t0 = time.time()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


hsctl = hstest.hsctl_runner(HSCTL, BOOTSTRAP, timeout=300)
run_ok = hstest.hsctl_runner(HSCTL, BOOTSTRAP, timeout=300, check=True)


def start(argv, name):
    """A program with its output in WORK/NAME.log."""
    log = open(os.path.join(work, f"{name}.log"), "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    started.append(proc)
    return proc


def log_tail(name):
    with open(os.path.join(work, f"{name}.log"), encoding="utf-8", errors="replace") as f:
        return f.read()[-2000:]


def get_json(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def service(binary, name, extra=()):
    """A program that is no runtime service (no consumer group, no commit interval), on a free port."""
    svc = hstest.Service.command([binary, "--bootstrap-servers", BOOTSTRAP, "--http-addr", "127.0.0.1:0", *extra],
                                 name, work)
    started.append(svc.proc)
    return svc


class Prometheus:
    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}"

    def query(self, expr, at=None):
        """The result of an instant query, or None when Prometheus refuses it (the error is failed)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            fail(f"Prometheus refuses {expr!r}: {e.code} {e.read().decode(errors='replace')[:300]}")
            return None
        except (urllib.error.URLError, OSError) as e:
            fail(f"Prometheus does not answer {expr!r}: {e}")
            return None
        return body["data"]["result"]

    def label_values(self, label, match):
        body = get_json(f"{self.url}/api/v1/label/{label}/values?{urllib.parse.urlencode({'match[]': match})}")
        return body["data"] if body else []


def prometheus_config(ports, am_port):
    """deploy/monitoring/prometheus.yml with the targets' host names replaced by the services' loopback ports
    and its intervals shortened; its rule files copied beside it, as the file names them."""
    with open(os.path.join(MONITORING, "prometheus.yml"), encoding="utf-8") as f:
        text = f.read()
    for host, port in ports.items():
        text, n = re.subn(rf'"{re.escape(host)}:9464"', f'"127.0.0.1:{port}"', text)
        if n != 1:
            fail(f"prometheus.yml: no single target {host}:9464 ({n})")
    text, n = re.subn(r'"alertmanager:9093"', f'"127.0.0.1:{am_port}"', text)
    if n != 1:
        fail("prometheus.yml: no Alertmanager alertmanager:9093")
    text = re.sub(r"(scrape_interval|evaluation_interval): 15s", r"\1: 1s", text)
    text = text.replace("scrape_timeout: 10s", "scrape_timeout: 1s")
    config_dir = os.path.join(work, "prometheus")
    shutil.copytree(os.path.join(MONITORING, "rules"), os.path.join(config_dir, "rules"))
    path = os.path.join(config_dir, "prometheus.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def backfill(data_dir):
    """The derived tables' history into Prometheus's data directory: hsctl export --format openmetrics, then
    promtool tsdb create-blocks-from openmetrics. Returns the number of samples written."""
    export = os.path.join(work, "history.om")
    with open(export, "w", encoding="utf-8") as f:
        proc = subprocess.run([HSCTL, "--bootstrap", BOOTSTRAP, "export", "--format", "openmetrics"], stdout=f,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    if proc.returncode != 0:
        fail(f"hsctl export --format openmetrics: exit {proc.returncode}: {proc.stderr[-1000:]}")
        return 0
    with open(export, encoding="utf-8") as f:
        samples = sum(1 for line in f if line.strip() and not line.startswith("#"))
    proc = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", export, data_dir],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        fail(f"promtool tsdb create-blocks-from openmetrics: {proc.stdout[-500:]} {proc.stderr[-1000:]}")
    return samples


def substitutions(prom, board):
    """A value for each template variable of a dashboard, from the variable's own query (label_values(METRIC,
    LABEL)), preferring Nordjylland (1081); Grafana's $__rate_interval as it would be for a 1 s scrape."""
    values = {"__rate_interval": "1m"}
    for var in board.get("templating", {}).get("list", []):
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["definition"].strip())
        if not m:
            fail(f"{board['uid']}: variable ${var['name']}: not a label_values() query: {var['definition']}")
            continue
        found = prom.label_values(m.group(2), m.group(1))
        if not found:
            fail(f"{board['uid']}: variable ${var['name']}: {var['definition']} returns nothing")
            continue
        if var.get("includeAll") and var.get("allValue"):
            values[var["name"]] = var["allValue"]
        else:
            values[var["name"]] = "1081" if "1081" in found else found[0]
    return values


def check_dashboards(prom):
    folder = os.path.join(MONITORING, "grafana", "dashboards")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            board = json.load(f)
        values = substitutions(prom, board)
        panels = queries = 0
        failures = hstest.failures
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            panels += 1
            for target in panel.get("targets", []):
                expr = re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), target["expr"])
                result = prom.query(expr)
                queries += 1
                if result is not None and not result:
                    fail(f"{name}: panel {panel['title']!r}: {expr} returns nothing")
        if hstest.failures == failures:
            ok(f"{name}: {panels} panels, {queries} queries, each returns data (variables {values})")


def value_of(result):
    return [float(r["value"][1]) for r in result or []]


def main():
    if not PROMETHEUS or not PROMTOOL or not ALERTMANAGER:
        fail("prometheus, promtool and prometheus-alertmanager must be installed (tools/setup installs them)")
        return
    # --- the demo's facts --------------------------------------------------------------------------------
    run_ok("topics", "create")
    for rules in ("akutplan.json", "variation.json"):
        run_ok("rules", "apply", os.path.join(SOURCE, "deploy", "rules", rules))
    for table in ("udredningsret-somatik", "ventetid-somatik", "udredning-somatik-forloebstid",
                  "kraeft-standardforloeb"):
        run_ok("publish", "hs.indicators.v1", "--csv", os.path.join(FIXTURES, f"{table}.csv"))
    for series in ("capacity-intensive-quarters", "capacity-medical-daily"):
        run_ok("publish", "hs.capacity.v1", "--ndjson", os.path.join(DEMO_DATA, f"{series}.ndjson"))
    unknown = os.path.join(work, "unknown-resource.ndjson")  # the capacity service dead-letters it
    with open(unknown, "w", encoding="utf-8") as f:
        f.write(json.dumps({"specversion": "1.0", "id": "", "source": "test_monitoring",
                            "type": "healthsignals.v1.CapacityObservation",
                            "data": {"resource": "beds.unknown", "scope": {"kind": "REGION", "code": "1083"},
                                     "period": "2023Q1", "available": 10, "occupied": 5}}) + "\n")
    run_ok("publish", "hs.capacity.v1", "--ndjson", unknown)
    published = time.time()

    # --- Alertmanager with deploy/monitoring/alertmanager.yml; the services, the sink and the exporter -----
    am_port = free_port()
    am_dir = os.path.join(work, "alertmanager")
    os.makedirs(am_dir)
    am = start([ALERTMANAGER, f"--config.file={os.path.join(MONITORING, 'alertmanager.yml')}",
                f"--storage.path={am_dir}", f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                "--log.level=warn"], "alertmanager")
    am_url = f"http://127.0.0.1:{am_port}"
    services = {name: hstest.Service(binary, name, f"hs-{name}-monitoring-{RUN}", BOOTSTRAP, work, RUN)
                for name, binary in (("targets", TARGETS), ("variation", VARIATION), ("capacity", CAPACITY))}
    for svc in services.values():
        started.append(svc.proc)
    services["alertmanager-sink"] = service(SINK, "alertmanager-sink",
                                            ("--alertmanager-urls", am_url, "--resend-interval", "5s"))
    services["exporter"] = service(EXPORTER, "exporter")
    hstest.wait_for(lambda: get_json(f"{am_url}/api/v2/status") is not None,
                    lambda: f"Alertmanager not up: {log_tail('alertmanager')}", timeout=30)
    for svc in services.values():
        svc.wait_ready(timeout=120)

    # The services have computed the published figures: the exporter serves Tabel 10's 2023Q2 spread.
    def exporter_has(name, **labels):
        return services["exporter"].metric(name, **labels) is not None

    hstest.wait_for(lambda: exporter_has("hs_variation_spread", indicator=TABEL_10, period="2023Q2")
                    and exporter_has("hs_capacity_level") and exporter_has("hs_target_met"),
                    lambda: "the exporter does not serve the demo's figures", timeout=60)
    hstest.wait_for(lambda: (services["capacity"].metric("hs_records_dlq_total") or 0) >= 1,
                    lambda: "capacity did not dead-letter the unknown resource", timeout=30)
    ok(f"services computed the demo's facts {time.time() - published:.1f} s after they were published")

    # --- Prometheus, its data directory backfilled first ---------------------------------------------------
    data_dir = os.path.join(work, "prometheus-data")
    os.makedirs(data_dir)
    samples = backfill(data_dir)
    ok(f"backfill: {samples} samples of hsctl export --format openmetrics into Prometheus's data directory")
    prom_port = free_port()
    config = prometheus_config({name: svc.port for name, svc in services.items()}, am_port)
    start([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
           "--storage.tsdb.retention.time=20y", f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
          "prometheus")
    prom = Prometheus(prom_port)
    def prom_ready():
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    if not hstest.wait_for(prom_ready, lambda: f"Prometheus not ready: {log_tail('prometheus')}", timeout=30):
        return

    # 1. every job scraped, the rules loaded.
    jobs = {f"hs-{name}" for name in services}

    def targets_up():
        body = get_json(f"{prom.url}/api/v1/targets") or {"data": {"activeTargets": []}}
        return {t["labels"]["job"] for t in body["data"]["activeTargets"] if t["health"] == "up"}

    if hstest.wait_for(lambda: targets_up() >= jobs, lambda: f"jobs up: {sorted(targets_up())}, want {sorted(jobs)}",
                       timeout=20, interval=0.2):
        ok(f"Prometheus scrapes every job of prometheus.yml: {', '.join(sorted(jobs))}")
    rules = get_json(f"{prom.url}/api/v1/rules") or {"data": {"groups": []}}
    loaded = sum(len(g["rules"]) for g in rules["data"]["groups"])
    if loaded < 10:
        fail(f"Prometheus loaded {loaded} rules of rules/healthsignals.rules.yml")
    # rate() needs two samples in its window, histogram_quantile a rate: three scrapes of every job.
    scraped = f'count(count_over_time(up{{job=~"hs-.+"}}[1m]) >= 3) == {len(jobs)}'
    hstest.wait_for(lambda: prom.query(scraped), lambda: "not every job scraped three times", timeout=15,
                    interval=0.5)

    # 2. every panel returns data.
    check_dashboards(prom)

    # 3. the published figures.
    spread = value_of(prom.query(f'hs_variation_spread{{indicator="{TABEL_10}", period="2023Q2"}}'))
    if spread != [21.0]:
        fail(f"hs_variation_spread of Tabel 10 2023Q2: {spread}, want [21]")
    else:
        ok("PromQL: hs_variation_spread{indicator=\"kraeft.standardforloeb.compliance\", period=\"2023Q2\"} = 21")
    nord = prom.query('hs_target_value{rule="akutplan.ventetid.somatik", region="1081"}')
    threshold = value_of(prom.query('hs_target_threshold{rule="akutplan.ventetid.somatik", region="1081"}'))
    if not nord or nord[0]["metric"].get("region_name") != "Nordjylland" or threshold != [41.0]:
        fail(f"Nordjylland's waiting-time target: {nord}, threshold {threshold} (want 39 + 2)")
    else:
        ok(f"PromQL: Nordjylland's waiting time {nord[0]['value'][1]} days in {nord[0]['metric']['period']}, "
           f"target {threshold[0]:g}")

    # 4. the backfilled history: the 2022 quarters, each at its quarter's end.
    history = prom.query(f'last_over_time(hs_variation_spread{{indicator="{TABEL_10}", period=~"2022Q."}}[10y])')
    periods = sorted(r["metric"]["period"] for r in history or [])
    if periods != ["2022Q1", "2022Q2", "2022Q3", "2022Q4"]:
        fail(f"backfilled history of Tabel 10's spread: periods {periods}, want the four quarters of 2022")
    else:
        ok(f"backfilled history: Tabel 10's spread for {', '.join(periods)} = "
           f"{', '.join(r['value'][1] for r in sorted(history, key=lambda r: r['metric']['period']))}")
    # At the end of 2022Q3 (1 October 2022, 00:00 UTC) the nation's chart shows 2022Q3's figure.
    q3_end = 1664582400
    at_q3 = prom.query(f'max without (period) (last_over_time(hs_variation_spread{{indicator="{TABEL_10}"}}[92d]))',
                       at=q3_end + 3600)
    q3 = value_of(prom.query(f'hs_variation_spread{{indicator="{TABEL_10}", period="2022Q3"}}', at=q3_end))
    if not q3 or value_of(at_q3) != q3:
        fail(f"the history chart's query at the end of 2022Q3: {at_q3}, the 2022Q3 sample {q3}")
    else:
        ok(f"the history chart's query an hour after 2022Q3 ended shows 2022Q3's spread {q3[0]:g}")

    # 5. a rule of Prometheus's in the Alertmanager of alertmanager.yml, beside the sink's health alerts.
    def am_alerts():
        return get_json(f"{am_url}/api/v2/alerts") or []

    def has(predicate):
        return any(predicate(a["labels"]) for a in am_alerts())

    if hstest.wait_for(lambda: has(lambda l: l.get("alertname") == "HealthsignalsDeadLetters"
                                   and l.get("category") == "platform" and l.get("job") == "hs-capacity"),
                       lambda: f"HealthsignalsDeadLetters not in Alertmanager: {[a['labels'] for a in am_alerts()]}",
                       timeout=20, interval=0.5):
        ok("Prometheus's HealthsignalsDeadLetters (hs-capacity, category=platform) active in Alertmanager")
    # Midtjylland misses the national udredningsret target (61 < 79): its alert, delivered by the sink.
    if hstest.wait_for(lambda: has(lambda l: l.get("subject") == "udredningsret.somatik.compliance"
                                   and l.get("scope") == "region:1082" and l.get("service") == "targets"),
                       lambda: f"Midtjylland's udredningsret alert not in Alertmanager: "
                               f"{[a['labels'] for a in am_alerts()]}", timeout=20, interval=0.5):
        ok("the sink's health alerts (Midtjylland's udredningsret) active in the same Alertmanager")


try:
    main()
finally:
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in started:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    print(f"test_monitoring took {time.time() - t0:.1f} s", flush=True)
finish("test_monitoring")
