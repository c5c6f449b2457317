#!/usr/bin/env bash
# `make demo`: the whole PinGlass story on the simulator, for people to watch. Starts
# `make run` when it is not running, then plays two customers through the HTTP API (as the
# Mini App would) and the simulator's pages and control API; the background duties are the
# ones `make run` started from cron.d/pinglass (this script runs none of them):
#   1. success: avatar → reference photo → pay on the bank's page → generate → progress →
#      the photos and the final message in the customer's simulated Telegram chat;
#   2. failure: Kie is told to fail most photos (restored afterwards) → the job ends with
#      2 of 7 → below 70 % the job fails: its photos are withheld (none had gone out yet)
#      and the refund the rule gives (all of it) lands at the simulated bank.
# At the end it prints the pages to open: the chats, the bank's payment page with the refund,
# the job API. PORT / SIM_PORT pick the ports (default: those of the running `make run`, else
# 8080 / 8081); TELEGRAM_ID picks the first demo customer (default: new ones every run).
source "$(dirname "$0")/lib.sh"

RUN=$(usable_dir "$ROOT/.run" "pinglass-run-$(id -u)" 2>/dev/null)
ENV_FILE=${PINGLASS_ENV_FILE:-$RUN/pinglass.env}
# The ports of the running `make run` (its env file), unless chosen.
port_of() { env_file_value "$ENV_FILE" "$1" | sed -n 's#^http://127\.0\.0\.1:\([0-9]*\).*#\1#p'; }
PORT=${PORT:-$(port_of PUBLIC_BASE_URL)}; PORT=${PORT:-8080}
SIM_PORT=${SIM_PORT:-$(port_of TBANK_API_URL)}; SIM_PORT=${SIM_PORT:-8081}
API=http://127.0.0.1:$PORT
SIM=http://127.0.0.1:$SIM_PORT
LOGS=$RUN/logs/cron

if ! curl -sf -o /dev/null --max-time 5 "$API/api/health"; then
    say "PinGlass is not running on $API: starting it (make run)"
    PORT=$PORT SIM_PORT=$SIM_PORT bash "$ROOT/scripts/run.sh" >/dev/null
fi
curl -sf -o /dev/null --max-time 5 "$API/api/health" || { echo "PinGlass does not answer on $API/api/health" >&2; exit 1; }
curl -sf -o /dev/null --max-time 5 "$SIM/sim/control/kie/settings" \
    || { echo "the simulator does not answer on $SIM (this demo needs the simulated providers of 'make run')" >&2; exit 1; }
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
export PINGLASS_ENV_FILE=$ENV_FILE

# --- small helpers -------------------------------------------------------------------------

# json_value NAME: the first "NAME": value in the JSON on stdin (strings without quotes).
json_value() { { grep -o "\"$1\":\"\{0,1\}[^\",}]*" || true; } | head -1 | sed 's/^[^:]*:"\{0,1\}//'; }
step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
info() { printf '  %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '\n\033[1;31m%s\033[0m\n' "$*" >&2; exit 1; }

# A customer: USER (Telegram id) and AUTH (the Mini App's signed init data header).
customer() {
    USER_ID=$1
    AUTH="Authorization: tma $("$BIN/pinglass" sign-init-data --telegram-id "$USER_ID" --first-name "$2")"
}
api() {   # METHOD PATH [JSON]
    curl -s --max-time 20 -X "$1" -H "$AUTH" -H 'Content-Type: application/json' ${3:+-d "$3"} "$API$2"
}

# buy TIER: avatar, reference photo, payment, and the customer presses Pay on the bank's page
# (the page's own form POST, as a browser sends it). Sets AVATAR, PAYMENT (T-Bank id), PAY_PAGE,
# AMOUNT (kopecks).
buy() {
    AVATAR=$(api POST /api/avatars '{"name":"Demo"}' | json_value id)
    [ -n "$AVATAR" ] || fail "could not create an avatar for customer $USER_ID (at most 3 each: try another TELEGRAM_ID)"
    info "avatar $AVATAR created"
    local ref
    ref=$(mktemp)
    printf '\xff\xd8\xff\xe0demo-reference-%s-%s' "$USER_ID" "$(date +%s%N)" > "$ref"   # any JPEG does for the simulator
    curl -s -o /dev/null --max-time 20 -H "$AUTH" -H 'Content-Type: image/jpeg' --data-binary @"$ref" "$API/api/avatars/$AVATAR/references"
    rm -f "$ref"
    info "reference photo uploaded"
    local created
    created=$(api POST /api/payment/create "{\"tierId\":\"$1\",\"avatarId\":$AVATAR}")
    PAYMENT=$(printf '%s' "$created" | json_value paymentId)
    PAY_PAGE=$(printf '%s' "$created" | json_value confirmationUrl)
    AMOUNT=$(printf '%s' "$created" | json_value amount)
    [ -n "$PAYMENT" ] || fail "payment creation failed: $created"
    info "payment $PAYMENT of $(printf '%s' "$created" | json_value amountRub) ₽ created; the bank's page: $PAY_PAGE"
    curl -s -o /dev/null --max-time 20 -d action=pay "$PAY_PAGE"
    info "the customer pressed Pay on the bank's page"
    for _ in $(seq 40); do
        [ "$(api GET "/api/payment/status?payment_id=$PAYMENT" | json_value status)" = succeeded ] && { info "paid: the bank's notification reached PinGlass"; return; }
        sleep 0.5
    done
    fail "the payment is not paid after 20 s: the bank's notification did not reach the webhook (see $RUN/logs/sim.log and $RUN/logs/fcgi.log)"
}

# generate_and_watch: starts the generation and prints its progress until it ends. Sets JOB, JOB_JSON.
generate_and_watch() {
    local started
    started=$(api POST /api/generate "{\"avatarId\":$AVATAR}")
    JOB=$(printf '%s' "$started" | json_value jobId)
    [ -n "$JOB" ] || fail "generate failed: $started"
    info "job $JOB queued: $(printf '%s' "$started" | json_value totalPhotos) photos (dispatch and poll-kie run from cron)"
    local last="" since=$SECONDS status progress
    while :; do
        JOB_JSON=$(api GET "/api/jobs/$JOB")
        status=$(printf '%s' "$JOB_JSON" | json_value status)
        progress="$(printf '%s' "$JOB_JSON" | json_value completed) made, $(printf '%s' "$JOB_JSON" | json_value failed) failed of $(printf '%s' "$JOB_JSON" | json_value total)"
        if [ "$status $progress" != "$last" ]; then
            info "job $JOB $status: $progress"
            last="$status $progress"; since=$SECONDS
        fi
        case "$status" in completed|partial|failed) return ;; esac
        if [ $((SECONDS - since)) -ge 90 ]; then
            [ "$status" = queued ] && fail "dispatch has not started job $JOB in 90 s: see $LOGS/pinglass-dispatch.log"
            fail "no photo of job $JOB finished in 90 s: see $LOGS/pinglass-poll-kie.log and $LOGS/pinglass-dispatch.log"
        fi
        sleep 1
    done
}

# watch_chat: prints what reaches the customer's simulated chat until the final message.
watch_chat() {
    local last=-1 since=$SECONDS messages photos texts
    while :; do
        messages=$(curl -s --max-time 10 "$SIM/sim/control/telegram/messages?chat_id=$USER_ID" | sed 's/},{/}\n{/g')
        photos=$(printf '%s\n' "$messages" | grep -c '"kind":"photo"' || true)
        texts=$(printf '%s\n' "$messages" | grep -c '"kind":"text"' || true)
        if [ "$((photos + texts))" != "$last" ]; then
            [ "$last" -ge 0 ] && info "chat $USER_ID: $photos photos so far"
            last=$((photos + texts)); since=$SECONDS
        fi
        if [ "$texts" -gt 0 ]; then
            info "chat $USER_ID: the final message arrived:"
            printf '%s\n' "$messages" | grep '"kind":"text"' | tail -1 | sed -n 's/.*"text":"\([^"]*\)".*/\1/p' \
                | sed 's/\\n/\n/g' | sed 's/^/              │ /'
            return
        fi
        [ $((SECONDS - since)) -ge 60 ] && fail "deliver has not sent anything to chat $USER_ID in 60 s: see $LOGS/pinglass-deliver.log"
        sleep 1
    done
}

# --- the two stories -----------------------------------------------------------------------

BASE=${TELEGRAM_ID:-$(( 700000000 + $(date +%s) % 100000000 / 2 * 2 ))}
KIE=$SIM/sim/control/kie/settings

step "Story 1: a customer pays for 7 portraits and receives them in Telegram"
customer "$BASE" "Alice"
buy starter
generate_and_watch
JOB1=$JOB; USER1=$USER_ID; AUTH1=$AUTH
[ "$(printf '%s' "$JOB_JSON" | json_value status)" = completed ] \
    || info "note: the job ended $(printf '%s' "$JOB_JSON" | json_value status) (the simulated Kie's settings: $KIE)"
watch_chat

step "Story 2: Kie fails most portraits, and the money goes back"
customer "$((BASE + 1))" "Bob"
buy starter
# Kie fails the next 5 tasks it is given; whatever happens, the setting is restored at exit.
trap 'curl -s -o /dev/null --max-time 5 -H "Content-Type: application/json" -d "{\"failNext\":null}" "$KIE"' EXIT
curl -sf -o /dev/null --max-time 10 -H 'Content-Type: application/json' -d '{"failNext":5}' "$KIE" || fail "the simulator refused the Kie setting"
info "the simulated Kie will fail the next 5 photos it is given ($KIE)"
generate_and_watch
curl -s -o /dev/null --max-time 5 -H 'Content-Type: application/json' -d '{"failNext":null}' "$KIE"
trap - EXIT
info "Kie restored to normal"
REFUND=$(printf '%s' "$JOB_JSON" | sed -n 's/.*"refund":{\([^}]*\)}.*/\1/p' | json_value amount)
[ -n "$REFUND" ] || fail "job $JOB ended without a refund: $JOB_JSON"
if [ "$REFUND" = "$AMOUNT" ]; then WHY="fewer than 70 % of the photos made and none sent yet: they are withheld, everything back"
else WHY="the share of the photos not delivered"; fi
info "refund owed: $((REFUND / 100)).$(printf '%02d' $((REFUND % 100))) ₽ ($WHY)"
watch_chat
for i in $(seq 91); do
    AT_BANK=$(curl -s --max-time 10 "$SIM/sim/control/payments/$PAYMENT" | json_value refunded)
    [ "${AT_BANK:-0}" -ge "$REFUND" ] && break
    [ "$i" = 91 ] && fail "the refund has not reached the bank in 90 s: see $LOGS/pinglass-refund.log"
    sleep 1
done
info "the bank refunded $((AT_BANK / 100)).$(printf '%02d' $((AT_BANK % 100))) RUB of payment $PAYMENT (pinglass refund, T-Bank Cancel)"
for _ in $(seq 20); do
    STATUS=$(api GET "/api/payment/status?payment_id=$PAYMENT" | json_value status)
    [ "$STATUS" = refunded ] && break
    sleep 0.5
done
info "the payment is now $STATUS in PinGlass"

step "Open these to see it yourself"
row() { printf '    %-52s %s\n' "$1" "$2"; }
echo "  Telegram: what each customer received"
row "$SIM/sim/telegram/chats/$USER1" "story 1: the 7 portraits and the final message"
row "$SIM/sim/telegram/chats/$USER_ID" "story 2: the message saying 2 of 7 were made, none sent, all refunded"
row "$SIM/sim/telegram/chats" "every simulated chat"
echo "  The bank"
row "$SIM/pay/$PAYMENT" "story 2's payment page, showing the refund"
row "$SIM/sim/bank" "every payment and what the bank gave back"
echo "  The job API (as the Mini App asks it)"
echo "    curl -H '$AUTH1' $API/api/jobs/$JOB1"
echo "    curl -H '$AUTH' $API/api/jobs/$JOB"
echo "  Logs of the background duties: $LOGS/"
echo "  Stop everything with: make stop"
