#!/bin/sh
# Run once by the official postgres image when it makes its cluster (/docker-entrypoint-initdb.d):
# the role the brokers log in as, owning the database twins and nothing else (the plugin makes
# its schema there at its first start). The password goes in as a psql variable, never into
# the SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="${TWINS_PG_PASSWORD:?set TWINS_PG_PASSWORD in .env}" <<'SQL'
CREATE ROLE twins LOGIN PASSWORD :'password';
CREATE DATABASE twins OWNER twins;
REVOKE ALL ON DATABASE twins FROM PUBLIC;
SQL
