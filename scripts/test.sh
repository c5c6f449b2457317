#!/usr/bin/env bash
# `make test`: installs what is missing, builds, starts a throwaway PostgreSQL cluster and
# runs every test (unit, in-process handlers, end to end through nginx and real workers),
# with moto's S3-compatible server on loopback for the S3 storage backend.
# The tests start their own nginx, pools and simulator on free loopback ports.
source "$(dirname "$0")/lib.sh"

install_deps
install_moto
say "building (debug, with tests)"
(cd "$ROOT" && swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2)

mkdir -p "$ROOT/.run"
T=$(usable_dir "$ROOT/.run/test" "pinglass-test-$(id -u)")
pg_stop "$T/pg"
moto_stop "$T"
rm -rf "$T"
mkdir -p "$T"
chmod 755 "$T"
say "starting a throwaway PostgreSQL cluster"
trap 'moto_stop "$T"; pg_stop "$T/pg"' EXIT
PG_FSYNC=off pg_start "$T/pg"
say "starting moto (S3-compatible server for the storage tests)"
moto_start "$T"

export PINGLASS_TEST_PG_SOCKET=$T/pg
export PINGLASS_TEST_PGDATA=$T/pg/data
export PINGLASS_TEST_PGBIN=$PGBIN
export PINGLASS_BIN_DIR=$(cd "$ROOT" && swift build --show-bin-path)
export PINGLASS_ROOT=$ROOT
export PINGLASS_TEST_TMP=$T
export PINGLASS_TEST_S3_URL=$MOTO_URL

say "running the tests"
cd "$ROOT"
swift test --skip-build "$@" 2>&1
