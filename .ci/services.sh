# shellcheck shell=bash
# The services the distributed-mode tests need: PostgreSQL and an S3-compatible server (moto), on
# free loopback ports, in a temp dir, stopped by their own PIDs when the shell that started them
# exits (success, failure or Ctrl-C).
#
#   . .ci/services.sh            # sourced (.ci/run, `make test`): the caller's shell gets the env
#   bash .ci/services.sh CMD...  # run CMD under the services; exits with CMD's status
#
# Exports (the contract the tests and the distributed mode read):
#   COSTWATCH_TEST_PG_URL     postgresql+psycopg2://costwatch@127.0.0.1:PORT/costwatch
#   COSTWATCH_DAGSTER_PG_URL  postgresql+psycopg2://costwatch@127.0.0.1:PORT/dagster
#   AWS_ENDPOINT_URL          http://127.0.0.1:S3PORT
#   AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
#
# Already exported by a parent (`.ci/run` sources this, then `make test` does again): nothing new
# is started. Postgres refuses to run as root, so it runs as the `postgres` OS user (created when
# missing); Debian's postgresql is installed when no initdb is found. moto lives in its own venv,
# .venv-services, so Flask and Werkzeug stay out of the app's .venv.

_cw_services_main() {
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [ -n "${COSTWATCH_TEST_PG_URL:-}" ] && [ -n "${AWS_ENDPOINT_URL:-}" ] && [ -n "${COSTWATCH_SERVICES_PID:-}" ]; then
        return 0  # a parent shell started them and stops them
    fi
    local started=$SECONDS
    local as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"

    # PostgreSQL binaries: on PATH, under Debian's versioned folder, or installed now.
    local pgbin=""
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        pgbin="$(dirname "$(readlink -f "$(command -v initdb)")")"
    else
        pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
        if [ -z "$pgbin" ]; then
            $as_root apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends postgresql
            pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
        fi
    fi
    # pg_ctl and psql from initdb's folder, else from PATH.
    local pg_ctl="$pgbin/pg_ctl" psql="$pgbin/psql"
    [ -x "$pg_ctl" ] || pg_ctl="$(command -v pg_ctl)"
    [ -x "$psql" ] || psql="$(command -v psql)"
    id postgres >/dev/null 2>&1 || $as_root useradd --system --no-create-home --shell /usr/sbin/nologin postgres

    # moto's own venv, built once (its pin is the version the tests ran with).
    local moto="$repo/.venv-services/bin/moto_server"
    if [ ! -x "$moto" ] || [ ! -f "$repo/.venv-services/.installed" ]; then
        python3 -m venv "$repo/.venv-services"
        "$repo/.venv-services/bin/pip" install --quiet "moto[server]==5.2.5"
        touch "$repo/.venv-services/.installed"
        started=$SECONDS  # the one-time install is not start-up time
    fi

    local ports
    ports="$(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
    CW_PG_PORT="${ports% *}"
    CW_S3_PORT="${ports#* }"
    CW_SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/costwatch-services.XXXXXX")"
    mkdir -p "$CW_SERVICES_DIR/pgdata"
    chmod 755 "$CW_SERVICES_DIR"
    chmod 700 "$CW_SERVICES_DIR/pgdata"
    chown postgres: "$CW_SERVICES_DIR" "$CW_SERVICES_DIR/pgdata" 2>/dev/null ||
        $as_root chown postgres: "$CW_SERVICES_DIR" "$CW_SERVICES_DIR/pgdata"
    CW_PG_CTL="$pg_ctl"
    CW_AS_ROOT="$as_root"
    export COSTWATCH_SERVICES_PID=$$
    # From here on, whatever fails, the trap stops what was started.
    trap '_cw_services_stop $?' EXIT
    trap '_cw_services_stop 130' INT
    trap '_cw_services_stop 143' TERM

    _cw_as_postgres "$pgbin/initdb -D $CW_SERVICES_DIR/pgdata -U costwatch --auth=trust -E UTF8 --no-sync" \
        >"$CW_SERVICES_DIR/initdb.log" 2>&1 || {
        cat "$CW_SERVICES_DIR/initdb.log" >&2
        echo "services: initdb failed (log above)" >&2
        return 1
    }
    _cw_as_postgres "$pg_ctl -D $CW_SERVICES_DIR/pgdata -l $CW_SERVICES_DIR/pg.log -w -t 30 \
        -o '-p $CW_PG_PORT -k $CW_SERVICES_DIR -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null || {
        cat "$CW_SERVICES_DIR/pg.log" >&2
        echo "services: postgres did not start (log above)" >&2
        return 1
    }
    CW_PG_STARTED=1
    "$psql" -q -h 127.0.0.1 -p "$CW_PG_PORT" -U costwatch -d postgres -v ON_ERROR_STOP=1 \
        -c "create database dagster" -c "create database costwatch" >/dev/null || {
        echo "services: could not create the dagster and costwatch databases" >&2
        return 1
    }

    "$moto" -H 127.0.0.1 -p "$CW_S3_PORT" >"$CW_SERVICES_DIR/moto.log" 2>&1 &
    CW_MOTO_PID=$!
    local tries=0
    until python3 -c "import urllib.request, sys
urllib.request.urlopen('http://127.0.0.1:$CW_S3_PORT/moto-api/', timeout=1)" >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -gt 150 ] || ! kill -0 "$CW_MOTO_PID" 2>/dev/null; then
            cat "$CW_SERVICES_DIR/moto.log" >&2
            echo "services: moto_server did not answer on 127.0.0.1:$CW_S3_PORT (log above)" >&2
            return 1
        fi
        sleep 0.1
    done

    export COSTWATCH_TEST_PG_URL="postgresql+psycopg2://costwatch@127.0.0.1:$CW_PG_PORT/costwatch"
    export COSTWATCH_DAGSTER_PG_URL="postgresql+psycopg2://costwatch@127.0.0.1:$CW_PG_PORT/dagster"
    export AWS_ENDPOINT_URL="http://127.0.0.1:$CW_S3_PORT"
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_DEFAULT_REGION=us-east-1
    echo "services: postgres on 127.0.0.1:$CW_PG_PORT, moto S3 on 127.0.0.1:$CW_S3_PORT (ready in $((SECONDS - started)) s)" >&2
}

# From / : the postgres user may not enter the caller's folder (a private temp dir).
_cw_as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        sh -c "cd / && $1"
    elif [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/sh -c "cd / && $1"
    else
        sudo -u postgres sh -c "cd / && $1"
    fi
}

# Stops what this shell started (by its recorded PIDs and data dir) and exits with `$1`.
_cw_services_stop() {
    local status=$1
    trap - EXIT INT TERM
    if [ -n "${CW_MOTO_PID:-}" ]; then
        kill "$CW_MOTO_PID" 2>/dev/null && wait "$CW_MOTO_PID" 2>/dev/null
    fi
    if [ -n "${CW_PG_STARTED:-}" ]; then
        _cw_as_postgres "$CW_PG_CTL -D $CW_SERVICES_DIR/pgdata -m fast -w stop" >/dev/null 2>&1 ||
            echo "services: pg_ctl stop failed; data dir $CW_SERVICES_DIR kept" >&2
    fi
    if [ -n "${CW_SERVICES_DIR:-}" ] && [ -d "$CW_SERVICES_DIR" ] && { [ -z "${CW_PG_STARTED:-}" ] ||
        ! [ -f "$CW_SERVICES_DIR/pgdata/postmaster.pid" ]; }; then
        rm -rf "$CW_SERVICES_DIR" 2>/dev/null || ${CW_AS_ROOT:-} rm -rf "$CW_SERVICES_DIR"
    fi
    exit "$status"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Executed: start the services, run the command under them, exit with its status (the trap).
    set -uo pipefail
    _cw_services_main || exit 1
    if [ "$#" -gt 0 ]; then
        "$@"
    fi
else
    _cw_services_main || return 1
fi
