#!/usr/bin/env bash
# The generation story against `make run`, without a browser: a demo user creates an avatar,
# uploads a reference photo, pays on the simulated bank (the simulator's customer control),
# starts a generation and watches it until its photos are stored; prints their links.
# TELEGRAM_ID picks the demo user (default 2001), TIER the set (starter, standard, premium).
source "$(dirname "$0")/lib.sh"
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
export PINGLASS_ENV_FILE=${PINGLASS_ENV_FILE:-$(usable_dir "$ROOT/.run" "pinglass-run-$(id -u)" 2>/dev/null)/pinglass.env}
PORT=${PORT:-8080}
SIM_PORT=${SIM_PORT:-8081}
API=http://127.0.0.1:$PORT
curl -sf -o /dev/null "$API/api/health" \
    || { echo "cannot reach $API: is 'make run' running? (PORT=… if you chose another port)" >&2; exit 1; }
AUTH="Authorization: tma $("$BIN/pinglass" sign-init-data --telegram-id "${TELEGRAM_ID:-2001}")"
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -1; }

AVATAR=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' -d '{"name":"Demo"}' "$API/api/avatars" | field id)
[ -n "$AVATAR" ] || { echo "could not create an avatar (at most 3 per user: try TELEGRAM_ID=$(( ${TELEGRAM_ID:-2001} + 1 )))" >&2; exit 1; }
echo "avatar $AVATAR"
# Any JPEG will do for the simulator; this one is made on the spot (the magic bytes count).
REF=$(mktemp); printf '\xff\xd8\xff\xe0demo-reference-%s' "$(date +%s%N)" > "$REF"
curl -s -H "$AUTH" -H 'Content-Type: image/jpeg' --data-binary @"$REF" "$API/api/avatars/$AVATAR/references"; echo
rm -f "$REF"
PAYMENT=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' -d "{\"tierId\":\"${TIER:-starter}\"}" "$API/api/payment/create" | field paymentId)
[ -n "$PAYMENT" ] || { echo "payment creation failed" >&2; exit 1; }
echo "payment $PAYMENT: paying on the simulated bank"
curl -s -o /dev/null -H 'Content-Type: application/json' -d "{\"paymentId\":\"$PAYMENT\",\"action\":\"pay\"}" \
    "http://127.0.0.1:$SIM_PORT/sim/control/customer"
for _ in $(seq 60); do
    [ "$(curl -s -H "$AUTH" "$API/api/payment/status?payment_id=$PAYMENT" | field status)" = succeeded ] && break
    sleep 0.5
done
STARTED=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' -d "{\"avatarId\":$AVATAR}" "$API/api/generate")
JOB=$(printf '%s' "$STARTED" | field jobId)
[ -n "$JOB" ] || { echo "generate failed: $STARTED" >&2; exit 1; }
echo "job $JOB started; watching it (dispatch and poll-kie run in the background)"
for _ in $(seq 120); do
    ANSWER=$(curl -s -H "$AUTH" "$API/api/jobs/$JOB")
    STATUS=$(printf '%s' "$ANSWER" | field status)
    printf '\r  %-10s %s' "$STATUS" "$(printf '%s' "$ANSWER" | sed -n 's/.*"progress":{\([^}]*\)}.*/\1/p')"
    case "$STATUS" in completed|partial|failed) break ;; esac
    sleep 1
done
echo
printf '%s' "$ANSWER" | grep -o '"url":"[^"]*"' | sed 's/"url":"\(.*\)"/  \1/'
