#!/usr/bin/env bash
# Bystander latency under a flood of worst-case requests (one device must not stall the broker
# for the others; see docs/performance.md, "Worst-case requests").
#
#   bench/bystander_bench.sh [BUILD_DIR]
#
# Starts mosquitto with the built plugin (rate limit off: plugin_opt_max_requests_per_second 0;
# Graphite pushed to a local sink that reads and discards, so that triggers are evaluated;
# set_tcp_nodelay true) and, REPEAT times:
#   - the bystander alone: one device doing get round trips (twins_load --method get --devices 1);
#   - the same while FLOOD_DEVICES devices send the worst shapes as fast as the broker answers
#     them (twins_load --method worst: 7 000 keys, 5 000 escaped keys, deep nesting, 32 000
#     numbers under on-update and on-change triggers, over an 8 KiB _config).
# Prints each run's JSON line (results.jsonl) and a summary: the bystander's p50/p99/max and
# the flood's rate and the broker's CPU per flood request.
#
# Environment: OUT (results folder; default a new /tmp/twins-bystander-*), DURATION (measured
# seconds per run, 10), REPEAT (3), FLOOD_DEVICES (4). Needs mosquitto, jq, python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
. "$src/tests/support/start_broker.sh"
build=${1:-$src/build}
DURATION=${DURATION:-10}
REPEAT=${REPEAT:-3}
FLOOD_DEVICES=${FLOOD_DEVICES:-4}
OUT=${OUT:-$(mktemp -d /tmp/twins-bystander-XXXXXX)}
mkdir -p "$OUT"
work=$(mktemp -d /tmp/twins-bystander-work-XXXXXX)
results=$OUT/results.jsonl
: >"$results"
load_bin=$build/bench/twins_load
[[ -x $load_bin && -f $build/plugin/mosquitto_twins.so ]] || {
  echo "build $build first with -DTWINS_BENCH=ON (twins_load, mosquitto_twins)" >&2
  exit 1
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The Graphite sink: accepts carbon connections and discards what they send.
carbon_port=$(free_ports 1)
python3 - "$carbon_port" <<'PY' &
import socket, sys, threading
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def drain(conn):
    while conn.recv(1 << 16):
        pass
while True:
    conn, _ = server.accept()
    threading.Thread(target=drain, args=(conn,), daemon=True).start()
PY
pids+=($!)

start_broker "$work/broker" "connection_messages false
log_type error
log_type warning
plugin $build/plugin/mosquitto_twins.so
plugin_opt_db_path $work/db
plugin_opt_rest_listen off
plugin_opt_sync_writes false
plugin_opt_max_requests_per_second 0
plugin_opt_graphite_url tcp://127.0.0.1:$carbon_port" || exit 1
broker=$started_pid
port=$started_port
pids+=("$broker")

# run LABEL twins_load-options...: appends the JSON line, labelled. Client ids of their own
# (LABEL and the run number), so that no load takes over another's session.
run() {
  local label=$1
  shift
  "$load_bin" --port "$port" --broker-pid "$broker" --prefix "$label$i-" --label "$label" "$@" >>"$results"
}

for ((i = 0; i < REPEAT; i++)); do
  echo "== run $((i + 1))/$REPEAT: bystander alone" >&2
  run alone --method get --devices 1 --duration "$DURATION" --warmup 1
  echo "== run $((i + 1))/$REPEAT: bystander under the flood" >&2
  run flood --method worst --devices "$FLOOD_DEVICES" --duration "$((DURATION + 2))" --warmup 1 --timeout-ms 30000 &
  flood=$!
  sleep 2  # the flood's priming and warm-up
  run bystander --method get --devices 1 --duration "$DURATION" --warmup 0
  wait "$flood"
done

# median LABEL FIELD
median() {
  jq -s -r --arg l "$1" --arg f "$2" '[.[] | select(.label == $l) | .[$f]] | sort | .[(length - 1) / 2 | floor]' "$results"
}
{
  echo "| | p50 ms | p99 ms | max ms | requests/s | broker CPU µs/request | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for label in alone bystander flood; do
    echo "| $label | $(median "$label" p50_ms) | $(median "$label" p99_ms) | $(median "$label" max_ms) |" \
      "$(median "$label" ops_per_s) | $(median "$label" broker_us_per_op) | $(median "$label" errors) |"
  done
  echo
  echo "Medians of $REPEAT runs of ${DURATION} s; flood: $FLOOD_DEVICES devices, worst shapes in turn."
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg); results in $results"
} | tee "$OUT/summary.md"
grep -i "error\|warn" "$work/broker/mosquitto.log" | sort | uniq -c | head -5 >&2 || true
