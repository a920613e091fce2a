#!/usr/bin/env bash
# slurmctld-restart.sh [stop|start|restart] - stop and/or start ONLY the slurmctld of the
# cluster slurm-up.sh started, leaving munged, mariadbd, slurmdbd and slurmd (and the jobs)
# running. For tests of a controller outage (tests/live/test_slurm_outage.py).
#
#   stop     SIGTERM the slurmctld recorded in $SLURM_CI_STATE/run/slurmctld.pid (after checking
#            that the pid runs /usr/sbin/slurmctld), SIGKILL after 30 s, as slurm-down.sh does
#   start    start it exactly as slurm-up.sh does, if it is not running, with the existing
#            configuration (never rewritten here: that would restart slurmd and kill the jobs),
#            then wait until `scontrol ping` and sinfo answer and the node is usable
#   restart  (default) stop, then start
#
# Idempotent; prints one line on stdout; must run as root. SLURM_CI_STATE and SLURM_CI_TIMEOUT
# as in slurm-up.sh.
set -euo pipefail
exec </dev/null

STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}
TIMEOUT=${SLURM_CI_TIMEOUT:-90}
ACTION=${1:-restart}
export SLURM_CONF=$STATE/etc/slurm.conf
PIDFILE=$STATE/run/slurmctld.pid

log() { echo "slurmctld-restart: $*" >&2; }
die() { echo "slurmctld-restart: ERROR: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
[ -s "$SLURM_CONF" ] || die "no $SLURM_CONF: start the cluster with tests/cluster/slurm-up.sh"
case $ACTION in stop|start|restart) ;; *) die "usage: $0 [stop|start|restart]" ;; esac

# pid_alive, wait_for and node_ok are slurm-up.sh's.
pid_alive() {
    local f=$1 bin pid exe
    bin=$(readlink -f "$2")
    [ -s "$f" ] || return 1
    pid=$(tr -dc '0-9' < "$f")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "${exe% (deleted)}" = "$bin" ] || return 1
    echo "$pid"
}
wait_for() { # wait_for DESCRIPTION CMD...
    local what=$1; shift
    local end=$(( $(date +%s) + TIMEOUT ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
node_ok() {
    local st
    st=$(sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null | head -1)
    case "$st" in
        idle|mixed|allocated|completing) return 0 ;;
        drained*|draining|down*|drain*)  scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}

if [ "$ACTION" != start ]; then
    if pid=$(pid_alive "$PIDFILE" /usr/sbin/slurmctld); then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        if [ -d "/proc/$pid" ]; then
            log "slurmctld (pid $pid) ignored SIGTERM for 30s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped slurmctld (pid $pid)"
    fi
    [ "$ACTION" = stop ] && { echo "slurmctld-restart: stopped"; exit 0; }
fi

if ! pid_alive "$PIDFILE" /usr/sbin/slurmctld >/dev/null; then
    /usr/sbin/slurmctld </dev/null >/dev/null 2>&1 || die "slurmctld failed, see $STATE/log/slurmctld.log"
    log "started slurmctld"
fi
wait_for slurmctld scontrol ping || die "slurmctld not answering, see $STATE/log/slurmctld.log"
wait_for node node_ok || die "node not usable: $(sinfo -h -N -o '%N %T %E' 2>&1)"
echo "slurmctld-restart: up, pid $(pid_alive "$PIDFILE" /usr/sbin/slurmctld), node $(sinfo -h -o %T | head -1)"
