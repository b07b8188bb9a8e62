#!/usr/bin/env bash
# tools/kafka keeps the broker's state to its user: the broker's data and logs hold every record published
# to it. Run by the e2e tier on the broker the fixture started, after other tests have written to it: every
# directory under $HS_BUILD_DIR/kafka is 0700 and every file 0600 (nothing for group or others), and the
# broker runs with umask 077, so what it creates from now on is private too.
set -euo pipefail
dir="${HS_BUILD_DIR:?HS_BUILD_DIR must be set}/kafka"
fail() {
  echo "kafka_state_private: $*" >&2
  exit 1
}

[ -d "$dir/data" ] || fail "no broker state in $dir"
# The broker has created topic partitions of its own (the fixture's tests published to them).
find "$dir/data" -mindepth 1 -maxdepth 1 -type d -name '*-[0-9]*' | grep -q . ||
  fail "no partition directory in $dir/data: nothing the broker created to check"

open=$(find "$dir" \( -type d ! -perm 700 \) -o \( ! -type d -perm /077 \) -printf '%m %p\n')
[ -z "$open" ] || fail "readable by others than $(id -un):"$'\n'"$open"

pid=$(cat "$dir/kafka.pid")
broker_umask=$(sed -n 's/^Umask:[[:space:]]*//p' "/proc/$pid/status")
[ "$broker_umask" = 0077 ] || fail "the broker (pid $pid) runs with umask $broker_umask, not 0077"

echo "kafka_state_private: $(find "$dir" | wc -l) paths under $dir, all private; broker umask $broker_umask"
