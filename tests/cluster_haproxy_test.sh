#!/usr/bin/env bash
# The compose cluster profile at work without Docker: Debian's haproxy with
# docker/cluster/haproxy.cfg in front of two real brokers running docker/cluster/mosquitto.conf,
# sharing their twins through the profile's PostgreSQL (tests/support/cluster_postgres.sh: its
# role, password and password file), each file pointed at free local ports (listeners,
# HAProxy's binds and servers, PostgreSQL's). REST and MQTT go through HAProxy to both brokers,
# each seeing what was written through the other; with one broker stopped every request is
# still served (retried on the other, then the stopped one checked down); an address that sends
# 10 bad tokens gets 429 from HAProxy while another address is still served.
# Usage: cluster_haproxy_test.sh <source dir> <built plugin>
set -euo pipefail
src=$(realpath "$1")
plugin=$(realpath "$2")
# shellcheck source-path=SCRIPTDIR source=support/start_broker.sh
. "$src/tests/support/start_broker.sh"  # free_ports
# shellcheck source-path=SCRIPTDIR source=support/cluster_postgres.sh
. "$src/tests/support/cluster_postgres.sh"
run=$(mktemp -d /tmp/twins-haproxy-XXXXXX)
pg=$(mktemp -d /tmp/twins-pg-XXXXXX)
pids=()
cluster_pg_pid=
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -z $cluster_pg_pid ]] || kill -INT "$cluster_pg_pid" 2>/dev/null || true
  [[ -z $cluster_pg_pid ]] || wait "$cluster_pg_pid" 2>/dev/null || true
  rm -rf "$run" "$pg"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for log in "$run"/*.log; do
    echo "--- $log" >&2
    tail -20 "$log" >&2
  done
  exit 1
}
token=cluster-haproxy-test-token
read -r a_mqtt a_rest b_mqtt b_rest h_mqtt h_rest < <(free_ports 6)
cluster_postgres "$src" "$run" "$pg" "cluster:test" || fail "the cluster's PostgreSQL (above)"

# A broker from the cluster's configuration: its listeners and PostgreSQL here, the REST token
# inline.
start() {  # name mqtt_port rest_port
  sed -e "s#^listener 1883 0\.0\.0\.0\$#listener $2 127.0.0.1#" \
    -e "s#^plugin /usr/.*#plugin $plugin#" \
    -e "s#^plugin_opt_store postgresql://twins@postgres:5432/twins\$#plugin_opt_store $cluster_pg_uri#" \
    -e "s#^plugin_opt_store_password_file .*#plugin_opt_store_password_file $cluster_pgpass#" \
    -e "s#^plugin_opt_rest_listen 0\.0\.0\.0:8080\$#plugin_opt_rest_listen 127.0.0.1:$3#" \
    -e "s#^plugin_opt_rest_tokens_file .*#plugin_opt_rest_token $token#" \
    "$src/docker/cluster/mosquitto.conf" >"$run/$1.conf"
  [[ $(grep -c "^listener $2 127.0.0.1\$\|^plugin_opt_rest_listen 127.0.0.1:$3\$\|^plugin_opt_rest_token \|^plugin_opt_store $cluster_pg_uri\$\|^plugin_opt_store_password_file $cluster_pgpass\$" \
    "$run/$1.conf") == 5 ]] || fail "docker/cluster/mosquitto.conf could not be pointed here"
  [[ $EUID -ne 0 ]] || echo "user root" >>"$run/$1.conf"
  mosquitto -c "$run/$1.conf" >"$run/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 2000); do
    curl -sf -o /dev/null "http://127.0.0.1:$3/healthz" && return 0
    sleep 0.01
  done
  fail "broker $1 did not start"
}
start broker-a "$a_mqtt" "$a_rest"
start broker-b "$b_mqtt" "$b_rest"
broker_a=${pids[0]}

sed -e "s#^    bind :1883\$#    bind 127.0.0.1:$h_mqtt#" -e "s#^    bind :8080\$#    bind 127.0.0.1:$h_rest#" \
  -e "s#^    server broker-a broker-a:1883 check port 8080\$#    server broker-a 127.0.0.1:$a_mqtt check port $a_rest#" \
  -e "s#^    server broker-b broker-b:1883 check port 8080\$#    server broker-b 127.0.0.1:$b_mqtt check port $b_rest#" \
  -e "s#^    server broker-a broker-a:8080 check\$#    server broker-a 127.0.0.1:$a_rest check#" \
  -e "s#^    server broker-b broker-b:8080 check\$#    server broker-b 127.0.0.1:$b_rest check#" \
  -e '/^    user haproxy$/d' -e '/^    group haproxy$/d' \
  "$src/docker/cluster/haproxy.cfg" >"$run/haproxy.cfg"
[[ $(grep -c '^    \(bind\|server broker-[ab]\) 127\.0\.0\.1:' "$run/haproxy.cfg") == 6 ]] ||
  fail "docker/cluster/haproxy.cfg could not be pointed here"
haproxy -db -f "$run/haproxy.cfg" >"$run/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 2000); do
  curl -sf -o /dev/null "http://127.0.0.1:$h_rest/healthz" && break
  sleep 0.01
done

rest() {  # method path [body [source address]]: the HTTP status through HAProxy
  curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "X-Auth-Token: ${token_used:-$token}" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} ${4:+--interface "$4"} \
    "http://127.0.0.1:$h_rest/iot/v1/regions/fr-par/twins/$2"
}
mqtt() {  # operation [body]: the reply to it, on document doc of twin dev, through HAProxy
  local body=(-n)
  [[ -z ${2:-} ]] || body=(-m "$2")
  mosquitto_rr -p "$h_mqtt" -i "dev-$RANDOM" -u dev -t "\$SCW/twins/me/doc/$1" \
    -e "\$SCW/twins/me/doc/$1/response/success" "${body[@]}" -W 5 2>/dev/null || true
}
# How many requests of the HAProxy log went to each broker: "<to broker-a> <to broker-b>".
served() {  # frontend (mqtt or rest)
  echo "$(grep -c " brokers_$1/broker-a " "$run/haproxy.log") $(grep -c " brokers_$1/broker-b " "$run/haproxy.log")"
}

# Writes and reads go through HAProxy to both brokers, each reading what the other wrote.
for n in 1 2 3 4; do
  [[ $(rest PUT dev/documents/doc "{\"data\":{\"n\":$n}}") == 200 ]] || fail "REST put $n through HAProxy"
  reply=$(mqtt get)
  [[ $reply == "{\"version\":$((2 * n - 1)),\"data\":{\"n\":$n}}" ]] || fail "MQTT get after REST put $n: $reply"
  reply=$(mqtt patch "{\"data\":{\"m\":$n}}")
  [[ $reply == "{\"version\":$((2 * n)),\"data\":{\"n\":$n,\"m\":$n}}" ]] || fail "MQTT patch $n: $reply"
done
read -r to_a to_b < <(served rest)
((to_a > 0 && to_b > 0)) || fail "REST through HAProxy reached one broker only: $to_a and $to_b"
# MQTT connections are logged when they end (tcplog): all eight have.
read -r to_a to_b < <(served mqtt)
((to_a > 0 && to_b > 0 && to_a + to_b == 8)) || fail "MQTT through HAProxy: $to_a to broker-a, $to_b to broker-b"

# broker-a stopped: every request is served, by broker-b, which has every write.
kill "$broker_a"
wait "$broker_a" 2>/dev/null || true
for n in 5 6 7; do
  [[ $(rest PUT dev/documents/doc "{\"data\":{\"n\":$n}}") == 200 ]] || fail "with broker-a stopped, REST put $n"
  reply=$(mqtt get)
  [[ $reply == "{\"version\":$((n + 4)),\"data\":{\"n\":$n}}" ]] || fail "with broker-a stopped, MQTT get: $reply"
done
down() { grep -q "Server brokers_mqtt/broker-a is DOWN" "$run/haproxy.log" &&
  grep -q "Server brokers_rest/broker-a is DOWN" "$run/haproxy.log"; }
for _ in $(seq 1500); do
  down && break
  sleep 0.01
done
down || fail "HAProxy's health checks did not find broker-a down in both backends"

# Token guessing from 127.0.0.2: 10 failures are let through, then HAProxy answers 429; the
# right token from there is refused too, and another address is still served.
token_used=not-the-token
seen=""
for _ in $(seq 12); do seen+="$(rest GET dev/documents/doc "" 127.0.0.2) "; done
[[ $seen == "401 401 401 401 401 401 401 401 401 401 429 429 " ]] || fail "bad tokens from one address: $seen"
token_used=""
[[ $(rest GET dev/documents/doc "" 127.0.0.2) == 429 ]] || fail "the guessing address is served again at once"
[[ $(rest GET dev/documents/doc) == 200 ]] || fail "another address is refused with the guesser"
echo "cluster haproxy test: ok"
