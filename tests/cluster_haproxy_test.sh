#!/usr/bin/env bash
# The cluster profile's HAProxy configuration (docker/cluster/haproxy.cfg) at work, without
# Docker: Debian's haproxy in front of two real brokers running docker/cluster/mosquitto.conf,
# each pointed at free local ports (listeners, HAProxy's binds and servers) and, until the
# plugin has plugin_opt_store (issue 16), each with a RocksDB database of its own instead of
# the shared PostgreSQL: so a document written on one broker is found through HAProxy only when
# it picks that one. REST and MQTT go through HAProxy to both brokers; with one broker stopped,
# every request still succeeds (retried on the other, then the stopped one checked down); an
# address that sends more than 10 bad tokens gets 429 from HAProxy while another address is
# still served.
# Usage: cluster_haproxy_test.sh <source dir> <built plugin>
set -euo pipefail
src=$(realpath "$1")
plugin=$(realpath "$2")
# shellcheck source-path=SCRIPTDIR source=support/start_broker.sh
. "$src/tests/support/start_broker.sh"  # free_ports
run=$(mktemp -d /tmp/twins-haproxy-XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run"
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

# A broker from the cluster's configuration: its listeners here, the REST token inline.
start() {  # name mqtt_port rest_port
  sed -e "s#^listener 1883 0\.0\.0\.0\$#listener $2 127.0.0.1#" \
    -e "s#^plugin /usr/.*#plugin $plugin#" \
    -e "/^plugin_opt_store/d" \
    -e "s#^plugin_opt_rest_listen 0\.0\.0\.0:8080\$#plugin_opt_rest_listen 127.0.0.1:$3\\nplugin_opt_db_path $run/$1-db#" \
    -e "s#^plugin_opt_rest_tokens_file .*#plugin_opt_rest_token $token#" \
    "$src/docker/cluster/mosquitto.conf" >"$run/$1.conf"
  [[ $(grep -c "^listener $2 127.0.0.1\$\|^plugin_opt_rest_listen 127.0.0.1:$3\$\|^plugin_opt_rest_token " \
    "$run/$1.conf") == 3 ]] || fail "docker/cluster/mosquitto.conf could not be pointed here"
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
statuses() {  # n method path: the n statuses, space-separated
  local i out=()
  for ((i = 0; i < $1; i++)); do out+=("$(rest "$2" "$3")"); done
  echo "${out[*]}"
}
# shellcheck disable=SC2016  # $SCW: MQTT topics, not expansions
mqtt_get() {  # the reply to a get of `both` of twin `dev` through HAProxy, or nothing
  mosquitto_rr -p "$h_mqtt" -i "dev-$RANDOM" -u dev -t '$SCW/twins/me/both/get' \
    -e '$SCW/twins/me/both/get/response/success' -n -W 3 2>/dev/null || true
}
put() {  # rest_port document data: a put on that broker itself
  [[ $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
    -d "{\"data\":$3}" "http://127.0.0.1:$1/iot/v1/regions/fr-par/twins/dev/documents/$2") == 200 ]] ||
    fail "put of $2 on the broker at $1"
}

# REST spread over both: the document only broker-a holds is found about every other time.
put "$a_rest" doc '{"on":"a"}'
put "$a_rest" both '{"on":"a"}'
put "$b_rest" both '{"on":"b"}'
seen=$(statuses 6 GET dev/documents/doc)
[[ $seen == *200* && $seen == *404* ]] || fail "REST through HAProxy reached one broker only: $seen"
# MQTT too (the twin of username dev, as the demo names twins).
replies=""
for _ in 1 2 3 4 5 6; do replies+="$(mqtt_get)|"; done
[[ $replies == *'{"version":1,"data":{"on":"a"}}'* && $replies == *'{"version":1,"data":{"on":"b"}}'* ]] ||
  fail "MQTT through HAProxy reached one broker only: $replies"

# broker-a stopped: every request is served, by broker-b (the document is not found there).
kill "$broker_a"
wait "$broker_a" 2>/dev/null || true
seen=$(statuses 6 GET dev/documents/doc)
[[ $seen == "404 404 404 404 404 404" ]] || fail "with broker-a stopped, through HAProxy: $seen"
for _ in 1 2 3; do
  reply=$(mqtt_get)
  [[ $reply == '{"version":1,"data":{"on":"b"}}' ]] || fail "with broker-a stopped, MQTT through HAProxy: $reply"
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
[[ $(rest GET dev/documents/doc) == 404 ]] || fail "another address is refused with the guesser"
echo "cluster haproxy test: ok"
