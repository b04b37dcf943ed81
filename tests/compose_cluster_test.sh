#!/usr/bin/env bash
# The compose file's cluster profile (docker-compose.yml, docker/cluster/), checked without a
# Docker engine: the file is valid with and without the profile; the profile's services are its
# own, apart from the demo's (no dependency either way, no published port shared); HAProxy's
# configuration is valid (haproxy -c) and points at the brokers' listeners; the brokers'
# configuration names the database and password file their entrypoint writes; the broker image's
# build stage installs every library CMakeLists.txt requires. Then, on a real PostgreSQL 15,
# postgres-init.sh and the password file the brokers' entrypoint writes (both as in the images,
# paths and host pointed here), with a password that needs escaping: the role logs in with it,
# only it may use the database, and mosquitto-twins-admin makes and reads the twins there as it.
# Each check is also run on a broken copy, which it must refuse.
# Usage: compose_cluster_test.sh <source dir> <mosquitto-twins-admin>
set -euo pipefail
src=$(realpath "$1")
admin=$(realpath "$2")
cluster=$src/docker/cluster
# shellcheck source-path=SCRIPTDIR source=support/cluster_postgres.sh
. "$src/tests/support/cluster_postgres.sh"
run=$(mktemp -d /tmp/twins-cluster-XXXXXX)
pg=$(mktemp -d /tmp/twins-pg-XXXXXX)  # start_postgres.sh gives it to the postgres user, when root
pg_pid=
cleanup() {
  [[ -z $pg_pid ]] || kill -INT "$pg_pid" 2>/dev/null || true
  [[ -z $pg_pid ]] || wait "$pg_pid" 2>/dev/null || true
  rm -rf "$run" "$pg"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cd "$src"

# --- The compose file, with and without the profile; an unknown option is refused.
docker-compose config -q || fail "docker-compose config"
docker-compose --profile cluster config -q || fail "docker-compose --profile cluster config"
printf 'services:\n  haproxy:\n    profile: [cluster]\n' >"$run/bad-override.yml"
if docker-compose -f docker-compose.yml -f "$run/bad-override.yml" --profile cluster config -q 2>/dev/null; then
  fail "docker-compose config takes an unknown option: it validates nothing"
fi

# --- The profile's services, apart from the demo's (docker-compose 1.x's config lists them all).
check_services() {
  python3 - "$1" <<'PY'
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
demo = {name for name, s in services.items() if "profiles" not in s}
cluster = {name for name, s in services.items() if s.get("profiles") == ["cluster"]}
problems = []
if demo != {"broker", "graphite", "prometheus", "grafana", "device"}:
    problems.append(f"services without a profile: {sorted(demo)}")
if cluster != {"postgres", "broker-a", "broker-b", "haproxy"}:
    problems.append(f"services of the cluster profile: {sorted(cluster)}")
if set(services) - demo - cluster:
    problems.append(f"services of other profiles: {sorted(set(services) - demo - cluster)}")
for group in (demo, cluster):
    for name in group:
        for needed in services[name].get("depends_on", {}):
            if needed not in group:
                problems.append(f"{name} depends on {needed}, of the other group")
def published(group):
    # "address:host port:container port/protocol" as docker-compose 1.x writes them.
    return {str(port).split(":")[-2] for name in group for port in services[name].get("ports", [])}
if published(demo) & published(cluster):
    problems.append(f"host ports published by both: {sorted(published(demo) & published(cluster))}")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
}
docker-compose --profile cluster config >"$run/config.yml"
check_services "$run/config.yml" || fail "the cluster profile's services (above)"
# Broken twins: a service out of the profile; HAProxy on the demo broker's MQTT port.
python3 -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
del c["services"]["broker-b"]["profiles"]
yaml.safe_dump(c, open(sys.argv[2], "w"))
c = yaml.safe_load(open(sys.argv[1]))
c["services"]["haproxy"]["ports"] = ["127.0.0.1:1883:1883/tcp"]
yaml.safe_dump(c, open(sys.argv[3], "w"))' "$run/config.yml" "$run/unprofiled.yml" "$run/clash.yml"
broken=$(check_services "$run/unprofiled.yml") && fail "a service taken out of the profile is not seen"
[[ $broken == *"services without a profile: ['broker', 'broker-b', "*"haproxy depends on broker-b, of the other group"* ]] ||
  fail "a service out of the profile: $broken"
broken=$(check_services "$run/clash.yml") && fail "HAProxy on the demo's port is not seen"
[[ $broken == "host ports published by both: ['1883']" ]] || fail "HAProxy on the demo's port: $broken"

# --- HAProxy's configuration: valid, and its servers are the brokers' listeners.
haproxy -c -q -f "$cluster/haproxy.cfg" || fail "haproxy -c -f docker/cluster/haproxy.cfg"
sed 's/balance leastconn/balance leastconnections/' "$cluster/haproxy.cfg" >"$run/haproxy.cfg"
if haproxy -c -q -f "$run/haproxy.cfg" 2>/dev/null; then fail "haproxy -c takes an unknown balance algorithm"; fi
conf=$cluster/mosquitto.conf
mqtt_port=$(sed -n 's/^listener \([0-9]*\) 0\.0\.0\.0$/\1/p' "$conf")
rest_port=$(sed -n 's/^plugin_opt_rest_listen 0\.0\.0\.0:\([0-9]*\)$/\1/p' "$conf")
[[ -n $mqtt_port && -n $rest_port ]] || fail "docker/cluster/mosquitto.conf: no listener or rest_listen on 0.0.0.0"
for broker in broker-a broker-b; do
  grep -qx "    server $broker $broker:$mqtt_port check port $rest_port" "$cluster/haproxy.cfg" ||
    fail "haproxy.cfg: no MQTT server $broker:$mqtt_port checked on $rest_port"
  grep -qx "    server $broker $broker:$rest_port check" "$cluster/haproxy.cfg" ||
    fail "haproxy.cfg: no REST server $broker:$rest_port"
done
[[ $(grep -c '^    http-check send meth GET uri /healthz$' "$cluster/haproxy.cfg") == 2 ]] ||
  fail "haproxy.cfg: both backends check /healthz"

# --- The brokers' store: the URI and password file of issue 16's options, as the entrypoint
# writes the file (host:port:database:user of that URI).
grep -qx 'plugin_opt_store postgresql://twins@postgres:5432/twins' "$conf" || fail "mosquitto.conf: plugin_opt_store"
grep -qx 'plugin_opt_store_password_file /etc/mosquitto/twins-pgpass' "$conf" ||
  fail "mosquitto.conf: plugin_opt_store_password_file"
grep -q "^printf 'postgres:5432:twins:twins:%s" "$cluster/broker-entrypoint.sh" ||
  fail "broker-entrypoint.sh does not write the password file for postgres:5432, database and user twins"
grep -q '> /etc/mosquitto/twins-pgpass$' "$cluster/broker-entrypoint.sh" ||
  fail "broker-entrypoint.sh does not write /etc/mosquitto/twins-pgpass"

# --- The broker image's build stage installs the package of every pkg-config module that
# CMakeLists.txt requires (a module missing there fails the image's cmake).
missing_build_packages() {  # Dockerfile
  local stage words module modules pc package
  stage=$(sed -n '/^FROM debian:12 AS build$/,/^FROM /p' "$1")
  # shellcheck disable=SC1003  # a backslash among the characters squeezed, not an escape
  words=" $(tr -s ' \t\n\\' ' ' <<<"$stage") "
  mapfile -t modules < <(sed -n 's/^pkg_check_modules([A-Z]* REQUIRED IMPORTED_TARGET \([a-z0-9]*\))$/\1/p' CMakeLists.txt)
  for module in "${modules[@]}"; do
    pc=$(pkg-config --path "$module") || fail "pkg-config knows no $module"
    package=$(dpkg -S "$pc" | cut -d: -f1)
    [[ $words == *" $package "* ]] || echo "$package"
  done
}
[[ $(grep -c '^pkg_check_modules' CMakeLists.txt) -ge 5 ]] || fail "CMakeLists.txt: its pkg_check_modules lines not found"
missing=$(missing_build_packages docker/Dockerfile)
[[ -z $missing ]] || fail "docker/Dockerfile's build stage lacks: $missing"
sed 's/ libpq-dev / /' docker/Dockerfile >"$run/Dockerfile"
[[ $(missing_build_packages "$run/Dockerfile") == libpq-dev ]] || fail "a build stage without libpq-dev is not seen"

# --- On a real PostgreSQL: postgres-init.sh as the official image runs it, then the password
# file as the brokers' entrypoint writes it, with a password of quote, colon, backslash, space.
password="it's a \"p:w\\d\""
cluster_postgres "$src" "$run" "$pg" "$password" || fail "the cluster's PostgreSQL (above)"
pg_pid=$cluster_pg_pid port=$cluster_pg_port superuser=$cluster_pg_superuser uri=$cluster_pg_uri
[[ $(stat -c %a "$run/twins-pgpass") == 600 ]] || fail "the password file is not mode 600"

export_file=$run/one.jsonl
cat >"$export_file" <<'EOF'
{"type":"header","format":1,"schema":2,"seq":5}
{"type":"document","twin_id":"dev","document_name":"state","version":5,"modified_ms":1,"data":{"on":true}}
{"type":"end","documents":1,"watches":0}
EOF
out=$("$admin" check --db "$uri" --password-file "$run/twins-pgpass" 2>&1) && fail "check of no twins: $out"
[[ $out == *"has no schema twins"* ]] || fail "the role does not log in with the password file: $out"
out=$("$admin" import --db "$uri" --password-file "$run/twins-pgpass" --in "$export_file" 2>&1) ||
  fail "import as the role: $out"
out=$("$admin" check --db "$uri" --password-file "$run/twins-pgpass" 2>&1) || fail "check: $out"
[[ $out == *$'documents 1\n'*$'\nok' ]] || fail "check: $out"

# Its broken twins: the password unescaped, a wrong one, and a role that is not the owner.
printf '127.0.0.1:%s:twins:twins:%s\n' "$port" "$password" >"$run/unescaped"
printf '127.0.0.1:%s:twins:twins:not-it\n' "$port" >"$run/wrong"
chmod 600 "$run/unescaped" "$run/wrong"
for file in unescaped wrong; do
  out=$("$admin" check --db "$uri" --password-file "$run/$file" 2>&1) && fail "$file password accepted"
  [[ $out == *'password authentication failed for user "twins"'* ]] || fail "$file password: $out"
done
psql -X -q "$superuser" -c "CREATE ROLE other LOGIN" >/dev/null
out=$(psql -X -w "postgresql://other@127.0.0.1:$port/twins" -c "SELECT 1" 2>&1) && fail "another role uses twins"
[[ $out == *"permission denied for database"* ]] || fail "another role: $out"
echo "compose cluster test: ok"
