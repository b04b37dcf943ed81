#!/usr/bin/env bash
# tests/support/start_postgres.sh: a server that answers once the script says so, stops at
# SIGINT (fast shutdown, exit 0), and starts again on its port with its data (and a setting given
# after DIR); a primary whose commits wait for its synchronous standby, and that standby
# (read-only, refusing writes).
set -euo pipefail
script=$(dirname "$(realpath "$0")")/support/start_postgres.sh
dir=$(mktemp -d /tmp/twins-pg-XXXXXX)
primary_dir=$(mktemp -d /tmp/twins-pg-XXXXXX)
standby_dir=$(mktemp -d /tmp/twins-pg-XXXXXX)
pid=
pids=()
cleanup() {
  for p in $pid "${pids[@]}"; do
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$dir" "$primary_dir" "$standby_dir"
}
trap cleanup EXIT

start() {
  coproc server { exec "$script" "$@"; }
  # shellcheck disable=SC2154  # server_PID is set by coproc
  pid=$server_PID
  read -r line <&"${server[0]}" || { echo "did not start:"; cat "$dir/postgres.log" "$dir/initdb.log" 2>/dev/null; exit 1; }
}

start "$dir"
[[ $line =~ ^port=([0-9]+)\ uri=(postgresql://postgres@127\.0\.0\.1:[0-9]+/postgres)$ ]] || { echo "bad line: $line"; exit 1; }
port=${BASH_REMATCH[1]} uri=${BASH_REMATCH[2]}
psql -X -q -v ON_ERROR_STOP=1 "$uri" -c "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"
[[ $(psql -X -At "$uri" -c "SHOW fsync") == on ]] || { echo "fsync is not on"; exit 1; }
kill -INT "$pid"
status=0
wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || { echo "fast shutdown exited with $status"; exit 1; }

start --port "$port" "$dir" work_mem=5MB
[[ $line == "port=$port uri=$uri" ]] || { echo "bad line after restart: $line"; exit 1; }
[[ $(psql -X -At "$uri" -c "SELECT n FROM kept") == 7 ]] || { echo "data lost across the restart"; exit 1; }
[[ $(psql -X -At "$uri" -c "SHOW work_mem") == 5MB ]] || { echo "a setting given after DIR did not reach the server"; exit 1; }

# Starts the script with "$@" in the background (its pid joins pids); its ready line in $line.
launch() {
  local out
  exec {out}< <(exec "$script" "$@")
  pids+=($!)
  read -r line <&"$out" || {
    echo "did not start: $*"
    cat "${!#}"/*.log 2>/dev/null
    exit 1
  }
  exec {out}<&-
}

launch --synchronous-standby "$primary_dir"
[[ $line =~ ^port=([0-9]+)\ uri=(.*)$ ]] || { echo "bad line: $line"; exit 1; }
primary_port=${BASH_REMATCH[1]} primary_uri=${BASH_REMATCH[2]}
launch --standby-of "$primary_port" "$standby_dir"
standby_uri=${line#* uri=}
# The commit returns once the standby has it.
psql -X -q -v ON_ERROR_STOP=1 "$primary_uri" -c "CREATE TABLE replicated (n int); INSERT INTO replicated VALUES (8)"
state=$(psql -X -At "$primary_uri" -c "SELECT state, sync_state FROM pg_stat_replication WHERE application_name = 'standby'")
[[ $state == "streaming|quorum" ]] || { echo "the standby is not the synchronous one: '$state'"; exit 1; }
# Flushed there at commit, visible there once replayed: awaited.
deadline=$((SECONDS + 10))
until [[ $(psql -X -At "$standby_uri" -c "SELECT n FROM replicated" 2>/dev/null) == 8 ]]; do
  [[ $SECONDS -lt $deadline ]] || { echo "the standby does not show the primary's row"; exit 1; }
  sleep 0.05
done
if refused=$(psql -X -q "$standby_uri" -c "INSERT INTO replicated VALUES (9)" 2>&1); then
  echo "the standby took a write"
  exit 1
fi
[[ $refused == *"read-only transaction"* ]] || { echo "unexpected refusal: $refused"; exit 1; }
echo "ok: port $port; primary $primary_port with its synchronous standby"
