#!/bin/sh
# Runs once, when the compose file's PostgreSQL makes its database: the role requests run as,
# which row-level security binds (no superuser, no BYPASSRLS, owns nothing), allowed to log in
# with PREFIQ_APP_PASSWORD. Prefiq's migrations grant it what it may do.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$PREFIQ_APP_PASSWORD" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE prefiq_app LOGIN PASSWORD :'password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
SQL
