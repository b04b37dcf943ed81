#!/usr/bin/env bash
# The compose demo's device (docker/demo-device.sh) against the demo's broker configuration
# (docker/mosquitto.conf, pointed at free local ports, this build's plugin and a temporary
# database, without Graphite), with Debian's mosquitto and stock clients instead of Docker:
# the device reads `desired` when it connects, applies each change a back-end makes to it
# through REST to `current`, and goes on across a delete and a broker restart.
# Usage: demo_device_test.sh <source dir> <built plugin>
set -euo pipefail
src="$1"
plugin="$2"
fail() { echo "FAIL: $*" >&2; echo "--- device:" >&2; cat "$run/device.out" >&2; echo "--- broker:" >&2; cat "$run/broker.log" >&2; exit 1; }

run="$(mktemp -d)"
broker_pid=""
device_pid=""
stop_broker() { [ -z "$broker_pid" ] || { kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }; broker_pid=""; }
cleanup() {
  # The device runs in a session of its own: its whole process group goes.
  [ -z "$device_pid" ] || kill -- "-$device_pid" 2>/dev/null || true
  stop_broker
  rm -rf "$run"
}
trap cleanup EXIT

read -r mqtt_port rest_port < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
token=demo-device-test-token
sed -e "s#^listener 1883 0.0.0.0\$#listener $mqtt_port 127.0.0.1#" \
    -e "s#^plugin /usr/.*#plugin $plugin#" \
    -e "s#^plugin_opt_db_path .*#plugin_opt_db_path $run/db#" \
    -e "s#^plugin_opt_rest_listen .*#plugin_opt_rest_listen 127.0.0.1:$rest_port#" \
    -e "s#^plugin_opt_rest_tokens_file .*#plugin_opt_rest_token $token#" \
    -e '/^plugin_opt_graphite_url /d' \
    "$src/docker/mosquitto.conf" > "$run/mosquitto.conf"
grep -q "^listener $mqtt_port 127.0.0.1\$" "$run/mosquitto.conf" || fail "docker/mosquitto.conf has no 'listener 1883 0.0.0.0'"
grep -q "^plugin_opt_rest_token " "$run/mosquitto.conf" || fail "docker/mosquitto.conf has no rest_tokens_file line"
[ "$(id -u)" != 0 ] || echo "user root" >> "$run/mosquitto.conf"

start_broker() {
  "${TWINS_MOSQUITTO:-/usr/sbin/mosquitto}" -c "$run/mosquitto.conf" >> "$run/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$rest_port/healthz" && return 0
    sleep 0.1
  done
  fail "the broker did not start"
}
rest() {  # method, document, [body]
  curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
    ${3:+-d "$3"} "http://127.0.0.1:$rest_port/iot/v1/regions/fr-par/twins/demo-device/documents/$2"
}
current() {
  curl -s -H "X-Auth-Token: $token" "http://127.0.0.1:$rest_port/iot/v1/regions/fr-par/twins/demo-device/documents/current"
}
wait_for() {  # what, command...
  local what="$1"; shift
  for _ in $(seq 200); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "$what"
}
device_says() { grep -qF -- "$1" "$run/device.out"; }
current_has() { current | grep -qF -- "$1"; }

start_broker
# A back-end sets desired before the device runs: the device reads it when it connects.
[ "$(rest PUT desired '{"data":{"target_temperature":22}}')" = 200 ] || fail "PUT desired"
BROKER_HOST=127.0.0.1 BROKER_PORT="$mqtt_port" PERIOD=0.5 setsid sh "$src/docker/demo-device.sh" > "$run/device.out" 2>&1 &
device_pid=$!
wait_for "the device did not watch desired" device_says 'watching desired: {"version":1,"data":{"target_temperature":22}}'
wait_for "the device did not apply desired at connect" device_says 'desired version 1 (read at connect): {"target_temperature":22}'
wait_for "current lacks the readings and desired" current_has '"fan":{"rpm":'
current_has '"target_temperature":22' || fail "current lacks target_temperature: $(current)"

# Connected now: each change is pushed and applied.
[ "$(rest PATCH desired '{"data":{"mode":"eco"}}')" = 200 ] || fail "PATCH desired"
wait_for "the patch of desired was not applied" device_says 'desired version 2 (pushed): {"target_temperature":22,"mode":"eco"}'
current_has '"mode":"eco"' || fail "current lacks mode: $(current)"
current_has '"target_temperature":22' || fail "current lacks target_temperature: $(current)"
[ "$(rest DELETE desired)" = 204 ] || fail "DELETE desired"
wait_for "the delete was not pushed" device_says 'desired deleted (pushed), at version 2'
[ "$(rest PUT desired '{"data":{"target_temperature":18}}')" = 200 ] || fail "PUT desired again"
wait_for "the re-created desired was not applied" device_says 'desired version 1 (pushed): {"target_temperature":18}'
wait_for "current did not follow" current_has '"target_temperature":18'

# A broker restart: the watch is kept, the device's listener connects again and catches up.
stop_broker
start_broker
[ "$(rest PATCH desired '{"data":{"target_temperature":19}}')" = 200 ] || fail "PATCH desired after the restart"
wait_for "desired was not applied after the restart" current_has '"target_temperature":19'
device_says 'desired version 2 (' || fail "no line for version 2 after the restart"
echo "demo device: ok"
