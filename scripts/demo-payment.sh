#!/usr/bin/env bash
# A demo payment against `make run`: creates a payment for a demo Telegram user and prints
# the simulated bank's payment page; press Pay there, then check the status.
source "$(dirname "$0")/lib.sh"
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
export PINGLASS_ENV_FILE=${PINGLASS_ENV_FILE:-$(usable_dir "$ROOT/.run" "pinglass-run-$(id -u)" 2>/dev/null)/pinglass.env}
PORT=${PORT:-8080}
# TELEGRAM_ID: the demo user (default 1001); TIER: starter, standard or premium.
curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/health" \
    || { echo "cannot reach http://127.0.0.1:$PORT: is 'make run' running? (PORT=… if you chose another port)" >&2; exit 1; }
INIT=$("$BIN/pinglass" sign-init-data --telegram-id "${TELEGRAM_ID:-1001}")
ANSWER=$(curl -s -X POST -H "Authorization: tma $INIT" -H 'Content-Type: application/json' \
    -d "{\"tierId\":\"${TIER:-starter}\"}" "http://127.0.0.1:$PORT/api/payment/create")
echo "$ANSWER"
case "$ANSWER" in *RATE_LIMIT_EXCEEDED*)
    echo "this demo user made 10 payments in 15 minutes; use another: TELEGRAM_ID=$(( ${TELEGRAM_ID:-1001} + 1 )) bash scripts/demo-payment.sh" >&2
    exit 1 ;;
esac
URL=$(printf '%s' "$ANSWER" | sed -n 's/.*"confirmationUrl":"\([^"]*\)".*/\1/p')
ID=$(printf '%s' "$ANSWER" | sed -n 's/.*"paymentId":"\([^"]*\)".*/\1/p')
[ -n "$URL" ] || { echo "payment creation failed" >&2; exit 1; }
cat <<MSG

Open the payment page and press Pay:  $URL
Then ask for the status:
  curl -H "Authorization: tma $INIT" "http://127.0.0.1:$PORT/api/payment/status?payment_id=$ID"
MSG
