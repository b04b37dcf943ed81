#!/usr/bin/env bash
# Benchmarks mosquitto-twins against the zero-work ceiling (see docs/performance.md).
#
#   bench/run_benchmarks.sh [BUILD_DIR]
#
# Builds this source tree into BUILD_DIR (default: build-bench/ beside this folder; an existing
# build is reused), then starts two brokers with the same settings on free loopback ports: one
# with bench's twins_reference_plugin.so (the ceiling: fixed reply, no engine) and one with
# mosquitto_twins.so on a fresh database. Each load runs against the ceiling and then against
# twins, back to back, so that a noisy machine disturbs both alike; the ratio twins/ceiling is
# the figure to read. Then the scale run: 100 000 twins x 3 documents written by twins_preload
# (straight through the engine), broker start time, RSS, database size.
#
# Environment: OUT (results folder; default a new /tmp/twins-bench-*), DURATION (measured
# seconds per load, 3), WARMUP (0.5), REPEAT (runs of each load pair, median reported; 5),
# DEVICE_COUNTS ("1 4 16 64 128"), SCALE_TWINS (100000), SCALE_READ_STEP (read every Nth
# preloaded twin through the broker; 10), CACHE_MB (32).
# Needs mosquitto, jq, ss (iproute2); gnuplot for the plot.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build-bench}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
REPEAT=${REPEAT:-5}
DEVICE_COUNTS=${DEVICE_COUNTS:-"1 4 16 64 128"}
SCALE_TWINS=${SCALE_TWINS:-100000}
SCALE_READ_STEP=${SCALE_READ_STEP:-10}
CACHE_MB=${CACHE_MB:-32}
OUT=${OUT:-$(mktemp -d /tmp/twins-bench-XXXXXX)}
mkdir -p "$OUT"
work=$(mktemp -d /tmp/twins-bench-work-XXXXXX)
results=$OUT/results.jsonl
summary=$OUT/summary.md
: >"$results"
: >"$summary"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
. "$here/bench_lib.sh"  # build_targets, run_broker, stop_broker(s), twins_lines, say, row
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Build ------------------------------------------------------------------------
build_targets twins_load twins_preload twins_reference_plugin mosquitto_twins
load_bin=$build/bench/twins_load

# --- Brokers ----------------------------------------------------------------------
cleanup() {
  stop_brokers
  rm -rf "$work"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# The twins broker on a RocksDB database at DB_PATH, as docs/performance.md lists its settings.
rocksdb_lines() {
  twins_lines "plugin_opt_db_path $1
plugin_opt_sync_writes false"
}

# --- Loads ------------------------------------------------------------------------
# run_load BROKER RUN_NAME twins_load-options...: one load, appended to results.jsonl.
# Each load gets client ids of its own, so that no connection takes over a session that the
# broker may still be closing from the load before.
load_seq=0
rep=0  # which repeat of a pair() the load belongs to
run_load() {
  local name=$1 run=$2
  shift 2
  load_seq=$((load_seq + 1))
  "$load_bin" --port "${broker_port[$name]}" --broker-pid "${broker_pid[$name]}" --label "$name" \
    --duration "$DURATION" --warmup "$WARMUP" --prefix "l$load_seq-" "$@" |
    jq -c --arg target "$name" --arg run "$run" --argjson rep "$rep" '. + {target: $target, run: $run, rep: $rep}' \
      >>"$results"
}

# pair RUN_NAME options...: the load against the ceiling and against twins, REPEAT times,
# alternating which goes first.
pair() {
  local run=$1 i
  shift
  for ((i = 0; i < REPEAT; i++)); do
    rep=$i
    if ((i % 2 == 0)); then
      run_load ceiling "$run" "$@"
      run_load twins "$run" "$@"
    else
      run_load twins "$run" "$@"
      run_load ceiling "$run" "$@"
    fi
  done
}

# fig RUN TARGET FIELD: the median of FIELD over the repeats of one run.
fig() {
  jq -s -r --arg run "$1" --arg target "$2" --arg f "$3" \
    '[.[] | select(.run == $run and .target == $target) | .[$f]] | sort | .[(length - 1) / 2 | floor] // 0' "$results"
}
# pair_ratio RUN FIELD [inverse]: the median over the repeats of twins/ceiling (ceiling/twins
# with "inverse"), each repeat's two loads taken back to back. On a shared machine whose speed
# drifts by a third between minutes, this cancels the drift that a ratio of medians keeps.
pair_ratio() {
  jq -s -r --arg run "$1" --arg f "$2" --arg inverse "${3:-}" '
    [.[] | select(.run == $run)] | group_by(.rep)
    | map((map(select(.target == "twins"))[0][$f] // 0) as $t | (map(select(.target == "ceiling"))[0][$f] // 0) as $c
          | if $inverse == "" then (if $c > 0 then $t / $c else 0 end) else (if $t > 0 then $c / $t else 0 end) end)
    | sort | .[(length - 1) / 2 | floor] // 0' "$results" | awk '{ printf "%.2f", $1 }'
}
# latencies RUN TARGET: "p50 / p99 / p99.9".
latencies() { echo "$(fig "$1" "$2" p50_ms) / $(fig "$1" "$2" p99_ms) / $(fig "$1" "$2" p999_ms)"; }

run_broker ceiling "plugin $build/bench/twins_reference_plugin.so"
start_ms_ceiling=$start_ms
rss_ceiling_start=$(rss_kb "${broker_pid[ceiling]}")
run_broker twins "$(rocksdb_lines "$work/twins-db")"
start_ms_empty=$start_ms
rss_twins_start=$(rss_kb "${broker_pid[twins]}")

echo "== loads at 64 devices" >&2
for qos in 0 1; do
  for method in get put patch; do
    pair "$method-q$qos-d64" --devices 64 --qos "$qos" --method "$method"
  done
done
echo "== device sweep (QoS 0)" >&2
for devices in $DEVICE_COUNTS; do
  [[ $devices == 64 ]] && continue
  for method in get patch; do
    pair "$method-q0-d$devices" --devices "$devices" --qos 0 --method "$method"
  done
done
echo "== half the ceiling's rate (QoS 0, 64 devices)" >&2
for method in get put patch; do
  rate=$(awk -v r="$(fig "$method-q0-d64" ceiling ops_per_s)" 'BEGIN { printf "%d", r / 2 }')
  pair "$method-q0-d64-half" --devices 64 --qos 0 --method "$method" --rate "$rate"
done
# Where half the ceiling's rate overloads twins, its latency there is queueing; this shows it below its own knee.
for method in put patch; do
  rate=$(awk -v r="$(fig "$method-q0-d64" twins ops_per_s)" 'BEGIN { printf "%d", r / 2 }')
  for ((i = 0; i < REPEAT; i++)); do
    run_load twins "$method-q0-d64-half-own" --devices 64 --qos 0 --method "$method" --rate "$rate"
  done
done
run_load ceiling "ceiling-churn" --devices 64 --ids 10000 --reconnect-every 1 --method get
rss_ceiling_after=$(rss_kb "${broker_pid[ceiling]}")
rss_twins_after=$(rss_kb "${broker_pid[twins]}")
hwm_twins_after=$(hwm_kb "${broker_pid[twins]}")
stop_broker ceiling
stop_broker twins
# Every load above wrote the same few hundred documents: what is on disk must stay small.
db_mb_loads=$(du -sm "$work/twins-db" | cut -f1)

# --- Scale ------------------------------------------------------------------------
echo "== scale: $SCALE_TWINS twins x 3 documents" >&2
scale_db=$work/scale-db
t0=$(date +%s%N)
"$build/bench/twins_preload" "$scale_db" "$SCALE_TWINS" 3
preload_s=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
db_mb_preloaded=$(du -sm "$scale_db" | cut -f1)

run_broker scale "$(rocksdb_lines "$scale_db")"
start_ms_first=$start_ms
rss_scale_start=$(rss_kb "${broker_pid[scale]}")
# Twins spread over the whole database read through the broker, a new connection for each.
run_load scale "scale-read" --devices 64 --ids "$SCALE_TWINS" --id-step "$SCALE_READ_STEP" --reconnect-every 1 \
  --method get --prefix bench-
rss_scale_read=$(rss_kb "${broker_pid[scale]}")
run_load scale "scale-get-q0-d64" --devices 64 --method get --prefix scale-get-
run_load scale "scale-patch-q0-d64" --devices 64 --method patch --prefix scale-patch-
rss_scale_after=$(rss_kb "${broker_pid[scale]}")
hwm_scale_after=$(hwm_kb "${broker_pid[scale]}")
stop_broker scale
run_broker scale "$(rocksdb_lines "$scale_db")"
start_ms_second=$start_ms
rss_scale_restart=$(rss_kb "${broker_pid[scale]}")
stop_broker scale
db_mb_after=$(du -sm "$scale_db" | cut -f1)

# --- Report -----------------------------------------------------------------------
say "## Machine"
say ""
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
memory_gib=$(free -g | awk '/^Mem:/ {print $2}')
mosquitto_version=$(mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}' || true)  # -h exits non-zero
say "$(nproc) cores, $cpu_model, $memory_gib GiB, load average $load_before before the run," \
  "$(cut -d' ' -f1-3 /proc/loadavg) after; mosquitto $mosquitto_version."
say "Each load: ${WARMUP} s warm-up, ${DURATION} s measured, median of ${REPEAT} run(s); ratios are the"
say "median of the ${REPEAT} back-to-back pairs' ratios."
say ""
say "## 64 devices, closed loop"
say ""
say "| load | ceiling ops/s | twins ops/s | twins/ceiling | ceiling p50 / p99 / p99.9 ms | twins p50 / p99 / p99.9 ms | broker CPU µs/op ceiling / twins (ratio) | twins errors |"
say "|---|---:|---:|---:|---:|---:|---:|---:|"
for qos in 0 1; do
  for method in get put patch; do
    r=$method-q$qos-d64
    c=$(fig "$r" ceiling ops_per_s)
    t=$(fig "$r" twins ops_per_s)
    cu=$(fig "$r" ceiling broker_us_per_op)
    tu=$(fig "$r" twins broker_us_per_op)
    row "$method QoS $qos" "${c%.*}" "${t%.*}" "$(pair_ratio "$r" ops_per_s)" "$(latencies "$r" ceiling)" \
      "$(latencies "$r" twins)" "$cu / $tu ($(pair_ratio "$r" broker_us_per_op inverse))" "$(fig "$r" twins errors)"
  done
done
say ""
say "## Half the ceiling's rate (QoS 0, 64 devices)"
say ""
say "| load | target rate/s | ceiling ops/s | ceiling p50 / p99 / p99.9 ms | twins ops/s | twins p50 / p99 / p99.9 ms | twins errors |"
say "|---|---:|---:|---:|---:|---:|---:|"
for method in get put patch; do
  r=$method-q0-d64-half
  row "$method" "$(fig "$r" twins rate_target)" "$(fig "$r" ceiling ops_per_s)" "$(latencies "$r" ceiling)" \
    "$(fig "$r" twins ops_per_s)" "$(latencies "$r" twins)" "$(fig "$r" twins errors)"
done
say ""
say "Twins alone at half its own closed-loop rate (below its saturation):"
say ""
say "| load | target rate/s | twins ops/s | twins p50 / p99 / p99.9 ms | twins errors |"
say "|---|---:|---:|---:|---:|"
for method in put patch; do
  r=$method-q0-d64-half-own
  row "$method" "$(fig "$r" twins rate_target)" "$(fig "$r" twins ops_per_s)" "$(latencies "$r" twins)" \
    "$(fig "$r" twins errors)"
done
say ""
say "## Device sweep (QoS 0)"
say ""
say "| devices | method | ceiling ops/s | twins ops/s | twins/ceiling | ceiling p99 ms | twins p99 ms |"
say "|---:|---|---:|---:|---:|---:|---:|"
sweep=$OUT/sweep.dat
echo "# devices ceiling_get twins_get ceiling_patch twins_patch (ops/s), then the same four p99 (ms)" >"$sweep"
for devices in $DEVICE_COUNTS; do
  row="$devices"
  p99s=""
  for method in get patch; do
    r=$method-q0-d$devices
    c=$(fig "$r" ceiling ops_per_s)
    t=$(fig "$r" twins ops_per_s)
    say "| $devices | $method | ${c%.*} | ${t%.*} | $(pair_ratio "$r" ops_per_s) | $(fig "$r" ceiling p99_ms) | $(fig "$r" twins p99_ms) |"
    row="$row $c $t"
    p99s="$p99s $(fig "$r" ceiling p99_ms) $(fig "$r" twins p99_ms)"
  done
  echo "$row$p99s" >>"$sweep"
done
say ""
say "## Scale: $SCALE_TWINS twins x 3 documents (~1 KiB each), cache_mb $CACHE_MB"
say ""
say "| figure | value |"
say "|---|---:|"
say "| preload through the engine (twins_preload) | $preload_s s |"
say "| database on disk after preload / after the loads | $db_mb_preloaded MiB / $db_mb_after MiB |"
say "| database on disk after all the loads at 64 devices and the sweep (a few hundred documents rewritten) | $db_mb_loads MiB |"
say "| broker start, ceiling (no database) | $start_ms_ceiling ms |"
say "| broker start, empty database | $start_ms_empty ms |"
say "| broker start, first after preload (WAL replayed) | $start_ms_first ms |"
say "| broker start, restart | $start_ms_second ms |"
say "| read every ${SCALE_READ_STEP}th twin through the broker, a connection each | $(fig scale-read scale ops_per_s) twins/s, $(fig scale-read scale broker_us_per_op) µs broker CPU each, $(fig scale-read scale errors) errors |"
say "| the same on the ceiling broker (connect, fixed reply, disconnect) | $(fig ceiling-churn ceiling ops_per_s) twins/s, $(fig ceiling-churn ceiling broker_us_per_op) µs broker CPU each |"
say "| get, 64 devices, QoS 0, with the large database | $(fig scale-get-q0-d64 scale ops_per_s) ops/s, p99 $(fig scale-get-q0-d64 scale p99_ms) ms |"
say "| patch, 64 devices, QoS 0, with the large database | $(fig scale-patch-q0-d64 scale ops_per_s) ops/s, p99 $(fig scale-patch-q0-d64 scale p99_ms) ms |"
say ""
say "| broker RSS (MiB) | at start | after its loads |"
say "|---|---:|---:|"
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
say "| ceiling (no engine) | $(mib "$rss_ceiling_start") | $(mib "$rss_ceiling_after") |"
say "| twins, empty database | $(mib "$rss_twins_start") | $(mib "$rss_twins_after") (peak $(mib "$hwm_twins_after")) |"
say "| twins, $SCALE_TWINS twins: after reading every ${SCALE_READ_STEP}th twin | $(mib "$rss_scale_start") | $(mib "$rss_scale_read") |"
say "| twins, $SCALE_TWINS twins: after the 64-device loads too | | $(mib "$rss_scale_after") (peak $(mib "$hwm_scale_after")) |"
say "| twins, $SCALE_TWINS twins: restarted | $(mib "$rss_scale_restart") | |"
say ""
say "## Targets"
say ""
get_ratio=$(pair_ratio get-q0-d64 ops_per_s)
patch_ratio=$(pair_ratio patch-q0-d64 ops_per_s)
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == ">=" ? v >= t : v < t; print ok ? "met" : "MISSED" }'; }
say "- get, QoS 0, 64 devices: $get_ratio x the ceiling (target >= 0.9): $(verdict "$get_ratio" 0.9 ">=")"
say "- patch, QoS 0, 64 devices: $patch_ratio x the ceiling (target >= 0.75): $(verdict "$patch_ratio" 0.75 ">=")"
for method in get put patch; do
  p99=$(fig "$method-q0-d64-half" twins p99_ms)
  say "- $method at half the ceiling's rate: twins p99 $p99 ms (target < 5 ms): $(verdict "$p99" 5 "<")"
done

if command -v gnuplot >/dev/null; then
  gnuplot <<EOF
set terminal pngcairo size 1200,480 font "sans,11"
set output "$OUT/performance.png"
set multiplot layout 1,2 title "mosquitto-twins vs zero-work ceiling, QoS 0, one request in flight per device"
set logscale x 2
set xlabel "devices (connections)"
set key top left
set grid
set ylabel "requests/s"
set yrange [0:*]
plot "$sweep" using 1:2 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "ceiling get", \
     "" using 1:3 with linespoints lw 2 lc rgb "#1f77b4" dt 2 pt 5 title "twins get", \
     "" using 1:4 with linespoints lw 2 lc rgb "#d62728" pt 7 title "ceiling patch", \
     "" using 1:5 with linespoints lw 2 lc rgb "#d62728" dt 2 pt 5 title "twins patch"
set ylabel "p99 latency (ms)"
set logscale y
set yrange [*:*]
plot "$sweep" using 1:6 with linespoints lw 2 lc rgb "#1f77b4" pt 7 title "ceiling get", \
     "" using 1:7 with linespoints lw 2 lc rgb "#1f77b4" dt 2 pt 5 title "twins get", \
     "" using 1:8 with linespoints lw 2 lc rgb "#d62728" pt 7 title "ceiling patch", \
     "" using 1:9 with linespoints lw 2 lc rgb "#d62728" dt 2 pt 5 title "twins patch"
unset multiplot
EOF
fi
echo "results in $OUT (summary.md, results.jsonl, sweep.dat, performance.png)" >&2
