#!/bin/sh
# A broker of the cluster profile: the PostgreSQL password from .env as libpq's password file,
# then the demo broker's own start (the REST token, mosquitto). The file is the mosquitto
# user's, mode 0600: libpq ignores a password file others may read.
set -eu
umask 077
password=${TWINS_PG_PASSWORD:?set TWINS_PG_PASSWORD in .env}
# In a password file, ':' separates the fields and '\' escapes: both are escaped in the password.
printf 'postgres:5432:twins:twins:%s\n' "$(printf '%s' "$password" | sed 's/[\\:]/\\&/g')" \
  > /etc/mosquitto/twins-pgpass
chown mosquitto /etc/mosquitto/twins-pgpass
exec /usr/local/bin/broker-entrypoint.sh
