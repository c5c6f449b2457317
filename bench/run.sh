#!/usr/bin/env bash
# `make bench`: the pool measured next to its ceilings, in one run on this machine:
#   nginx `return 200`  vs  GET /api/pricing, GET /api/health   (wrk, loopback)
#   pgbench of the webhook's own SQL transaction  vs  POST /api/payment/webhook (wrk)
#   GET /metrics over 100k task rows, alone and under the /api/pricing read load
# plus worker RSS, `pinglass --help` start time and the Mini App's gzipped size
# (bench/webapp-size.sh, which fails the run over its budget). Bounded: DURATION seconds per run.
# Results: bench/results/<UTC time>.md (copy the table into BENCHMARKS.md).
source "$(dirname "$0")/../scripts/lib.sh"

# The Mini App's size first: over its budget, the whole run fails before anything starts.
WEBAPP_REPORT=$(bash "$ROOT/bench/webapp-size.sh") || { printf '%s\n' "$WEBAPP_REPORT" >&2; exit 1; }
printf '%s\n' "$WEBAPP_REPORT" >&2

DURATION=${DURATION:-10}
WORKERS=${WORKERS:-4}
PORT=${PORT:-18480}
bench_setup bench
export PINGLASS_ENV_FILE=/dev/null PINGLASS_MIGRATIONS_DIR=$ROOT/migrations STORAGE_DIR=$B/media LOG_LEVEL=warning
export PUBLIC_BASE_URL=http://127.0.0.1:$PORT TBANK_TEST_TERMINAL_KEY=BenchTerminal TBANK_TEST_PASSWORD=bench-terminal-password
export TELEGRAM_BOT_TOKEN=7000000001:bench-bot-token
"$BIN/pinglass" migrate >/dev/null
say "seeding 10000 succeeded payments"
"$PGBIN/psql" -X -q "$DATABASE_URL" <<'SQL'
INSERT INTO users (telegram_user_id) SELECT g FROM generate_series(1, 10000) g;
INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                      status, paid_at, redirect_due_at)
SELECT g, 'bench-' || (50000 + g), 'test', 'BenchTerminal', (50000 + g)::text, 'starter', 7, 49900,
       'succeeded', now(), now() + interval '1 day'
FROM generate_series(1, 10000) g;
ANALYZE;
SQL
python3 - "$B/bodies.jsonl" <<'PY'
import hashlib, json, random, sys
out = open(sys.argv[1], "w")
for pid in random.sample(range(50001, 60001), 4000):
    n = {"TerminalKey": "BenchTerminal", "OrderId": f"bench-{pid}", "Success": True, "Status": "CONFIRMED",
         "PaymentId": pid, "ErrorCode": "0", "Amount": 49900, "CardId": 10452089, "Pan": "430000******0777",
         "ExpDate": "1230"}
    fields = {k: ("true" if v is True else str(v)) for k, v in n.items()}
    fields["Password"] = "bench-terminal-password"
    n["Token"] = hashlib.sha256("".join(fields[k] for k in sorted(fields)).encode()).hexdigest()
    n["DATA"] = {"Route": "ACQ"}
    out.write(json.dumps(n, separators=(",", ":")) + "\n")
PY

"$BIN/pinglass-fcgi" --socket "$B/fcgi.sock" --workers "$WORKERS" --socket-mode 0666 >"$B/fcgi.log" 2>&1 &
POOL=$!
render_nginx "$ROOT/nginx/local.conf.in" "$B/nginx/nginx.conf" PREFIX="$B/nginx" DAEMON=on ACCESS_LOG=off PORT="$PORT" \
    SIM_PORT=$((PORT + 1)) SOCKET="$B/fcgi.sock" SIM_SOCKET="$B/sim.sock" STORAGE_DIR="$B/media" MEDIA_KEY_SECRET=bench-media-key-secret-0123456789
nginx -p "$B/nginx" -c "$B/nginx/nginx.conf"
cleanup() { kill -TERM $POOL 2>/dev/null; wait $POOL 2>/dev/null; nginx -p "$B/nginx" -c "$B/nginx/nginx.conf" -s stop 2>/dev/null; pg_stop "$B/pg"; }
trap cleanup EXIT
wait_for curl -sf "http://127.0.0.1:$PORT/api/health"
test "$(curl -s -X POST -H 'Content-Type: application/json' --data-binary "$(head -1 "$B/bodies.jsonl")" http://127.0.0.1:$PORT/api/payment/webhook)" = OK \
    || { echo "webhook check failed" >&2; exit 1; }

ROWS=()
# wrk_run NAME CONNS URL [SCRIPT SCRIPT-ARG]
wrk_run() {
    local name=$1 c=$2 url=$3
    say "wrk $name c=$c (${DURATION}s)"
    local args=(-t2 -c"$c" -d"${DURATION}s" --latency)
    [ -n "${WRK_HEADER:-}" ] && args+=(-H "$WRK_HEADER")
    [ -n "${4:-}" ] && args+=(-s "$4" "$url" -- "$5") || args+=("$url")
    local o; o=$(wrk "${args[@]}" 2>&1) || { echo "$o" >&2; exit 1; }
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$o")
    p50=$(awk '$1=="50%" {print $2}' <<<"$o"); p99=$(awk '$1=="99%" {print $2}' <<<"$o")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$o"); non2xx=${non2xx:-0}
    local bad; bad=$(awk '/not OK:/ {print $3}' <<<"$o")
    ROWS+=("$name|$c|$rps|$p50|$p99|${non2xx}${bad:+ (not OK: $bad)}")
    eval "RPS_${name//[^a-z0-9]/_}_$c=$rps"
}
pgbench_run() {
    local c=$1
    say "pgbench webhook transaction c=$c (${DURATION}s)"
    local o; o=$("$PGBIN/pgbench" -n -M prepared -c "$c" -j 2 -T "$DURATION" -f "$ROOT/bench/webhook.pgbench" "$DATABASE_URL" 2>&1) || { echo "$o" >&2; exit 1; }
    local tps; tps=$(awk '/^tps/ {print $3}' <<<"$o")
    local lat; lat=$(awk '/latency average/ {print $4}' <<<"$o")
    ROWS+=("pgbench-webhook-tx|$c|$tps|avg ${lat}ms|-|-")
    eval "TPS_$c=$tps"
}

for c in 2 16; do
    wrk_run nginx-return-200 "$c" "http://127.0.0.1:$PORT/nginx-baseline"
    wrk_run api-pricing "$c" "http://127.0.0.1:$PORT/api/pricing"
done
wrk_run api-health 16 "http://127.0.0.1:$PORT/api/health"
for c in 2 16; do
    pgbench_run "$c"
    wrk_run webhook "$c" "http://127.0.0.1:$PORT/api/payment/webhook" "$ROOT/bench/webhook.lua" "$B/bodies.jsonl"
done

# The Mini App's polling path: an authenticated read of the caller's own (succeeded) payment.
WRK_HEADER="Authorization: tma $("$BIN/pinglass" sign-init-data --telegram-id 7)"
test "$(curl -s -o /dev/null -w '%{http_code}' -H "$WRK_HEADER" "http://127.0.0.1:$PORT/api/payment/status?payment_id=50007")" = 200 \
    || { echo "status check failed" >&2; exit 1; }
for c in 2 16; do
    wrk_run payment-status "$c" "http://127.0.0.1:$PORT/api/payment/status?payment_id=50007"
done
unset WRK_HEADER

# GET /metrics over a database the size of ~4,300 finished 23-photo jobs (100k task rows,
# 8.7k deliveries, 300 refunds): alone, and while /api/pricing is read at c16.
say "seeding 100k generation tasks for /metrics"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL'
INSERT INTO avatars (user_id, name, status) SELECT g, 'bench', 'ready' FROM generate_series(5001, 9348) g;
INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, status, succeeded, failed, deadline_at, finished_at)
SELECT a.user_id, a.id, p.id, 'pinglass', 23, CASE WHEN a.user_id <= 9300 THEN 'completed' ELSE 'processing' END,
       0, 0, now() + interval '1 hour', CASE WHEN a.user_id <= 9300 THEN now() END
FROM avatars a JOIN payments p ON p.user_id = a.user_id WHERE a.name = 'bench';
INSERT INTO generation_tasks (job_id, prompt_index, prompt_text, state, kie_task_id, run_at, submitted_at, finished_at)
SELECT j.id, i, 'bench prompt', s.state, CASE WHEN s.state <> 'queued' THEN 'bench-' || j.id || '-' || i END,
       now() - interval '1 hour', CASE WHEN s.state <> 'queued' THEN now() - interval '50 minutes' END,
       CASE WHEN s.state IN ('succeeded', 'failed') THEN now() END
FROM generation_jobs j CROSS JOIN generate_series(0, 22) i
CROSS JOIN LATERAL (SELECT CASE WHEN j.status = 'processing' THEN (CASE WHEN i < 12 THEN 'queued' ELSE 'running' END)
                                WHEN i = 22 AND j.id % 10 = 0 THEN 'failed' ELSE 'succeeded' END AS state) s;
INSERT INTO telegram_deliveries (job_id, chat_id, kind, batch_no, payload, state, give_up_at, sent_at, created_at)
SELECT j.id, j.user_id, 'album', b, '{}', CASE WHEN j.status = 'completed' THEN 'sent' ELSE 'pending' END,
       now() + interval '1 day', CASE WHEN j.status = 'completed' THEN now() END, now() - interval '30 minutes'
FROM generation_jobs j CROSS JOIN generate_series(0, 1) b;
INSERT INTO refunds (payment_id, job_id, amount_kopecks, reason, requested_by, state, finished_at,
                     bank_original_kopecks, bank_remaining_kopecks)
SELECT j.payment_id, j.id, 2169, 'bench', 'bench', 'succeeded', now(), p.amount_kopecks, p.amount_kopecks - 2169
FROM generation_jobs j JOIN payments p ON p.id = j.payment_id WHERE j.id % 10 = 0 AND j.status = 'completed';
ANALYZE;
SQL
curl -s "http://127.0.0.1:$PORT/metrics" | grep -qx 'pinglass_database_up 1' || { echo "metrics check failed" >&2; exit 1; }
QUERY=$(for _ in $(seq 50); do curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="pinglass_metrics_query_seconds" {print $2}'; done \
    | sort -g | awk '{v[NR]=$1} END {printf "%.1f ms median, %.1f ms max (50 scrapes)", v[int((NR+1)/2)]*1000, v[NR]*1000}')
wrk_run metrics 2 "http://127.0.0.1:$PORT/metrics"
wrk -t2 -c16 -d"${DURATION}s" "http://127.0.0.1:$PORT/api/pricing" >/dev/null 2>&1 &
LOAD=$!
wrk_run metrics-during-pricing-c16 2 "http://127.0.0.1:$PORT/metrics"
wait $LOAD

RSS=$(ps -o rss= --ppid $POOL | awk '{s+=$1; if ($1>m) m=$1} END {printf "%.1f MB max, %.1f MB avg", m/1024, s/NR/1024}')
START=$(python3 - "$BIN/pinglass" <<'PY'
import subprocess, sys, time
runs = []
for _ in range(30):
    t = time.perf_counter(); subprocess.run([sys.argv[1], "--help"], stdout=subprocess.DEVNULL); runs.append(time.perf_counter() - t)
runs.sort(); print(f"{runs[len(runs)//2]*1000:.1f} ms median, {runs[0]*1000:.1f} ms min")
PY
)
ratio() { python3 -c "a, b = float('${1:-0}' or 0), float('${2:-0}' or 0); print(f'{a/b:.2f}' if b else '-')"; }
{
    echo "# PinGlass benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION}s per run, $WORKERS workers (release build)"
    echo
    echo "| what | connections | req/s (tx/s) | p50 | p99 | non-2xx |"
    echo "|---|---|---|---|---|---|"
    for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
    echo
    echo "- /api/pricing ÷ nginx return 200: c2 $(ratio "$RPS_api_pricing_2" "$RPS_nginx_return_200_2"), c16 $(ratio "$RPS_api_pricing_16" "$RPS_nginx_return_200_16")"
    echo "- /api/payment/status ÷ /api/pricing: c2 $(ratio "$RPS_payment_status_2" "$RPS_api_pricing_2"), c16 $(ratio "$RPS_payment_status_16" "$RPS_api_pricing_16")"
    echo "- webhook ÷ pgbench of its transaction: c2 $(ratio "$RPS_webhook_2" "$TPS_2"), c16 $(ratio "$RPS_webhook_16" "$TPS_16")"
    echo "- /metrics database query with 100k tasks (pinglass_metrics_query_seconds): $QUERY"
    echo "- worker RSS after the runs: $RSS"
    echo "- \`pinglass --help\` wall time: $START"
    echo "- Mini App, everything the page loads: ${WEBAPP_REPORT##*webapp: }"
} | tee "$OUT"
say "written to $OUT"
