#!/usr/bin/env bash
# jobfleet copy of /work/shared/cluster/slurm-up.sh (verified recipe, see docs/slurm-notes.md and
# /work/shared/cluster/README.md). Changed for jobfleet's tests: default SLURM_CI_MIN_JOB_AGE=10
# (was 300; Slurm 22.05 clamps anything below 2, including 0, to 2 and logs "error: MinJobAge must
# be at least 2"; records actually vanish MinJobAge + ~7-10 s after the job ends) and default
# SLURM_CI_CPUS=8 (was the real core count; 8 != real count uses SlurmdParameters=config_overrides
# as before; set SLURM_CI_CPUS= (empty) for the real count), and memory requests are enforced
# (SLURM_CI_OVER_MEMORY_KILL=1, see below). Nothing else changed.
# slurm-up.sh - bring up a single-node Slurm 22.05 cluster (Debian 12 packages)
# without systemd: munged + [mariadbd + slurmdbd] + slurmctld + slurmd.
#
# Idempotent: installs missing packages, (re)writes config under $SLURM_CI_STATE,
# starts only daemons that are not already running (from our pid files),
# waits until the node is usable and prints ONE summary line on stdout
# (progress goes to stderr). Must run as root; needs no stdin.
#
# Environment knobs (all optional):
#   SLURM_CI_STATE=/tmp/slurm-ci      directory owned by this script (config, state, logs, pids)
#   SLURM_CI_ACCOUNTING=1             1: private MariaDB + slurmdbd so that `sacct` works; 0: no accounting
#   SLURM_CI_CPUS=8                   CPUs to advertise (jobfleet default 8; empty = real count from `slurmd -C`);
#                                     a value other than the real count uses SlurmdParameters=config_overrides
#                                     and oversubscribes the host (more concurrent jobs)
#   SLURM_CI_KILL_INVALID_DEPEND=0    1: jobs whose dependency can never be met are cancelled
#                                     (default Slurm behaviour: stay PENDING, Reason=DependencyNeverSatisfied)
#   SLURM_CI_MIN_JOB_AGE=10           seconds a finished job stays visible in squeue/scontrol (jobfleet
#                                     default 10, Slurm's 300; 0 = never purge; see header above)
#   SLURM_CI_OVER_MEMORY_KILL=1       1: JobAcctGatherParams=OverMemoryKill, sampled every second: a job
#                                     step whose RSS passes its --mem (or DefMemPerCPU) is SIGKILLed
#                                     (without cgroups the only way to enforce it; 22.05 records
#                                     FAILED 0:9, batch step "CANCELLED by 0"); 0: not enforced,
#                                     JobAcctGatherFrequency=30 as before
#   SLURM_CI_LINK_ETC=1               symlink /etc/slurm/slurm.conf -> $SLURM_CI_STATE/etc/slurm.conf
#                                     (so clients work without SLURM_CONF); never replaces a real file
#   SLURM_CI_CLUSTER=ci  SLURM_CI_PARTITION=debug
#   SLURM_CI_CTLD_PORT=6817 SLURM_CI_SLURMD_PORT=6818 SLURM_CI_DBD_PORT=6819 SLURM_CI_DB_PORT=3307
#   SLURM_CI_TIMEOUT=90               seconds to wait for each daemon / the node
set -euo pipefail
exec </dev/null

STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}
ACCOUNTING=${SLURM_CI_ACCOUNTING:-1}
CLUSTER=${SLURM_CI_CLUSTER:-ci}
PARTITION=${SLURM_CI_PARTITION:-debug}
CTLD_PORT=${SLURM_CI_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CI_SLURMD_PORT:-6818}
DBD_PORT=${SLURM_CI_DBD_PORT:-6819}
DB_PORT=${SLURM_CI_DB_PORT:-3307}
MIN_JOB_AGE=${SLURM_CI_MIN_JOB_AGE:-10}
KILL_INVALID_DEPEND=${SLURM_CI_KILL_INVALID_DEPEND:-0}
LINK_ETC=${SLURM_CI_LINK_ETC:-1}
OVER_MEMORY_KILL=${SLURM_CI_OVER_MEMORY_KILL:-1}
TIMEOUT=${SLURM_CI_TIMEOUT:-90}
DB_PASS=slurmci

log() { echo "slurm-up: $*" >&2; }
die() { echo "slurm-up: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
T_ALL=$(now)

# ---------------------------------------------------------------- packages
PKGS=(munge slurmctld slurmd slurm-client)
[ "$ACCOUNTING" = 1 ] && PKGS+=(slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$p")
done
T_INSTALL=0.0
if [ ${#missing[@]} -gt 0 ]; then
    t=$(now)
    log "installing: ${missing[*]}"
    # Keep maintainer scripts from starting daemons via init scripts (no systemd here).
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
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
getent passwd slurm >/dev/null || die "user 'slurm' missing (should come with slurm packages)"
getent passwd munge >/dev/null || die "user 'munge' missing"

T_START=$(now)
# ---------------------------------------------------------------- helpers
# pid_alive PIDFILE BINARY -> prints the pid if the pid in PIDFILE is running BINARY
# (compares /proc/PID/exe with the resolved binary: /usr/sbin/slurmctld -> slurmctld-wlm via alternatives)
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
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
stop_pid() { # stop_pid PIDFILE EXE
    local pid
    pid=$(pid_alive "$1" "$2") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -d "/proc/$pid" ] || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- layout
mkdir -p "$STATE"/{etc,munge,state,spool,log,run}
chmod 755 "$STATE" "$STATE/etc"
chown munge:munge "$STATE/munge"; chmod 755 "$STATE/munge"   # socket dir must be o+x
chown slurm:slurm "$STATE/state" "$STATE/log" "$STATE/run"
chmod 755 "$STATE/spool" "$STATE/log" "$STATE/run"

HOST=$(hostname -s)
[ -n "$HOST" ] || die "empty hostname"
if ! getent hosts "$HOST" >/dev/null; then
    log "hostname '$HOST' does not resolve; adding '127.0.0.1 $HOST' to /etc/hosts"
    echo "127.0.0.1 $HOST" >> /etc/hosts
fi

# ---------------------------------------------------------------- munge (private socket + key)
MUNGE_SOCK=$STATE/munge/munge.socket.2
if [ ! -s "$STATE/munge/munge.key" ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$STATE/munge/munge.key" --force >&2
    else
        dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    fi
fi
chown munge:munge "$STATE/munge/munge.key"; chmod 400 "$STATE/munge/munge.key"
if ! pid_alive "$STATE/munge/munged.pid" /usr/sbin/munged >/dev/null; then
    rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
    runuser -u munge -- /usr/sbin/munged \
        --socket="$MUNGE_SOCK" --key-file="$STATE/munge/munge.key" \
        --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
        --seed-file="$STATE/munge/munged.seed" </dev/null >/dev/null 2>&1 \
        || die "munged failed, see $STATE/munge/munged.log"
    log "started munged"
fi
wait_for munge bash -c "munge -n -S '$MUNGE_SOCK' | unmunge -S '$MUNGE_SOCK'" || die "munge not answering"

# ---------------------------------------------------------------- node facts
read -r CPUS_REAL BOARDS SOCKETS CORES THREADS MEM_REAL < <(
    slurmd -C 2>/dev/null | head -1 | tr ' ' '\n' | awk -F= '
        $1=="CPUs"{c=$2} $1=="Boards"{b=$2} $1=="SocketsPerBoard"{s=$2}
        $1=="CoresPerSocket"{k=$2} $1=="ThreadsPerCore"{t=$2} $1=="RealMemory"{m=$2}
        END{print c, b, s, k, t, m}')
[ -n "${CPUS_REAL:-}" ] && [ -n "${MEM_REAL:-}" ] || die "could not parse 'slurmd -C'"
MEM=$(( MEM_REAL * 90 / 100 ))               # leave headroom, otherwise node may drain (Low RealMemory)
CPUS=${SLURM_CI_CPUS-8}; CPUS=${CPUS:-$CPUS_REAL}   # unset -> 8, set but empty -> real count
if [ "$CPUS" = "$CPUS_REAL" ]; then
    NODE_HW="CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS"
    SLURMD_PARAMS=""
else
    NODE_HW="CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1"
    SLURMD_PARAMS="SlurmdParameters=config_overrides"
fi
DEF_MEM=$(( MEM / CPUS )); [ "$DEF_MEM" -gt 512 ] && DEF_MEM=512
DEPEND_PARAMS=""; [ "$KILL_INVALID_DEPEND" = 1 ] && DEPEND_PARAMS="DependencyParameters=kill_invalid_depend"
ACCT_GATHER="JobAcctGatherFrequency=30"
[ "$OVER_MEMORY_KILL" = 1 ] && ACCT_GATHER="JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill"

# ---------------------------------------------------------------- slurm.conf
CONF=$STATE/etc/slurm.conf
{
cat <<EOF
# generated by slurm-up.sh - do not edit (rewritten on every run)
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MailProg=/bin/true
MpiDefault=none
# no cgroups: works in containers / hybrid cgroup v1 hosts
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
$ACCT_GATHER
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
SchedulerType=sched/backfill
# batch_sched_delay=0: start batch jobs at submit time (default 3 s delay -> ~1 job/s)
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
$DEPEND_PARAMS
$SLURMD_PARAMS
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
MaxJobCount=100000
MaxArraySize=100001
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
EOF
if [ "$ACCOUNTING" = 1 ]; then
cat <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# clients/ctld use this munge socket when talking to slurmdbd (AuthInfo alone is not enough)
AccountingStoragePass=$MUNGE_SOCK
EOF
else
echo "AccountingStorageType=accounting_storage/none"
fi
cat <<EOF
NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
} > "$CONF.new"
CONF_CHANGED=0
if ! cmp -s "$CONF.new" "$CONF"; then CONF_CHANGED=1; mv "$CONF.new" "$CONF"; else rm -f "$CONF.new"; fi
chmod 644 "$CONF"
export SLURM_CONF=$CONF

if [ "$LINK_ETC" = 1 ]; then
    mkdir -p /etc/slurm
    if [ -L /etc/slurm/slurm.conf ] || [ ! -e /etc/slurm/slurm.conf ]; then
        ln -sfn "$CONF" /etc/slurm/slurm.conf
    else
        log "NOTE: /etc/slurm/slurm.conf is a real file; not touching it - export SLURM_CONF=$CONF"
    fi
fi

# ---------------------------------------------------------------- MariaDB + slurmdbd
if [ "$ACCOUNTING" = 1 ]; then
    MY=$STATE/mysql
    mkdir -p "$MY"; chown mysql:mysql "$MY"; chmod 750 "$MY"
    cat > "$STATE/etc/my.cnf" <<EOF
[mysqld]
user=mysql
datadir=$MY/data
socket=$MY/mysqld.sock
pid-file=$MY/mysqld.pid
log-error=$MY/mariadb.err
bind-address=127.0.0.1
port=$DB_PORT
skip-name-resolve
innodb_buffer_pool_size=256M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
EOF
    chmod 644 "$STATE/etc/my.cnf"     # mariadb ignores world-writable option files
    if [ ! -d "$MY/data/mysql" ]; then
        mariadb-install-db --defaults-file="$STATE/etc/my.cnf" --auth-root-authentication-method=socket \
            --skip-test-db > "$STATE/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed, see $STATE/log/mariadb-install.log"
    fi
    if ! pid_alive "$MY/mysqld.pid" /usr/sbin/mariadbd >/dev/null; then
        setsid /usr/sbin/mariadbd --defaults-file="$STATE/etc/my.cnf" </dev/null >/dev/null 2>&1 &
        log "started mariadbd"
    fi
    wait_for mariadb mariadb-admin --socket="$MY/mysqld.sock" ping || die "mariadbd not answering, see $MY/mariadb.err"
    mariadb --socket="$MY/mysqld.sock" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || die "could not create DB user"

    cat > "$STATE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=slurm
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm "$STATE/etc/slurmdbd.conf"; chmod 600 "$STATE/etc/slurmdbd.conf"  # slurmdbd insists
    if ! pid_alive "$STATE/run/slurmdbd.pid" /usr/sbin/slurmdbd >/dev/null; then
        # slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF
        /usr/sbin/slurmdbd </dev/null >/dev/null 2>&1 || die "slurmdbd failed, see $STATE/log/slurmdbd.log"
        log "started slurmdbd"
    fi
    wait_for slurmdbd tcp_open "$DBD_PORT" || die "slurmdbd not listening, see $STATE/log/slurmdbd.log"
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if [ $CONF_CHANGED = 1 ]; then
    # node/port changes need a daemon restart, not just `scontrol reconfigure`
    stop_pid "$STATE/run/slurmd.pid" /usr/sbin/slurmd
    stop_pid "$STATE/run/slurmctld.pid" /usr/sbin/slurmctld
fi
if ! pid_alive "$STATE/run/slurmctld.pid" /usr/sbin/slurmctld >/dev/null; then
    /usr/sbin/slurmctld </dev/null >/dev/null 2>&1 || die "slurmctld failed, see $STATE/log/slurmctld.log"
    log "started slurmctld"
fi
wait_for slurmctld scontrol ping || die "slurmctld not answering, see $STATE/log/slurmctld.log"
if ! pid_alive "$STATE/run/slurmd.pid" /usr/sbin/slurmd >/dev/null; then
    /usr/sbin/slurmd -N "$HOST" </dev/null >/dev/null 2>&1 || die "slurmd failed, see $STATE/log/slurmd.log"
    log "started slurmd"
fi

node_ok() {
    local st
    st=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1)
    case "$st" in
        idle|mixed|allocated|completing) return 0 ;;
        drained*|draining|down*|drain*)  scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}
wait_for node node_ok || die "node $HOST not idle: $(sinfo -h -N -o '%N %T %E' 2>&1); see $STATE/log/slurmd.log"

T_DAEMONS=$(elapsed "$T_START")
echo "slurm-up: OK cluster=$CLUSTER node=$HOST cpus=$CPUS mem=${MEM}M partition=$PARTITION" \
     "accounting=$([ "$ACCOUNTING" = 1 ] && echo slurmdbd || echo none)" \
     "state=$(sinfo -h -n "$HOST" -o %T | head -1) SLURM_CONF=$CONF" \
     "install=${T_INSTALL}s daemons=${T_DAEMONS}s total=$(elapsed "$T_ALL")s"
