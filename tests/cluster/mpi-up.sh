#!/usr/bin/env bash
# mpi-up.sh - Open MPI (Debian's openmpi-bin), for the live tests of the job model's
# `launcher: mpirun | mpiexec` (tests/live/test_launcher_live.py).
#
# Idempotent: installs the package only when mpirun is missing, checks that it starts two
# ranks on this machine, prints ONE summary line on stdout (progress: stderr).
# Must run as root (apt-get); needs no stdin.
#
# Open MPI refuses to run as root unless told (--allow-run-as-root, or OMPI_ALLOW_RUN_AS_ROOT=1
# and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1); the check below says so in its own environment, as the
# tests do in their jobs'. jobfleet's job scripts never add it (docs/job-model.md, the launcher).
set -euo pipefail
exec </dev/null

log() { echo "mpi-up: $*" >&2; }
die() { echo "mpi-up: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpiexec >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get to install openmpi-bin"
  log "installing openmpi-bin"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends openmpi-bin >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends openmpi-bin >&2; } \
    || die "apt-get could not install openmpi-bin"
fi
command -v mpirun >/dev/null 2>&1 || die "openmpi-bin installed no mpirun"

# Check it the way a job does: two ranks, each printing its rank. --oversubscribe: this
# machine may have fewer cores than ranks.
out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 \
  mpirun --oversubscribe -np 2 sh -c 'echo "rank $OMPI_COMM_WORLD_RANK"' 2>&1) \
  || die "mpirun -np 2 failed: $out"
[ "$(printf '%s\n' "$out" | sort)" = "$(printf 'rank 0\nrank 1')" ] \
  || die "mpirun -np 2 did not start ranks 0 and 1: $out"
version=$(mpirun --version 2>/dev/null | head -1)
echo "ready: ${version:-Open MPI} ($(command -v mpirun)); mpirun -np 2 started ranks 0 and 1"
