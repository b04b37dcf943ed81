#!/usr/bin/env bash
# Runs the stock Scaleway JavaScript SDK (@scaleway/sdk-iot, see package.json) unchanged against
# the twins REST API of a real mosquitto loading the built plugin.
# Usage: run.sh <path to mosquitto_twins.so>
# Needs node >= 20.19.4 and npm; installs the locked packages with `npm ci` when node_modules is
# missing or older than package-lock.json. Exits with the status of `node --test`.
# The broker: tests/support/start_broker.sh (TWINS_MOSQUITTO, default /usr/sbin/mosquitto;
# TWINS_BROKER_PRELOAD, LD_PRELOAD for the broker only: the sanitizer runtimes a sanitized plugin needs).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <path to mosquitto_twins.so>" >&2; exit 2; }
plugin=$(realpath "$1")
[ -f "$plugin" ] || { echo "FAIL: no plugin at $1" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../support/start_broker.sh"
max_documents=3

cd "$here"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/twins-sdk.XXXXXX")
broker=0
cleanup() {
  if [ "$broker" -ne 0 ]; then
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

broker_log() {
  echo "----- broker log -----" >&2
  cat "$work/broker/mosquitto.log" >&2
  echo "----------------------" >&2
}

token=$(node -e 'console.log(require("crypto").randomUUID())')
# Returns once the broker listens on both ports (the REST server starts with the plugin).
start_broker "$work/broker" "per_listener_settings false
plugin $plugin
plugin_opt_db_path $work/db
plugin_opt_max_documents $max_documents
plugin_opt_rest_listen 127.0.0.1:@REST_PORT@
plugin_opt_rest_token $token" || { echo "FAIL: the broker did not start" >&2; exit 1; }
broker=$started_pid
base_url="http://127.0.0.1:$started_rest_port"

status=0
TWINS_REST_URL=$base_url TWINS_REST_TOKEN=$token TWINS_MAX_DOCUMENTS=$max_documents \
  node --test sdk.test.mjs || status=$?
if [ "$status" -ne 0 ]; then broker_log; fi
exit "$status"
