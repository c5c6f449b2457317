#!/usr/bin/env bash
# Shared steps of `make run`, `make test` and `make bench`: packages, build, a private
# PostgreSQL cluster, nginx from the local template. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
APT_PACKAGES="libfcgi-dev libpq-dev libcurl4-openssl-dev libssl-dev pkg-config nginx postgresql wrk curl ca-certificates"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages the project needs (only the missing ones).
install_deps() {
    local missing=()
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    command -v swift >/dev/null || { echo "swift is not on PATH (install the Swift 6 toolchain)" >&2; exit 1; }
}

# usable_dir DIR NAME: prints DIR when other users (postgres, nginx's workers) can reach it,
# otherwise a folder /tmp/NAME (a checkout under a private home folder, say).
usable_dir() {
    local dir=$1
    mkdir -p "$dir" && chmod 755 "$dir"
    if [ "$(id -u)" = 0 ] && ! runuser -u nobody -- test -x "$dir" 2>/dev/null; then
        say "note: $dir is not reachable by other users; using /tmp/$2 instead"
        dir=/tmp/$2
        mkdir -p "$dir" && chmod 755 "$dir"
    fi
    printf '%s\n' "$dir"
}

# Runs a command as the owner of the PostgreSQL cluster (initdb refuses root).
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start DIR: a private cluster in DIR (created on first use), unix socket in DIR,
# trust authentication for the local role 'pinglass'. Prints nothing; sets PGSOCK.
pg_start() {
    local dir=$1
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "the postgres user cannot write $dir (check the permissions of its parent folders)" >&2
            exit 1
        fi
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        pg_as_owner "$PGBIN/initdb" -D "$dir/data" -A trust -U pinglass -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
        # Settings live in the cluster, so any later pg_ctl start/restart keeps them.
        pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 55432
max_connections = ${PG_MAX_CONNECTIONS:-200}
fsync = ${PG_FSYNC:-on}
synchronous_commit = ${PG_FSYNC:-on}
CONF
    fi
    if ! pg_as_owner "$PGBIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        pg_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start >/dev/null \
            || { tail -20 "$dir/postgres.log" >&2; exit 1; }
    fi
    PGSOCK=$dir
}

pg_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && pg_as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_createdb DIR NAME
pg_createdb() {
    "$PGBIN/psql" -X -q -h "$1" -p 55432 -U pinglass -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$2'" | grep -q 1 \
        || "$PGBIN/createdb" -h "$1" -p 55432 -U pinglass "$2"
}

# pg_createrole DIR NAME: a login role with no rights of its own (the runtime role of DATABASE_URL:
# `pinglass migrate` grants it row rights, never DDL).
pg_createrole() {
    "$PGBIN/psql" -X -q -h "$1" -p 55432 -U pinglass -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$2'" | grep -q 1 \
        || "$PGBIN/createuser" -h "$1" -p 55432 -U pinglass --no-superuser --no-createdb --no-createrole "$2"
}

# render_nginx TEMPLATE OUT key=value...: the keys not given default to this checkout's Mini
# App (WEBAPP_ROOT=webapp/) and no media origin besides the page's own (MEDIA_ORIGIN=).
render_nginx() {
    local template=$1 out=$2; shift 2
    local text
    text=$(cat "$template")
    for kv in "$@" "WEBAPP_ROOT=$ROOT/webapp" "MEDIA_ORIGIN="; do text=${text//@${kv%%=*}@/${kv#*=}}; done
    (umask 077; printf '%s\n' "$text" > "$out")   # it holds MEDIA_KEY_SECRET
}

# install_moto: moto's S3-compatible server from PyPI, for the S3 storage tests. Uses the
# python3 on PATH when it already has it, else a virtualenv in .run/moto-venv (Debian's own
# python refuses system-wide pip installs). Sets MOTO_PYTHON.
install_moto() {
    if python3 -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; then
        MOTO_PYTHON=$(command -v python3)
        return
    fi
    local venv=$ROOT/.run/moto-venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" >/dev/null 2>&1 || {
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
            python3 -m venv "$venv"
        }
    fi
    if ! "$venv/bin/python" -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; then
        say "installing moto (S3-compatible test server) from PyPI"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]' >&2
    fi
    MOTO_PYTHON=$venv/bin/python
}

# install_promtool: Prometheus's promtool, for the tests that check deploy/'s Prometheus files
# (config and alert rules, and the rules' own unit tests). Debian's `prometheus` package is
# large (about 96 MB installed, with web assets and a service); only its promtool binary is
# needed, so the .deb is downloaded (about 19 MB, once) and promtool alone is taken out of it
# into .run/promtool. Sets PROMTOOL.
install_promtool() {
    PROMTOOL=$ROOT/.run/promtool/promtool
    [ -x "$PROMTOOL" ] && return
    local dir=$ROOT/.run/promtool
    mkdir -p "$dir"
    say "fetching promtool (Debian's prometheus package, promtool only)"
    (cd "$dir" && rm -f prometheus_*.deb && apt-get download -qq prometheus 2>/dev/null) || {
        as_root apt-get update -qq
        (cd "$dir" && apt-get download -qq prometheus 2>/dev/null)
    }
    dpkg-deb --fsys-tarfile "$dir"/prometheus_*.deb | tar -x -C "$dir" --strip-components=3 ./usr/bin/promtool
    rm -f "$dir"/prometheus_*.deb
    "$PROMTOOL" --version >/dev/null
}

# install_browser: what the browser tier drives: Debian's chromium (apt) and Playwright for
# Python (PyPI), pointed at that chromium; Playwright's own browser downloads are never used.
# Uses the python3 on PATH when it already has Playwright, else a virtualenv in
# .run/browser-venv. Sets BROWSER_PYTHON (an interpreter's absolute path) and CHROMIUM.
install_browser() {
    CHROMIUM=/usr/bin/chromium
    if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed'; then
        say "installing chromium (the browser tier's browser)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    if python3 -c 'import playwright.sync_api' >/dev/null 2>&1; then
        BROWSER_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
        return
    fi
    local venv=$ROOT/.run/browser-venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" >/dev/null 2>&1 || {
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
            python3 -m venv "$venv"
        }
    fi
    if ! "$venv/bin/python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
        say "installing playwright (Python, drives the system chromium) from PyPI"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check playwright >&2
    fi
    BROWSER_PYTHON=$venv/bin/python
}

# moto_start DIR: moto's server on a free loopback port (log and pid in DIR); sets MOTO_URL.
moto_start() {
    local dir=$1 port
    port=$("$MOTO_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$MOTO_PYTHON" -m moto.server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    echo $! > "$dir/moto.pid"
    MOTO_URL=http://127.0.0.1:$port
    wait_for curl -sf "$MOTO_URL/moto-api/data.json" || { tail -20 "$dir/moto.log" >&2; exit 1; }
}

moto_stop() {
    local dir=$1
    [ -f "$dir/moto.pid" ] && kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    rm -f "$dir/moto.pid"
}

# env_file_value FILE NAME: NAME's value in an env file (its last assignment; an `export `
# prefix, surrounding quotes and a CR removed), or nothing.
env_file_value() {
    local line value
    line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$2[[:space:]]*=" "$1" 2>/dev/null | tail -1) || true
    [ -n "$line" ] || return 0
    value=${line#*=}
    value=${value%$'\r'}
    value=$(printf '%s' "$value" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    case $value in \"*\"|\'*\') value=${value:1:${#value}-2} ;; esac
    printf '%s' "$value"
}

# media_key_secret DIR [ENV_FILE]: MEDIA_KEY_SECRET from the environment, else from the env
# file, else one generated once for local runs and kept in DIR/media-key-secret (so links
# survive a restart). The pool and nginx must get this same value.
media_key_secret() {
    local secret=${MEDIA_KEY_SECRET:-}
    [ -n "$secret" ] || [ -z "${2:-}" ] || secret=$(env_file_value "$2" MEDIA_KEY_SECRET)
    if [ -z "$secret" ]; then
        if [ ! -s "$1/media-key-secret" ]; then
            (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$1/media-key-secret")
        fi
        secret=$(cat "$1/media-key-secret")
    fi
    printf '%s' "$secret"
}

# media_origin [ENV_FILE]: the origin (scheme://host[:port]) the Mini App loads photos from
# when it is not the page's own: the bucket's with STORAGE=s3 (presigned links), else
# PUBLIC_MEDIA_URL's. Empty when neither is set. Goes into the page's CSP (img-src).
media_origin() {
    local storage=${STORAGE:-} url
    [ -n "$storage" ] || [ -z "${1:-}" ] || storage=$(env_file_value "$1" STORAGE)
    if [ "$storage" = s3 ]; then
        url=${S3_ENDPOINT:-}
        [ -n "$url" ] || [ -z "${1:-}" ] || url=$(env_file_value "$1" S3_ENDPOINT)
    else
        url=${PUBLIC_MEDIA_URL:-}
        [ -n "$url" ] || [ -z "${1:-}" ] || url=$(env_file_value "$1" PUBLIC_MEDIA_URL)
    fi
    printf '%s' "$url" | sed -nE 's#^(https?://[^/?#]+).*#\1#p'
}

# build_webapp: the gzip copies nginx sends with gzip_static (`make webapp`); -n keeps them
# byte-identical across runs (no name or time inside), so their ETags change only with content.
build_webapp() {
    find "$ROOT/webapp" -type f \( -name '*.html' -o -name '*.css' -o -name '*.js' -o -name '*.svg' \) \
        -exec gzip -9 -k -f -n {} +
}

# telegram_webhook_secret DIR: the TELEGRAM_WEBHOOK_SECRET of local runs, generated once and
# kept in DIR/telegram-webhook-secret (the simulated Telegram keeps the one setWebhook gave it).
telegram_webhook_secret() {
    if [ ! -s "$1/telegram-webhook-secret" ]; then
        (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$1/telegram-webhook-secret")
    fi
    cat "$1/telegram-webhook-secret"
}

build_release() {
    say "building (release)"
    (cd "$ROOT" && swift build -c release 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2)
    BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
}

# wait_for CMD... : polls until CMD succeeds (10 s at most).
wait_for() {
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for: $*" >&2
    return 1
}

# bench_setup NAME: what every benchmark script starts with. Sets B (a fresh folder under
# .run/NAME with a private PostgreSQL and a `pinglass` database), OUT (the result file under
# bench/results), BIN (this checkout's release build, or BENCH_BIN=<folder> to measure another
# build in the same sitting: an older commit, for a before/after) and exports DATABASE_URL.
bench_setup() {
    mkdir -p "$ROOT/.run" "$ROOT/bench/results"
    B=$(usable_dir "$ROOT/.run/$1" "pinglass-$1-$(id -u)")
    OUT=$ROOT/bench/results/$1-$(date -u +%Y%m%dT%H%M%SZ).md
    install_deps
    if [ -n "${BENCH_BIN:-}" ]; then BIN=$BENCH_BIN; else build_release; fi
    pg_stop "$B/pg" 2>/dev/null || true
    rm -rf "$B"; mkdir -p "$B/nginx" "$B/media"; chmod 755 "$B" "$B/media"
    pg_start "$B/pg"
    pg_createdb "$B/pg" pinglass
    export DATABASE_URL="host=$B/pg port=55432 user=pinglass dbname=pinglass"
}
