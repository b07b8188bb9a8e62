#!/usr/bin/env bash
# lint.monitoring: deploy/monitoring is valid to the programs that read it —
#   prometheus.yml          promtool check config (which checks the rule files it names too)
#   rules/*.rules.yml       promtool check rules, and promtool test rules with rules/*.test.yml: each alert
#                           fires on the series that should raise it and not on their healthy neighbours
#   alertmanager.yml        amtool check-config, and amtool config routes test: health alerts, capacity
#                           escalations and platform alerts reach the receivers meant for them
#   grafana/dashboards      JSON; every panel on the provisioned datasource; every query valid PromQL (its
#                           template variables substituted, checked by promtool as a recording rule)
# e2e.monitoring runs the same configuration and every dashboard query against a real Prometheus.
#   usage: monitoring.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: monitoring.sh SOURCE_DIR}
dir="$src/deploy/monitoring"
for tool in promtool amtool python3; do
  command -v "$tool" >/dev/null || { echo "monitoring.sh: $tool not installed (tools/setup installs it)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() { # DESCRIPTION COMMAND...: runs it, prints its output on failure
  if out=$("${@:2}" 2>&1); then
    echo "ok: $1"
  else
    echo "FAIL: $1"$'\n'"$out"
    failures=$((failures + 1))
  fi
}

check "promtool check config prometheus.yml" promtool check config "$dir/prometheus.yml"
for rules in "$dir"/rules/*.rules.yml; do
  check "promtool check rules ${rules#"$dir"/}" promtool check rules "$rules"
done
for tests in "$dir"/rules/*.test.yml; do
  check "promtool test rules ${tests#"$dir"/}" promtool test rules "$tests"
done
check "amtool check-config alertmanager.yml" amtool check-config "$dir/alertmanager.yml"
route() { # RECEIVER LABEL=VALUE...
  amtool config routes test --config.file="$dir/alertmanager.yml" --verify.receivers="$1" "${@:2}"
}
check "route: a target missed in a region -> health" \
  route health alertname=akutplan.ventetid.somatik service=targets scope=region:1081 severity=warning plan=akutplan
check "route: a capacity escalation -> health" \
  route health alertname=CapacityEscalation service=capacity resource=beds.medical scope=region:1085 level=3
check "route: a service down (Prometheus) -> platform" \
  route platform alertname=HealthsignalsServiceDown category=platform job=hs-targets severity=critical

# The dashboards: every query as a recording rule, for promtool to parse.
python3 - "$dir" "$work/dashboards.rules.yml" <<'PY' || failures=$((failures + 1))
import json, os, re, sys
root, out = sys.argv[1:3]
provisioned = open(os.path.join(root, "grafana", "provisioning", "datasources", "healthsignals.yml")).read()
uid = re.search(r"uid:\s*(\S+)", provisioned).group(1)
bad, rules = [], []
folder = os.path.join(root, "grafana", "dashboards")
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        board = json.load(f)
    names = {v["name"] for v in board.get("templating", {}).get("list", [])}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") != uid:
            bad.append(f"{name}: panel {panel['title']!r} not on datasource {uid}")
        if not panel.get("targets"):
            bad.append(f"{name}: panel {panel['title']!r} has no query")
        for t in panel.get("targets", []):
            expr = t["expr"]
            for var in re.findall(r"\$(\w+)", expr):
                if var not in names and var != "__rate_interval":
                    bad.append(f"{name}: panel {panel['title']!r}: ${var} is no variable of the dashboard")
            expr = re.sub(r"\$__rate_interval", "1m", expr)
            expr = re.sub(r"\$\w+", "x", expr)
            rules.append({"record": f"dashboard:query:{len(rules)}", "expr": expr})
    print(f"ok: {name}: {sum(1 for p in board['panels'] if p['type'] != 'row')} panels")
with open(out, "w") as f:
    json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, f)  # JSON is YAML
for b in bad:
    print("FAIL: " + b)
sys.exit(1 if bad else 0)
PY
check "every dashboard query is valid PromQL" promtool check rules "$work/dashboards.rules.yml"

[ "$failures" -eq 0 ] || { echo "monitoring.sh: $failures failures"; exit 1; }
echo "monitoring.sh: deploy/monitoring is valid"
