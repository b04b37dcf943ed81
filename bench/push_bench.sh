#!/usr/bin/env bash
# REST write -> `updated` push received by a watching device: p50/p99, on an idle broker and
# while 64 devices patch flat out (QoS 0). See docs/performance.md.
#
#   bench/push_bench.sh [BUILD_DIR]        (default: build/; needs -DTWINS_BENCH=ON)
#
# Environment: WRITES (pushes measured per run, 1000), REPEAT (runs of each, 3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(dirname "$here")/build}
WRITES=${WRITES:-1000}
REPEAT=${REPEAT:-3}
work=$(mktemp -d /tmp/twins-push-XXXXXX)
token=push-bench-token
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$(dirname "$here")/tests/support/start_broker.sh"
start_broker "$work/broker" "max_queued_messages 100000
plugin $build/plugin/mosquitto_twins.so
plugin_opt_db_path $work/db
plugin_opt_rest_listen 127.0.0.1:@REST_PORT@
plugin_opt_rest_token $token
plugin_opt_max_requests_per_second 0" || exit 1
pids+=("$started_pid")
port=$started_port
rest_port=$started_rest_port

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$REPEAT"); do
  "$build/bench/push_latency" --port "$port" --rest-port "$rest_port" --token "$token" --writes "$WRITES" \
    --label "idle run $run"
done
"$build/bench/twins_load" --port "$port" --devices 64 --method patch --qos 0 --duration 3600 --label load \
  >/dev/null 2>&1 &
load_pid=$!
pids+=($load_pid)
sleep 2  # the load's connections are up and its priming puts done
for run in $(seq "$REPEAT"); do
  "$build/bench/push_latency" --port "$port" --rest-port "$rest_port" --token "$token" --writes "$WRITES" \
    --client "push-watcher-$run" --label "64 devices patching, run $run"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
