#!/usr/bin/env bash
# `make stop`: stops what `make run` started (the pool gracefully, then nginx, then PostgreSQL).
source "$(dirname "$0")/lib.sh"
RUN=$(usable_dir "$ROOT/.run" "pinglass-run-$(id -u)" 2>/dev/null)
stopped=0
for name in fcgi sim sim-deliver cron cron-dispatch cron-poll-kie; do
    if [ -f "$RUN/$name.pid" ]; then
        pid=$(cat "$RUN/$name.pid")
        pkill -TERM -P "$pid" 2>/dev/null || true     # a loop's running duty, not only the loop
        [ "$name" = cron ] && kill -TERM -- "-$pid" 2>/dev/null   # cron-loop leads its own group
        if kill -TERM "$pid" 2>/dev/null; then
            stopped=1
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$RUN/$name.pid"
    fi
done
if [ -f "$RUN/nginx/nginx.pid" ]; then
    nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -s quit 2>/dev/null && stopped=1
    for _ in $(seq 100); do [ -f "$RUN/nginx/nginx.pid" ] || break; sleep 0.1; done
fi
[ "${1:-}" = "--services-only" ] && exit 0
[ -f "$RUN/pg/data/postmaster.pid" ] && stopped=1
pg_stop "$RUN/pg"
if [ "$stopped" = 1 ]; then echo "stopped"; else echo "nothing was running"; fi
