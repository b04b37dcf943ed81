#!/usr/bin/env bash
# Runs the stock Scaleway JavaScript SDK (@scaleway/sdk-iot, see package.json) unchanged against
# the twins REST API of a real mosquitto loading the built plugin.
# Usage: run.sh <path to mosquitto_twins.so>
# Needs node >= 20.19.4 and npm; installs the locked packages with `npm ci` when node_modules is
# missing or older than package-lock.json. Exits with the status of `node --test`.
# Environment: MOSQUITTO (default /usr/sbin/mosquitto); TWINS_BROKER_PRELOAD, LD_PRELOAD for the
# broker only (the sanitizer runtimes a sanitized plugin needs).
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <path to mosquitto_twins.so>" >&2; exit 2; }
plugin=$(realpath "$1")
[ -f "$plugin" ] || { echo "FAIL: no plugin at $1" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mosquitto=${MOSQUITTO:-/usr/sbin/mosquitto}
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

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
mqtt_port=$(free_port)
rest_port=$(free_port)
while [ "$rest_port" = "$mqtt_port" ]; do rest_port=$(free_port); done
token=$(node -e 'console.log(require("crypto").randomUUID())')

cat > "$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
user root
per_listener_settings false
plugin $plugin
plugin_opt_db_path $work/db
plugin_opt_max_documents $max_documents
plugin_opt_rest_listen 127.0.0.1:$rest_port
plugin_opt_rest_token $token
EOF

if [ -n "${TWINS_BROKER_PRELOAD:-}" ]; then
  LD_PRELOAD=$TWINS_BROKER_PRELOAD "$mosquitto" -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
else
  "$mosquitto" -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
fi
broker=$!

broker_log() {
  echo "----- broker log -----" >&2
  cat "$work/broker.log" >&2
  echo "----------------------" >&2
}

base_url="http://127.0.0.1:$rest_port"
# Polls /healthz for up to 10 s, giving up early if the broker has exited.
if ! node -e '
  const [url, pid] = process.argv.slice(1);
  const alive = () => { try { process.kill(Number(pid), 0); return true; } catch { return false; } };
  (async () => {
    for (let i = 0; i < 200 && alive(); ++i) {
      try { if ((await fetch(url)).ok) process.exit(0); } catch {}
      await new Promise((r) => setTimeout(r, 50));
    }
    process.exit(1);
  })();' "$base_url/healthz" "$broker"; then
  echo "FAIL: the REST API did not answer on $base_url/healthz" >&2
  broker_log
  exit 1
fi

status=0
TWINS_REST_URL=$base_url TWINS_REST_TOKEN=$token TWINS_MAX_DOCUMENTS=$max_documents \
  node --test sdk.test.mjs || status=$?
if [ "$status" -ne 0 ]; then broker_log; fi
exit "$status"
