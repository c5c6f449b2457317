#!/usr/bin/env bash
# `make test`: installs what is missing, builds, starts a throwaway PostgreSQL cluster and
# runs every test (unit, in-process handlers, end to end through nginx and real workers).
# The tests start their own nginx, pools and simulator on free loopback ports.
source "$(dirname "$0")/lib.sh"

install_deps
say "building (debug, with tests)"
(cd "$ROOT" && swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2)

mkdir -p "$ROOT/.run"
T=$(usable_dir "$ROOT/.run/test" "pinglass-test-$(id -u)")
pg_stop "$T/pg"
rm -rf "$T"
mkdir -p "$T"
chmod 755 "$T"
say "starting a throwaway PostgreSQL cluster"
PG_FSYNC=off pg_start "$T/pg"
trap 'pg_stop "$T/pg"' EXIT

export PINGLASS_TEST_PG_SOCKET=$T/pg
export PINGLASS_TEST_PGDATA=$T/pg/data
export PINGLASS_TEST_PGBIN=$PGBIN
export PINGLASS_BIN_DIR=$(cd "$ROOT" && swift build --show-bin-path)
export PINGLASS_ROOT=$ROOT
export PINGLASS_TEST_TMP=$T

say "running the tests"
cd "$ROOT"
swift test --skip-build "$@" 2>&1
