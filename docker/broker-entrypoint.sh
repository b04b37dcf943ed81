#!/bin/sh
# Mosquitto reads no environment: hand the REST token from .env over as a tokens file.
set -eu
umask 077
printf '%s\n' "${TWINS_REST_TOKEN:?set TWINS_REST_TOKEN in .env}" > /etc/mosquitto/twins-tokens
chown mosquitto /etc/mosquitto/twins-tokens
exec /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf
