#!/usr/bin/env bash
# Reply latency of mosquitto-twins on each Mosquitto: Debian's /usr/sbin/mosquitto and every
# broker scripts/compat.sh built under build-compat/ (README "Supported Mosquitto versions").
#
#   bench/compat_latency.sh [BUILD_DIR, default build]
#
# One device, one request in flight, MQTT 5 QoS 1, for DURATION seconds (default 3) after a
# warm-up, put then get, REPEAT runs (default 3) per broker; prints the median p50 and p99 in
# ms per broker and method. The same built plugin in every broker.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/support/start_broker.sh
build=${1:-build}
DURATION=${DURATION:-3}
REPEAT=${REPEAT:-3}
plugin=$PWD/$build/plugin/mosquitto_twins.so
load=$PWD/$build/bench/twins_load
. bench/brokers.sh

printf '| broker | method | p50 ms | p99 ms | ops/s |\n|---|---|---|---|---|\n'
for broker in "${brokers[@]}"; do
  lib=$(dirname "$(dirname "$broker")")/lib
  rm -rf "$work/db"
  TWINS_MOSQUITTO=$broker LD_LIBRARY_PATH=$lib start_broker "$work/broker" "plugin $plugin
plugin_opt_db_path $work/db
plugin_opt_rest_listen off
plugin_opt_max_requests_per_second 0" || exit 1
  pid=$started_pid
  port=$started_port
  version=$( (LD_LIBRARY_PATH=$lib "$broker" -h || true) | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p')
  for method in put get; do
    runs=()
    for _ in $(seq "$REPEAT"); do
      runs+=("$(LD_LIBRARY_PATH=$lib "$load" --port "$port" --devices 1 --method "$method" --qos 1 --mqtt 5 \
                 --duration "$DURATION" --warmup 0.5 --label "$version" 2>/dev/null)")
    done
    printf '%s\n' "${runs[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
med = lambda k: statistics.median(r[k] for r in rows)
print("| %s | %s | %.3f | %.3f | %.0f |" % (sys.argv[1], sys.argv[2], med("p50_ms"), med("p99_ms"), med("ops_per_s")))
' "$version" "$method"
  done
  kill "$pid" && wait "$pid" 2>/dev/null || true
  pid=""
done
