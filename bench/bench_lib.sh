# Sourced by the benchmarks that compare brokers side by side (run_benchmarks.sh,
# cluster_bench.sh): the build, brokers started through tests/support/start_broker.sh, and the
# summary's lines. The caller sets src (the source tree), build, work (a folder removed at exit)
# and summary (the summary file), and stops the brokers in `running` at exit.
# shellcheck shell=bash disable=SC2034,SC2154  # variables shared with the caller

# shellcheck source-path=SCRIPTDIR source=../tests/support/start_broker.sh
. "$src/tests/support/start_broker.sh"

# build_targets TARGET...: configures BUILD_DIR if it has no benchmark yet, then builds them.
build_targets() {
  if [[ ! -x $build/bench/twins_load ]]; then
    cmake -S "$src" -B "$build" -DTWINS_TESTS=OFF -DTWINS_BENCH=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$build" -j"$(nproc)" --target "$@" >/dev/null
}

declare -A broker_pid broker_port running  # running: pids of our brokers not yet stopped

# run_broker NAME PLUGIN_LINES: starts mosquitto (tests/support/start_broker.sh), waits until it
# listens, sets start_ms (from its start to its listening).
run_broker() {
  local name=$1 plugin_lines=$2
  start_broker "$work/$name" "connection_messages false
log_type error
log_type warning
$plugin_lines" || exit 1
  running[$started_pid]=1
  start_ms=$started_ms
  # Someone else's broker on the port would make every figure meaningless.
  if ! ss -Hltnp "sport = :$started_port" | grep -q "pid=$started_pid,"; then
    echo "port $started_port is not served by broker $name (pid $started_pid)" >&2
    exit 1
  fi
  broker_pid[$name]=$started_pid
  broker_port[$name]=$started_port
}

stop_broker() {
  local pid=${broker_pid[$1]}
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  unset "running[$pid]"
}

stop_brokers() {
  local pid
  for pid in "${!running[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${!running[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# twins_lines [STORE_LINES]: mosquitto_twins as the benchmarks run it (REST off; the per-twin
# rate limit, 100/s by default, would answer most of a load's requests with an error).
twins_lines() {
  printf 'plugin %s\nplugin_opt_rest_listen off\nplugin_opt_cache_mb %s\nplugin_opt_max_requests_per_second 0\n%s\n' \
    "$build/plugin/mosquitto_twins.so" "$CACHE_MB" "$1"
}

say() { printf '%s\n' "$*" | tee -a "$summary"; }

# row CELL...: one markdown table row.
row() {
  local line="|" cell
  for cell in "$@"; do line+=" $cell |"; done
  say "$line"
}
