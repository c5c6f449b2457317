#!/usr/bin/env bash
# A demo payment against `make run`: creates a payment for a demo Telegram user and prints
# the simulated bank's payment page; press Pay there, then check the status.
source "$(dirname "$0")/lib.sh"
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
export PINGLASS_ENV_FILE=${PINGLASS_ENV_FILE:-$(usable_dir "$ROOT/.run" "pinglass-run-$(id -u)" 2>/dev/null)/pinglass.env}
PORT=${PORT:-8080}
INIT=$("$BIN/pinglass" sign-init-data --telegram-id "${TELEGRAM_ID:-1001}")
ANSWER=$(curl -s -X POST -H "Authorization: tma $INIT" -H 'Content-Type: application/json' \
    -d "{\"tierId\":\"${TIER:-starter}\"}" "http://127.0.0.1:$PORT/api/payment/create")
echo "$ANSWER"
URL=$(printf '%s' "$ANSWER" | sed -n 's/.*"confirmationUrl":"\([^"]*\)".*/\1/p')
ID=$(printf '%s' "$ANSWER" | sed -n 's/.*"paymentId":"\([^"]*\)".*/\1/p')
[ -n "$URL" ] || { echo "payment creation failed" >&2; exit 1; }
cat <<MSG

Open the payment page and press Pay:  $URL
Then ask for the status:
  curl -H "Authorization: tma $INIT" "http://127.0.0.1:$PORT/api/payment/status?payment_id=$ID"
MSG
