#!/usr/bin/env bash
# `make test` and its tiers: installs what is missing, builds, starts a throwaway PostgreSQL
# cluster and moto (S3-compatible server on loopback), checks that every suite sits in
# exactly one tier, runs the tier(s) and prints each tier's time.
#
#   bash scripts/test.sh                 every tier: unit, e2e, disruptive, browser (`make test`)
#   bash scripts/test.sh unit            one tier (`make test-unit`, `test-e2e`, `test-disruptive`, `test-browser`)
#   bash scripts/test.sh --filter 'RefundSenderTests|ManualRefund'   any `swift test` arguments, one process
#
# The tiers are the test targets (Package.swift):
#   unit        UnitTests        PostgreSQL at most (and moto): no nginx, pool or simulator
#   e2e         EndToEndTests    real nginx, pools, the simulator and the CLI on free ports
#   disruptive  DisruptiveTests  stop the shared PostgreSQL or crash processes mid-work
#   browser     BrowserTests     the Mini App in Debian's chromium (Playwright stories, Tests/Browser)
# Unit and e2e run with `swift test --parallel` (one process per test, each on its own
# database and ports); so do the disruptive suites that crash their own processes, and those
# that stop PostgreSQL run last, one at a time; the browser tier runs 2 stories at a time (each a
# stack, its duties and a chromium), keeping their screenshots in .run/test/browser/<story>/.
# Tests check their tier at run time too: a
# running stack refuses to start in the unit tier, pg_ctl outside the disruptive one. The
# last line is the summary of every `swift test` run, in XCTest's words.
source "$(dirname "$0")/lib.sh"

TIERS=(unit e2e disruptive browser)
declare -A TIER_TARGET=([unit]=UnitTests [e2e]=EndToEndTests [disruptive]=DisruptiveTests [browser]=BrowserTests)
# Test processes at a time (the tests mostly wait on PostgreSQL, sockets and child processes,
# so more than the core count pays).
# A browser story holds a chromium, a stack and its duties: two at a time on two cores.
declare -A TIER_WORKERS=([unit]=${PINGLASS_TEST_WORKERS_UNIT:-8} [e2e]=${PINGLASS_TEST_WORKERS_E2E:-6}
                         [browser]=${PINGLASS_TEST_WORKERS_BROWSER:-2})

case ${1:-all} in
    all) RUN=("${TIERS[@]}"); shift $(( $# > 0 ? 1 : 0 )) ;;
    unit|e2e|disruptive|browser) RUN=("$1"); shift ;;
    -*) RUN=() ;;   # plain `swift test` arguments (a --filter while working on a suite)
    *) echo "usage: $0 [all|unit|e2e|disruptive|browser] | [swift test arguments]" >&2; exit 64 ;;
esac

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# seconds_since MS: seconds since MS with one decimal.
seconds_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%d' $(( d / 1000 )) $(( d % 1000 / 100 )); }

T0=$(now_ms)
install_deps
install_moto
install_promtool
# chromium and Playwright only where browser tests may run (the browser tier, or a --filter run).
case " ${RUN[*]} " in *" browser "*|"  ") install_browser ;; esac
say "building (debug, with tests)"
(cd "$ROOT" && swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2)
BUILD_SECONDS=$(seconds_since "$T0")
build_webapp   # the end-to-end and browser tests serve webapp/ through nginx, gzip copies included

mkdir -p "$ROOT/.run"
T=$(usable_dir "$ROOT/.run/test" "pinglass-test-$(id -u)")
pg_stop "$T/pg"
moto_stop "$T"
rm -rf "$T"
mkdir -p "$T"
chmod 755 "$T"
say "starting a throwaway PostgreSQL cluster"
trap 'moto_stop "$T"; pg_stop "$T/pg"' EXIT
# Parallel tests each hold a few connections (pools of workers, duties, the simulator).
PG_FSYNC=off PG_MAX_CONNECTIONS=500 pg_start "$T/pg"
say "starting moto (S3-compatible server for the storage tests)"
moto_start "$T"

export PINGLASS_TEST_PG_SOCKET=$T/pg
export PINGLASS_TEST_PGDATA=$T/pg/data
export PINGLASS_TEST_PGBIN=$PGBIN
export PINGLASS_BIN_DIR=$(cd "$ROOT" && swift build --show-bin-path)
export PINGLASS_ROOT=$ROOT
export PINGLASS_TEST_TMP=$T
export PINGLASS_TEST_S3_URL=$MOTO_URL
export PINGLASS_TEST_PYTHON=${BROWSER_PYTHON:-}
export PINGLASS_TEST_YAML_PYTHON=$MOTO_PYTHON     # moto[server] brings PyYAML
export PINGLASS_TEST_PROMTOOL=$PROMTOOL
export PINGLASS_CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
cd "$ROOT"

if [ ${#RUN[@]} -eq 0 ]; then
    say "running the tests"
    swift test --skip-build "$@" 2>&1
    exit
fi

# check_tiers: every suite `swift test list` names is in exactly one tier (by its module);
# a new test target, or a suite whose class name is also a suite of another tier, fails here.
check_tiers() {
    local list bad
    list=$(swift test list --skip-build 2>/dev/null | grep -E '^[A-Za-z0-9_]+\.[A-Za-z0-9_]+/' | cut -d/ -f1 | sort -u)
    [ -n "$list" ] || { echo "swift test list named no suites" >&2; return 1; }
    bad=$(printf '%s\n' "$list" | awk -v tiers="$(for t in "${TIERS[@]}"; do printf '%s=%s ' "$t" "${TIER_TARGET[$t]}"; done)" '
        BEGIN { n = split(tiers, pairs, " "); for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); target[kv[2]] = kv[1] } }
        { split($0, mc, "."); module = mc[1]; cls = mc[2]; hits = 0
          for (m in target) if (m == module) hits++
          if (hits != 1) print $0 ": in " hits " tiers (module " module " is not a tier target)"
          if (cls in tierOf && tierOf[cls] != module) print cls ": a suite in two tiers (" tierOf[cls] " and " module ")"
          tierOf[cls] = module }')
    if [ -n "$bad" ]; then
        echo "every suite must be in exactly one tier (scripts/test.sh TIER_TARGET, Package.swift test targets):" >&2
        printf '  %s\n' "$bad" >&2
        return 1
    fi
    for t in "${TIERS[@]}"; do
        printf '%s\n' "$list" | grep -q "^${TIER_TARGET[$t]}\." || { echo "tier $t (${TIER_TARGET[$t]}) has no suites" >&2; return 1; }
    done
}
say "checking that every suite is in exactly one tier"
check_tiers

# What each tier runs after the rest of it, alone (one test process at a time), as `Suite` or
# `Suite/testName`: in the disruptive tier the suites that stop the shared PostgreSQL
# (TestEnvironment.pgControl refuses while another test process holds the cluster, so one
# missing here fails rather than pulling the server from under its neighbours); in the others
# the tests whose proof is a race between threads or a timed sequence of states, which a
# machine made busy by their neighbours can keep from happening.
declare -A ALONE=(
    [unit]='SweepRaceTests'
    [e2e]='KieSimulatorTests|GenerationFlowTests/testLargeReferencePhotosThroughNginx|TelegramSimulatorTests/testAlbumCountsAsItsPhotosAndTheGlobalLimit'
    [disruptive]='PostgresRestartTests|PoolOutageTests|PaymentOutageTests'
    [browser]=''
)
TIER_WORKERS[disruptive]=${PINGLASS_TEST_WORKERS_DISRUPTIVE:-3}

# run_tests LOG WORKERS ARGS...: one `swift test`, its output shown and kept in LOG; adds its
# test and failure counts to TESTS and FAILURES (from its closing line, or its xunit file).
TESTS=0 FAILURES=0
run_tests() {
    local log=$1 workers=$2; shift 2
    local args=(--skip-build) status counts st
    [ "$workers" -gt 1 ] && args+=(--parallel --num-workers "$workers" --xunit-output "$log.xml")
    set +e
    swift test "${args[@]}" "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    if [ -f "$log.xml" ]; then
        counts=$(grep -o -m1 '<testsuite [^>]*' "$log.xml" | awk 'NR == 1' | sed -E 's/.* tests="([0-9]+)".* failures="([0-9]+)".*/\1 \2/; s/.* failures="([0-9]+)".* tests="([0-9]+)".*/\2 \1/')
    else
        counts=$(grep -E 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$log" | tail -1 | sed -E 's/.*Executed ([0-9]+) tests?, with ([0-9]+) failures?.*/\1 \2/')
    fi
    read -r n f <<< "${counts:-0 0}"
    # swift-testing's tests (the property tests) run after XCTest's and sum up on their own line.
    st=$(grep -E 'Test run with [0-9]+ tests?' "$log" | tail -1)
    if [ -n "$st" ]; then
        n=$((n + $(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<< "$st")))
        grep -q 'failed' <<< "$st" && f=$((f + $(sed -nE 's/.* with ([0-9]+) issues?.*/\1/p' <<< "$st" | grep . || echo 1)))
    fi
    TESTS=$((TESTS + n)); FAILURES=$((FAILURES + f))
    [ "$status" = 0 ] && [ "$n" -gt 0 ]
}

declare -A TIER_SECONDS TIER_STATUS TIER_COUNT
FAILED=0 TESTS_START=$(now_ms)
for tier in "${RUN[@]}"; do
    target=${TIER_TARGET[$tier]}
    start=$(now_ms) before=$TESTS ok=0
    export PINGLASS_TEST_TIER=$tier
    if [ -n "${ALONE[$tier]}" ]; then
        alone="^$target\\.(${ALONE[$tier]})(/|\$)"
        say "tier $tier: $target, ${TIER_WORKERS[$tier]} tests at a time, then ${ALONE[$tier]//|/, } alone"
        run_tests "$T/$tier.log" "${TIER_WORKERS[$tier]}" --filter "^$target\\." --skip "$alone" "$@" || ok=1
        run_tests "$T/$tier-alone.log" 1 --filter "$alone" "$@" || ok=1
    else
        say "tier $tier: $target, ${TIER_WORKERS[$tier]} tests at a time"
        run_tests "$T/$tier.log" "${TIER_WORKERS[$tier]}" --filter "^$target\\." "$@" || ok=1
    fi
    unset PINGLASS_TEST_TIER
    TIER_SECONDS[$tier]=$(seconds_since "$start")
    TIER_STATUS[$tier]=$ok
    TIER_COUNT[$tier]=$((TESTS - before))
    [ "$ok" = 0 ] || FAILED=1
    say "tier $tier: ${TIER_COUNT[$tier]} tests $( [ "$ok" = 0 ] && echo passed || echo FAILED) in ${TIER_SECONDS[$tier]} s"
done

# Each tier's time and its slowest tests, then the whole run's summary as XCTest words it
# (the counts of every `swift test` above added up) as the last line.
{
    printf '\n==> test times (install and build %s s)\n' "$BUILD_SECONDS"
    for tier in "${RUN[@]}"; do
        printf '    %-11s %7s s  %4d tests  %s\n' "$tier" "${TIER_SECONDS[$tier]}" "${TIER_COUNT[$tier]}" \
            "$( [ "${TIER_STATUS[$tier]}" = 0 ] && echo passed || echo FAILED)"
        cat "$T/$tier"*.xml 2>/dev/null | grep -o '<testcase classname="[^"]*" name="[^"]*" time="[0-9.]*"' \
            | sed -E 's/<testcase classname="([^"]*)" name="([^"]*)" time="([0-9.]*)"/\3 \1.\2/' \
            | sort -rn | awk 'NR <= 3' | awk '{ printf "                %6.1f s  %s\n", $1, $2 }'
    done
    printf '    %-11s %7s s\n' "total" "$(seconds_since "$T0")"
} >&2
printf '\t Executed %d tests, with %d failures (%d unexpected) in %s (%s) seconds\n' \
    "$TESTS" "$FAILURES" "$FAILURES" "$(seconds_since "$TESTS_START")" "$(seconds_since "$T0")"
exit $FAILED
