#!/bin/sh
# A demo device using only stock mosquitto clients: it configures its twin so that the
# numbers of its `current` document go to Graphite, then patches `current` every few seconds.
set -eu
broker=${BROKER_HOST:-broker}
id=${DEVICE_ID:-demo-device}

until mosquitto_rr -h "$broker" -i "$id" -W 5 -t '$SCW/twins/me/_config/put' \
    -e '$SCW/twins/me/_config/put/response/success' \
    -m '{"data":{"documents":{"current":{"_tsdb_trigger":"on-update","_tags":{"source":"demo"}}}}}'; do
  echo "waiting for the broker..."; sleep 2
done

while true; do
  payload=$(awk -v seed="$(date +%s%N)" 'BEGIN { srand(seed);
    printf "{\"data\":{\"temperature\":%.1f,\"humidity\":%d,\"fan\":{\"rpm\":%d,\"on\":true}}}",
           19 + 4 * rand(), 40 + int(20 * rand()), 900 + int(300 * rand()) }')
  mosquitto_pub -h "$broker" -i "$id" -q 1 -t '$SCW/twins/me/current/patch' -m "$payload"
  sleep "${PERIOD:-5}"
done
