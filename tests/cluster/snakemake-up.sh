#!/usr/bin/env bash
# snakemake-up.sh - Snakemake 9 and its cluster-generic executor in a virtual environment of
# their own (./.venv-snakemake; jobfleet's stays lean), for the tests that run a real
# workflow through jobfleet (tests/workflows/test_snakemake.py).
#
# Idempotent: installs only when the venv lacks snakemake; prints ONE summary line on
# stdout (progress: stderr). Needs Python >= 3.11 (Snakemake 9's floor) and the package
# index; not root.
set -euo pipefail
exec </dev/null

log() { echo "snakemake-up: $*" >&2; }
die() { echo "snakemake-up: ERROR: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="${JOBFLEET_SNAKEMAKE_VENV:-$repo/.venv-snakemake}"
if [ ! -x "$venv/bin/snakemake" ]; then
  py=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      py=$candidate; break
    fi
  done
  [ -n "$py" ] || die "Snakemake 9 needs Python >= 3.11"
  log "installing snakemake into $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "$py -m venv failed (install python3-venv)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "snakemake>=9,<10" "snakemake-executor-plugin-cluster-generic>=1.0" >&2 \
    || die "pip could not install snakemake"
fi
echo "ready: snakemake $("$venv/bin/snakemake" --version) with the cluster-generic executor ($venv)"
