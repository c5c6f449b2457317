#!/usr/bin/env bash
# Refunds sent per second when 100 are due (issue 8, item 10), against the simulated bank.
# Release builds of the real pool (the webhook the bank notifies), nginx, the simulator and
# the real `pinglass refund`, on a private PostgreSQL:
#   A. 100 due refunds, the simulator answering as fast as it can, one sender;
#   B. 100 due refunds, every Cancel answered 200 ms late (the bank's latency), one sender;
#   C. the same with four senders at once (several cron lines or machines).
# The sender never sleeps between refunds: each one is claimed, sent and recorded, then the
# next; so the rate is the bank's answer time plus our three short transactions. Every run
# ends with one Cancel per refund at the bank and `pinglass audit` clean.
source "$(dirname "$0")/../scripts/lib.sh"

PORT=${PORT:-18590}
SIM_PORT=$((PORT + 1))
N=${N:-100}
bench_setup bench-refunds
export PINGLASS_ENV_FILE=/dev/null PINGLASS_MIGRATIONS_DIR=$ROOT/migrations LOG_LEVEL=warning LOG_FORMAT=text
export PUBLIC_BASE_URL=http://127.0.0.1:$PORT TBANK_API_URL=http://127.0.0.1:$SIM_PORT/v2
export TBANK_TEST_TERMINAL_KEY=BenchTerminal TBANK_TEST_PASSWORD=bench-terminal-password TELEGRAM_BOT_TOKEN=7000000001:bench
# The simulator starts only when every provider it plays is on loopback.
export KIE_API_URL=http://127.0.0.1:$SIM_PORT/kie TELEGRAM_API_URL=http://127.0.0.1:$SIM_PORT/telegram
export STORAGE=fs STORAGE_DIR=$B/media MEDIA_KEY_SECRET=bench-media-key-secret-0123456789
"$BIN/pinglass" migrate >/dev/null

"$BIN/pinglass-fcgi" --socket "$B/fcgi.sock" --workers 4 --socket-mode 0666 >"$B/fcgi.log" 2>&1 &
POOL=$!
"$BIN/pinglass-sim" --socket "$B/sim.sock" --workers 8 --socket-mode 0666 >"$B/sim.log" 2>&1 &
SIM=$!
render_nginx "$ROOT/nginx/local.conf.in" "$B/nginx/nginx.conf" PREFIX="$B/nginx" DAEMON=on ACCESS_LOG=off PORT="$PORT" \
    SIM_PORT="$SIM_PORT" SOCKET="$B/fcgi.sock" SIM_SOCKET="$B/sim.sock" STORAGE_DIR="$B/media" MEDIA_KEY_SECRET="$MEDIA_KEY_SECRET"
nginx -p "$B/nginx" -c "$B/nginx/nginx.conf"
cleanup() {
    set +e   # everything below runs, whatever already stopped
    kill -TERM $POOL $SIM 2>/dev/null
    for _ in $(seq 100); do kill -0 $POOL 2>/dev/null || kill -0 $SIM 2>/dev/null || break; sleep 0.1; done
    kill -KILL $POOL $SIM 2>/dev/null; wait $POOL $SIM 2>/dev/null
    nginx -p "$B/nginx" -c "$B/nginx/nginx.conf" -s stop 2>/dev/null; pg_stop "$B/pg"
}
trap cleanup EXIT
SIMCTL=http://127.0.0.1:$SIM_PORT/sim/control
wait_for curl -sf "http://127.0.0.1:$PORT/api/health"
wait_for curl -sf "http://127.0.0.1:$SIM_PORT/"
psql_() { "$PGBIN/psql" -X -q -At "$DATABASE_URL" "$@"; }
switches() { curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d "$1" "$SIMCTL/switches" >/dev/null; }

# seed ROUND: N paid payments (49.90 RUB … at the bank: CONFIRMED, notifying our webhook;
# here: succeeded) and one due refund of 100.00 RUB each: what failed jobs leave behind.
seed() {
    psql_ -v n="$N" -v round="$1" -v hook="$PUBLIC_BASE_URL/api/payment/webhook" <<'SQL'
WITH g AS (SELECT :round * 100000 + i AS k FROM generate_series(1, :n) i),
sim AS (INSERT INTO sim.payments (payment_id, terminal_key, order_id, amount, charged, status, description, notification_url)
        SELECT 8000000000 + k, 'BenchTerminal', 'bench-' || k, 49900, 49900, 'CONFIRMED', 'bench', :'hook' FROM g),
u AS (INSERT INTO users (telegram_user_id) SELECT 950000000 + k FROM g RETURNING id, telegram_user_id - 950000000 AS k),
p AS (INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                            status, paid_at, redirect_due_at)
      SELECT u.id, 'bench-' || u.k, 'test', 'BenchTerminal', (8000000000 + u.k)::text, 'starter', 7, 49900, 'succeeded', now(), now()
      FROM u RETURNING id)
INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) SELECT id, 10000, 'bench', 'bench' FROM p;
SQL
}

# in_round ROUND: the SQL condition for that round's payments (alias p).
in_round() { echo "p.tbank_payment_id::bigint BETWEEN 8000000000 + $1 * 100000 AND 8000000000 + $1 * 100000 + 99999"; }

# run ROUND SENDERS: seeds, starts SENDERS `pinglass refund` passes at once and waits for them;
# checks one succeeded refund and one Cancel at the bank per payment; prints "seconds rate",
# first to last refund recorded by the database's clock.
run() {
    seed "$1"
    local pids=() ok bank
    for _ in $(seq "$2"); do "$BIN/pinglass" refund --batch-size "$N" >>"$B/refund.log" 2>&1 & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
    ok=$(psql_ -c "SELECT count(*) FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.state = 'succeeded' AND $(in_round "$1")")
    bank=$(psql_ -c "SELECT count(*) FROM sim.refunds r JOIN sim.payments p ON p.payment_id = r.payment_id WHERE $(in_round "$1" | sed 's/p.tbank_payment_id::bigint/p.payment_id/')")
    if [ "$ok" != "$N" ] || [ "$bank" != "$N" ]; then
        echo "round $1: $ok refunds succeeded, $bank Cancels at the bank (expected $N each)" >&2
        exit 1
    fi
    psql_ -c "SELECT round(extract(epoch FROM max(r.finished_at) - min(r.finished_at))::numeric, 2),
                     round(($N - 1) / nullif(extract(epoch FROM max(r.finished_at) - min(r.finished_at)), 0)::numeric, 1)
              FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE $(in_round "$1")"
}

say "A: $N due refunds, one sender, no added bank latency"
read -r A_SPAN A_RATE <<<"$(run 1 1 | tr '|' ' ')"
say "B: $N due refunds, one sender, every Cancel answered 200 ms late"
switches '{"cancel_delay_ms": 200}'
read -r B_SPAN B_RATE <<<"$(run 2 1 | tr '|' ' ')"
say "C: $N due refunds, four senders, 200 ms per Cancel"
read -r C_SPAN C_RATE <<<"$(run 3 4 | tr '|' ' ')"
switches '{"cancel_delay_ms": null}'
AUDIT=$("$BIN/pinglass" audit | tail -1 || true)

{
    echo "# PinGlass refunds benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores (release build, simulated T-Bank)"
    echo
    echo "$N due refunds each; the rate is first to last refund recorded (the database's clock), one Cancel per refund at the bank."
    echo
    echo "| scenario | time | refunds/s |"
    echo "|---|---|---|"
    echo "| A. one sender, the simulator answering at once | ${A_SPAN} s | **${A_RATE}** |"
    echo "| B. one sender, 200 ms per Cancel answer | ${B_SPAN} s | **${B_RATE}** (ceiling 1 / 0.2 s = 5) |"
    echo "| C. four senders, 200 ms per Cancel answer | ${C_SPAN} s | **${C_RATE}** (ceiling 4 × 5 = 20) |"
    echo
    echo "- audit after the runs: $AUDIT"
} | tee "$OUT"
say "written to $OUT"
