#!/usr/bin/env bash
# Builds the .deb, unpacks it into a temporary root and starts mosquitto with the unpacked
# plugin and its shipped twins.conf.example, then makes a twin request over MQTT and exports the
# running broker's database with the shipped mosquitto-twins-admin.
# Usage: package_test.sh <build dir>
set -euo pipefail
. "$(dirname "$0")/support/start_broker.sh"
build=$1
root=$(mktemp -d)
trap 'kill $broker 2>/dev/null || true; rm -rf "$root"' EXIT
broker=0

(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/mosquitto-twins_*.deb | head -1)
dpkg-deb -x "$deb" "$root"

fail() { echo "FAIL: $*"; exit 1; }
dpkg-deb -f "$deb" Depends | grep -q "mosquitto (>= 2.0)" || fail "Depends lacks mosquitto"
dpkg-deb -f "$deb" Depends | grep -q "librocksdb" || fail "Depends lacks librocksdb"
dpkg-deb -f "$deb" Depends | grep -q "libpq5" || fail "Depends lacks libpq5 (mosquitto-twins-admin reads PostgreSQL)"
plugin="$root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)/mosquitto_twins.so"
[ -f "$plugin" ] || fail "plugin not beside Debian's mosquitto plugins: $(cd "$root" && find . -type f)"
for lib in libssl.so libcrypto.so; do
  [ -f "$(dirname "$plugin")/mosquitto_twins/$lib" ] || fail "OpenSSL 3 compatibility library $lib not shipped"
done
dpkg-deb -f "$deb" Depends | grep -q "libssl3" || fail "Depends lacks libssl3"
admin="$root/usr/bin/mosquitto-twins-admin"
[ -x "$admin" ] || fail "no /usr/bin/mosquitto-twins-admin"
"$admin" --help | grep -q "export --db DIR" || fail "mosquitto-twins-admin --help: $("$admin" --help 2>&1)"
example="$root/etc/mosquitto/conf.d/twins.conf.example"
[ -f "$example" ] || fail "no conf.d/twins.conf.example"

# The shipped example, with the unpacked plugin and a database in the temporary root.
start_broker "$root/broker" "$(sed -e "s|^plugin /usr/lib/.*|plugin $plugin|" \
  -e "s|^plugin_opt_db_path .*|plugin_opt_db_path $root/db|" "$example")" || fail "the broker did not start"
broker=$started_pid
port=$started_port
reply=$(mosquitto_rr -p "$port" -i pkg-device -t '$SCW/twins/me/state/put' \
        -e '$SCW/twins/me/state/put/response/success' -m '{"data":{"installed":true}}' -W 3) || {
  cat "$root/broker/mosquitto.log"; fail "no reply from the packaged plugin"; }
[ "$reply" = '{"version":1,"data":{"installed":true}}' ] || fail "unexpected reply: $reply"
grep -q "twins: mosquitto-twins" "$root/broker/mosquitto.log" || fail "plugin did not log its start"
"$admin" export --db "$root/db" --out "$root/backup.jsonl" || fail "export of the running broker's database failed"
grep -qx '{"type":"document","twin_id":"pkg-device","document_name":"state","version":1,"modified_ms":[0-9]*,"data":{"installed":true}}' \
  "$root/backup.jsonl" || fail "unexpected export: $(cat "$root/backup.jsonl")"
echo "package test: 1 passed, 0 failed"
