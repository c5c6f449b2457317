#!/usr/bin/env bash
# The Mini App's weight as a phone downloads it: every file nginx serves from webapp/ (Telegram's
# own telegram-web-app.js aside), its size and its gzip -9 size (what gzip_static sends), and
# the totals. Fails loudly when the gzipped total is over the budget (docs/webapp.md#budget).
#
#   bash bench/webapp-size.sh            the table; exit 1 over budget
#   WEBAPP_BUDGET_BYTES=50000 bash ...   another budget (default 60 KB = 61440 bytes)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUDGET=${WEBAPP_BUDGET_BYTES:-61440}

cd "$ROOT/webapp"
total=0
gz_total=0
printf '%-28s %10s %10s\n' file bytes gzipped
while IFS= read -r f; do
    size=$(wc -c < "$f")
    gz=$(gzip -9 -n -c "$f" | wc -c)
    total=$((total + size))
    gz_total=$((gz_total + gz))
    printf '%-28s %10d %10d\n' "${f#./}" "$size" "$gz"
done < <(find . -type f ! -name '*.gz' | LC_ALL=C sort)
printf '%-28s %10d %10d\n' total "$total" "$gz_total"
awk -v g="$gz_total" -v b="$BUDGET" 'BEGIN { printf "webapp: %d bytes gzipped of a %d-byte budget (%.1f KB of %.1f KB)\n", g, b, g / 1024, b / 1024 }'
if [ "$gz_total" -gt "$BUDGET" ]; then
    printf '\033[1;31mwebapp: OVER BUDGET by %d bytes gzipped\033[0m\n' "$((gz_total - BUDGET))" >&2
    exit 1
fi
