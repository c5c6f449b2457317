#!/usr/bin/env bash
# `make bench-generation`: the generation pipeline against the simulated Kie on this machine
# (issue 7, item 12). Real pool, nginx, simulator, PostgreSQL and the real cron commands.
#   A. five 23-photo jobs at once, two dispatchers and one poller: the sustained createTask
#      rate against Kie's 20 per 10 s, 429s, the max/min share across jobs, Kie calls per photo;
#   B. one 23-photo job, 5 s simulated generation, callbacks on, each result image served
#      500 ms late (a few MB from Kie's CDN): generate → all photos stored.
# Bounded: each scenario ends when its jobs finish or after its time limit.
source "$(dirname "$0")/../scripts/lib.sh"

PORT=${PORT:-18580}
SIM_PORT=$((PORT + 1))
bench_setup bench-gen
export PINGLASS_ENV_FILE=/dev/null PINGLASS_MIGRATIONS_DIR=$ROOT/migrations LOG_LEVEL=warning LOG_FORMAT=text
export PUBLIC_BASE_URL=http://127.0.0.1:$PORT TBANK_API_URL=http://127.0.0.1:$SIM_PORT/v2
export TBANK_TEST_TERMINAL_KEY=BenchTerminal TBANK_TEST_PASSWORD=bench-terminal-password TELEGRAM_BOT_TOKEN=7000000001:bench
export KIE_API_URL=http://127.0.0.1:$SIM_PORT/kie KIE_API_KEY=bench-kie-key KIE_RESULT_HOSTS=127.0.0.1 KIE_WEBHOOK_HMAC_KEY=bench-kie-webhook-key
export TELEGRAM_API_URL=http://127.0.0.1:$SIM_PORT/telegram
export STORAGE=fs STORAGE_DIR=$B/media PUBLIC_MEDIA_URL=http://127.0.0.1:$PORT/media MEDIA_KEY_SECRET=bench-media-key-secret-0123456789
"$BIN/pinglass" migrate >/dev/null

"$BIN/pinglass-fcgi" --socket "$B/fcgi.sock" --workers 2 --socket-mode 0666 >"$B/fcgi.log" 2>&1 &
POOL=$!
"$BIN/pinglass-sim" --socket "$B/sim.sock" --workers 4 --socket-mode 0666 >"$B/sim.log" 2>&1 &
SIM=$!
render_nginx "$ROOT/nginx/local.conf.in" "$B/nginx/nginx.conf" PREFIX="$B/nginx" DAEMON=on ACCESS_LOG=off PORT="$PORT" \
    SIM_PORT="$SIM_PORT" SOCKET="$B/fcgi.sock" SIM_SOCKET="$B/sim.sock" STORAGE_DIR="$B/media" MEDIA_KEY_SECRET="$MEDIA_KEY_SECRET"
nginx -p "$B/nginx" -c "$B/nginx/nginx.conf"
DUTIES=()
cleanup() {
    set +e   # everything below runs, whatever already stopped
    for p in "${DUTIES[@]}"; do kill "$p" 2>/dev/null; done
    kill -TERM $POOL $SIM 2>/dev/null
    for _ in $(seq 100); do kill -0 $POOL 2>/dev/null || kill -0 $SIM 2>/dev/null || break; sleep 0.1; done
    kill -KILL $POOL $SIM 2>/dev/null; wait $POOL $SIM 2>/dev/null
    nginx -p "$B/nginx" -c "$B/nginx/nginx.conf" -s stop 2>/dev/null; pg_stop "$B/pg"
}
trap cleanup EXIT
SIMCTL=http://127.0.0.1:$SIM_PORT/sim/control/kie
wait_for curl -sf "http://127.0.0.1:$PORT/api/health"
wait_for curl -sf "$SIMCTL/settings"
psql_() { "$PGBIN/psql" -X -q -At "$DATABASE_URL" "$@"; }

# seed_jobs N PHOTOS: N users, each with an avatar, a reference, a consumed payment and a
# queued job of PHOTOS tasks, created now (what POST /api/generate writes).
seed_jobs() {
    psql_ -v n="$1" -v photos="$2" <<'SQL'
WITH u AS (INSERT INTO users (telegram_user_id) SELECT 900000 + g + (SELECT count(*) FROM users) FROM generate_series(1, :n) g RETURNING id),
a AS (INSERT INTO avatars (user_id, name, status) SELECT id, 'bench', 'ready' FROM u RETURNING id, user_id),
r AS (INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256)
      SELECT id, 'references/bench-' || id || '.jpg', 'image/jpeg', 100, sha256(id::text::bytea) FROM a RETURNING avatar_id),
p AS (INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, redirect_due_at)
      SELECT user_id, 'bench-' || user_id, 'test', 'BenchTerminal', 'b' || user_id, 'premium', :photos, 149900, 'succeeded', now() FROM a
      RETURNING id, user_id),
j AS (INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, deadline_at)
      SELECT a.user_id, a.id, p.id, 'pinglass', :photos, now() + interval '1 hour' FROM a JOIN p ON p.user_id = a.user_id RETURNING id, payment_id)
INSERT INTO generation_tasks (job_id, prompt_index, prompt_text)
SELECT j.id, i, 'a portrait prompt number ' || i FROM j, generate_series(0, :photos - 1) i;
UPDATE payments p SET consumed_by_job = j.id FROM generation_jobs j WHERE j.payment_id = p.id AND p.consumed_by_job IS NULL;
SELECT pg_notify('dispatch', 'bench');
SQL
}
start_duties() {   # SECONDS
    for _ in 1 2; do "$BIN/pinglass" dispatch --for "${1}s" --every 1s >>"$B/duties.log" 2>&1 & DUTIES+=($!); done
    "$BIN/pinglass" poll-kie --for "${1}s" --every 2s >>"$B/duties.log" 2>&1 & DUTIES+=($!)
}
wait_done() {      # LIMIT-SECONDS: until no job is queued or processing
    for _ in $(seq $(( $1 * 4 ))); do
        [ "$(psql_ -c "SELECT count(*) FROM generation_jobs WHERE status IN ('queued','processing')")" = 0 ] && return 0
        sleep 0.25
    done
    echo "jobs not finished within $1 s" >&2
}
stop_duties() { for p in "${DUTIES[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; DUTIES=(); }

say "A: five 23-photo jobs, two dispatchers, one poller (5 s generation)"
curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d '{"generatingSeconds":5,"waitingSeconds":0.2,"queuingSeconds":0.2,"callbacks":true}' "$SIMCTL/settings" >/dev/null
seed_jobs 5 23
start_duties 150
wait_done 150
stop_duties
A=$(psql_ <<'SQL'
WITH s AS (SELECT submitted_at FROM generation_tasks WHERE submitted_at IS NOT NULL),
     span AS (SELECT min(submitted_at) t0, max(submitted_at) t1, count(*) n FROM s)
SELECT n, round(extract(epoch FROM t1 - t0)::numeric, 1),
       round((n - 1) / nullif(extract(epoch FROM t1 - t0), 0) * 10, 2)
FROM span;
SQL
)
read -r SUBMITTED SPAN RATE <<<"$(tr '|' ' ' <<<"$A")"
# The most submissions inside any 10-second window (what Kie's limiter sees): at most 20.
PEAK=$(psql_ <<'SQL'
SELECT max((SELECT count(*) FROM generation_tasks t2
            WHERE t2.submitted_at >= t1.submitted_at AND t2.submitted_at < t1.submitted_at + interval '10 seconds'))
FROM generation_tasks t1 WHERE t1.submitted_at IS NOT NULL;
SQL
)
# Fairness while all five jobs competed: per-job counts submitted in the first half of the span.
SHARE=$(psql_ <<'SQL'
WITH t AS (SELECT min(submitted_at) + (max(submitted_at) - min(submitted_at)) / 2 AS mid FROM generation_tasks),
c AS (SELECT job_id, count(*) n FROM generation_tasks, t WHERE submitted_at <= t.mid GROUP BY job_id)
SELECT max(n) || ' / ' || min(n) || ' = ' || round(max(n)::numeric / min(n), 2) FROM c;
SQL
)
PHOTOS_A=$(psql_ -c "SELECT count(*) FROM generated_photos")
COUNTERS=$(curl -sf --max-time 10 "$SIMCTL/counters")
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$COUNTERS" | head -1; }
CREATES=$(num createTask); C429=$(num 'createTask.429'); RECORDS=$(num recordInfo)

say "B: one 23-photo job, 5 s generation, callbacks on, results served 500 ms late"
curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d '{}' "$SIMCTL/reset" >/dev/null
curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d '{"generatingSeconds":5,"waitingSeconds":0.2,"queuingSeconds":0.2,"callbacks":true,"resultLatencyMs":500}' "$SIMCTL/settings" >/dev/null
psql_ -c "DELETE FROM rate_events" >/dev/null
start_duties 60
sleep 1   # the duties are listening before the job exists (what cron's running loops are)
seed_jobs 1 23
wait_done 60
stop_duties
B_SECONDS=$(psql_ -c "SELECT round(extract(epoch FROM max(finished_at) - max(created_at))::numeric, 1) FROM generation_jobs WHERE id = (SELECT max(id) FROM generation_jobs)")
B_PHOTOS=$(psql_ -c "SELECT count(*) FROM generated_photos WHERE job_id = (SELECT max(id) FROM generation_jobs)")
# The Nth photo stored, seconds after generate: the 10th makes the first album, the 20th ends
# the first Kie window (those 20 finish together, so their downloads are what separates them).
nth_photo() {
    psql_ -c "SELECT round(extract(epoch FROM p.created_at - j.created_at)::numeric, 1) FROM generated_photos p
              JOIN generation_jobs j ON j.id = p.job_id WHERE j.id = (SELECT max(id) FROM generation_jobs)
              ORDER BY p.created_at OFFSET $(( $1 - 1 )) LIMIT 1"
}
B_10TH=$(nth_photo 10); B_20TH=$(nth_photo 20)
COUNTERS=$(curl -sf --max-time 10 "$SIMCTL/counters")
B_CALLS=$(( $(num createTask) + $(num recordInfo) ))

say "C: polling 100 running tasks, 200 ms simulated latency, KIE_POLL_RPS=10"
curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d '{}' "$SIMCTL/reset" >/dev/null
curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST \
    -d '{"createLimit":1000,"latencyMs":200,"generatingSeconds":3600,"callbacks":false}' "$SIMCTL/settings" >/dev/null
psql_ -c "DELETE FROM rate_events" >/dev/null
seed_jobs 5 20
KIE_RATE_LIMIT=1000 "$BIN/pinglass" dispatch --batch-size 100 >>"$B/duties.log" 2>&1
psql_ -c "UPDATE generation_tasks SET run_at = now() WHERE state = 'running'" >/dev/null
RUNNING_C=$(psql_ -c "SELECT count(*) FROM generation_tasks WHERE state = 'running'")
COUNTERS=$(curl -sf --max-time 10 "$SIMCTL/counters"); R0=$(num recordInfo); R0=${R0:-0}
T0=$(date +%s.%N)
"$BIN/pinglass" poll-kie --for 20s --every 1s >>"$B/duties.log" 2>&1
T1=$(date +%s.%N)
COUNTERS=$(curl -sf --max-time 10 "$SIMCTL/counters"); R1=$(num recordInfo); R429=$(num 'recordInfo.429')
POLL_RATE=$(python3 -c "print(f'{(${R1:-0} - $R0) / ($T1 - $T0):.2f}')")

ratio() { python3 -c "print(f'{$1 / $2:.2f}' if $2 else '-')"; }
{
    echo "# PinGlass generation benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores (release build, simulated Kie)"
    echo
    echo "A. five 23-photo jobs at once, two dispatchers, one poller, 5 s generation"
    echo "- submitted $SUBMITTED tasks over ${SPAN} s: **$RATE per 10 s** on average (first to last submission), at most **$PEAK** in any 10-s window, against Kie's 20"
    echo "- createTask answered 429: ${C429:-0} (of ${CREATES:-0} calls)"
    echo "- share across the five jobs in the first half (max / min): $SHARE"
    echo "- photos stored: $PHOTOS_A; Kie calls per photo (createTask + recordInfo): $(ratio "$(( ${CREATES:-0} + ${RECORDS:-0} ))" "$PHOTOS_A")"
    echo
    echo "B. one 23-photo job, 5 s generation, callbacks on, each result served 500 ms late"
    echo "- generate → 10th photo stored (the first album): **${B_10TH} s**; 20th (the first Kie window's last): **${B_20TH} s**"
    echo "- generate → last photo stored: **${B_SECONDS} s** ($B_PHOTOS photos; the floor is about 15.5 s: 20 at once, 3 after the window, 5 s generation, 0.5 s download)"
    echo "- Kie calls per photo: $(ratio "$B_CALLS" "$B_PHOTOS")"
    echo
    echo "C. polling $RUNNING_C running tasks, 200 ms simulated latency, KIE_POLL_RPS=10"
    echo "- recordInfo: **$POLL_RATE per second** over the 20 s run ($(ratio "$POLL_RATE" 10) of the limit), 429: ${R429:-0}"
} | tee "$OUT"
say "written to $OUT"
