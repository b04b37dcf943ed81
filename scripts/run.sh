#!/usr/bin/env bash
# Installs what is missing, builds, and runs mosquitto with the twins plugin on 127.0.0.1:1883,
# data in ./run/db. The configuration is mosquitto.conf.example with local paths.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mosquitto_twins

mkdir -p run
[ -s run/rest-token ] || cat /proc/sys/kernel/random/uuid > run/rest-token
sed -e "s|^plugin /usr/lib/.*|plugin $PWD/build/plugin/mosquitto_twins.so|" \
    -e "s|^plugin_opt_db_path .*|plugin_opt_db_path $PWD/run/db|" \
    -e "s|^#plugin_opt_rest_token .*|plugin_opt_rest_token $(cat run/rest-token)|" \
    mosquitto.conf.example > run/mosquitto.conf
# Started as root, mosquitto switches to the `mosquitto` user, which may not reach ./run.
[ "$(id -u)" -ne 0 ] || echo "user root" >> run/mosquitto.conf

echo "MQTT: 127.0.0.1:1883   REST: http://127.0.0.1:8080 (X-Auth-Token: $(cat run/rest-token))"
exec /usr/sbin/mosquitto -c run/mosquitto.conf
