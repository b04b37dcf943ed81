#!/usr/bin/env bash
# tests/support/start_postgres.sh: a server that answers once the script says so, stops at
# SIGINT (fast shutdown, exit 0), and starts again on its port with its data.
set -euo pipefail
script=$(dirname "$(realpath "$0")")/support/start_postgres.sh
dir=$(mktemp -d /tmp/twins-pg-XXXXXX)
pid=
cleanup() {
  [[ -z $pid ]] || kill -INT "$pid" 2>/dev/null || true
  [[ -z $pid ]] || wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
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

start --port "$port" "$dir"
[[ $line == "port=$port uri=$uri" ]] || { echo "bad line after restart: $line"; exit 1; }
[[ $(psql -X -At "$uri" -c "SELECT n FROM kept") == 7 ]] || { echo "data lost across the restart"; exit 1; }
echo "ok: port $port"
