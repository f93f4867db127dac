#!/bin/sh
# What the official postgres image does, in short: on the first start, a cluster in
# /var/lib/postgresql/data whose superuser is POSTGRES_USER with password POSTGRES_PASSWORD, holding
# the database POSTGRES_DB; then the server, on every interface, asking every client for a password.
set -eu
PGDATA=/var/lib/postgresql/data
BIN=$(echo /usr/lib/postgresql/*/bin)
mkdir -p "$PGDATA" /run/postgresql
chown postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/password
    chown postgres /tmp/password
    runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/password --auth=scram-sha-256
    rm /tmp/password
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "CREATE DATABASE \"$POSTGRES_DB\"" | runuser -u postgres -- "$BIN/postgres" --single -D "$PGDATA" postgres
fi
# setpriv execs (runuser would stay as PID 1 between the engine's signals and the server).
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*'
