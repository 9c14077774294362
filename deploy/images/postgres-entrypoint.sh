#!/bin/sh
# First start: a cluster in $PGDATA with the user and database of
# POSTGRES_USER/POSTGRES_DB and the password of POSTGRES_PASSWORD_FILE (or
# POSTGRES_PASSWORD), reachable from the private network with that password
# (scram-sha-256). Later starts reuse it. Then PostgreSQL in the foreground.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    password="$(cat "$POSTGRES_PASSWORD_FILE")"
else
    password="${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD}"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$password" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        postgres -D "$PGDATA" -c listen_addresses='' &
        pid=$!
        until pg_isready -q -h /var/run/postgresql; do sleep 0.2; done
        createdb -h /var/run/postgresql -U "$user" "$db"
        kill "$pid"
        wait "$pid" || true
    fi
    echo "postgres-entrypoint: cluster created (user $user, database $db)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql
