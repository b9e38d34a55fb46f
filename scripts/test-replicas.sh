#!/usr/bin/env bash
# The replica suite (tests/replicas, pytest): two real gateway processes on one PostgreSQL database —
# shared limits, stops and revocations across replicas, kill -9 of one, a database cut under one.
#
#   scripts/test-replicas.sh [pytest args…]       e.g. -k suspend, -x
#   PYTHON=python3.11                             the Python the venv is made from (default: python3)
#
# Needs SWITCHYARD_TEST_POSTGRES_URL (postgres://user:pass@host:port/db, a role that may create
# databases; .ci/run starts a PostgreSQL and sets it); without it the suite is skipped (exit 0). Each
# run makes a database of its own on that server (switchyard_replicas_<random>) and drops it at the
# end. The packages come from the lock file tests/replicas/requirements.txt, in a venv of its own,
# .build/replicas-venv, never the system's Python: it is (re)made only when it is missing, its Python
# is gone, or the lock file or the Python it is made from changed (their hash and path are kept in
# the venv, .switchyard-lock); pip's cache makes a reinstall quick.
#
# It tests the built binary .build/debug/switchyard (`swift build`), or the one named by SWITCHYARD_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SWITCHYARD_TEST_POSTGRES_URL:-}" ]; then
    echo "test-replicas: skipped: the replica suite needs PostgreSQL; set SWITCHYARD_TEST_POSTGRES_URL=postgres://user:pass@host:port/db (.ci/run does)"
    exit 0
fi
if ! command -v psql >/dev/null; then
    echo "test-replicas: psql is missing (Debian: apt-get install postgresql-client)" >&2
    exit 2
fi

python=${PYTHON:-python3}
pip_flags=(--quiet --disable-pip-version-check --require-virtualenv)
venv=.build/replicas-venv
lock=tests/replicas/requirements.txt

# Makes (or keeps) the venv $1 with exactly the packages of lock file $2.
replicas_venv() {
    local venv=$1 lock=$2 want have=""
    want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])')"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null; then
        have=$(cat "$venv/.switchyard-lock" 2>/dev/null || true)
    fi
    [ "$have" = "$want" ] && return 0
    echo "test-replicas: making $venv from $lock"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "test-replicas: '$python -m venv' failed; on Debian or Ubuntu: apt-get install python3-venv" >&2
        return 1
    fi
    "$venv/bin/python" -m pip install "${pip_flags[@]}" -r "$lock"
    "$venv/bin/python" -m pip check >/dev/null
    echo "$want" >"$venv/.switchyard-lock"
}

mkdir -p .build
replicas_venv "$venv" "$lock"

server_url=$SWITCHYARD_TEST_POSTGRES_URL
database="switchyard_replicas_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
database_url=$("$python" -c '
import sys, urllib.parse as u
parts = u.urlsplit(sys.argv[1])
print(u.urlunsplit(parts._replace(path="/" + sys.argv[2])))' "$server_url" "$database")

drop_database() {
    # WITH (FORCE) (PostgreSQL 13+) also ends the connections of a replica that outlived the run.
    psql "$server_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 \
        || psql "$server_url" -qX -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 \
        || echo "test-replicas: could not drop the database $database" >&2
}
psql "$server_url" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $database" >/dev/null
trap drop_database EXIT

export SWITCHYARD_REPLICAS_DATABASE_URL=$database_url
bin=${SWITCHYARD_BIN:-.build/debug/switchyard}
export SWITCHYARD_BIN=$(realpath "$bin")
echo "test-replicas: tests/replicas against $SWITCHYARD_BIN on the database $database"
status=0
# A hung test prints every thread's stack after 120 s; the whole run is cut after 15 minutes.
timeout --kill-after=30 900 "$venv/bin/python" -m pytest -q -p no:cacheprovider -o faulthandler_timeout=120 \
    tests/replicas "$@" || status=$?
exit "$status"
