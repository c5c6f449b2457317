#!/usr/bin/env bash
# `make bench-delivery`: photos reaching Telegram (issue 8, item 10), against the simulator.
# Release builds of the real pool behind nginx, the simulator (T-Bank, Kie, Telegram) and the
# real cron commands, on a private PostgreSQL (the simulator keeps its state in schema `sim`
# of the same database, so every time below is read from one clock):
#   A. one customer through the HTTP API: avatar, reference, premium payment paid on the
#      bank's page, generate at once; 23 photos, 5 s simulated generation, Kie callbacks on.
#      The duties run as cron runs them: looping processes (the `--every` of cron.d/pinglass)
#      woken by NOTIFY. Paid → first photo in the simulated chat, paid → last photo, and the
#      time line of every stage, so a miss shows where the time went.
#      The short batch goes first (3 + 10 + 10), so the chat's pace is spent while the rest
#      is generating.
#   B. 200 chats waiting, each with a finished 7-photo job (an album of 7 and the final
#      message: 1,600 Telegram messages), one `pinglass deliver` as cron runs it: messages per
#      second overall (whole run and the busiest second), the pace per chat (an album of N
#      counted as N messages), 429s received, from the simulator's call log.
#   C. the same with two deliver processes at once (two machines): the limits are shared.
source "$(dirname "$0")/../scripts/lib.sh"

PORT=${PORT:-18600}
SIM_PORT=$((PORT + 1))
CHATS=${CHATS:-200}
PHOTOS_B=${PHOTOS_B:-7}
bench_setup bench-delivery
export PINGLASS_ENV_FILE=/dev/null PINGLASS_MIGRATIONS_DIR=$ROOT/migrations LOG_LEVEL=warning LOG_FORMAT=text
export PUBLIC_BASE_URL=http://127.0.0.1:$PORT TBANK_API_URL=http://127.0.0.1:$SIM_PORT/v2
export TBANK_TEST_TERMINAL_KEY=BenchTerminal TBANK_TEST_PASSWORD=bench-terminal-password
export TELEGRAM_API_URL=http://127.0.0.1:$SIM_PORT/telegram TELEGRAM_BOT_TOKEN=7000000001:bench-bot-token
export KIE_API_URL=http://127.0.0.1:$SIM_PORT/kie KIE_API_KEY=bench-kie-key KIE_RESULT_HOSTS=127.0.0.1 KIE_WEBHOOK_HMAC_KEY=bench-kie-webhook-key
# Loopback media: photos are uploaded to the simulated Telegram (as in local runs), not linked.
export STORAGE=fs STORAGE_DIR=$B/media PUBLIC_MEDIA_URL=http://127.0.0.1:$PORT/media MEDIA_KEY_SECRET=bench-media-key-secret-0123456789
"$BIN/pinglass" migrate >/dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

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
API=http://127.0.0.1:$PORT
SIM_URL=http://127.0.0.1:$SIM_PORT
wait_for curl -sf "$API/api/health"
wait_for curl -sf "$SIM_URL/sim/control/kie/settings"
psql_() { "$PGBIN/psql" -X -q -At -F ' ' "$DATABASE_URL" "$@"; }
post() { curl -sf --max-time 10 -H 'Content-Type: application/json' -X POST -d "$2" "$1" >/dev/null; }
json_value() { { grep -o "\"$1\":\"\{0,1\}[^\",}]*" || true; } | head -1 | sed 's/^[^:]*:"\{0,1\}//'; }
# duty NAME EVERY SECONDS: one looping duty process, as a cron.d/pinglass line starts it.
duty() { "$BIN/pinglass" "$1" --for "$3s" --every "$2" >>"$B/duties.log" 2>&1 & DUTIES+=($!); }
stop_duties() { for p in "${DUTIES[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; DUTIES=(); }
# wait_until LIMIT-SECONDS WHAT SQL: until the query answers t.
wait_until() {
    for _ in $(seq $(( $1 * 4 ))); do [ "$(psql_ -c "$3")" = t ] && return 0; sleep 0.25; done
    echo "$2: not within $1 s (logs in $B)" >&2
    exit 1
}

say "A: one customer, 23 photos, 5 s simulated generation, the duties looping as cron runs them"
post "$SIM_URL/sim/control/kie/settings" '{"generatingSeconds":5,"waitingSeconds":0.2,"queuingSeconds":0.2,"callbacks":true}'
# cron.d/pinglass: dispatch and deliver every 2 s, poll-kie every 10 s (a Kie callback or a
# new album wakes them at once); --for long enough that no minute boundary falls in the run.
duty dispatch 2s 150; duty poll-kie 10s 150; duty deliver 2s 150; duty refund 10s 150
sleep 1   # the duties are listening before the customer arrives (cron's loops are)
CUSTOMER=880001
AUTH="Authorization: tma $("$BIN/pinglass" sign-init-data --telegram-id $CUSTOMER)"
api() { curl -s --max-time 20 -X "$1" -H "$AUTH" -H "Content-Type: ${3:-application/json}" ${2:+--data-binary "$2"} "$API$4"; }
AVATAR=$(api POST '{"name":"bench"}' "" /api/avatars | json_value id)
printf '\xff\xd8\xff\xe0bench-reference' > "$B/reference.jpg"
api POST @"$B/reference.jpg" image/jpeg "/api/avatars/$AVATAR/references" >/dev/null
PAY_PAGE=$(api POST "{\"tierId\":\"premium\",\"avatarId\":$AVATAR}" "" /api/payment/create | json_value confirmationUrl)
curl -s -o /dev/null --max-time 20 -d action=pay "$PAY_PAGE"          # the customer presses Pay on the bank's page
wait_until 20 "the payment to succeed" "SELECT count(*) = 1 FROM payments WHERE status = 'succeeded'"
JOB=$(api POST "{\"avatarId\":$AVATAR}" "" /api/generate | json_value jobId)
[ -n "$JOB" ] || { echo "generate failed" >&2; exit 1; }
wait_until 120 "job $JOB delivered" "SELECT count(*) > 0 AND bool_and(state = 'sent') AND bool_or(kind = 'message')
                                        FROM telegram_deliveries WHERE job_id = $JOB"
stop_duties
# Seconds after the payment (paid_at: our webhook recorded it) of each stage, one clock.
timeline() {
    psql_ -v job="$JOB" -v chat=$CUSTOMER <<'SQL'
WITH t0 AS (SELECT p.paid_at AS t FROM payments p JOIN generation_jobs j ON j.payment_id = p.id WHERE j.id = :job),
s AS (
  SELECT 1 AS o, 'generate (job created)' AS stage, created_at AS at FROM generation_jobs WHERE id = :job
  UNION ALL SELECT 2, 'first task submitted to Kie', min(submitted_at) FROM generation_tasks WHERE job_id = :job
  UNION ALL SELECT 3, '20th task submitted (Kie: 20 per 10 s)', (SELECT submitted_at FROM generation_tasks WHERE job_id = :job ORDER BY submitted_at OFFSET 19 LIMIT 1)
  UNION ALL SELECT 4, 'first photo stored', min(created_at) FROM generated_photos WHERE job_id = :job
  UNION ALL SELECT 5, '3rd photo stored (the short batch made)', (SELECT created_at FROM generated_photos WHERE job_id = :job ORDER BY created_at OFFSET 2 LIMIT 1)
  UNION ALL SELECT 5.5, '13th photo stored (the first album of 10 made)', (SELECT created_at FROM generated_photos WHERE job_id = :job ORDER BY created_at OFFSET 12 LIMIT 1)
  UNION ALL SELECT 6, 'last task submitted', max(submitted_at) FROM generation_tasks WHERE job_id = :job
  UNION ALL SELECT 7, 'last photo stored (job finished)', finished_at FROM generation_jobs WHERE id = :job
  UNION ALL SELECT 8 + m.n, 'in the chat: ' || CASE WHEN m.kind = 'text' THEN 'the final message'
                                 ELSE 'photos ' || m.first || '–' || m.last END, m.at
  FROM (SELECT row_number() OVER (ORDER BY min(message_id)) AS n, min(kind) AS kind, min(at) AS at,
               min(rn) AS first, max(rn) AS last
        FROM (SELECT *, row_number() OVER (ORDER BY message_id) AS rn,
                     coalesce(media_group_id, 'm' || message_id) AS g FROM sim.tg_messages WHERE chat_id = :chat) x
        GROUP BY g) m
)
SELECT stage, round(extract(epoch FROM at - t0.t)::numeric, 1) FROM s, t0 ORDER BY o;
SQL
}
TIMELINE=$(timeline)
read -r FIRST LAST FINAL <<<"$(psql_ -v chat=$CUSTOMER -v job="$JOB" <<'SQL'
SELECT round(extract(epoch FROM min(m.at) FILTER (WHERE m.kind = 'photo') - p.paid_at)::numeric, 1),
       round(extract(epoch FROM max(m.at) FILTER (WHERE m.kind = 'photo') - p.paid_at)::numeric, 1),
       round(extract(epoch FROM max(m.at) FILTER (WHERE m.kind = 'text') - p.paid_at)::numeric, 1)
FROM sim.tg_messages m, payments p JOIN generation_jobs j ON j.payment_id = p.id
WHERE m.chat_id = :chat AND j.id = :job GROUP BY p.paid_at;
SQL
)"
A_PHOTOS=$(psql_ -c "SELECT count(*) FROM sim.tg_messages WHERE chat_id = $CUSTOMER AND kind = 'photo'")
A_429=$(psql_ -c "SELECT count(*) FROM sim.tg_calls WHERE status = 429")

# --- B and C: many chats waiting --------------------------------------------------------------

# seed ROUND: CHATS users, each with a paid job of PHOTOS_B photos, every task succeeded and
# its photo stored (copies of a real photo from A), the job not yet finished: `pinglass
# sweep` finishes them through the one finish function, which makes the delivery rows.
seed() {
    psql_ -v n="$CHATS" -v photos="$PHOTOS_B" -v round="$1" <<'SQL'
WITH u AS (INSERT INTO users (telegram_user_id) SELECT 970000000 + :round * 10000 + g FROM generate_series(1, :n) g RETURNING id),
a AS (INSERT INTO avatars (user_id, name, status) SELECT id, 'bench', 'ready' FROM u RETURNING id, user_id),
p AS (INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, paid_at, redirect_due_at)
      SELECT user_id, 'bench-' || user_id, 'test', 'BenchTerminal', 'b' || user_id, 'starter', :photos, 49900, 'succeeded', now(), now() FROM a
      RETURNING id, user_id),
j AS (INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, deadline_at, status)
      SELECT a.user_id, a.id, p.id, 'pinglass', :photos, now() + interval '1 hour', 'processing' FROM a JOIN p ON p.user_id = a.user_id
      RETURNING id, avatar_id),
t AS (INSERT INTO generation_tasks (job_id, prompt_index, prompt_text, state, finished_at)
      SELECT j.id, i, 'a portrait prompt number ' || i, 'succeeded', now() FROM j, generate_series(0, :photos - 1) i RETURNING id, job_id)
INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256)
SELECT t.job_id, t.id, j.avatar_id, 'bench/' || t.id || '.png', 'image/png', 1, sha256(t.id::text::bytea) FROM t JOIN j ON j.id = t.job_id;
UPDATE payments p SET consumed_by_job = j.id FROM generation_jobs j WHERE j.payment_id = p.id AND p.consumed_by_job IS NULL;
SQL
    local src size
    src=$(psql_ -c "SELECT storage_key FROM generated_photos WHERE job_id = $JOB LIMIT 1")
    size=$(stat -c %s "$B/media/$src")
    mkdir -p "$B/media/bench"
    psql_ -c "SELECT storage_key FROM generated_photos WHERE storage_key LIKE 'bench/%' AND byte_size = 1" \
        | while read -r key; do cp "$B/media/$src" "$B/media/$key"; done
    psql_ -c "UPDATE generated_photos SET byte_size = $size, sha256 = (SELECT sha256 FROM generated_photos WHERE storage_key = '$src')
              WHERE storage_key LIKE 'bench/%' AND byte_size = 1" >/dev/null
    "$BIN/pinglass" sweep >>"$B/duties.log" 2>&1
}

# rates ROUND: from the simulator's call log, for that round's chats: messages, seconds from
# the first call to the last, messages per second overall, the busiest second (any 1-s
# window), the shortest wait per chat after a send divided by the messages it made (≥ 1.0 s:
# at most one message per second, an album of N counted N), the most calls to one chat
# inside any second, and 429s.
rates() {
    psql_ -v lo=$((970000000 + $1 * 10000)) -v hi=$((970000000 + $1 * 10000 + 9999)) <<'SQL'
WITH c AS (SELECT at, chat_id, messages, status FROM sim.tg_calls WHERE chat_id BETWEEN :lo AND :hi),
ok AS (SELECT * FROM c WHERE status = 200),
span AS (SELECT sum(messages) AS n, extract(epoch FROM max(at) - min(at)) AS s FROM ok),
peak AS (SELECT max((SELECT sum(o2.messages) FROM ok o2 WHERE o2.at >= o1.at AND o2.at < o1.at + interval '1 second')) AS m FROM ok o1),
gaps AS (SELECT extract(epoch FROM at - lag(at) OVER w) / lag(messages) OVER w AS per_message,
                (SELECT count(*) FROM ok o2 WHERE o2.chat_id = ok.chat_id AND o2.at >= ok.at AND o2.at < ok.at + interval '1 second') AS calls_in_1s
         FROM ok WINDOW w AS (PARTITION BY chat_id ORDER BY at))
SELECT span.n, round(span.s::numeric, 1), round((span.n / nullif(span.s, 0))::numeric, 1), peak.m,
       round(min(gaps.per_message)::numeric, 2), max(gaps.calls_in_1s),
       (SELECT count(*) FROM c WHERE status = 429), (SELECT count(DISTINCT chat_id) FROM ok)
FROM span, peak, gaps GROUP BY span.n, span.s, peak.m;
SQL
}
# round_b ROUND PROCESSES: seeds, runs PROCESSES deliver loops until every row is sent.
round_b() {
    seed "$1"
    for _ in $(seq "$2"); do duty deliver 2s 240; done
    wait_until 240 "round $1 delivered" "SELECT bool_and(state = 'sent') FROM telegram_deliveries
                                         WHERE chat_id BETWEEN $((970000000 + $1 * 10000)) AND $((970000000 + $1 * 10000 + 9999))"
    stop_duties
    rates "$1"
}
say "B: $CHATS chats waiting ($PHOTOS_B-photo jobs: an album and a message each), one deliver process"
read -r B_N B_S B_RATE B_PEAK B_GAP B_CALLS B_429 B_CHATS <<<"$(round_b 1 1)"
say "C: the same with two deliver processes at once"
read -r C_N C_S C_RATE C_PEAK C_GAP C_CALLS C_429 C_CHATS <<<"$(round_b 2 2)"
AUDIT=$("$BIN/pinglass" audit | tail -1 || true)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "# PinGlass delivery benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores (release build, simulated T-Bank, Kie and Telegram)"
    echo
    echo "Load average at the start: $LOAD_START; at the end: $LOAD_END."
    echo
    echo "A. one customer: premium (23 photos), paid on the bank's page, generate at once; 5 s simulated generation; duties looping as in cron.d"
    echo "- paid → first photo in the chat: **${FIRST} s**; paid → last photo: **${LAST} s** (target ≤ 20 s); final message: ${FINAL} s"
    echo "- photos in the chat: $A_PHOTOS; Telegram 429s: $A_429"
    echo
    echo "| stage | s after paid |"
    echo "|---|---|"
    while read -r line; do echo "| ${line% *} | ${line##* } |"; done <<<"$TIMELINE"
    echo
    echo "B. $B_CHATS chats waiting, an album of $PHOTOS_B and a message each ($B_N messages), one deliver process"
    echo "- overall: **$B_RATE messages/s** over ${B_S} s; the busiest second on arrival: **$B_PEAK** messages (limit 25)"
    echo "- per chat: the shortest wait after a send, per message it made: **${B_GAP} s** (≥ 1.0: at most one message per second, an album of N counted N); calls to one chat in any second: at most $B_CALLS"
    echo "- 429s received: **$B_429**"
    echo
    echo "C. the same, two deliver processes at once ($C_N messages to $C_CHATS chats)"
    echo "- overall: **$C_RATE messages/s** over ${C_S} s; the busiest second on arrival: **$C_PEAK** (limit 25); per chat: ${C_GAP} s per message at least, $C_CALLS call(s) in any second; 429s: **$C_429**"
    echo
    echo "- audit after the runs: $AUDIT"
} | tee "$OUT"
say "written to $OUT"
