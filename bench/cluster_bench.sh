#!/usr/bin/env bash
# Twins on PostgreSQL against RocksDB and the zero-work ceiling: one broker, and two brokers
# sharing one schema, optionally with a synchronous standby (issue 16; see docs/performance.md).
#
#   bench/cluster_bench.sh [BUILD_DIR]
#
# Builds this source tree into BUILD_DIR (default: build-bench/ beside this folder; an existing
# build is reused), starts a PostgreSQL 15 (tests/support/start_postgres.sh, fsync on,
# pg_stat_statements loaded with track_planning, track_wal_io_timing on) and, with STANDBY=1, its
# streaming standby on the same machine, synchronous (start_postgres.sh --synchronous-standby and
# --standby-of: synchronous_standby_names = 'ANY 1 (standby)'). Then these configurations, each
# its brokers on free loopback ports with the same settings (run_benchmarks.sh's, rate limit
# off), all started before the first load:
#   ceiling      bench's twins_reference_plugin.so: a fixed reply, no engine
#   rocksdb      mosquitto_twins.so on a fresh RocksDB database (WAL, no fsync: the default)
#   rocksdbsync  the same with plugin_opt_sync_writes true (an fsync per loop pass), STANDBY=0 only
#   pg1          mosquitto_twins.so on PostgreSQL, schema pg1 (synchronous_commit on: with
#                STANDBY=1, each commit waits for the standby)
#   pg2          two brokers on PostgreSQL sharing schema pg2; the load's devices dealt out over
#                both (twins_load with two ports: 32 devices each at 64); figures are the aggregate
#   pg1off       (STANDBY=0) pg1 with synchronous_commit = off: commits wait for no WAL flush,
#                not durable; what the flush costs
#   pg1local     (STANDBY=1) pg1 with synchronous_commit = local: flushed here, streamed to the
#                standby but not waited for; what waiting for the standby costs
# Each configuration on PostgreSQL has a schema of its own (plugin_opt_store_schema), in a
# database of its own: a commit's NOTIFY wakes every listening session of its database, whatever
# the channel (so brokers of idle configurations would be woken by every write batch).
# Each round runs every load (DEVICES devices, QoS 0, each method of METHODS) against every
# configuration in turn, the order reversed every other round; the figures are medians over the
# rounds, and a ratio is the median of the rounds' ratios (each round's loads a minute apart at
# most), as run_benchmarks.sh does for its pairs.
#
# Around each load on PostgreSQL, from the server: pg_stat_statements (reset before it: the
# batches, as the statement each batch runs once, its write batches, the statements' execution
# time by kind), pg_stat_wal (WAL bytes, its flushes and their time; read STATS_SETTLE seconds
# after the load, since backends report these at most once a second) and transactions committed.
# twins_load gives the CPU of the brokers (their main threads apart) and of the PostgreSQL
# servers (postmasters with their backends).
#
# Environment: OUT (results folder; default a new /tmp/twins-cluster-bench-*), DURATION
# (measured seconds per load, 3), WARMUP (0.5), REPEAT (rounds, 5), STANDBY (0 or 1), DEVICES
# (64), METHODS ("get patch"), CACHE_MB (32), STATS_SETTLE (2.5).
# Needs mosquitto, jq, ss (iproute2), psql and postgresql-15 (with pg_stat_statements: contrib).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build-bench}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
REPEAT=${REPEAT:-5}
STANDBY=${STANDBY:-0}
DEVICES=${DEVICES:-64}
METHODS=${METHODS:-"get patch"}
CACHE_MB=${CACHE_MB:-32}
STATS_SETTLE=${STATS_SETTLE:-2.5}
OUT=${OUT:-$(mktemp -d /tmp/twins-cluster-bench-XXXXXX)}
mkdir -p "$OUT"
work=$(mktemp -d /tmp/twins-cluster-bench-work-XXXXXX)
chmod 755 "$work"  # run as root, the servers run as postgres, in folders inside it
results=$OUT/results.jsonl
summary=$OUT/summary.md
: >"$results"
: >"$summary"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
. "$here/bench_lib.sh"  # build_targets, run_broker, stop_brokers, twins_lines, say, row
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Build ------------------------------------------------------------------------
build_targets twins_load twins_reference_plugin mosquitto_twins
load_bin=$build/bench/twins_load

# --- Processes --------------------------------------------------------------------
servers=()  # PostgreSQL servers, a standby before its primary: stopped after the brokers

cleanup() {
  local pid
  stop_brokers
  for pid in "${servers[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
  # The logs, for a run that went wrong.
  mkdir -p "$OUT/logs"
  find "$work" -maxdepth 2 \( -name mosquitto.log -o -name postgres.log -o -name basebackup.log \) \
    -exec sh -c 'cp "$1" "$2/$(echo "${1#"$3"/}" | tr / _)"' _ {} "$OUT/logs" "$work" \;
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME [start_postgres.sh options]: a server in $work/NAME; sets server_pid,
# server_port and server_uri.
pg_settings=(shared_preload_libraries=pg_stat_statements pg_stat_statements.track_planning=on track_wal_io_timing=on)
start_server() {
  local name=$1 line
  shift
  mkfifo "$work/$name.ready"
  "$src/tests/support/start_postgres.sh" "$@" "$work/$name" "${pg_settings[@]}" >"$work/$name.ready" &
  server_pid=$!
  servers=("$server_pid" "${servers[@]}")  # a standby stops before its primary
  line=$(cat "$work/$name.ready")
  if [[ -z $line ]]; then
    echo "PostgreSQL in $work/$name did not start:" >&2
    cat "$work/$name"/*.log >&2 || true
    exit 1
  fi
  server_port=${line#port=}
  server_port=${server_port%% *}
  server_uri=${line#*uri=}
}

# sql STATEMENT...: on the primary, one value per line.
sql() {
  local args=() statement
  for statement in "$@"; do args+=(-c "$statement"); done
  psql -X -q -At -v ON_ERROR_STOP=1 "$pg_uri" "${args[@]}"
}

# until_sql STATEMENT VALUE: waits (up to 20 s) until the primary answers VALUE.
until_sql() {
  local _
  for _ in $(seq 200); do
    [[ $(sql "$1") == "$2" ]] && return 0
    sleep 0.1
  done
  echo "PostgreSQL never answered '$2' to: $1" >&2
  exit 1
}

if [[ $STANDBY == 1 ]]; then
  # Commits wait for the standby from the start: nothing is written before it streams.
  start_server pg --synchronous-standby
  pg_uri=$server_uri pg_port=$server_port
  server_pids=$server_pid
  start_server standby --standby-of "$pg_port"
  server_pids+=",$server_pid"
  until_sql "SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = 'standby'" \
    "streaming quorum"
else
  start_server pg
  pg_uri=$server_uri pg_port=$server_port
  server_pids=$server_pid
fi
sql "CREATE EXTENSION pg_stat_statements"
pg_version=$(sql "SHOW server_version")

# pg_lines SCHEMA COMMIT: the store on PostgreSQL, in the database and schema SCHEMA, its
# transactions with synchronous_commit COMMIT (empty: the server's).
pg_lines() {
  local uri=${pg_uri%/postgres}/$1
  sql "CREATE DATABASE $1"
  [[ -z $2 ]] || uri+="?options=-c%20synchronous_commit%3D$2"
  twins_lines "plugin_opt_store $uri
plugin_opt_store_schema $1"
}

# configuration NAME SCHEMA BROKER_LINES BROKER...: a configuration and its brokers.
declare -A config_brokers config_schema
configs=()
configuration() {
  local name=$1 schema=$2 lines=$3 broker
  shift 3
  configs+=("$name")
  config_schema[$name]=$schema
  config_brokers[$name]="$*"
  for broker in "$@"; do run_broker "$broker" "$lines"; done
}

configuration ceiling "" "plugin $build/bench/twins_reference_plugin.so" ceiling
configuration rocksdb "" "$(twins_lines "plugin_opt_db_path $work/rocksdb-db
plugin_opt_sync_writes false")" rocksdb
if [[ $STANDBY != 1 ]]; then
  configuration rocksdbsync "" "$(twins_lines "plugin_opt_db_path $work/rocksdbsync-db
plugin_opt_sync_writes true")" rocksdbsync
fi
configuration pg1 pg1 "$(pg_lines pg1 "")" pg1
configuration pg2 pg2 "$(pg_lines pg2 "")" pg2a pg2b
if [[ $STANDBY == 1 ]]; then
  configuration pg1local pg1local "$(pg_lines pg1local local)" pg1local
else
  configuration pg1off pg1off "$(pg_lines pg1off off)" pg1off
fi

# --- Loads ------------------------------------------------------------------------
# The server's counters, as one JSON object: transactions committed, WAL written and flushed.
pg_counters() {
  sql "SELECT json_build_object('xacts', (SELECT sum(xact_commit) FROM pg_stat_database),
    'wal_bytes', wal_bytes, 'wal_records', wal_records, 'wal_fpi', wal_fpi, 'wal_writes', wal_write,
    'wal_syncs', wal_sync, 'wal_write_ms', wal_write_time, 'wal_sync_ms', wal_sync_time) FROM pg_stat_wal"
}
# pg_statements SCHEMA: calls and execution time (ms) of the statements since the last reset,
# by kind; batches = the catch-up read every batch of the schema runs once.
pg_statements() {
  sql "WITH s AS (SELECT calls, total_exec_time AS ms, total_plan_time AS plan_ms, CASE
      WHEN query LIKE 'BEGIN%' THEN 'begin'
      WHEN query = 'COMMIT' THEN 'commit'
      WHEN query LIKE 'SELECT pg_notify%' THEN 'notify'
      WHEN query NOT LIKE '%\"$1\".%' THEN NULL
      WHEN query LIKE '%FOR UPDATE%' THEN 'lock'
      WHEN query LIKE '%changes WHERE seq > \$1%' THEN 'catch_up'
      WHEN query LIKE '%documents d JOIN unnest%' THEN 'read_documents'
      WHEN query LIKE '%FROM \"$1\".documents WHERE twin = ANY%' THEN 'read_names'
      WHEN query LIKE '%FROM \"$1\".watches%' THEN 'read_watches'
      WHEN query LIKE 'WITH put AS%' THEN 'write'
      WHEN query LIKE 'WITH oldest AS%' THEN 'trim'
      WHEN query LIKE 'UPDATE%meta%' THEN 'update_meta'
      WHEN query LIKE 'SELECT value::bigint FROM%meta WHERE key =%' THEN 'read_meta'
      ELSE 'other' END AS kind FROM pg_stat_statements),
    k AS (SELECT kind, sum(calls) AS calls, round(sum(ms)::numeric, 1) AS ms, round(sum(plan_ms)::numeric, 1) AS plan_ms
      FROM s WHERE kind IS NOT NULL GROUP BY kind)
    SELECT json_build_object('statements', coalesce(json_object_agg(kind, json_build_object('calls', calls, 'ms', ms,
      'plan_ms', plan_ms)), '{}'::json), 'batches', coalesce(sum(calls) FILTER (WHERE kind = 'catch_up'), 0),
      'write_batches', coalesce(sum(calls) FILTER (WHERE kind = 'lock'), 0),
      'statements_ms', coalesce(sum(ms), 0), 'plan_ms', coalesce(sum(plan_ms), 0)) FROM k"
}

commas() {
  local IFS=,
  echo "$*"
}

# run_load CONFIG METHOD: one load, appended to results.jsonl with the server's figures.
load_seq=0
rep=0
run_load() {
  local config=$1 method=$2 ports=() pids=() broker before="{}" pg="{}" server=()
  for broker in ${config_brokers[$config]}; do
    ports+=("${broker_port[$broker]}")
    pids+=("${broker_pid[$broker]}")
  done
  load_seq=$((load_seq + 1))
  if [[ -n ${config_schema[$config]} ]]; then
    server=(--server-pid "$server_pids")
    # WAL segments written before are recycled, dirty pages written out, as on a server that
    # has been running: a fresh cluster creates (and fills with zeros) a segment every 16 MiB.
    sql "CHECKPOINT" "SELECT pg_stat_statements_reset()" >/dev/null
    before=$(pg_counters)
  fi
  local line pid
  if ! line=$("$load_bin" --port "$(commas "${ports[@]}")" --broker-pid "$(commas "${pids[@]}")" "${server[@]}" \
    --label "$config" --duration "$DURATION" --warmup "$WARMUP" --prefix "l$load_seq-" --devices "$DEVICES" --qos 0 \
    --method "$method"); then
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || echo "broker $pid of $config is gone (logs in $OUT/logs)" >&2
    done
    exit 1
  fi
  if [[ -n ${config_schema[$config]} ]]; then
    sleep "$STATS_SETTLE"
    pg=$(jq -c -n --argjson a "$before" --argjson b "$(pg_counters)" --argjson s "$(pg_statements "${config_schema[$config]}")" \
      '$s + ($b | with_entries(.value -= $a[.key]))')
  fi
  jq -c --arg config "$config" --argjson rep "$rep" --argjson brokers "${#pids[@]}" --argjson pg "$pg" \
    '. + {config: $config, rep: $rep, brokers: $brokers, pg: $pg}' <<<"$line" >>"$results"
}

echo "== $REPEAT rounds: ${configs[*]} x ($METHODS), $DEVICES devices, QoS 0" >&2
for ((rep = 0; rep < REPEAT; rep++)); do
  order=("${configs[@]}")
  if ((rep % 2 == 1)); then
    order=()
    for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
  fi
  for method in $METHODS; do
    for config in "${order[@]}"; do run_load "$config" "$method"; done
  done
  echo "round $((rep + 1)) done, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

# --- Report -----------------------------------------------------------------------
# fig CONFIG METHOD JQ_EXPRESSION: the median over the rounds of the expression (of one load).
fig() {
  jq -s -r --arg c "$1" --arg m "$2" "[.[] | select(.config == \$c and .method == \$m) | ($3)] | sort
    | .[(length - 1) / 2 | floor] // 0" "$results"
}
# ratio CONFIG REFERENCE METHOD: the median over the rounds of CONFIG's ops/s over REFERENCE's.
ratio() {
  jq -s -r --arg c "$1" --arg r "$2" --arg m "$3" '
    [.[] | select(.method == $m)] | group_by(.rep)
    | map((map(select(.config == $c))[0].ops_per_s // 0) as $x | (map(select(.config == $r))[0].ops_per_s // 0) as $y
          | if $y > 0 then $x / $y else 0 end)
    | sort | .[(length - 1) / 2 | floor] // 0' "$results" | awk '{ printf "%.2f", $1 }'
}
num() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, v }'; }
row() {
  local line="|" cell
  for cell in "$@"; do line+=" $cell |"; done
  say "$line"
}

say "## Machine"
say ""
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mosquitto_version=$(mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}' || true)  # -h exits non-zero
standby_note=""
[[ $STANDBY != 1 ]] || standby_note=", a synchronous standby on the same machine"
say "$(nproc) cores, $cpu_model, load average $load_before before the run, $(cut -d' ' -f1-3 /proc/loadavg)" \
  "after; mosquitto $mosquitto_version, PostgreSQL $pg_version (fsync on$standby_note)."
say "$DEVICES devices, QoS 0; each load ${WARMUP} s warm-up, ${DURATION} s measured; median of $REPEAT rounds; ratios are"
say "the median of the rounds' ratios. Configurations: ${configs[*]} (pg2*: two brokers, the devices split over them)."
for method in $METHODS; do
  say ""
  say "## $method"
  say ""
  say "| configuration | ops/s | x ceiling | x rocksdb | p50 / p99 ms | broker CPU µs/op (main thread, cores) | PostgreSQL CPU µs/op | requests per transaction | waiting for a CPU, cores: brokers / PostgreSQL | errors |"
  say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for config in "${configs[@]}"; do
    per_xact="" server_us="" waits=$(fig "$config" "$method" .broker_wait)
    if [[ -n ${config_schema[$config]} ]]; then
      per_xact=$(num "$(fig "$config" "$method" 'if .pg.batches > 0 then .completed_all / .pg.batches else 0 end')" 1)
      server_us=$(fig "$config" "$method" .server_us_per_op)
      waits+=" / $(fig "$config" "$method" .server_wait)"
    fi
    row "$config" "$(num "$(fig "$config" "$method" .ops_per_s)")" "$(ratio "$config" ceiling "$method")" \
      "$(ratio "$config" rocksdb "$method")" \
      "$(fig "$config" "$method" .p50_ms) / $(fig "$config" "$method" .p99_ms)" \
      "$(fig "$config" "$method" .broker_us_per_op) ($(fig "$config" "$method" .broker_main_cpu))" \
      "$server_us" "$per_xact" "$waits" "$(fig "$config" "$method" .errors)"
  done
done
say ""
say "## Where the time goes (PostgreSQL configurations, medians of the rounds)"
say ""
say "A batch's cycle is how often one broker commits (requests per transaction x brokers / ops/s). The"
say "statements' time is PostgreSQL's own (pg_stat_statements, execution and planning; the lock's is"
say "mostly waiting for it); the commit's WAL flush and any wait for the standby are not in it: a WAL"
say "flush is one fsync (pg_stat_wal, track_wal_io_timing)."
say ""
say "| configuration | method | batch cycle ms | write batches % | statements ms per batch: execution (lock) / planning | WAL fsyncs per batch | ms per fsync | WAL KiB per request | cores: broker main / broker other / PostgreSQL / generator |"
say "|---|---|---:|---:|---:|---:|---:|---:|---:|"
per_batch() { num "$(fig "$1" "$2" "if .pg.batches > 0 then ($3) / .pg.batches else 0 end")" "${4:-3}"; }
for config in "${configs[@]}"; do
  [[ -n ${config_schema[$config]} ]] || continue
  for method in $METHODS; do
    row "$config" "$method" \
      "$(num "$(fig "$config" "$method" 'if .pg.batches > 0 and .ops_per_s > 0 then 1000 * .completed_all / .pg.batches * .brokers / .ops_per_s else 0 end')" 2)" \
      "$(per_batch "$config" "$method" '100 * .pg.write_batches' 0)" \
      "$(per_batch "$config" "$method" .pg.statements_ms) ($(per_batch "$config" "$method" '.pg.statements.lock.ms // 0')) / $(per_batch "$config" "$method" .pg.plan_ms)" \
      "$(per_batch "$config" "$method" .pg.wal_syncs 2)" \
      "$(num "$(fig "$config" "$method" 'if .pg.wal_syncs > 0 then .pg.wal_sync_ms / .pg.wal_syncs else 0 end')" 2)" \
      "$(num "$(fig "$config" "$method" 'if .completed_all > 0 then .pg.wal_bytes / 1024 / .completed_all else 0 end')" 2)" \
      "$(fig "$config" "$method" .broker_main_cpu) / $(num "$(fig "$config" "$method" '.broker_cpu - .broker_main_cpu')" 3) / $(fig "$config" "$method" .server_cpu) / $(fig "$config" "$method" .client_cpu)"
  done
done
say ""
say "Statements by kind: ms per batch, execution + planning (pg_stat_statements; begin and commit count every"
say "configuration's, the idle ones' polls too):"
say ""
kinds=(begin lock catch_up read_documents read_names read_watches write update_meta read_meta trim notify commit other)
say "| configuration | method | $(commas "${kinds[@]}" | sed 's/,/ | /g') |"
say "|---|---|$(printf -- '---:|%.0s' "${kinds[@]}")"
for config in "${configs[@]}"; do
  [[ -n ${config_schema[$config]} ]] || continue
  for method in $METHODS; do
    cells=()
    for kind in "${kinds[@]}"; do
      cells+=("$(per_batch "$config" "$method" "(.pg.statements.$kind.ms // 0) + (.pg.statements.$kind.plan_ms // 0)")")
    done
    row "$config" "$method" "${cells[@]}"
  done
done
echo "results in $OUT (summary.md, results.jsonl)" >&2
