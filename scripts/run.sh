#!/usr/bin/env bash
# Installs what is missing, builds, and runs mosquitto with the twins plugin on 127.0.0.1:1883,
# data in ./run/db. The configuration is mosquitto.conf.example with local paths.
# The REST token is generated once into run/rest-token (mode 0600); this script says where it
# is and never prints it. Environment (for tests): RUN_DIR (./run), MQTT_PORT (1883),
# REST_PORT (8080), TWINS_PLUGIN (a built plugin: skips installing and building).
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir="${RUN_DIR:-$PWD/run}"
mqtt_port="${MQTT_PORT:-1883}"
rest_port="${REST_PORT:-8080}"
plugin="${TWINS_PLUGIN:-}"
if [ -z "$plugin" ]; then
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target mosquitto_twins
  plugin="$PWD/build/plugin/mosquitto_twins.so"
fi

# Everything written below may hold or lead to the secret: readable by this user only.
umask 077
mkdir -p "$run_dir"
[ -s "$run_dir/rest-token" ] || cat /proc/sys/kernel/random/uuid > "$run_dir/rest-token"
chmod 600 "$run_dir/rest-token"
sed -e "s|^plugin /usr/lib/.*|plugin $plugin|" \
    -e "s|^plugin_opt_db_path .*|plugin_opt_db_path $run_dir/db|" \
    -e "s|^listener 1883 |listener $mqtt_port |" \
    -e "s|^plugin_opt_rest_listen .*|plugin_opt_rest_listen 127.0.0.1:$rest_port|" \
    -e "s|^#plugin_opt_rest_tokens_file .*|plugin_opt_rest_tokens_file $run_dir/rest-token|" \
    mosquitto.conf.example > "$run_dir/mosquitto.conf"
# Started as root, mosquitto switches to the `mosquitto` user, which may not reach the run folder.
[ "$(id -u)" -ne 0 ] || echo "user root" >> "$run_dir/mosquitto.conf"

echo "MQTT: 127.0.0.1:$mqtt_port   REST: http://127.0.0.1:$rest_port (token in $run_dir/rest-token:" \
     "X-Auth-Token: \$(cat $run_dir/rest-token))"
exec /usr/sbin/mosquitto -c "$run_dir/mosquitto.conf"
