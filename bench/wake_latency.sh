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

printf '| broker | wake | samples | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n'
for broker in "${brokers[@]}"; do
  lib=$(dirname "$(dirname "$broker")")/lib
  for wake in on off; do
    port=$(free_port)
    address=off
    [ "$wake" = on ] && address=127.0.0.1:$port
    write_conf "$port" "$plugin" "plugin_opt_wake_address $address" "plugin_opt_samples $SAMPLES"
    : >"$work/mosquitto.log"
    LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$broker" -c "$work/mosquitto.conf" >/dev/null 2>&1 &
    pid=$!
    until grep -q "wake_bench:" "$work/mosquitto.log"; do
      kill -0 "$pid" 2>/dev/null || { cat "$work/mosquitto.log"; exit 1; }
      sleep 1
    done
    kill "$pid" && wait "$pid" 2>/dev/null || true
    pid=""
    version=$(grep -o 'mosquitto version [^ ]*' "$work/mosquitto.log" | head -1 | cut -d' ' -f3)
    grep -o 'wake_bench: .*' "$work/mosquitto.log" |
      sed -E "s/wake_bench: (on|off) ([0-9]+) samples, p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms/| $version | \1 | \2 | \3 | \4 | \5 |/"
  done
done
