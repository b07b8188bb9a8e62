"""Shared helpers of the Python test scripts (tests/integration, tests/e2e): a failed expectation is counted
and printed, not raised, so one run shows every broken expectation; finish() prints the closing line that
ctest's log shows and exits with the status ctest reads."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

failures = 0


def fail(message):
    global failures
    failures += 1
    print(f"FAIL: {message}", flush=True)


def ok(message):
    print(f"ok: {message}", flush=True)


def environment(name):
    """(bootstrap servers, run id, work directory) of a test: the broker its fixture gives (HS_BOOTSTRAP_SERVERS),
    this process's id (for names no other run uses) and a fresh directory for its files and logs."""
    return os.environ["HS_BOOTSTRAP_SERVERS"], str(os.getpid()), tempfile.mkdtemp(prefix=f"hs-{name}-test-")


def finish(name):
    print(f"{'FAILED' if failures else 'passed'}: {name} ({failures} failures)", flush=True)
    sys.exit(1 if failures else 0)


class Service:
    """A service process under test: started with a fresh HTTP port (found in its log), its own consumer
    group and instance id (NAME-RUN_ID, or `instance`: a restart under the same one fences its predecessor),
    and a 50 ms commit interval unless `commit_interval` says otherwise; its log goes to WORK/NAME.log."""

    def __init__(self, binary, name, group, bootstrap, work, run_id, commit_interval="50ms", instance=None):
        self._start([binary, "--bootstrap-servers", bootstrap, "--group-id", group, "--instance-id",
                     instance or f"{name}-{run_id}", "--http-addr", "127.0.0.1:0", "--commit-interval",
                     commit_interval], name, work)

    @classmethod
    def command(cls, argv, name, work, timeout=60):
        """Any program with an HTTP endpoint (one that is not a runtime service: the alertmanager sink, the
        exporter), started with `argv` as it is (with --http-addr 127.0.0.1:0); its port is read from its log,
        as for a service."""
        service = cls.__new__(cls)
        service._start(argv, name, work, timeout)
        return service

    def _start(self, argv, name, work, timeout=60):
        self.log = open(os.path.join(work, f"{name}.log"), "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        self.name = name
        self.port = None
        deadline = time.time() + timeout
        while time.time() < deadline and self.port is None:
            self.log.seek(0)
            m = re.search(r'"msg":"http endpoint listening","port":(\d+)', self.log.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if self.port is None:
            self.log.seek(0)
            raise SystemExit(f"FAIL: {name} did not start:\n{self.log.read()[-3000:]}")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, **labels):
        """The sum of the series of `name` whose labels include `labels`; None when there is none."""
        _, text = self.get("/metrics")
        total = None
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, value = line.rsplit(" ", 1)
            if series.split("{")[0] == name and all(f'{k}="{v}"' in series for k, v in labels.items()):
                total = (total or 0.0) + float(value)
        return total

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.get("/readyz")[0] == 200:
                return True
            time.sleep(0.2)
        fail(f"{self.name} not ready after {timeout} s: {self.get('/readyz')}")
        return False

    def wait_processed(self, topic, consumed, timeout=60):
        """Waits until the service has read more than `consumed` records of `topic` (hs_records_in_total, as
        read before publishing) and has nothing uncommitted: what it emitted for them is on its topics."""
        deadline = time.time() + timeout
        while time.time() < deadline and ((self.metric("hs_records_in_total", topic=topic) or 0) <= consumed
                                          or (self.metric("hs_uncommitted_records") or 0) > 0):
            time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig` and returns (exit status, seconds it took)."""
        start = time.time()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        return code, time.time() - start


def latest_table(lines, keep=None):
    """The table a compacted topic holds, from its CloudEvents JSON lines in log order (`hsctl tail
    --from-beginning`): the latest data per key (the event's subject), a null data deleting the key. `keep`,
    if given, is called with (key, data) and filters out the records it returns False for."""
    table = {}
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        key, data = event["subject"], event["data"]
        if keep is not None and not keep(key, data):
            continue
        if data is None:
            table.pop(key, None)
        else:
            table[key] = data
    return table


def table_differences(got, want):
    """Differences between two {topic: {key: data}} dicts, one line per differing key, for a failure message."""
    out = []
    for topic in want:
        g, w = got.get(topic, {}), want[topic]
        for key in sorted(set(g) | set(w)):
            if g.get(key) != w.get(key):
                out.append(f"{topic} {key}: service {json.dumps(g.get(key))}, offline {json.dumps(w.get(key))}")
    return out


def run(args, timeout=600, **kwargs):
    """Runs a command to its end and returns its standard output; stops the test with both outputs' tails
    when it fails."""
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(args[:3])} ...: exit {proc.returncode}\n{proc.stdout[-3000:]}"
                         f"{proc.stderr[-3000:]}")
    return proc.stdout


def restart_without_emitting(service, start, counts):
    """Stops `service` (SIGTERM must exit 0), starts its successor with start() and checks that it rebuilt its
    state without emitting: counts() (e.g. the records of each output topic) is the same before and a second
    after it is ready. Returns the restarted service. Real Kafka only: the librdkafka mock does not store
    offsets committed in a transaction."""
    code, _ = service.stop()
    if code != 0:
        fail(f"SIGTERM before the restart: exit {code}")
    before = counts()
    service = start()
    service.wait_ready()
    time.sleep(1)
    after = counts()
    if after != before:
        fail(f"the restarted service emitted while rebuilding: {before} -> {after}")
    ok("stopped and restarted: state rebuilt from the committed offsets without emitting")
    return service


def wait_until_equal(fetch, want, timeout=90, interval=0.5):
    """Calls fetch() until it returns `want` (the service caught up) or `timeout` seconds pass; returns the
    last result, for the caller to compare and report."""
    deadline = time.time() + timeout
    got = fetch()
    while time.time() < deadline and table_differences(got, want):
        time.sleep(interval)
        got = fetch()
    return got


def wait_for(check, failure, timeout=60, interval=0.3):
    """Waits until check() holds and returns True; otherwise fails with failure(), a description of the state
    then, and returns False."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(interval)
    fail(failure())
    return False


def indicator_fact(indicator, scope, period, value, unit, event_source="test", **extra):
    """An IndicatorObservation CloudEvent as `hsctl publish --ndjson` reads it: scope "DK" is the nation, any
    other code a region; `extra` adds data fields (volume, provisional, revision, source, ...); `event_source`
    is the CloudEvents source."""
    kind = "NATIONAL" if scope == "DK" else "REGION"
    data = {"indicator": indicator, "scope": {"kind": kind, "code": scope}, "period": period, "value": value,
            "unit": unit, **extra}
    return {"specversion": "1.0", "id": "", "source": event_source, "type": "healthsignals.v1.IndicatorObservation",
            "data": data}


def hsctl_runner(hsctl, bootstrap, timeout=300):
    """hsctl(*args, stdin=None) -> CompletedProcess: the test's `hsctl --bootstrap BOOTSTRAP ARGS`, text out."""
    def run(*args, stdin=None):
        return subprocess.run([hsctl, "--bootstrap", bootstrap, *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout)
    return run


def publish_events(hsctl, work, events, topic="hs.indicators.v1"):
    """Publishes CloudEvents (dicts) to `topic` through `hsctl publish --ndjson` (hsctl: an hsctl_runner);
    a refusal counts as a failure."""
    path = os.path.join(work, f"events-{time.monotonic_ns()}.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    proc = hsctl("publish", topic, "--ndjson", path)
    if proc.returncode != 0:
        fail(f"publish to {topic}: {proc.stderr}")


def documented_partitioner(producers_md):
    """partition_for(grouping_key, partitions) as docs/producers.md documents it: its Python block marked as
    tested, executed, so that what producers are told to use is what the tests check."""
    with open(producers_md, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"<!-- tested by tests/integration/test_admission.py -->\s*```python\n(.*?)```", text, re.S)
    if not m:
        raise SystemExit("FAIL: docs/producers.md has no Python block marked as tested")
    scope = {}
    exec(m.group(1), scope)  # noqa: S102 - the repository's own documentation
    return scope["partition_for"]


# --- the count service's outputs (hs.fact-counts.v1), for the exactly-once checks --------------------------------


def fact_counts(hsctl, bootstrap, prefix):
    """{group: [facts counted, ...]} of the count's outputs whose key starts with `prefix`, read_committed, in
    log order."""
    proc = subprocess.run([hsctl, "--bootstrap", bootstrap, "tail", "hs.fact-counts.v1", "--from-beginning"],
                          capture_output=True, text=True, timeout=300)
    by_group = {}
    for line in proc.stdout.splitlines():
        if f'"subject":"{prefix}' in line:
            r = json.loads(line)
            by_group.setdefault(r["data"]["group"], []).append(int(r["data"]["facts"]))
    return by_group


def wait_fact_counts(hsctl, bootstrap, prefix, groups, per_group, timeout):
    """fact_counts() once `groups` groups have each counted up to `per_group`, or at `timeout` seconds."""
    deadline = time.time() + timeout
    got = fact_counts(hsctl, bootstrap, prefix)
    while time.time() < deadline and not (len(got) == groups and all(v and max(v) == per_group
                                                                      for v in got.values())):
        time.sleep(2)
        got = fact_counts(hsctl, bootstrap, prefix)
    return got


def check_exactly_once(got, groups, per_group, what):
    """Every one of `groups` groups counted 1..per_group, each exactly once: nothing lost, nothing twice."""
    want = list(range(1, per_group + 1))
    bad = {g: v for g, v in got.items() if sorted(v) != want}
    if len(got) != groups or bad:
        example = next(iter(bad.items()), None)
        fail(f"{what}: {len(bad)} groups without exactly 1..{per_group} once, {groups - len(got)} groups missing; "
             f"e.g. {example[0] if example else ''}: {sorted(example[1])[:12] if example else ''}")
    else:
        ok(f"{what}: {groups} groups x {per_group} outputs, each count exactly once, none missing")


def forward(listener, host, port):
    """Forwards every connection accepted on `listener` (a listening socket) to host:port, both ways, until
    the listener is closed: a broker address that opens later than a process starts (run it in a thread)."""
    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for end in (a, b):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.create_connection((host, port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
