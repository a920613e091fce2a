#!/usr/bin/env bash
# jobfleet copy of /work/shared/cluster/sge-down.sh (verified recipe, see docs/sge-notes.md and
# /work/shared/cluster/README.md section 2). Unchanged apart from this header.
# sge-down.sh [--purge] - stop the sge_execd / sge_qmaster started by sge-up.sh.
# Only pids recorded in $SGE_CI_STATE are signalled (after checking the binary); nothing by name.
# All jobs are deleted first (qdel -u '*'); leftover sge_shepherd processes are killed only if
# their environment carries our SGE_CI_STATE (i.e. they were forked by our execd).
#   --purge   also delete $SGE_CI_STATE; the next sge-up.sh then re-initialises the cluster spool.
set -uo pipefail
exec </dev/null
STATE=${SGE_CI_STATE:-/tmp/sge-ci}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
PURGE=0; [ "${1:-}" = "--purge" ] && PURGE=1
log() { echo "sge-down: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
if [ ! -d "$STATE" ]; then echo "sge-down: nothing to do ($STATE absent)"; exit 0; fi

pid_alive() { # pid_alive PIDFILE BINARY
    local f=$1 bin pid exe
    bin=$(readlink -f "$2")
    [ -s "$f" ] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$bin" ] || return 1
    echo "$pid"
}
stopped=()

# 1. delete all jobs while qmaster is up
if pid_alive "$STATE/qmaster.pid" /usr/lib/gridengine/sge_qmaster >/dev/null; then
    if [ -n "$(timeout 20 qstat -u '*' 2>/dev/null)" ]; then
        timeout 20 qdel -f -u '*' >/dev/null 2>&1 || true
        for _ in $(seq 1 75); do [ -z "$(timeout 10 qstat -u '*' 2>/dev/null)" ] && break; sleep 0.2; done
        log "deleted remaining jobs"
    fi
fi

# 2. execd and qmaster: SIGTERM both, wait (qmaster's controlled shutdown takes ~10 s), then SIGKILL
pids=(); names=()
for spec in "sge_execd:$STATE/execd.pid:/usr/lib/gridengine/sge_execd" \
            "sge_qmaster:$STATE/qmaster.pid:/usr/lib/gridengine/sge_qmaster"; do
    IFS=: read -r name f bin <<<"$spec"
    pid=$(pid_alive "$f" "$bin") || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid"); names+=("$name")
done
for i in "${!pids[@]}"; do
    for _ in $(seq 1 300); do [ -d "/proc/${pids[$i]}" ] || break; sleep 0.1; done
    if [ -d "/proc/${pids[$i]}" ]; then
        kill -KILL "${pids[$i]}" 2>/dev/null; stopped+=("${names[$i]}(${pids[$i]},KILL)")
    else
        stopped+=("${names[$i]}(${pids[$i]})")
    fi
done
rm -f "$STATE/execd.pid" "$STATE/qmaster.pid"

# 3. shepherds (and thus jobs) forked by our execd
shep=/usr/lib/gridengine/sge_shepherd
for d in /proc/[0-9]*; do
    exe=$(readlink "$d/exe" 2>/dev/null) || continue
    [ "${exe% (deleted)}" = "$shep" ] || continue
    if tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -xF "SGE_CI_STATE=$STATE" >/dev/null; then
        kill -KILL "${d#/proc/}" 2>/dev/null && stopped+=("sge_shepherd(${d#/proc/})")
    fi
done

[ $PURGE = 1 ] && rm -rf "$STATE"
echo "sge-down: stopped: ${stopped[*]:-nothing running}$([ $PURGE = 1 ] && echo "; purged $STATE")"
