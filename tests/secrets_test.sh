#!/usr/bin/env bash
# Secrets are not spread: scripts/run.sh writes its token and configuration
# readable by their owner only and prints where the token is, not the token; the compose demo
# publishes its ports on 127.0.0.1 and its .env says the token and open ports are for a local
# demo only. Usage: secrets_test.sh <source dir> <built plugin>
set -euo pipefail
src="$1"
plugin="$2"
fail() { echo "FAIL: $*" >&2; exit 1; }

cd "$src"
published="$(docker-compose config | sed -n '/ports:/,/^    [a-z]/p' | grep -E '^    - ' || true)"
[ -n "$published" ] || fail "no published port found in docker-compose config"
if echo "$published" | grep -v -E '^    - 127\.0\.0\.1:'; then fail "ports published beyond 127.0.0.1"; fi
grep -q "FOR A LOCAL DEMO ONLY" .env || fail ".env does not say its token and ports are for a local demo only"

run_dir="$(mktemp -d)"
out="$run_dir/stdout"
pid=""
cleanup() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; [ -z "$pid" ] || wait "$pid" 2>/dev/null || true; rm -rf "$run_dir"; }
trap cleanup EXIT
read -r mqtt_port rest_port < <(tests/support/start_broker.sh --free-ports 2)
RUN_DIR="$run_dir/run" MQTT_PORT="$mqtt_port" REST_PORT="$rest_port" TWINS_PLUGIN="$plugin" \
  scripts/run.sh > "$out" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$rest_port/healthz" && break
  kill -0 "$pid" 2>/dev/null || fail "run.sh exited: $(cat "$out")"
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$rest_port/healthz" || fail "REST did not answer: $(cat "$out")"

token="$(cat "$run_dir/run/rest-token")"
[ -n "$token" ] || fail "no token written"
for f in rest-token mosquitto.conf; do
  mode="$(stat -c %a "$run_dir/run/$f")"
  [ "$mode" = 600 ] || fail "run/$f has mode $mode, not 600"
done
if grep -qF "$token" "$out"; then fail "run.sh printed the token: $(cat "$out")"; fi
grep -qF "$run_dir/run/rest-token" "$out" || fail "run.sh does not say where the token is: $(cat "$out")"
if grep -qF "$token" "$run_dir/run/mosquitto.conf"; then fail "the configuration holds the token"; fi
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" \
      "http://127.0.0.1:$rest_port/iot/v1/regions/fr-par/twins/t")" = 200 ] || fail "the token is not accepted"
echo "ok"
