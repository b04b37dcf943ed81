#!/usr/bin/env bash
# How long work queued by a thread other than the broker's (REST, Graphite) waits before it
# runs on the broker thread, with the broker wake and without it (tick only), on Debian's
# /usr/sbin/mosquitto and every broker scripts/compat.sh built under build-compat/.
#
#   bench/wake_latency.sh [BUILD_DIR, default build]      SAMPLES (default 500) tasks per run
#
# bench/wake_bench_plugin.cpp queues a task every 20-30 ms on an otherwise idle broker and
# prints the p50, p99 and max of the waits. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
SAMPLES=${SAMPLES:-500}
plugin=$PWD/$build/bench/twins_wake_bench_plugin.so
. bench/brokers.sh
. tests/support/start_broker.sh

printf '| broker | wake | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n'
for broker in "${brokers[@]}"; do
  lib=$(dirname "$(dirname "$broker")")/lib
  for wake in on off; do
    start_port=$(free_ports 1)
    address=off
    [ "$wake" = on ] && address=127.0.0.1:$start_port
    rm -rf "$work/broker"
    TWINS_MOSQUITTO=$broker LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} start_broker "$work/broker" \
      "plugin $plugin
plugin_opt_wake_address $address
plugin_opt_samples $SAMPLES" || exit 1
    pid=$started_pid
    until grep -q "wake_bench:" "$work/broker/mosquitto.log"; do
      kill -0 "$pid" 2>/dev/null || { cat "$work/broker/mosquitto.log"; exit 1; }
      sleep 1
    done
    kill "$pid" && wait "$pid" 2>/dev/null || true
    pid=""
    version=$(grep -o 'mosquitto version [^ ]*' "$work/broker/mosquitto.log" | head -1 | cut -d' ' -f3)
    grep -o 'wake_bench: .*' "$work/broker/mosquitto.log" |
      sed -E "s/wake_bench: (on|off) ([0-9]+) samples, p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms/| $version | \1 | \2 | \3 | \4 | \5 |/"
  done
done
