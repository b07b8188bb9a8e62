"""Shared helpers of the Python test scripts (tests/integration, tests/e2e): a failed expectation is counted
and printed, not raised, so one run shows every broken expectation; finish() prints the closing line that
ctest's log shows and exits with the status ctest reads."""
import sys

failures = 0


def fail(message):
    global failures
    failures += 1
    print(f"FAIL: {message}", flush=True)


def ok(message):
    print(f"ok: {message}", flush=True)


def finish(name):
    print(f"{'FAILED' if failures else 'passed'}: {name} ({failures} failures)", flush=True)
    sys.exit(1 if failures else 0)
