#!/usr/bin/env bash
# jobfleet copy of /work/shared/cluster/sge-up.sh (verified recipe, see docs/sge-notes.md and
# /work/shared/cluster/README.md section 2). Changed for jobfleet's tests: default SGE_CI_SLOTS=8
# (was the real core count from nproc; 8 slots on this 2-core host oversubscribes it so more jobs
# run concurrently; set SGE_CI_SLOTS= (empty) for the real count). Nothing else changed.
# sge-up.sh - bring up a single-node Son of Grid Engine 8.1.9 cluster (Debian 12 packages
# gridengine-master/-exec/-client) without systemd: sge_qmaster + sge_execd, queue all.q.
#
# Idempotent. Prints ONE summary line on stdout (progress on stderr). Run as root, no stdin needed.
# Debian fixes the SGE paths: SGE_ROOT=/var/lib/gridengine, cell "default",
# spool /var/spool/gridengine/{spooldb,qmaster,execd}. This script treats that SGE installation
# as its own: on first use (or when the hostname changed) it WIPES the spool and re-initialises
# the cluster with the Debian init_cluster script. It refuses to do so if a qmaster it did not
# start is running. Our own bookkeeping (pid copies, templates, marker) lives in $SGE_CI_STATE.
#
# Environment knobs:
#   SGE_CI_STATE=/tmp/sge-ci    SGE_CI_SLOTS=8 (jobfleet default; empty = nproc)    SGE_CI_TIMEOUT=60
set -euo pipefail
exec </dev/null

STATE=${SGE_CI_STATE:-/tmp/sge-ci}
SLOTS=${SGE_CI_SLOTS-8}; SLOTS=${SLOTS:-$(nproc)}   # unset -> 8, set but empty -> nproc
TIMEOUT=${SGE_CI_TIMEOUT:-60}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
QMASTER_BIN=/usr/lib/gridengine/sge_qmaster
EXECD_BIN=/usr/lib/gridengine/sge_execd

log() { echo "sge-up: $*" >&2; }
die() { echo "sge-up: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
T_ALL=$(now)

HOST=$(hostname)
[ -n "$HOST" ] || die "empty hostname"
if ! getent hosts "$HOST" >/dev/null; then
    log "hostname '$HOST' does not resolve; adding '127.0.0.1 $HOST' to /etc/hosts"
    echo "127.0.0.1 $HOST" >> /etc/hosts
fi

# ---------------------------------------------------------------- packages (debconf preseeded)
PKGS=(gridengine-master gridengine-exec gridengine-client)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
done
T_INSTALL=0.0
if [ ${#missing[@]} -gt 0 ]; then
    t=$(now)
    log "installing: ${missing[*]}"
    for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
        printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string default\n%s shared/gridenginemaster string %s\n' \
            "$p" "$p" "$p" "$HOST"
    done | debconf-set-selections
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep init scripts from starting daemons during install
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || log "apt-get update failed (continuing)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
        [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
    [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    T_INSTALL=$(elapsed "$t")
    log "install took ${T_INSTALL}s"
fi
getent passwd sgeadmin >/dev/null || die "user sgeadmin missing"

T_START=$(now)
mkdir -p "$STATE"; chmod 755 "$STATE"

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
wait_for() { local end=$(( $(date +%s) + TIMEOUT )); until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.3; done; }
stop_ours() { # stop_ours PIDFILE BINARY
    local pid; pid=$(pid_alive "$1" "$2") || return 0
    kill -TERM "$pid"; for _ in $(seq 1 300); do [ -d "/proc/$pid" ] || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- host names
# SGE compares the name a client claims with the reverse lookup of its IP. With
# "127.0.0.1 localhost" first in /etc/hosts, qmaster sees clients as "localhost" and refuses
# them ("access denied (client IP resolved to host name "localhost"...)") -> host_aliases.
IP=$(getent hosts "$HOST" | awk '{print $1; exit}')
RNAME=$(getent hosts "$IP" | awk '{print $2; exit}')
ALIASES="$HOST"
[ -n "$RNAME" ] && [ "$RNAME" != "$HOST" ] && ALIASES="$HOST $RNAME"

# ---------------------------------------------------------------- (re)initialise cluster
MARKER=$STATE/cluster-host
if [ "$(cat "$MARKER" 2>/dev/null)" != "$HOST" ] || [ ! -e "$SPOOL/spooldb/sge" ]; then
    if ! pid_alive "$STATE/qmaster.pid" "$QMASTER_BIN" >/dev/null \
       && pid_alive "$SPOOL/qmaster/qmaster.pid" "$QMASTER_BIN" >/dev/null; then
        die "an sge_qmaster not started by this script is running (pid $(cat "$SPOOL/qmaster/qmaster.pid")); stop it first"
    fi
    stop_ours "$STATE/execd.pid" "$EXECD_BIN"
    stop_ours "$STATE/qmaster.pid" "$QMASTER_BIN"
    log "initialising a fresh cluster for host $HOST"
    rm -rf "$SPOOL"/spooldb/* "$SPOOL"/qmaster/* "$SPOOL"/execd/*
    for d in "$SPOOL/spooldb" "$SPOOL/qmaster" "$SPOOL/qmaster/job_scripts" "$SPOOL/execd" "$COMMON"; do
        mkdir -p "$d"; chown sgeadmin:sgeadmin "$d"; chmod 755 "$d"
    done
    rm -f "$COMMON/accounting"
    [ -e "$COMMON/bootstrap" ] || install -m0644 -o sgeadmin -g sgeadmin /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
    su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOL/spooldb sgeadmin" sgeadmin \
        > "$STATE/init_cluster.log" 2>&1 || die "init_cluster failed, see $STATE/init_cluster.log"
    rm -f "$MARKER"
fi
echo "$HOST" > "$COMMON/act_qmaster"
echo "$ALIASES" > "$COMMON/host_aliases"
chown sgeadmin:sgeadmin "$COMMON/act_qmaster" "$COMMON/host_aliases"
chmod 644 "$COMMON/act_qmaster" "$COMMON/host_aliases"

# ---------------------------------------------------------------- qmaster
if ! pid_alive "$STATE/qmaster.pid" "$QMASTER_BIN" >/dev/null; then
    rm -f "$SPOOL/qmaster/qmaster.pid"
    /usr/sbin/sge_qmaster </dev/null >/dev/null 2>&1 || die "sge_qmaster failed, see $SPOOL/qmaster/messages"
    wait_for pid_alive "$SPOOL/qmaster/qmaster.pid" "$QMASTER_BIN" || die "sge_qmaster did not start, see $SPOOL/qmaster/messages"
    cp "$SPOOL/qmaster/qmaster.pid" "$STATE/qmaster.pid"
    log "started sge_qmaster (pid $(cat "$STATE/qmaster.pid"))"
fi
wait_for qconf -sh || die "qmaster not answering: $(qconf -sh 2>&1 | head -2)"

# ---------------------------------------------------------------- configuration (Add or Modify)
T=$STATE/templates; mkdir -p "$T"
cat > "$T/exechost" <<EOF
hostname $HOST
load_scaling NONE
complex_values NONE
user_lists NONE
xuser_lists NONE
projects NONE
xprojects NONE
usage_scaling NONE
report_variables NONE
EOF
printf 'group_name @allhosts\nhostlist %s\n' "$HOST" > "$T/allhosts"
cat > "$T/smp" <<'EOF'
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
cat > "$T/all.q" <<EOF
qname                 all.q
hostlist              @allhosts
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               smp
rerun                 FALSE
slots                 $SLOTS
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
s_rt                  INFINITY
h_rt                  INFINITY
s_cpu                 INFINITY
h_cpu                 INFINITY
s_fsize               INFINITY
h_fsize               INFINITY
s_data                INFINITY
h_data                INFINITY
s_stack               INFINITY
h_stack               INFINITY
s_core                INFINITY
h_core                INFINITY
s_rss                 INFINITY
h_rss                 INFINITY
s_vmem                INFINITY
h_vmem                INFINITY
EOF
q() { qconf "$@" >>"$STATE/qconf.log" 2>&1 || die "qconf $* failed: $(tail -2 "$STATE/qconf.log")"; }
listed() { qconf "$1" 2>/dev/null | grep -xF "$2" >/dev/null; }
listed -sh "$HOST" || q -ah "$HOST"
listed -ss "$HOST" || q -as "$HOST"
if listed -sel "$HOST"; then q -Me "$T/exechost"; else q -Ae "$T/exechost"; fi
if listed -shgrpl @allhosts; then q -Mhgrp "$T/allhosts"; else q -Ahgrp "$T/allhosts"; fi
if listed -spl smp; then q -Mp "$T/smp"; else q -Ap "$T/smp"; fi
if listed -sql all.q; then q -Mq "$T/all.q"; else q -Aq "$T/all.q"; fi
# global config: allow root/system uids to run jobs (default min_uid/min_gid 1000), fast load
# reports, accounting file flushed immediately (qacct sees jobs ~at once). -Mconf takes the
# configuration name from the FILE NAME, hence "global".
qconf -sconf global > "$T/global"
sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
       -e 's/^load_report_time .*/load_report_time 00:00:05/' "$T/global"
awk 'BEGIN{skip=0} /^reporting_params/{print "reporting_params accounting=true reporting=false flush_time=00:00:01 accounting_flush_time=00:00:00 joblog=false sharelog=00:00:00"; skip=1; next}
     skip && /^[ \t]/ {next} {skip=0; print}' "$T/global" > "$T/global.new" && mv "$T/global.new" "$T/global"
q -Mconf "$T/global"
# scheduler: run every second and right after submits/finishes (default interval 15 s)
qconf -ssconf > "$T/sconf"
sed -i -e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
       -e 's/^flush_finish_sec .*/flush_finish_sec 1/' -e 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
       -e 's/^load_adjustment_decay_time .*/load_adjustment_decay_time 0:0:0/' "$T/sconf"
q -Msconf "$T/sconf"

# ---------------------------------------------------------------- execd
if ! pid_alive "$STATE/execd.pid" "$EXECD_BIN" >/dev/null; then
    rm -f "$SPOOL"/execd/*/execd.pid
    SGE_CI_STATE=$STATE /usr/sbin/sge_execd </dev/null >/dev/null 2>&1 || die "sge_execd failed"
    found=""
    for _ in $(seq 1 100); do
        for f in "$SPOOL"/execd/*/execd.pid; do
            pid_alive "$f" "$EXECD_BIN" >/dev/null && { found=$f; break; }
        done
        [ -n "$found" ] && break; sleep 0.1
    done
    [ -n "$found" ] || die "sge_execd did not start, see $SPOOL/execd/*/messages"
    cp "$found" "$STATE/execd.pid"
    log "started sge_execd (pid $(cat "$STATE/execd.pid"))"
fi

queue_ok() { # all.q@HOST present, load reported and no state flags (u=unknown, E=error, d=disabled, a=alarm...)
    qstat -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1==q {found=1; if (NF==5 && $4!="-NA-") ok=1} END{exit !(found && ok)}'
}
wait_for queue_ok || die "queue all.q@$HOST not ready: $(qstat -f 2>&1 | tail -2)"
echo "$HOST" > "$MARKER"

echo "sge-up: OK host=$HOST aliases='$ALIASES' queue=all.q slots=$SLOTS SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL" \
     "install=${T_INSTALL}s daemons=$(elapsed "$T_START")s total=$(elapsed "$T_ALL")s"
