#!/usr/bin/env python3
"""The benchmark harness: every scenario of tools/bench is a function here, on one set of helpers (the broker
of its own, the processes started and stopped, /metrics and /proc sampling, perf, medians, the results file).
The entry points tools/bench/run, tools/bench/targets and tools/bench/rules are thin: each runs one scenario
with its own options, described by its --help. A benchmark, never a timed test: run it by hand on a quiet
machine. Adding a scenario: write a function taking (argv) on the helpers below and add it to SCENARIOS.

  usage: bench.py SCENARIO [options]      SCENARIO: run | targets | rules | mock-retention
"""
import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("HS_BUILD_DIR", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import hstest  # noqa: E402

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    """A scenario that cannot go on: its message is printed with the scenario's prefix, and it exits 1."""


# --- the harness: processes, the broker of its own, measurements ------------------------------------------------


class Harness:
    """What every scenario shares: `say`/`die` with the scenario's prefix, the build, the processes it starts
    (stopped by pid on any exit: TERM, then KILL after 10 s), and the Kafka broker of its own (reset before the
    run; reset again afterwards when it succeeded and --keep was not given, else stopped with its data kept)."""

    def __init__(self, prefix, out, keep=False, no_build=False):
        self.prefix, self.out, self.keep, self.no_build = prefix, out, keep, no_build
        self.kafka_dir = os.environ.get("HS_BENCH_KAFKA_DIR") or os.path.join(BUILD, "bench")
        os.environ.setdefault("HS_LOCAL_KAFKA_PORT", "29092")
        os.environ.setdefault("HS_LOCAL_KAFKA_CONTROLLER_PORT", "29093")
        self.bootstrap = f"127.0.0.1:{os.environ['HS_LOCAL_KAFKA_PORT']}"
        self.procs = []
        self.kafka_started = False
        self.succeeded = False
        self.broker_pid = None
        self.perf = None

    def say(self, message):
        print(f"{self.prefix}: {message}", file=sys.stderr, flush=True)

    def die(self, message):
        raise Failed(message)

    # The environment of what we start: HS_BENCH_KAFKA_DIR is the harness's, not a setting of a service (which
    # refuses unknown HS_* variables).
    @staticmethod
    def child_env():
        env = dict(os.environ)
        env.pop("HS_BENCH_KAFKA_DIR", None)
        return env

    def build(self, targets, paths):
        """Builds the ninja `targets` (or, with --no-build, checks that `paths` below BUILD are built)."""
        if self.no_build:
            for path in paths:
                if not os.access(os.path.join(BUILD, path), os.X_OK):
                    self.die(f"--no-build: {path} is not built in {BUILD}")
            return
        if not os.path.exists(os.path.join(BUILD, "build.ninja")):
            self.say(f"configuring {BUILD}")
            subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja"], stdout=subprocess.DEVNULL, check=True)
        if subprocess.run(["ninja", "-C", BUILD, *targets], stdout=subprocess.DEVNULL).returncode != 0:
            self.die(f"building {' '.join(targets)} in {BUILD} failed (ninja -C {BUILD} {' '.join(targets)}); "
                     "--no-build runs what is already built")

    def clean_out(self, *patterns):
        os.makedirs(self.out, exist_ok=True)
        for name in os.listdir(self.out):
            if any(re.fullmatch(p, name) for p in patterns):
                os.remove(os.path.join(self.out, name))

    # Processes.
    def start(self, argv, stdout, stderr):
        """Starts argv with stdout and stderr to the files of those names in `out` (None: inherited)."""
        files = [open(os.path.join(self.out, f), "w") if f else None for f in (stdout, stderr)]
        proc = subprocess.Popen(argv, stdout=files[0], stderr=files[1], env=self.child_env())
        for f in files:
            if f:
                f.close()
        self.procs.append(proc)
        return proc

    def forget(self, proc):
        if proc in self.procs:
            self.procs.remove(proc)

    def finish(self, proc, what, log):
        """Waits for proc to end; dies unless it exited 0."""
        code = proc.wait()
        self.forget(proc)
        if code != 0:
            self.die(f"{what} failed (log: {log})")

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        if self.kafka_started:
            if self.succeeded and not self.keep:
                self.kafka("reset", quiet=True)
            else:
                self.kafka("stop", quiet=True)
                self.say(f"broker stopped; its data and log are in {self.kafka_dir}/kafka")

    # The broker of its own (tools/kafka with its state in kafka_dir).
    def kafka(self, *args, quiet=False):
        env = dict(os.environ, HS_BUILD_DIR=self.kafka_dir)
        stdout = sys.stderr if args[0] == "start" and not quiet else subprocess.DEVNULL
        code = subprocess.run([os.path.join(ROOT, "tools", "kafka"), *args], env=env, stdout=stdout,
                              stderr=subprocess.DEVNULL if quiet else None).returncode
        if code and not quiet:
            self.die(f"tools/kafka {args[0]} failed (state in {self.kafka_dir}/kafka)")

    def fresh_kafka(self):
        """Resets and starts the broker, and creates the registry's topics."""
        self.kafka("reset")
        self.kafka_started = True
        self.kafka("start")
        with open(os.path.join(self.kafka_dir, "kafka", "kafka.pid")) as f:
            self.broker_pid = int(f.read().strip())
        self.hsctl("topics", "create")

    def hsctl(self, *args, what=None):
        proc = subprocess.run([os.path.join(BUILD, "tools", "hsctl", "hsctl"), "--bootstrap", self.bootstrap, *args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.child_env())
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            self.die(f"{what or 'hsctl ' + args[0]} failed")

    def tool(self, name, *args, what=None):
        """Runs build/tools/bench/NAME and returns its result line (stdout, stripped)."""
        proc = subprocess.run([os.path.join(BUILD, "tools", "bench", name), *args], stdout=subprocess.PIPE, text=True,
                              env=self.child_env())
        if proc.returncode != 0:
            self.die(f"{what or name} failed")
        return proc.stdout.strip()

    # perf: the first run of a loop is profiled when --perf is given.
    def perf_start(self, pid, name, enabled):
        if not enabled:
            return
        data = os.path.join(self.out, f"perf-{name}.data")
        proc = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "499", "-p", str(pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        self.perf = (proc, name)

    def perf_stop(self):
        if not self.perf:
            return
        proc, name = self.perf
        self.perf = None
        proc.send_signal(signal.SIGINT)
        proc.wait()
        self.forget(proc)
        data, txt = (os.path.join(self.out, f"perf-{name}.{ext}") for ext in ("data", "txt"))
        report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort",
                                 "dso,symbol", "--percent-limit", "0.5"], capture_output=True, text=True)
        with open(txt, "w") as f:
            f.writelines(line + "\n" for line in report.stdout.splitlines() if re.match(r"^ +[0-9]", line))
        self.say(f"profile: {txt} (perf report -i {data})")

    def write_results(self, lines):
        path = os.path.join(self.out, "results.md")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print()
        print("\n".join(lines))
        print(flush=True)
        self.say(f"written to {path}; logs in {self.out}/")

    def run(self, body):
        """Runs body() with everything started stopped on any exit; SIGINT exits 130, SIGTERM 143."""
        def on_signal(signum, _frame):
            raise SystemExit(130 if signum == signal.SIGINT else 143)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            body()
        except Failed as e:
            print(f"{self.prefix}: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
        finally:
            self.cleanup()


class BenchService:
    """A service under measurement: started in group GROUP as instance `bench` with its HTTP port found in its
    log (OUT/NAME.log); stop() checks that it drained and exited 0 on SIGTERM."""

    def __init__(self, h, binary, what, name, group, commit_interval, commit_records=None):
        self.h, self.what = h, what
        self.log = os.path.join(h.out, f"{name}.log")
        argv = [binary, "--bootstrap-servers", h.bootstrap, "--group-id", group, "--instance-id", "bench",
                "--http-addr", "127.0.0.1:0", "--commit-interval", commit_interval]
        if commit_records:
            argv += ["--commit-records", commit_records]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=h.child_env())
        h.procs.append(self.proc)
        self.pid = self.proc.pid
        self.port = None
        for _ in range(200):
            with open(self.log) as f:
                m = re.search(r'"msg":"http endpoint listening","port":(\d+)', f.read())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log) as f:
            sys.stderr.writelines(f.readlines()[-20:])
        h.die(f"the {what} service did not start (log: {self.log})")

    def alive(self):
        return self.proc.poll() is None

    def get(self, path):
        """(status, body) of GET path; (0, "") when it cannot be reached."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            conn.close()
            return response.status, body
        except OSError:
            return 0, ""

    def metrics(self):
        status, body = self.get("/metrics")
        return Metrics(body if status == 200 else "")

    def stop(self):
        self.proc.terminate()
        code = self.proc.wait()
        self.h.forget(self.proc)
        if code != 0:
            self.h.die(f"the {self.what} service exited {code} on SIGTERM (log: {self.log})")


class Metrics:
    """A /metrics page: sum() of the series of a metric whose line contains a text (integer values), text() the
    first value of a metric as written (floats too)."""

    def __init__(self, body):
        self.body = body
        self.lines = body.splitlines()

    def _series(self, name):
        for line in self.lines:
            if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
                yield line

    def sum(self, name, contains=""):
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in self._series(name) if contains in line)

    def text(self, name):
        return next((line.rsplit(" ", 1)[1] for line in self._series(name)), "0")


def now_ms():
    return time.time_ns() // 1000000


def cpu_ticks(pid):
    """CPU time of the process (all threads) in clock ticks; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return 0


def machine_ticks():
    """(busy ticks of all CPUs: user nice system irq softirq steal; all ticks)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def peak_rss(pid):
    """The process's peak resident set (VmHWM) in bytes; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def seconds(ticks):
    return f"{ticks / TICKS_PER_S:.2f}"


def per_million(busy_ticks, events):
    """CPU seconds per 1 000 000 events."""
    return f"{busy_ticks / TICKS_PER_S * 1000000 / events:.2f}"


def machine_use(busy, total, events):
    return (f"; whole machine {per_million(busy, events)} CPU s per 1 000 000 events, busy "
            f"{100 * busy / total if total else 0:.0f} %")


def field(key, line):
    """The value of KEY in a `key=value ...` result line."""
    for word in line.split():
        if word.startswith(key + "="):
            return word[len(key) + 1:]
    raise Failed(f"no {key} in: {line}")


def median(values):
    """The median as given (the lower middle of an even count)."""
    ordered = sorted(values, key=float)
    return ordered[(len(ordered) - 1) // 2]


def mb(b):
    return f"{b / 1048576:.0f}"


def verdict(condition):
    return "PASS" if condition else "MISS"


def interval_ms(commit_interval):
    m = re.fullmatch(r"(\d+)(ms|s)", commit_interval)
    if not m:
        raise Failed("--commit-interval: use ms or s, e.g. 100ms")
    return int(m.group(1)) * (1 if m.group(2) == "ms" else 1000)


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def host_lines(kafka_note):
    """The results file's first two lines: when, the machine, the broker and librdkafka."""
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(": ", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    uname = os.uname()
    rdkafka = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True, text=True).stdout.strip()
    return [f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs ({cpu}), "
            f"{mem / 1048576:.0f} GB RAM;",
            f"{uname.sysname} {uname.release}; Kafka 3.9.1, one node (KRaft) on the same machine{kafka_note}; "
            f"librdkafka {rdkafka or '?'};"]


def wait_consumed(h, svc, first_from, target, timeout_s, sample=None):
    """Polls /metrics every 50 ms until hs_records_in_total of hs.indicators.v1 reaches `target` and the lag is 0.
    Returns (first_ms, first_in, done_ms, metrics then): the first sample with at least `first_from` records in
    (the clock starts there). `sample`, if given, is called with every page."""
    started = now_ms()
    first_ms = first_in = 0
    while True:
        now = now_ms()
        if now - started >= timeout_s * 1000:
            h.die(f"the service did not consume {target} records in {timeout_s} s (log: {svc.log})")
        if not svc.alive():
            h.die(f"the {svc.what} service exited (log: {svc.log})")
        m = svc.metrics()
        if m.body:
            records_in = m.sum("hs_records_in_total", 'topic="hs.indicators.v1"')
            lag = m.sum("hs_consumer_lag")
            if sample:
                sample(m)
            if records_in >= first_from and records_in > 0 and first_ms == 0:
                first_ms, first_in = now, records_in
            if records_in >= target and lag == 0:
                return first_ms, first_in, now, m
        time.sleep(0.05)


def wait_committed(svc, done_ms, done_commits, commit_ms):
    """After wait_consumed: when the last records consumed were committed. The runtime commits only an open
    transaction, so a commit after done_ms carries the last records; none within two commit intervals + 1 s
    means they were committed before done_ms. Polls every 20 ms."""
    limit = 2 * commit_ms + 1000
    while True:
        committed = svc.metrics().sum("hs_transactions_committed_total")
        now = now_ms()
        if committed > done_commits:
            return now
        if now - done_ms >= limit:
            return done_ms
        time.sleep(0.02)


def positive(text):
    if not re.fullmatch(r"[0-9]+", text) or int(text) <= 0:
        raise argparse.ArgumentTypeError("numeric options take positive integers (see --help)")
    return int(text)


def parser_for(entry, doc):
    """An option parser whose --help is the entry point's own description."""
    return argparse.ArgumentParser(prog=entry, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


# --- scenario `run`: the pass-through against the runtime + count, latency, rebuild, RSS -----------------------

RUN_DOC = """The benchmark, in one command (docs/benchmarks.md). Against a real Kafka broker of its own it measures
(a) a raw librdkafka consume -> produce loop (tools/bench/passthrough.c) and (b) the runtime with the count
service under exactly-once, on the same input, alternately --repeat times; the end-to-end latency of (b)
at half its saturation rate (and of (a) at the same rate, for reference); the rebuild of 1 000 000 keys;
and the service's peak RSS. Prints a results table with each target and PASS/MISS and writes it to
BUILD/bench/results.md. A benchmark, never a timed test: run it by hand on a quiet machine.

  usage: tools/bench/run [options]
         tools/bench/run mock-retention [RECORDS [BYTES]]   the embedded broker's retention (docs/running.md)

Environment: HS_BUILD_DIR (build directory, default <repo>/build; built if needed), HS_BENCH_KAFKA_DIR
(broker state, default BUILD/bench), HS_LOCAL_KAFKA_PORT / HS_LOCAL_KAFKA_CONTROLLER_PORT (default
29092 / 29093, away from the development and e2e broker on 19092), HS_LOCAL_KAFKA_SEGMENT_BYTES (the
broker's log.segment.bytes, default Kafka's 1 GiB: the development broker's 64 MiB rolls a segment of every
partition every ~20 s at 70 000 facts/s and its compaction takes a CPU from the service under test; set
67108864 to measure with it; docs/benchmarks.md); HS_KAFKA_* reach the service, the pass-through and the load
generator. The broker is reset before the run, so figures are comparable, and stopped afterwards (with its
data removed unless --keep or the run failed); everything started here is stopped on exit."""


def scenario_run(argv):
    if argv[:1] == ["mock-retention"]:
        return scenario_mock_retention(argv[1:])
    p = parser_for("tools/bench/run", RUN_DOC)
    p.add_argument("--records", type=positive, default=1000000, help="facts per throughput run (default 1000000)")
    p.add_argument("--warmup-records", type=int, default=50000,
                   help="facts before those, taking in the first transaction of a new producer (default 50000)")
    p.add_argument("--repeat", type=positive, default=3,
                   help="throughput runs of (a) and of (b), alternating; medians reported (default 3)")
    p.add_argument("--latency-seconds", type=positive, default=20, help="measured seconds of each latency run")
    p.add_argument("--latency-warmup", type=int, default=15,
                   help="seconds of each latency run sent but not measured, before those (default 15: the first "
                        "3-15 s of a new load on this broker are a transient)")
    p.add_argument("--latency-rate", type=positive, help="facts/s of the latency runs (default: half of (b)'s median)")
    p.add_argument("--rebuild-keys", type=positive, default=1000000,
                   help="facts in state for the rebuild and RSS figures (default 1000000)")
    p.add_argument("--skip-rebuild", action="store_true", help="leave out the fill, rebuild and RSS phase")
    p.add_argument("--indicators", type=positive, default=1000, help="indicators the facts are spread over")
    p.add_argument("--commit-interval", default="100ms", help="the service's --commit-interval (default 100ms)")
    p.add_argument("--commit-records", help="the service's --commit-records (default: the runtime's own)")
    p.add_argument("--perf", action="store_true", help="profile (a) and (b) with perf record: BUILD/bench/perf-*.txt")
    p.add_argument("--keep", action="store_true", help="keep the broker's data afterwards")
    p.add_argument("--no-build", action="store_true", help="run what is already built")
    o = p.parse_args(argv)
    if o.warmup_records < 0:
        p.error("--warmup-records takes a number")
    os.environ.setdefault("HS_LOCAL_KAFKA_SEGMENT_BYTES", "1073741824")
    h = Harness("bench", os.path.join(BUILD, "bench"), keep=o.keep, no_build=o.no_build)
    h.run(lambda: run_benchmark(h, o))


def run_benchmark(h, o):
    commit_ms = interval_ms(o.commit_interval)
    if o.perf and subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode != 0:
        h.die("--perf: perf is not installed")
    h.build(["count", "hsctl", "passthrough", "load"], ["services/count/count", "tools/hsctl/hsctl",
                                                        "tools/bench/passthrough", "tools/bench/load"])
    h.clean_out(r".*\.log", r".*\.out", r"perf-.*", r"results\.md")
    out, bootstrap = h.out, h.bootstrap
    count = os.path.join(BUILD, "services", "count", "count")
    passthrough = os.path.join(BUILD, "tools", "bench", "passthrough")
    warmup, records = o.warmup_records, o.records
    total_per_run = warmup + records

    def start_count(name, group):
        return BenchService(h, count, "count", name, group, o.commit_interval, o.commit_records)

    load_before = load_average()
    h.say(f"resetting and starting Kafka at {bootstrap} (state in {h.kafka_dir}/kafka)")
    h.fresh_kafka()
    max_rss_gauge = 0

    def track_rss(m):
        nonlocal max_rss_gauge
        max_rss_gauge = max(max_rss_gauge, m.sum("hs_process_resident_bytes"))

    # The input of both loops: warm-up facts, then N facts; every fact a new key, over M indicators, so
    # count emits one output per fact.
    h.say(f"publishing {warmup} + {records} facts to hs.indicators.v1")
    h.tool("load", "--bootstrap", bootstrap, "--run", "warm", "--records", str(warmup), "--indicators",
           str(o.indicators))
    h.say(h.tool("load", "--bootstrap", bootstrap, "--run", "tput", "--records", str(records), "--indicators",
                 str(o.indicators)))
    total_facts = total_per_run

    rates_a, rates_b, details_a, details_b, busy_a, busy_b = [], [], [], [], [], []
    svc = None
    rss_tput = 0
    for i in range(1, o.repeat + 1):
        # (a): the pass-through loop over the warm-up and the N facts, in its own group.
        h.say(f"(a) pass-through, run {i} of {o.repeat}: {records} records after {warmup}")
        m0, t0 = machine_ticks()
        b0 = cpu_ticks(h.broker_pid)
        proc = h.start([passthrough, "--bootstrap", bootstrap, "--input", "hs.indicators.v1", "--output",
                        "bench.passthrough.v1", "--group", f"bench-passthrough-{i}", "--warmup-records", str(warmup),
                        "--records", str(records)], f"passthrough-{i}.out", f"passthrough-{i}.log")
        h.perf_start(proc.pid, "passthrough", o.perf and i == 1)
        h.finish(proc, "passthrough", f"{out}/passthrough-{i}.log")
        b1 = cpu_ticks(h.broker_pid)
        m1, t1 = machine_ticks()
        h.perf_stop()
        with open(f"{out}/passthrough-{i}.out") as f:
            line = f.read().strip()
        busy_a.append(m1 - m0)
        rates_a.append(field("rate", line))
        # CPU seconds: the loop (from its first measured record), the broker, everything else on the machine.
        loop_s, broker_s = field("cpu_s", line), seconds(b1 - b0)
        other_s = f"{float(seconds(m1 - m0)) - float(loop_s) - float(broker_s):.2f}"
        details_a.append(f"run {i}: {field('rate', line)} events/s, {field('seconds', line)} s; CPU s: loop {loop_s}, "
                         f"broker {broker_s}, rest of the machine {other_s}"
                         f"{machine_use(m1 - m0, t1 - t0, total_per_run)}")
        h.say(f"(a) run {i}: {line}")

        # (b): the count service in a fresh group over the warm-up and the N facts, from the first sample past
        # the warm-up until all are consumed and committed. The last run's service keeps running.
        h.say(f"(b) runtime + count (exactly-once, commit interval {o.commit_interval}), run {i} of {o.repeat}")
        svc = start_count(f"count-throughput-{i}", f"bench-count-{i}")
        m0, t0 = machine_ticks()
        s0, b0 = cpu_ticks(svc.pid), cpu_ticks(h.broker_pid)
        h.perf_start(svc.pid, "count", o.perf and i == 1)
        first_ms, first_in, done_ms, m = wait_consumed(h, svc, warmup, total_per_run, 600, track_rss)
        end_ms = wait_committed(svc, done_ms, m.sum("hs_transactions_committed_total"), commit_ms)
        s1, b1 = cpu_ticks(svc.pid), cpu_ticks(h.broker_pid)
        m1, t1 = machine_ticks()
        h.perf_stop()
        busy_b.append(m1 - m0)
        rate = (total_per_run - first_in) * 1000 // (end_ms - first_ms + 1)
        seconds_b = f"{(end_ms - first_ms) / 1000:.2f}"
        rates_b.append(str(rate))
        m = svc.metrics()
        outputs, dlq = m.sum("hs_records_out_total"), m.sum("hs_records_dlq_total")
        txns = m.sum("hs_transactions_committed_total")
        n = float(m.text("hs_commit_seconds_count"))
        commit_mean = f"{float(m.text('hs_commit_seconds_sum')) * 1000 / n if n else 0:.1f}"
        details_b.append(f"run {i}: {rate} events/s, {seconds_b} s; {txns} transactions (mean commit {commit_mean} ms, "
                         f"incl. the warm-up); CPU s: service {seconds(s1 - s0)} (whole run), "
                         f"broker {seconds(b1 - b0)}, "
                         f"rest of the machine {seconds(m1 - m0 - (s1 - s0) - (b1 - b0))}"
                         f"{machine_use(m1 - m0, t1 - t0, total_per_run)}; {outputs} outputs, {dlq} dead letters")
        rss_tput = peak_rss(svc.pid)
        h.say(f"(b) run {i}: rate={rate} seconds={seconds_b} transactions={txns} commit_ms={commit_mean} "
              f"outputs={outputs} dlq={dlq}")
        if outputs != total_per_run:
            h.say(f"warning: {outputs} outputs for {total_per_run} facts (expected one each)")
        if i != o.repeat:
            svc.stop()
    rate_a, rate_b = median(rates_a), median(rates_b)

    # Latency of (b) at half its saturation rate; the last (b) service is live and idle.
    lat_rate = o.latency_rate or int(rate_b) // 2

    def latency_run(run, topic):
        with open(f"{out}/latency-{run}.log", "w") as log:
            proc = subprocess.run([os.path.join(BUILD, "tools", "bench", "load"), "--bootstrap", bootstrap, "--run",
                                   run, "--indicators", str(o.indicators), "--rate", str(lat_rate), "--latency", topic,
                                   "--duration", str(o.latency_seconds), "--warmup", str(o.latency_warmup), "--wait",
                                   "10"], stdout=subprocess.PIPE, stderr=log, text=True, env=h.child_env())
        if proc.returncode != 0:
            h.die(f"the latency run failed (log: {out}/latency-{run}.log)")
        return proc.stdout.strip()

    h.say(f"(b) latency at {lat_rate} facts/s for {o.latency_seconds}s (+{o.latency_warmup} s warm-up)")
    lat_b = latency_run("lat", "hs.fact-counts.v1")
    h.say(lat_b)
    total_facts += int(field("sent", lat_b)) + 1  # + the probe's own warm-up fact
    rss_lat = peak_rss(svc.pid)
    with open(f"{out}/metrics-after-latency.txt", "w") as f:
        f.write(svc.metrics().body + "\n")
    svc.stop()

    # Reference: the pass-through loop's latency at the same rate (its own group, from the end).
    h.say(f"(a) latency at {lat_rate} facts/s (reference)")
    proc = h.start([passthrough, "--bootstrap", bootstrap, "--input", "hs.indicators.v1", "--output",
                    "bench.passthrough.v1", "--group", "bench-passthrough-latency", "--from-end", "--records", "0"],
                   "passthrough-latency.out", "passthrough-latency.log")
    for _ in range(300):
        with open(f"{out}/passthrough-latency.log") as f:
            if "assigned" in f.read():
                break
        time.sleep(0.05)
    time.sleep(1)
    lat_a = latency_run("latpt", "bench.passthrough.v1")
    h.say(lat_a)
    total_facts += int(field("sent", lat_a)) + 1
    proc.terminate()
    proc.wait()
    h.forget(proc)

    # Fill the table to N keys with the service running, then restart it and time the rebuild.
    rss_live_now = rss_fill = rss_rebuilt_now = rss_rebuild = replayed = 0
    rebuild_s = rebuild_gauge = "-"
    if not o.skip_rebuild:
        fill = o.rebuild_keys - total_facts
        if fill < 0:
            # The latency runs publish rate x seconds facts, more than N once (b) is fast: fill from an empty
            # broker instead, so that the state holds exactly N keys.
            h.say(f"{total_facts} facts published already: resetting Kafka to fill exactly {o.rebuild_keys}")
            h.fresh_kafka()
            fill = o.rebuild_keys
        h.say(f"filling hs.indicators.v1 to {o.rebuild_keys} facts (+{fill}) with the service running")
        svc = start_count("count-fill", f"bench-count-{o.repeat}")
        if fill > 0:
            h.say(h.tool("load", "--bootstrap", bootstrap, "--run", "fill", "--records", str(fill), "--indicators",
                         str(o.indicators)))
        _, _, done_ms, m = wait_consumed(h, svc, 1, o.rebuild_keys, 900, track_rss)
        wait_committed(svc, done_ms, m.sum("hs_transactions_committed_total"), commit_ms)
        rss_live_now = svc.metrics().sum("hs_process_resident_bytes")
        rss_fill = peak_rss(svc.pid)
        svc.stop()

        h.say(f"restarting the service: rebuild of {o.rebuild_keys} facts until /readyz answers 200")
        t0 = now_ms()
        svc = start_count("count-rebuild", f"bench-count-{o.repeat}")
        while True:
            if not svc.alive():
                h.die(f"the count service exited during the rebuild (log: {svc.log})")
            if svc.get("/readyz")[0] == 200:
                break
            if now_ms() - t0 >= 600000:
                h.die("not ready after 600 s")
            time.sleep(0.02)
        t1 = now_ms()
        m = svc.metrics()
        replayed = m.sum("hs_records_in_total", 'topic="hs.indicators.v1"')
        rebuild_gauge = m.text("hs_rebuild_seconds")
        rss_rebuilt_now = m.sum("hs_process_resident_bytes")
        rss_rebuild = peak_rss(svc.pid)
        svc.stop()
        rebuild_s = f"{(t1 - t0) / 1000:.2f}"
        if replayed != o.rebuild_keys:
            h.say(f"warning: the rebuild replayed {replayed} records, expected {o.rebuild_keys}")

    # --- results ---
    target_ms = 2 * commit_ms + 20
    ratio = f"{100 * int(rate_b) / float(rate_a) if float(rate_a) else 0:.0f}"
    # What each loop costs the whole machine (loop or service, broker, load, everything) per event, and the
    # ratio b / a would be if both ran at the machine's full CPU: the rates can differ from that when a loop
    # waits (librdkafka 2.0's fetch back-off, docs/benchmarks.md), the CPU per event does not.
    cpu_a = per_million(int(median([str(b) for b in busy_a])), total_per_run)
    cpu_b = per_million(int(median([str(b) for b in busy_b])), total_per_run)
    cpu_ratio = f"{100 * float(cpu_a) / float(cpu_b) if float(cpu_b) else 0:.0f}"
    p50, p99 = field("p50_ms", lat_b), field("p99_ms", lat_b)
    extra = ""
    if o.commit_records:
        extra += f", commit-records {o.commit_records}"
    if os.environ.get("HS_KAFKA_RETRY_BACKOFF_MS"):
        extra += f", HS_KAFKA_RETRY_BACKOFF_MS={os.environ['HS_KAFKA_RETRY_BACKOFF_MS']}"
    prefetch = os.environ.get("HS_KAFKA_QUEUED_MIN_MESSAGES") or "100000, the default"
    lines = ["# Benchmark results", "",
             *host_lines(f", log.segment.bytes {os.environ['HS_LOCAL_KAFKA_SEGMENT_BYTES']}"),
             f"load average before the run: {load_before}. Input: {records} facts per throughput run after {warmup} "
             "warm-up",
             f"facts (IndicatorObservation, one new key each, {o.indicators} indicators); {o.repeat} runs each of (a) "
             "and (b), medians;",
             f"commit interval {o.commit_interval}{extra}; consumer prefetch queued.min.messages {prefetch}.", "",
             "| measure | value | target | result |",
             "|---|---|---|---|",
             f"| (a) pass-through (librdkafka, idempotent, no transactions) | {rate_a} events/s | — | |",
             f"| (b) runtime + count, exactly-once | {rate_b} events/s | ≥ 70 % of (a) | |",
             f"| ratio b / a | {ratio} % | ≥ 70 % | {verdict(int(ratio) >= 70)} |",
             f"| whole-machine CPU s per 1 000 000 events: (a) · (b) | {cpu_a} · {cpu_b} | — | |",
             f"| ratio b / a if both were CPU-bound: CPU per event a / b | {cpu_ratio} % | — | |",
             f"| (b) end-to-end latency p50 at {lat_rate} events/s | {p50} ms | — | |",
             f"| (b) end-to-end latency p99 at {lat_rate} events/s | {p99} ms "
             f"| ≤ 2 × {commit_ms} + 20 = {target_ms} ms "
             f"| {verdict(float(p99) <= target_ms)} |"]
    if o.skip_rebuild:
        lines.append("| peak RSS (VmHWM) | not measured (--skip-rebuild) | ≤ 200 MB with 1 M keys | — |")
    else:
        peak = max(rss_fill, rss_rebuild)
        lines += [f"| rebuild of {o.rebuild_keys} keys (start → /readyz 200) | {rebuild_s} s | — | |",
                  f"| peak RSS with {o.rebuild_keys} keys in state (VmHWM) | {mb(peak)} MB | ≤ 200 MB | "
                  f"{verdict(int(mb(peak)) <= 200)} |"]
    lines += ["", "Details:", "",
              "- (a), from the first measured record consumed to the last output acknowledged:",
              *(f"  - {d}" for d in details_a),
              "- (b), from the first /metrics sample past the warm-up to the last transaction committed (sampled every "
              "50 ms):",
              *(f"  - {d}" for d in details_b),
              f"- (b) latency (facts sent after {o.latency_warmup} s of warm-up, output read with read_committed; "
              f"per-second timeline in latency-lat.log): {lat_b}",
              f"- (a) latency at the same rate, for reference (no transactions, so no commit wait): {lat_a}"]
    if not o.skip_rebuild:
        lines += [f"- rebuild: hs_rebuild_seconds (last partition) {rebuild_gauge} s; {replayed} records replayed; RSS "
                  f"when ready {mb(rss_rebuilt_now)} MB, peak {mb(rss_rebuild)} MB.",
                  f"- RSS: peak {mb(rss_tput)} MB after the last (b) run ({total_per_run} keys), "
                  f"{mb(rss_lat)} MB after "
                  f"the latency run, {mb(rss_fill)} MB while filling to {o.rebuild_keys} keys (RSS then "
                  f"{mb(rss_live_now)} MB), {mb(rss_rebuild)} MB in the rebuild; largest hs_process_resident_bytes "
                  f"sampled {mb(max_rss_gauge)} MB."]
    h.write_results(lines)
    h.succeeded = True


# --- scenario `mock-retention`: the embedded broker's retention (no real Kafka) ---------------------------------


def scenario_mock_retention(argv):
    h = Harness("bench", os.path.join(BUILD, "bench"))

    def body():
        h.build(["hs-broker", "mock-retention"], ["tools/hs-broker/hs-broker", "tools/bench/mock-retention"])
        broker = subprocess.Popen([os.path.join(BUILD, "tools", "hs-broker", "hs-broker"), "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        h.procs.append(broker)
        bootstrap = broker.stdout.readline().strip()
        code = subprocess.run([os.path.join(BUILD, "tools", "bench", "mock-retention"), bootstrap, *argv]).returncode
        if code:
            sys.exit(code)

    h.run(body)


# --- scenario `targets`: the targets service against the pass-through, outputs checked against hsctl calc ------

TARGETS_DOC = """The targets scenario of the benchmark (docs/benchmarks.md, "The targets scenario").
Against a real Kafka broker of its own it publishes 3 rules per indicator to hs.rules.v1 and then the five
regions and the nation x M indicators x Q quarters of IndicatorObservation facts (tools/bench/targets_load.c,
as fast as the producer goes), and measures, alternately --repeat times over that same fact stream:
  (a) the raw pass-through (tools/bench/passthrough.c: librdkafka consume -> produce, no transactions),
      from the first record consumed to the last output acknowledged;
  (b) the targets service (services/targets) under exactly-once, in a fresh consumer group, from the first
      fact consumed to the moment its last output is visible to a read_committed consumer (as many outputs
      as the offline calculation makes changes: tools/bench/targets_load.c --await).
It reports facts/s of both (medians), the ratio b / a against the target of 50 %, and checks that the
outputs are complete and right: the final hs.target-status.v1 and hs.alerts.v1 tables, read back with
read_committed (`hsctl tail`), must equal `hsctl calc targets` over the same rules and facts, key for key.
Results go to BUILD/bench/targets/results.md. A benchmark, never a timed test: run it by hand on a quiet
machine (the load average before and after is recorded with the figures).

  usage: tools/bench/targets [options]

Environment: HS_BUILD_DIR (build directory, default <repo>/build; built if needed), HS_BENCH_KAFKA_DIR
(broker state, default BUILD/bench), HS_LOCAL_KAFKA_PORT / HS_LOCAL_KAFKA_CONTROLLER_PORT (default 29092 /
29093, as tools/bench/run: run one benchmark at a time, or give each its own ports and state); HS_KAFKA_*
reach the service and the generator. The broker is reset before the run and stopped afterwards (its data
removed unless --keep or the run failed); everything started here is stopped on exit."""


def scenario_targets(argv):
    p = parser_for("tools/bench/targets", TARGETS_DOC)
    p.add_argument("--indicators", type=positive, default=500, help="indicators (default 500): 3 rules and 6 x Q "
                                                                    "facts each")
    p.add_argument("--quarters", type=positive, default=40, help="quarters from 2014Q1 (default 40)")
    p.add_argument("--repeat", type=positive, default=3,
                   help="runs of (a) and of (b), alternating; medians (default 3)")
    p.add_argument("--commit-interval", default="100ms", help="the service's --commit-interval (default 100ms)")
    p.add_argument("--commit-records", help="the service's --commit-records (default: the runtime's own)")
    p.add_argument("--perf", action="store_true",
                   help="profile the first (b) run with perf record; summary in BUILD/bench/targets/perf-targets.txt")
    p.add_argument("--keep", action="store_true", help="keep the broker's data afterwards")
    p.add_argument("--no-build", action="store_true", help="run what is already built")
    o = p.parse_args(argv)
    h = Harness("bench targets", os.path.join(BUILD, "bench", "targets"), keep=o.keep, no_build=o.no_build)
    h.run(lambda: targets_benchmark(h, o))


def final_table(paths):
    """The table of CloudEvents JSON-lines files in log order, keyed by (type, subject); null data deletes."""
    table = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    event = json.loads(line)
                    key = (event["type"], event["subject"])
                    if event.get("data") is None:
                        table.pop(key, None)
                    else:
                        table[key] = event["data"]
    return table


def verify_targets_outputs(h):
    """The final hs.target-status.v1 and hs.alerts.v1 tables, read back with read_committed, against the offline
    calculation over the same rules and facts: (summary line, whether they are equal)."""
    paths = []
    for topic in ("hs.target-status.v1", "hs.alerts.v1"):
        # Each topic holds every run's outputs (nothing is compacted during the benchmark with its 1 GiB
        # segments), so only the latest record of each key is kept: the file holds the final table.
        latest = {}
        proc = subprocess.Popen([os.path.join(BUILD, "tools", "hsctl", "hsctl"), "--bootstrap", h.bootstrap, "tail",
                                 topic, "--from-beginning"], stdout=subprocess.PIPE, text=True, env=h.child_env())
        for line in proc.stdout:
            if line.strip():
                event = json.loads(line)
                key = (event["type"], event["subject"])
                latest.pop(key, None)  # re-inserted last: the table keeps log order
                latest[key] = line
        if proc.wait() != 0:
            h.die(f"reading {topic} back failed")
        path = os.path.join(h.out, f"actual-{topic}.ndjson")
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(latest.values())
        paths.append(path)
    expected, actual = final_table([os.path.join(h.out, "expected.ndjson")]), final_table(paths)

    def kinds(table, suffix):
        return sum(1 for t, _ in table if t.endswith(suffix))

    missing = sum(1 for k in expected if k not in actual)
    extra = sum(1 for k in actual if k not in expected)
    differ = sum(1 for k in expected if k in actual and actual[k] != expected[k])
    firing = sum(1 for (t, _), d in actual.items() if t.endswith("Alert") and d.get("state") == "FIRING")
    line = (f"statuses={kinds(actual, 'TargetStatus')} expected_statuses={kinds(expected, 'TargetStatus')} "
            f"alerts={kinds(actual, 'Alert')} expected_alerts={kinds(expected, 'Alert')} firing={firing} "
            f"missing={missing} extra={extra} differing={differ}")
    return line, missing == extra == differ == 0


def targets_benchmark(h, o):
    interval_ms(o.commit_interval)
    if o.perf and subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode != 0:
        h.die("--perf: perf is not installed")
    h.build(["targets", "hsctl", "passthrough", "targets_load"],
            ["services/targets/targets", "tools/hsctl/hsctl", "tools/bench/passthrough", "tools/bench/targets_load"])
    h.clean_out(r".*\.log", r".*\.out", r".*\.ndjson", r"perf-.*", r"results\.md")
    out, bootstrap = h.out, h.bootstrap
    hsctl = os.path.join(BUILD, "tools", "hsctl", "hsctl")
    passthrough = os.path.join(BUILD, "tools", "bench", "passthrough")
    targets_load = os.path.join(BUILD, "tools", "bench", "targets_load")
    load_before = load_average()

    # The scenario, and the reference every output is checked against: the same calculation offline.
    facts, rules = 6 * o.indicators * o.quarters, 3 * o.indicators
    h.say(f"scenario: {o.indicators} indicators x 6 scopes x {o.quarters} quarters = {facts} facts, {rules} rules")
    h.tool("targets_load", "--indicators", str(o.indicators), "--quarters", str(o.quarters), "--rules",
           f"{out}/rules.json", "--facts", f"{out}/facts.ndjson")
    t0 = now_ms()
    with open(f"{out}/expected.ndjson", "w") as expected, open(f"{out}/calc.log", "w") as log:
        if subprocess.run([hsctl, "calc", "targets", "--rules", f"{out}/rules.json", "--input", f"{out}/facts.ndjson"],
                          stdout=expected, stderr=log).returncode != 0:
            h.die(f"hsctl calc targets failed (log: {out}/calc.log)")
    offline_s = f"{(now_ms() - t0) / 1000:.1f}"
    with open(f"{out}/calc.log") as f:
        calc_log = f.read()
    calc_line = calc_log.strip().splitlines()[-1] if calc_log.strip() else ""
    h.say(f"offline reference: {calc_line} in {offline_s} s")
    # A fresh group starts with nothing emitted, so the service produces exactly the offline changes.
    m = re.search(r"([0-9]+) output changes", calc_log)
    if not m:
        h.die(f"no output count in {out}/calc.log")
    expected_outputs = int(m.group(1))

    h.say(f"resetting and starting Kafka at {bootstrap} (state in {h.kafka_dir}/kafka)")
    h.fresh_kafka()
    h.hsctl("rules", "apply", f"{out}/rules.json", what="hsctl rules apply")
    publish_line = h.tool("targets_load", "--bootstrap", bootstrap, "--publish", "--indicators", str(o.indicators),
                          "--quarters", str(o.quarters), what="publishing the facts")
    h.say(publish_line)

    def passthrough_run(name):
        proc = h.start([passthrough, "--bootstrap", bootstrap, "--input", "hs.indicators.v1", "--output",
                        "bench.passthrough.v1", "--group", f"bench-targets-passthrough-{name}", "--records",
                        str(facts)],
                       f"passthrough-{name}.out", f"passthrough-{name}.log")
        h.finish(proc, "passthrough", f"{out}/passthrough-{name}.log")
        with open(f"{out}/passthrough-{name}.out") as f:
            return f.read().strip()

    # One unmeasured pass first: the broker's first reads of the topic are slower than any later one.
    h.say("(a) pass-through, warm-up run (not measured)")
    warmup_line = passthrough_run("warmup")
    h.say(f"(a) warm-up: {warmup_line}")

    rates_a, rates_b, details_a, details_b = [], [], [], []
    for i in range(1, o.repeat + 1):
        h.say(f"(a) pass-through, run {i} of {o.repeat}: {facts} facts")
        b0 = cpu_ticks(h.broker_pid)
        line = passthrough_run(str(i))
        b1 = cpu_ticks(h.broker_pid)
        rates_a.append(field("rate", line))
        details_a.append(f"run {i}: {field('rate', line)} events/s, {field('seconds', line)} s; CPU s: loop "
                         f"{field('cpu_s', line)}, broker {seconds(b1 - b0)}")
        h.say(f"(a) run {i}: {line}")

        h.say(f"(b) targets service (exactly-once, commit interval {o.commit_interval}), run {i} of {o.repeat}")
        # The finish line: a read_committed consumer of both output topics from their ends, which reports when
        # the last expected output has become visible.
        await_out = f"{out}/await-{i}.out"
        waiter = h.start([targets_load, "--bootstrap", bootstrap, "--await", str(expected_outputs), "--timeout",
                          "1800"], f"await-{i}.out", f"await-{i}.log")
        for _ in range(600):
            with open(await_out) as f:
                if "ready" in f.read():
                    break
            if waiter.poll() is not None:
                h.die(f"the read_committed consumer did not start (log: {out}/await-{i}.log)")
            time.sleep(0.05)
        else:
            h.die(f"the read_committed consumer did not start (log: {out}/await-{i}.log)")
        svc = BenchService(h, os.path.join(BUILD, "services", "targets", "targets"), "targets", f"targets-{i}",
                           f"bench-targets-{i}", o.commit_interval, o.commit_records)
        s0, b0 = cpu_ticks(svc.pid), cpu_ticks(h.broker_pid)
        h.perf_start(svc.pid, "targets", o.perf and i == 1)
        # The clock starts at the first sample with a fact consumed: the rules are read before any fact.
        first_ms, first_in, _, _ = wait_consumed(h, svc, 1, facts, 1800)
        code = waiter.wait()
        h.forget(waiter)
        with open(await_out) as f:
            last = f.read().strip().splitlines()[-1]
        if code != 0:
            h.die(f"only part of the outputs became visible: {last} (log: {svc.log})")
        s1, b1 = cpu_ticks(svc.pid), cpu_ticks(h.broker_pid)
        h.perf_stop()
        end_ms = int(field("last_ms", last))
        rate = (facts - first_in) * 1000 // (end_ms - first_ms + 1)
        seconds_b = f"{(end_ms - first_ms) / 1000:.2f}"
        rates_b.append(str(rate))
        m = svc.metrics()
        statuses = m.sum("hs_records_out_total", 'topic="hs.target-status.v1"')
        alerts = m.sum("hs_records_out_total", 'topic="hs.alerts.v1"')
        outputs = f"{statuses} statuses + {alerts} alerts"
        dlq, txns = m.sum("hs_records_dlq_total"), m.sum("hs_transactions_committed_total")
        details_b.append(f"run {i}: {rate} facts/s, {seconds_b} s; {txns} transactions; CPU s: service "
                         f"{seconds(s1 - s0)} (whole run, rules included), broker {seconds(b1 - b0)}; "
                         "outputs produced: "
                         f"{outputs}; {dlq} dead letters")
        h.say(f"(b) run {i}: rate={rate} seconds={seconds_b} transactions={txns} outputs=({outputs}) dlq={dlq}")
        if dlq:
            h.die(f"{dlq} facts or rules were dead-lettered (log: {svc.log})")
        svc.stop()
    load_after = load_average()
    h.say("checking the outputs against hsctl calc targets")
    verify_line, equal = verify_targets_outputs(h)
    verified = verdict(equal)
    h.say(f"outputs: {verify_line}")

    rate_a, rate_b = median(rates_a), median(rates_b)
    ratio = f"{100 * int(rate_b) / float(rate_a) if float(rate_a) else 0:.0f}"
    extra = f", commit-records {o.commit_records}" if o.commit_records else ""
    lines = ["# Benchmark results: the targets scenario", "", *host_lines(""),
             f"load average before the run: {load_before}, after: {load_after}. Input: {rules} rules (hs.rules.v1), "
             "then",
             f"{facts} facts = 6 scopes x {o.indicators} indicators x {o.quarters} quarters "
             "(tools/bench/targets_load.c); "
             f"{o.repeat} runs",
             f"each of (a) and (b), medians; commit interval {o.commit_interval}{extra}.", "",
             "| measure | value | target | result |",
             "|---|---|---|---|",
             f"| (a) pass-through (librdkafka, idempotent, no transactions) | {rate_a} facts/s | — | |",
             f"| (b) targets service, exactly-once | {rate_b} facts/s | ≥ 50 % of (a) | |",
             f"| ratio b / a | {ratio} % | ≥ 50 % | {verdict(int(ratio) >= 50)} |",
             f"| outputs equal to `hsctl calc targets` | {verify_line} | all equal | {verified} |", "",
             "Details:", "",
             f"- publishing the facts: {publish_line}",
             f"- offline reference (`hsctl calc targets`, JSON in and out): {calc_line}, {offline_s} s",
             "- (a), from the first record consumed to the last output acknowledged (after one unmeasured warm-up run: "
             f"{field('rate', warmup_line)} events/s):",
             *(f"  - {d}" for d in details_a),
             f"- (b), from the first /metrics sample with a fact consumed (every 50 ms) to the last of the "
             f"{expected_outputs} outputs read with read_committed:",
             *(f"  - {d}" for d in details_b)]
    h.write_results(lines)
    if not equal:
        h.die(f"the service's outputs differ from hsctl calc targets ({verify_line})")
    h.succeeded = True


# --- scenario `rules`: how long large rule work holds the targets service's loop --------------------------------

RULES_DOC = """How long large rule work holds the targets service's loop (docs/reliability.md, "Large rule work").
A benchmark, never a timed test: run it by hand against a broker of your own (tools/kafka start;
HS_LOCAL_KAFKA_PORT picks its port).

It publishes facts for --indicators indicators (the five regions and the nation x --quarters quarters each),
starts the targets service in a fresh consumer group, and probes its /healthz every 5 ms from another
thread: the HTTP endpoint is served by the service's one loop, so the longest answer is the longest time the
loop was held. Three phases, each with the longest probe and the time it took:

  start    --rules rules already on hs.rules.v1 (10 per indicator, THRESHOLD, one scope each), service start
           until /readyz answers 200 (reading the rules, rebuilding 8 partitions with them);
  live     --rules new versions of those rules applied while the service runs, until it has emitted the
           statuses they change;
  large    one rule of --periods baseline periods (default 70 000, about 980 KB: over the record limit),
           written raw to hs.rules.v1, and the same with 4 000 periods (within it).

  usage: tools/bench/rules [--rules N] [--indicators M] [--quarters Q] [--periods P]
  environment: HS_BUILD_DIR (default <repo>/build), HS_BOOTSTRAP_SERVERS (default: tools/kafka bootstrap)"""

SCOPES = ["1081", "1082", "1083", "1084", "1085", "DK"]


class Probe(threading.Thread):
    """Asks /healthz every 5 ms; `worst` is the longest answer since the last reset()."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.worst, self.stop = port, 0.0, False

    def reset(self):
        worst, self.worst = self.worst, 0.0
        return worst

    def run(self):
        while not self.stop:
            start = time.monotonic()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=120).read()
            except OSError:
                pass
            self.worst = max(self.worst, time.monotonic() - start)
            time.sleep(0.005)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def proto_field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data


def scenario_rules(argv):
    p = parser_for("tools/bench/rules", RULES_DOC)
    p.add_argument("--rules", type=int, default=10000)
    p.add_argument("--indicators", type=int, default=0, help="default: rules / 10")
    p.add_argument("--quarters", type=int, default=4)
    p.add_argument("--periods", type=int, default=70000)
    args = p.parse_args(argv)
    indicators = args.indicators or max(1, args.rules // 10)
    bootstrap = os.environ.get("HS_BOOTSTRAP_SERVERS") or subprocess.run(
        [os.path.join(ROOT, "tools", "kafka"), "bootstrap"], capture_output=True, text=True).stdout.strip()
    run = f"{os.getpid()}"
    work = tempfile.mkdtemp(prefix="hs-bench-rules-")
    hsctl_path = os.path.join(BUILD, "tools", "hsctl", "hsctl")

    def hsctl(*a):
        proc = subprocess.run([hsctl_path, "--bootstrap", bootstrap, *a], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"hsctl {a[0]}: {proc.stderr[-2000:]}")
        return proc

    def rules_file(version):
        path = os.path.join(work, f"rules-{version}.json")
        rules = []
        for k in range(args.rules):
            ind, scope = k % indicators, SCOPES[(k // indicators) % len(SCOPES)]
            rules.append({"id": f"bench{run}.r{k}", "service": "targets", "subject": f"bench{run}.i{ind}",
                          "kind": "THRESHOLD", "direction": "HIGHER_IS_BETTER", "threshold": 50 + version,
                          "scopes": [{"kind": "NATIONAL" if scope == "DK" else "REGION", "code": scope}]})
        with open(path, "w") as f:
            json.dump(rules, f)
        return path

    def large_rule(periods, key):
        """A BASELINE_MARGIN rule of `periods` distinct daily periods, packed by hand (healthsignals.v1.Rule)."""
        value = (proto_field(1, key) + proto_field(2, "targets") + proto_field(3, f"bench{run}.i0") + proto_field(4, 2)
                 + proto_field(5, 2))
        for d in range(periods):  # 336 distinct days a year: the 1st-28th of each month
            year, day = 1900 + d // 336, d % 336
            value += proto_field(14, f"{year}-{day // 28 + 1:02d}-{day % 28 + 1:02d}")
        path = os.path.join(work, f"{key}.bin")
        with open(path, "wb") as f:
            f.write(value)
        return path, len(value)

    hsctl("topics", "create")
    facts = os.path.join(work, "facts.ndjson")
    with open(facts, "w") as f:
        for i in range(indicators):
            for scope in SCOPES:
                for q in range(args.quarters):
                    fact = hstest.indicator_fact(f"bench{run}.i{i}", scope, f"{2020 + q // 4}Q{q % 4 + 1}",
                                                 (i * 7 + q * 13) % 100, "PERCENT", event_source="bench")
                    f.write(json.dumps(fact) + "\n")
    hsctl("publish", "hs.indicators.v1", "--ndjson", facts)
    hsctl("rules", "apply", rules_file(0))
    print(f"{indicators * len(SCOPES) * args.quarters} facts, {args.rules} rules published", flush=True)

    started = time.monotonic()
    service = hstest.Service(os.path.join(BUILD, "services", "targets", "targets"), "targets",
                             f"hs-bench-rules-{run}", bootstrap, work, run, commit_interval="100ms")
    probe = Probe(service.port)
    probe.start()
    service.wait_ready(timeout=600)
    print(f"start:  ready after {time.monotonic() - started:.1f} s, longest /healthz {probe.reset() * 1000:.0f} ms",
          flush=True)

    statuses_before = service.metric("hs_records_out_total", topic="hs.target-status.v1") or 0
    want = indicators * len(SCOPES) * args.quarters * (args.rules // (indicators * len(SCOPES)) or 1)
    started = time.monotonic()
    hsctl("rules", "apply", rules_file(1))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        emitted = (service.metric("hs_records_out_total", topic="hs.target-status.v1") or 0) - statuses_before
        if emitted >= min(want, args.rules * args.quarters):
            break
        time.sleep(0.1)
    print(f"live:   {emitted:.0f} statuses after {time.monotonic() - started:.1f} s, longest /healthz "
          f"{probe.reset() * 1000:.0f} ms", flush=True)

    for periods in (args.periods, 4000):
        path, size = large_rule(periods, f"bench{run}.large{periods}")
        dlq_before = service.metric("hs_records_dlq_total", topic="hs.rules.v1") or 0
        subprocess.run([os.path.join(BUILD, "tests", "produce_raw"), bootstrap, "hs.rules.v1", "0",
                        f"bench{run}.large{periods}", path], check=True, capture_output=True)
        time.sleep(5)
        dlq = (service.metric("hs_records_dlq_total", topic="hs.rules.v1") or 0) - dlq_before
        print(f"large:  {periods} baseline periods ({size} bytes): longest /healthz {probe.reset() * 1000:.0f} ms "
              f"in the 5 s after; dead-lettered: {dlq:.0f}", flush=True)

    probe.stop = True
    service.stop()
    hsctl("rules", "delete", *[f"bench{run}.r{k}" for k in range(args.rules)], f"bench{run}.large{args.periods}",
          f"bench{run}.large4000")
    print(f"logs in {work}")


SCENARIOS = {"run": scenario_run, "targets": scenario_targets, "rules": scenario_rules,
             "mock-retention": scenario_mock_retention}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    SCENARIOS[sys.argv[1]](sys.argv[2:])
