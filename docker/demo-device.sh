#!/bin/sh
# A demo device using only stock mosquitto clients. It configures its twin so that the numbers
# of its `current` document go to Graphite, patches `current` with readings every few seconds,
# and watches its `desired` document: each change a back-end makes to `desired` (REST PUT or
# PATCH) is pushed to it and applied, by patching `current` with the data of `desired`.
#
# Stock clients cannot listen and publish on one connection, as a real device does, so this
# device uses three client ids under one username: the demo broker names twins by username
# (plugin_opt_twin_identity username), so they share the twin `$id`.
#   $id            the listener: it registers the watch, then receives the pushes (mosquitto_sub)
#   $id-apply      the listener's requests: the catch-up get and the patches applying desired
#   $id-telemetry  the readings
# A push reaches the listener only while it is connected, so whenever it (re)connects it reads
# `desired` once (the catch-up), then applies the pushes newer than what it applied.
set -eu
broker=${BROKER_HOST:-broker}
port=${BROKER_PORT:-1883}
id=${DEVICE_ID:-demo-device}

# One request, its reply (success or error alike, MQTT 5 Response Topic) on stdout.
request() {  # client id, topic, payload
  mosquitto_rr -h "$broker" -p "$port" -u "$id" -i "$1" -q 1 -W 5 -t "\$SCW/twins/me/$2" \
    -e "\$SCW/twins/me/$2/response" -m "$3"
}

until request "$id-apply" _config/put \
    '{"data":{"documents":{"current":{"_tsdb_trigger":"on-update","_tags":{"source":"demo"}}}}}' >/dev/null; do
  echo "waiting for the broker..."; sleep 2
done

# The watch is stored with the twin: registered once, it survives reconnects and restarts.
until watched=$(request "$id" desired/watch '{}') && [ "${watched#'{"version":'}" != "$watched" ]; do
  echo "watch not registered (${watched:-no reply}), trying again..."; sleep 2
done
echo "watching desired: $watched"

applied=0  # the version of desired last applied
# Applies a document of desired, {"version":V,"data":{…}}, unless it is not newer ("always":
# the catch-up, whose answer is the document now, even after a re-creation).
apply() {  # document, why, [always]
  version=$(printf '%s' "$1" | sed -n 's/^{"version":\([0-9][0-9]*\),"data":.*}$/\1/p')
  data=$(printf '%s' "$1" | sed -n 's/^{"version":[0-9][0-9]*,"data":\(.*\)}$/\1/p')
  [ -n "$version" ] && [ "$version" -gt 0 ] || return 0
  [ "${3:-}" = always ] || [ "$version" -gt "$applied" ] || return 0
  applied=$version
  if [ "$data" = "{}" ]; then
    echo "desired version $version ($2) is empty: nothing to apply"
    return 0
  fi
  echo "desired version $version ($2): $data; current is now $(request "$id-apply" current/patch "{\"data\":$data}")"
}

listen() {
  # -d prints the protocol lines: "received SUBACK" says the listener is connected (again);
  # stdbuf hands each line on at once (a pipe would hold them until a message comes).
  stdbuf -oL mosquitto_sub -h "$broker" -p "$port" -u "$id" -i "$id" -q 1 -d -t "\$SCW/twins/me/desired/#" -F '%t %p' |
    while read -r topic payload; do
      case "$topic $payload" in
        *"received SUBACK"*) apply "$(request "$id-apply" desired/get '')" "read at connect" always ;;
        "\$SCW/twins/me/desired/updated "*) apply "$payload" "pushed" ;;
        "\$SCW/twins/me/desired/deleted "*)
          echo "desired deleted (pushed), at version $(printf '%s' "$payload" | tr -dc 0-9)"; applied=0 ;;
      esac
    done
}
listen &

while true; do
  # A 16-bit seed: mawk (Debian's awk) takes larger ones as one and the same.
  payload=$(awk -v seed="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { srand(seed);
    printf "{\"data\":{\"temperature\":%.1f,\"humidity\":%d,\"fan\":{\"rpm\":%d,\"on\":true}}}",
           19 + 4 * rand(), 40 + int(20 * rand()), 900 + int(300 * rand()) }')
  mosquitto_pub -h "$broker" -p "$port" -u "$id" -i "$id-telemetry" -q 1 -t '$SCW/twins/me/current/patch' \
    -m "$payload" || echo "reading not sent (the broker is away)"
  sleep "${PERIOD:-5}"
done
