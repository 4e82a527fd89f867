#!/usr/bin/env bash
# Start, stop or show the Redis and PostgreSQL servers the tests marked `services` need.
#
#   scripts/services.sh start    install what is missing (Debian packages), start both, wait,
#                                write .services/env (source it before pytest)
#   scripts/services.sh stop     stop both
#   scripts/services.sh status   say whether each answers (exit 0 only when both do)
#
# Redis listens on 127.0.0.1:6390 and PostgreSQL on 127.0.0.1:5439 (not the default ports, loopback
# only), with their data under <repo>/.services/. `start` is idempotent: a second call while both
# run changes nothing. PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
# Ports can be overridden with INSITU_REDIS_PORT / INSITU_POSTGRES_PORT.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="$REPO/.services"
ENV_FILE="$SERVICES_DIR/env"
REDIS_PORT="${INSITU_REDIS_PORT:-6390}"
PG_PORT="${INSITU_POSTGRES_PORT:-5439}"
HOST=127.0.0.1
REDIS_DIR="$SERVICES_DIR/redis"
PG_DATA="$SERVICES_DIR/pg/data"
PG_SOCKET_DIR="$SERVICES_DIR/pg/socket"
PG_LOG="$SERVICES_DIR/pg/postgres.log"
PG_PASSWORD_FILE="$SERVICES_DIR/pg/password"
PG_ROLE=insitu
PG_DB=insitu
PG_OS_USER=postgres
WAIT_SECONDS=30

die() {
    echo "services.sh: error: $*" >&2
    exit 1
}

say() {
    echo "services.sh: $*"
}

# ---------------------------------------------------------------------------------------------
# installation
# ---------------------------------------------------------------------------------------------
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root to run '$*' (install the packages yourself or run as root)"
    fi
}

apt_install() {
    command -v apt-get >/dev/null || die "'$*' is missing and apt-get is not available: install it"
    say "installing $* with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update || die "apt-get update failed"
        as_root apt-get install -y --no-install-recommends "$@" || die "apt-get install $* failed"
    fi
}

# The directory holding initdb/pg_ctl/postgres: on PATH (e.g. /usr/local/bin links), else the
# newest Debian /usr/lib/postgresql/N/bin. Prints nothing when not installed.
find_pg_bin() {
    local ctl
    if ctl="$(command -v pg_ctl)" && [[ -x "$(dirname "$(readlink -f "$ctl")")/initdb" ]]; then
        dirname "$(readlink -f "$ctl")"
        return
    fi
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then
        echo "$dir"
    fi
}

ensure_installed() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    command -v redis-server >/dev/null || die "redis-server not found after installation"
    if [[ -z "$(find_pg_bin)" ]]; then
        apt_install postgresql
    fi
    PG_BIN="$(find_pg_bin)"
    [[ -n "$PG_BIN" ]] || die "PostgreSQL (initdb, pg_ctl, postgres) not found after installation"
    command -v psql >/dev/null || [[ -x "$PG_BIN/psql" ]] || apt_install postgresql-client
    # Headless Chromium renders the campaign report in the demo test (width and screenshot).
    command -v chromium >/dev/null || apt_install chromium
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL runs as the invoking user, or as `postgres` when invoked as root
# ---------------------------------------------------------------------------------------------
as_pg_user() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_pg_os_user() {
    [[ $EUID -eq 0 ]] || return 0
    if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
        say "creating system user $PG_OS_USER"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash \
            "$PG_OS_USER" || die "could not create the $PG_OS_USER user"
    fi
    # The postgres user must be able to reach the data directory through the repository path.
    as_pg_user test -x "$SERVICES_DIR" ||
        die "user $PG_OS_USER cannot enter $SERVICES_DIR (a parent directory is not searchable)"
}

pg_psql() {
    # psql as the cluster's superuser, through the private unix socket.
    local psql_bin="$PG_BIN/psql"
    [[ -x "$psql_bin" ]] || psql_bin="$(command -v psql)"
    as_pg_user "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
        -d postgres "$@"
}

pg_answers() {
    pg_isready -q -h "$HOST" -p "$PG_PORT" 2>/dev/null
}

pg_running_here() {
    [[ -n "${PG_BIN:-}" && -f "$PG_DATA/PG_VERSION" ]] &&
        as_pg_user "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_password() {
    if [[ ! -s "$PG_PASSWORD_FILE" ]]; then
        (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$PG_PASSWORD_FILE")
    fi
    cat "$PG_PASSWORD_FILE"
}

start_postgres() {
    mkdir -p "$SERVICES_DIR/pg" "$PG_SOCKET_DIR"
    if [[ $EUID -eq 0 ]]; then
        chown "$PG_OS_USER:" "$SERVICES_DIR/pg" "$PG_SOCKET_DIR"
    fi
    chmod 700 "$PG_SOCKET_DIR"
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        say "initialising a PostgreSQL cluster in $PG_DATA"
        as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >"$SERVICES_DIR/pg/initdb.log" \
            2>&1 || die "initdb failed, see $SERVICES_DIR/pg/initdb.log"
    fi
    if pg_running_here; then
        say "PostgreSQL already running on $HOST:$PG_PORT"
    else
        if pg_answers; then
            die "something else already listens on $HOST:$PG_PORT (not the cluster in $PG_DATA)"
        fi
        say "starting PostgreSQL on $HOST:$PG_PORT"
        as_pg_user "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$WAIT_SECONDS" \
            -o "-c listen_addresses=$HOST -p $PG_PORT -c unix_socket_directories=$PG_SOCKET_DIR \
-c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            >/dev/null 9>&- || die "PostgreSQL did not start, see $PG_LOG"
    fi
    local deadline=$((SECONDS + WAIT_SECONDS))
    until pg_answers; do
        ((SECONDS < deadline)) || die "PostgreSQL does not answer on $HOST:$PG_PORT, see $PG_LOG"
        sleep 0.2
    done
    # The role (allowed to create the per-test databases) and its database, with a password.
    local password
    password="$(pg_password)"
    pg_psql -v role="$PG_ROLE" -v pass="$password" -v db="$PG_DB" <<'SQL' ||
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pass')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pass') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
        die "could not create the PostgreSQL role/database $PG_ROLE/$PG_DB"
    # Check the way the tests connect: over TCP, with the password.
    PGPASSWORD="$password" psql -X -q -h "$HOST" -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" \
        -c 'SELECT 1' >/dev/null ||
        die "cannot log in to PostgreSQL as $PG_ROLE over TCP on $HOST:$PG_PORT"
}

stop_postgres() {
    PG_BIN="$(find_pg_bin)"
    if pg_running_here; then
        say "stopping PostgreSQL"
        as_pg_user "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$WAIT_SECONDS" >/dev/null ||
            die "PostgreSQL did not stop"
    else
        say "PostgreSQL is not running"
    fi
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
redis_answers() {
    [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" == PONG ]]
}

start_redis() {
    if redis_answers; then
        say "Redis already running on $HOST:$REDIS_PORT"
        return
    fi
    mkdir -p "$REDIS_DIR"
    say "starting Redis on $HOST:$REDIS_PORT"
    # Append-only file on: the queueserver keeps its queue and history in Redis, and they should
    # survive a Redis restart as well as a manager restart.
    redis-server --bind "$HOST" --port "$REDIS_PORT" --daemonize yes --dir "$REDIS_DIR" \
        --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        --save '' --appendonly yes --protected-mode yes 9>&- ||
        die "redis-server did not start, see $REDIS_DIR/redis.log"
    local deadline=$((SECONDS + WAIT_SECONDS))
    until redis_answers; do
        ((SECONDS < deadline)) ||
            die "Redis does not answer on $HOST:$REDIS_PORT, see $REDIS_DIR/redis.log"
        sleep 0.1
    done
}

stop_redis() {
    if command -v redis-cli >/dev/null && redis_answers; then
        say "stopping Redis"
        redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
        local deadline=$((SECONDS + WAIT_SECONDS))
        while redis_answers; do
            ((SECONDS < deadline)) || die "Redis did not stop"
            sleep 0.1
        done
    else
        say "Redis is not running"
    fi
}

# ---------------------------------------------------------------------------------------------
write_env() {
    local password tmp
    password="$(pg_password)"
    tmp="$(mktemp "$SERVICES_DIR/env.XXXXXX")"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh start: addresses of the test services (source this file).
export INSITU_TEST_REDIS=redis://$HOST:$REDIS_PORT
export INSITU_TEST_POSTGRES=postgresql://$PG_ROLE:$password@$HOST:$PG_PORT/$PG_DB
EOF
    chmod 600 "$tmp"
    mv "$tmp" "$ENV_FILE"
}

status() {
    local rc=0
    if command -v redis-cli >/dev/null && redis_answers; then
        say "Redis: running on $HOST:$REDIS_PORT"
    else
        say "Redis: not running"
        rc=3
    fi
    if pg_answers; then
        say "PostgreSQL: running on $HOST:$PG_PORT"
    else
        say "PostgreSQL: not running"
        rc=3
    fi
    [[ -f "$ENV_FILE" ]] && say "addresses in $ENV_FILE"
    return $rc
}

with_lock() {
    # One start/stop at a time (several test sessions may call `start` together). The servers
    # started under the lock get `9>&-` so they do not inherit (and hold) it.
    mkdir -p "$SERVICES_DIR"
    exec 9>"$SERVICES_DIR/lock"
    flock -w 120 9 || die "another services.sh still holds $SERVICES_DIR/lock"
    "$@"
}

do_start() {
    ensure_installed
    ensure_pg_os_user
    start_redis
    start_postgres
    write_env
    say "ready; run: . $ENV_FILE"
}

do_stop() {
    stop_redis
    stop_postgres
}

case "${1:-}" in
start) with_lock do_start ;;
stop) with_lock do_stop ;;
status) status ;;
*)
    echo "usage: $0 {start|stop|status}" >&2
    exit 2
    ;;
esac
