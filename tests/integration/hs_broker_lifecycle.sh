#!/usr/bin/env bash
# hs-broker's contract as a process: prints its bootstrap address first, serves the Kafka protocol there
# (through the relay to the mock brokers), refuses a port that is taken with a clear message, and exits 0
# promptly on SIGTERM and on SIGINT.
set -euo pipefail
broker=${1:?usage: hs_broker_lifecycle.sh HS_BROKER SMOKE_BINARY}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

start_broker() { # $1 = name; sets $addr to the bootstrap address (runs in this shell, so `wait` works)
  "$broker" --port 0 --brokers 3 --topic hs.indicators.v1:8 >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
  echo $! >"$work/$1.pid"
  for _ in $(seq 1 600); do
    [ -s "$work/$1.out" ] && break
    kill -0 "$(cat "$work/$1.pid")" 2>/dev/null || { echo "FAIL: hs-broker exited at start"; cat "$work/$1.err"; exit 1; }
    sleep 0.05
  done
  addr=$(head -n 1 "$work/$1.out")
}

stop_and_time() { # $1 = name, $2 = signal; fails unless exit status 0 within 10 s
  local pid start
  pid=$(cat "$work/$1.pid")
  start=$(date +%s%N)
  kill "-$2" "$pid"
  local status=0
  wait "$pid" || status=$?
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$status" = 0 ] || { echo "FAIL: hs-broker exited $status on SIG$2"; cat "$work/$1.err"; exit 1; }
  [ "$ms" -lt 10000 ] || { echo "FAIL: hs-broker took ${ms} ms to stop on SIG$2"; exit 1; }
  echo "ok: SIG$2 -> exit 0 in ${ms} ms"
}

start_broker a
[[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] || { echo "FAIL: first line is not a bootstrap address: '$addr'"; exit 1; }
echo "ok: bootstrap address $addr"

# A second broker on the same port must refuse to start, naming the port.
port=${addr##*:}
if "$broker" --port "$port" >"$work/dup.out" 2>"$work/dup.err"; then
  echo "FAIL: a second hs-broker started on a taken port"; exit 1
fi
grep -q "cannot listen on 127.0.0.1:$port" "$work/dup.err" || { echo "FAIL: no clear message"; cat "$work/dup.err"; exit 1; }
echo "ok: taken port refused with a clear message"

# Bad flags are usage errors (exit 2), --help is not.
"$broker" --help | grep -q "usage: hs-broker" || { echo "FAIL: --help"; exit 1; }
status=0; "$broker" --brokers 0 2>/dev/null || status=$?
[ "$status" = 2 ] || { echo "FAIL: --brokers 0 exited $status, want 2"; exit 1; }
echo "ok: --help and flag validation"

# The topic created with --topic has its 8 partitions: the transactional smoke test picks its partition
# from the metadata, so it exercises the relay, the mock brokers and the topic in one go.
if [ -n "${2:-}" ]; then
  HS_BOOTSTRAP_SERVERS=$addr HS_BROKER_KIND=mock "$2" >"$work/smoke.log" 2>&1 ||
    { echo "FAIL: smoke test through $addr"; cat "$work/smoke.log"; exit 1; }
  echo "ok: Kafka protocol served through the relay on $addr"
fi

stop_and_time a TERM
start_broker b
stop_and_time b INT
