#!/usr/bin/env bash
# A small stand-in for cron on a development machine: runs the entries of a cron.d file
# (by default cron.d/pinglass, the same file a VM installs) at their minute, with their
# flock guard, and writes each entry's output to LOGDIR/<tag>.log instead of syslog (and what
# an entry still pipes to `logger` to LOGDIR/syslog.log).
# `make run` starts it; `make stop` stops it and whatever it started.
#
#   scripts/cron-loop.sh [--once] CRONFILE BINDIR LOGDIR LOCKDIR
#
# Understood schedules: minute and hour fields of `*`, `*/N` or a number (day, month and
# weekday must be `*`, which is all cron.d/pinglass uses). Entries due every minute also run
# at start, so a local run does not wait for the next minute. --once runs every entry one
# time at start (whatever its schedule) and waits for them: a quick check of the file.
set -u
ONCE=0
if [ "${1:-}" = "--once" ]; then ONCE=1; shift; fi
CRONFILE=${1:?cron file}; BINDIR=${2:?bin dir}; LOGDIR=${3:?log dir}; LOCKDIR=${4:?lock dir}
mkdir -p "$LOGDIR" "$LOCKDIR"
# Entries that keep `logger` in their command (the audit's: its report goes both to syslog and
# to cron's mail) get this stand-in, which appends to LOGDIR/syslog.log instead of syslog.
SHIM=$LOCKDIR/bin
mkdir -p "$SHIM"
cat >"$SHIM/logger" <<SH
#!/bin/sh
tag=logger
while [ \$# -gt 0 ]; do case \$1 in -t) tag=\$2; shift 2 ;; *) shift ;; esac; done
sed "s/^/\$tag: /" >>"$LOGDIR/syslog.log"
SH
chmod 755 "$SHIM/logger"
export PATH="$SHIM:$BINDIR:$PATH"

# field_matches FIELD VALUE
field_matches() {
    case "$1" in
        '*') return 0 ;;
        '*/'*) [ $(( $2 % ${1#*/} )) -eq 0 ] ;;
        *) [ "$1" -eq "$2" ] 2>/dev/null ;;
    esac
}

declare -a MIN HOUR CMD TAG
while read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] && continue          # SHELL=, PATH=, env lines
    read -r m h dom mon dow user rest <<<"$line"
    if [ "$dom $mon $dow" != "* * *" ]; then echo "cron-loop: skipping unsupported schedule: $line" >&2; continue; fi
    tag=$(sed -n 's/.*logger -t \([A-Za-z0-9_.-]*\).*/\1/p' <<<"$rest")
    cmd=$(sed -e 's/ *2>&1 *| *logger -t [A-Za-z0-9_.-]* *$//' -e "s#/run/lock/#$LOCKDIR/#g" <<<"$rest")
    MIN+=("$m"); HOUR+=("$h"); CMD+=("$cmd"); TAG+=("${tag:-cron}")
done <"$CRONFILE"
[ "${#CMD[@]}" -gt 0 ] || { echo "cron-loop: no entries in $CRONFILE" >&2; exit 1; }

start() { ( exec sh -c "${2:-${CMD[$1]}}" ) >>"$LOGDIR/${TAG[$1]}.log" 2>&1 & }

trap 'trap - TERM INT; kill -TERM 0 2>/dev/null; exit 0' TERM INT

if [ "$ONCE" = 1 ]; then
    for i in "${!CMD[@]}"; do start "$i"; done
    wait
    exit 0
fi
echo "cron-loop: ${#CMD[@]} entries from $CRONFILE, logs in $LOGDIR"
# The first runs end before the next minute (their --for cut to the seconds left, or one pass
# when under 30 s are left), so that minute's runs are not skipped by the flock of runs
# started mid-minute.
left=$(( 60 - 10#$(date +%S) - 3 ))
if [ "$left" -ge 30 ]; then first="s/--for [0-9]+s/--for ${left}s/"; else first="s/ --(for|every) [0-9]+[smh]//g"; fi
for i in "${!CMD[@]}"; do
    [ "${MIN[$i]}" = '*' ] && start "$i" "$(sed -E "$first" <<<"${CMD[$i]}")"
done
while true; do
    sleep $(( 60 - 10#$(date +%S) ))
    minute=$((10#$(date +%M))); hour=$((10#$(date +%H)))
    for i in "${!CMD[@]}"; do
        field_matches "${MIN[$i]}" "$minute" && field_matches "${HOUR[$i]}" "$hour" && start "$i"
    done
done
