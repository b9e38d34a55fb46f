# Sourced, not run: a throw-away PostgreSQL cluster for scripts/replicas.sh and bench/postgres.sh,
# made the way .ci/run makes CI's: a private cluster in a temp dir, listening only on 127.0.0.1 (and a
# socket in that dir), user `switchyard` with password `switchyard`, stopped and deleted by
# pg_throwaway_stop. Debian's `postgresql` package is installed when no initdb is found (as root).
#
#   pg_throwaway_start [OPTION...]   extra `-c name=value` server options, e.g. -c fsync=off
#       sets PG_DIR, PG_BIN, PG_PORT, PG_SERVER_URL (…/postgres, for CREATE DATABASE) and PG_PID
#       (the postmaster). Runs under whatever CPU affinity the caller has (taskset is inherited).
#   pg_createdb NAME                 creates database NAME in that cluster, prints its URL
#   pg_throwaway_stop                stops the cluster (immediate) and removes its directory

pg_throwaway_start() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ]; then
            echo "error: PostgreSQL's initdb was not found (Debian: apt-get install postgresql)," \
                "or name a database with a postgres:// URL" >&2
            return 1
        fi
        echo "installing postgresql (Debian package)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        # The package starts the system's own cluster; this one is private, so leave that alone.
    fi
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    PG_DIR=$(mktemp -d /tmp/switchyard-pg.XXXXXX)
    PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
    echo "switchyard" >"$PG_DIR/pw"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR/pw"; fi
    _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U switchyard --pwfile="$PG_DIR/pw" --auth-local=trust \
        --auth-host=scram-sha-256 --no-locale -E UTF8 >/dev/null || return 1
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -s \
        -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR $*" start || { cat "$PG_DIR/log" >&2; return 1; }
    PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
    PG_SERVER_URL="postgres://switchyard:switchyard@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
}

pg_createdb() {
    _pg_as_owner "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U switchyard "$1" || return 1
    echo "postgres://switchyard:switchyard@127.0.0.1:$PG_PORT/$1?sslmode=disable"
}

pg_throwaway_stop() {
    [ -n "${PG_DIR:-}" ] || return 0
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=
}

# initdb refuses to run as root: as root, run PostgreSQL's tools as the `postgres` user.
_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
