#!/usr/bin/env bash
# A PostgreSQL 15 for shell tests and benchmarks, as tests/support/postgres.cpp starts one for
# the C++ tests: Debian's postgresql-15, a cluster in DIR/data (initdb on first use: superuser
# postgres, trust authentication, UTF8), listening on 127.0.0.1 and a socket in DIR, fsync on.
# Run as root, DIR is given to the postgres user and the server runs as that user.
#
# Run:    start_postgres.sh [--port N] [--synchronous-standby] [--standby-of PORT] DIR [SETTING...]
#   Then the script becomes the server (exec: its pid and signals are the server's; SIGINT is
#   a fast shutdown), output in DIR/postgres.log. Once it accepts connections, one line goes
#   to stdout and it closes:   port=<port> uri=postgresql://postgres@127.0.0.1:<port>/postgres
#   Nothing comes (end of file) if the server exits first or is not ready within
#   $TWINS_POSTGRES_START_TIMEOUT seconds (default 30). <port> is N, else a free one
#   (start_broker.sh's free_ports).
#   --synchronous-standby: commits wait until a standby named "standby" has them
#     (synchronous_standby_names = 'ANY 1 (standby)', synchronous_commit = on): start one with
#     --standby-of, or commits wait for ever.
#   --standby-of PORT: DIR is a streaming standby named "standby" of the server on
#     127.0.0.1:PORT (copied on first use: pg_basebackup -R with the replication slot "standby"),
#     read-only until promoted (pg_ctl promote -D DIR/data, or SELECT pg_promote()). As
#     tests/support/postgres.cpp does it.
#   SETTING: name=value, given to the server as -c name=value after the script's own
#     (shared_preload_libraries=pg_stat_statements, for a benchmark).
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
# shellcheck source-path=SCRIPTDIR source=start_broker.sh
. "$(dirname "$(realpath "$0")")/start_broker.sh"  # free_ports

port='' primary='' settings=()
while [[ ${1:-} == --* ]]; do
  case $1 in
    --port)
      port=$2
      shift 2
      ;;
    --synchronous-standby)
      settings+=(-c "synchronous_standby_names=ANY 1 (standby)" -c synchronous_commit=on)
      shift
      ;;
    --standby-of)
      primary=$2
      # A promotion that comes as the standby starts waiting for WAL is seen when that wait
      # ends: 100 ms, not the default 5 s (postgres.cpp).
      settings+=(-c wal_retrieve_retry_interval=100ms)
      shift 2
      ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || {
  echo "usage: $0 [--port N] [--synchronous-standby] [--standby-of PORT] DIR [SETTING...]" >&2
  exit 2
}
dir=$(realpath -m "$1")
shift
for setting in "$@"; do settings+=(-c "$setting"); done
[[ -n $port ]] || port=$(free_ports 1)

as_user=()
mkdir -p "$dir"
if [[ $EUID -eq 0 ]]; then
  chown postgres: "$dir"
  as_user=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi
if [[ -n $primary && ! -e $dir/data/PG_VERSION ]]; then
  "${as_user[@]}" "$bin/pg_basebackup" -D "$dir/data" -R -C -S standby -c fast --no-sync \
    -d "host=127.0.0.1 port=$primary user=postgres application_name=standby" >>"$dir/basebackup.log" 2>&1 || {
    echo "pg_basebackup failed:" >&2
    cat "$dir/basebackup.log" >&2
    exit 1
  }
elif [[ ! -e $dir/data/PG_VERSION ]]; then
  "${as_user[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    --no-instructions >>"$dir/initdb.log" 2>&1 || {
    echo "initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    exit 1
  }
fi

# The waiter, detached (its parent is about to become the server): reports once it is ready.
server=$$
(
  (
    deadline=$((SECONDS + ${TWINS_POSTGRES_START_TIMEOUT:-30}))
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
      state=$(cut -d' ' -f3 "/proc/$server/stat" 2>/dev/null || echo gone)
      [[ $state != Z && $state != gone && $SECONDS -lt $deadline ]] || exit 0
      sleep 0.01
    done
    echo "port=$port uri=postgresql://postgres@127.0.0.1:$port/postgres"
  ) &
)
exec 1>>"$dir/postgres.log" 2>&1
exec "${as_user[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -c listen_addresses=127.0.0.1 \
  -c "unix_socket_directories=$dir" -c fsync=on "${settings[@]}"
