# shellcheck shell=bash
# The compose cluster profile's PostgreSQL without Docker, for the shell tests of that profile
# (compose_cluster_test.sh, cluster_haproxy_test.sh): start_postgres.sh's server; then
# docker/cluster/postgres-init.sh as the official image runs it at its first start; a
# scram-sha-256 rule for the role twins, since the official image asks every TCP client for a
# password (start_postgres.sh trusts them); and the password file that
# docker/cluster/broker-entrypoint.sh writes, with its paths and host pointed here.
#
# Source it, then:   cluster_postgres SRC RUN PGDIR PASSWORD
#   SRC the source tree, RUN a directory for the files, PGDIR a fresh directory for the server
#   (given to the postgres user when root). Sets cluster_pg_pid (stop it with SIGINT),
#   cluster_pg_port, cluster_pg_superuser (a URI), cluster_pg_uri (the role and database twins)
#   and cluster_pgpass (the password file); returns 1, saying why on stderr, when a step fails.

# shellcheck disable=SC2034  # cluster_*: the function's outputs, read by the caller
cluster_postgres() {
  local src=$1 run=$2 pgdir=$3 password=$4 line _
  cluster_pg_pid=
  coproc cluster_pg_server { exec "$src/tests/support/start_postgres.sh" "$pgdir"; }
  # shellcheck disable=SC2154  # cluster_pg_server_PID is set by coproc
  cluster_pg_pid=$cluster_pg_server_PID
  if ! read -r line <&"${cluster_pg_server[0]}" || [[ ! $line =~ ^port=([0-9]+)\ uri=(.*)$ ]]; then
    echo "PostgreSQL did not start: $line $(cat "$pgdir/postgres.log" 2>/dev/null)" >&2
    return 1
  fi
  cluster_pg_port=${BASH_REMATCH[1]} cluster_pg_superuser=${BASH_REMATCH[2]}
  cluster_pg_uri="postgresql://twins@127.0.0.1:$cluster_pg_port/twins"
  cluster_pgpass=$run/twins-pgpass

  if ! POSTGRES_USER=postgres PGHOST=127.0.0.1 PGPORT=$cluster_pg_port TWINS_PG_PASSWORD=$password \
    sh "$src/docker/cluster/postgres-init.sh" >"$run/postgres-init.log" 2>&1; then
    echo "postgres-init.sh: $(cat "$run/postgres-init.log")" >&2
    return 1
  fi
  { echo "host all twins 127.0.0.1/32 scram-sha-256" && cat "$pgdir/data/pg_hba.conf"; } >"$run/pg_hba.conf"
  cat "$run/pg_hba.conf" >"$pgdir/data/pg_hba.conf"
  psql -X -q "$cluster_pg_superuser" -c "SELECT pg_reload_conf()" >/dev/null
  # The reload is a signal: the rule is in force once a client without a password is refused.
  for _ in $(seq 1000); do
    [[ $(PGPASSFILE=/dev/null psql -X -w "$cluster_pg_uri" -c "SELECT 1" 2>&1) == *"no password supplied"* ]] && break
    sleep 0.01
  done
  if [[ $(PGPASSFILE=/dev/null psql -X -w "$cluster_pg_uri" -c "SELECT 1" 2>&1) != *"no password supplied"* ]]; then
    echo "pg_hba.conf was not reloaded" >&2
    return 1
  fi

  sed -e "s#/etc/mosquitto/twins-pgpass#$cluster_pgpass#" -e 's#^chown .*#:#' -e 's#^exec .*#exit 0#' \
    -e "s#'postgres:5432:#'127.0.0.1:$cluster_pg_port:#" "$src/docker/cluster/broker-entrypoint.sh" \
    >"$run/broker-entrypoint.sh"
  if ! grep -q "127.0.0.1:$cluster_pg_port:twins:twins:" "$run/broker-entrypoint.sh"; then
    echo "docker/cluster/broker-entrypoint.sh could not be pointed here" >&2
    return 1
  fi
  if ! TWINS_PG_PASSWORD=$password sh "$run/broker-entrypoint.sh"; then
    echo "broker-entrypoint.sh failed" >&2
    return 1
  fi
}
