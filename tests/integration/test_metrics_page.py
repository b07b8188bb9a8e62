#!/usr/bin/env python3
"""Every service's /metrics page, as Prometheus and its tooling read it: `promtool check metrics` (the
reference linter for names, types, units and the text format) finds nothing to say, and the standard process
metrics and hs_build_info are there with their types, next to the project's own names (the deprecated
hs_process_resident_bytes kept). promtool comes from tools/devtools (Debian's prometheus package, unpacked).

usage: test_metrics_page.py DEVTOOLS SERVICE_BINARY...
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hstest  # noqa: E402
from hstest import fail, finish, ok  # noqa: E402

DEVTOOLS, SERVICES = sys.argv[1], sys.argv[2:]
BOOTSTRAP = os.environ["HS_BOOTSTRAP_SERVERS"]
work = tempfile.mkdtemp(prefix="hs-metrics-page-")

fetched = subprocess.run([DEVTOOLS, "promtool"], capture_output=True, text=True, timeout=600)
if fetched.returncode != 0:
    print(fetched.stderr)
    raise SystemExit("FAIL: promtool could not be fetched (tools/devtools promtool)")
PROMTOOL = fetched.stdout.strip()

# name -> the TYPE it must have
STANDARD = {
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "hs_build_info": "gauge",
    "hs_process_resident_bytes": "gauge",
}

for binary in SERVICES:
    name = os.path.basename(binary)
    service = hstest.Service(binary, name, f"hs-metrics-page-{name}-{os.getpid()}", BOOTSTRAP, work, os.getpid())
    try:
        service.wait_ready()
        status, page = service.get("/metrics")
        if status != 200:
            fail(f"{name}: /metrics answered {status}")
            continue
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=page, capture_output=True, text=True,
                              timeout=60)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            fail(f"{name}: promtool check metrics (exit {lint.returncode}):\n{lint.stdout}{lint.stderr}")
        else:
            ok(f"{name}: promtool check metrics finds nothing ({len(page.splitlines())} lines)")
        for metric, kind in STANDARD.items():
            if f"# TYPE {metric} {kind}\n" not in page:
                fail(f"{name}: no '# TYPE {metric} {kind}' on /metrics")
        info = [line for line in page.splitlines() if line.startswith("hs_build_info{")]
        if len(info) != 1 or 'librdkafka="' not in info[0] or 'version="' not in info[0] or \
                not info[0].endswith(" 1"):
            fail(f"{name}: hs_build_info: {info}")
        else:
            ok(f"{name}: {info[0]}")
    finally:
        code, _ = service.stop()
        if code != 0:
            fail(f"{name}: exit status {code} after SIGTERM")

finish("test_metrics_page")
