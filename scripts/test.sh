#!/usr/bin/env bash
# The whole test suite: install jobfleet with its test tools into ./.venv, run the linters,
# the type checker and every test. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "[test]"
cd "$repo"

echo "== live clusters"
# Single-node SLURM 22.05 (with slurmdbd accounting) and Son of Grid Engine 8.1.9 from
# Debian's packages (tests/cluster/*-up.sh, about 10 s each the first time). Starting them
# needs root; without a cluster its live tests skip, saying why. They are left running for
# the next run; tests/cluster/*-down.sh stops them.
start_cluster() {  # NAME SCRIPT SWITCH
  local name=$1 script=$2 switch=$3 log line
  if [ "${!switch:-1}" = 0 ]; then
    echo "$name: skipped ($switch=0); its live tests will be skipped"
  elif [ "$(id -u)" != 0 ]; then
    echo "$name: skipped (starting a test cluster needs root); its live tests will be skipped"
  elif ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: skipped (no apt-get to install it); its live tests will be skipped"
  else
    log="${TMPDIR:-/tmp}/jobfleet-$(basename "$script" .sh).log"
    if line=$(bash "$script" 2>"$log"); then
      echo "$name: $line"
    else
      echo "$name: could not start (see $log); its live tests will be skipped"
      tail -5 "$log" || true
    fi
  fi
}
start_cluster SLURM tests/cluster/slurm-up.sh JOBFLEET_LIVE_SLURM
start_cluster "Grid Engine" tests/cluster/sge-up.sh JOBFLEET_LIVE_SGE
# Environment Modules (Debian's environment-modules) and the test module jftest/1.0, for the
# tests of the job model's `modules:` on every backend (tests/cluster/modules-up.sh).
start_cluster "Environment Modules" tests/cluster/modules-up.sh JOBFLEET_LIVE_MODULES
# Open MPI (Debian's openmpi-bin), for the live tests of `launcher: mpirun | mpiexec` on every
# backend (tests/cluster/mpi-up.sh); without mpirun those tests skip, saying why.
start_cluster "Open MPI" tests/cluster/mpi-up.sh JOBFLEET_LIVE_MPI
# Debian's chromium, for the tests that open `jobfleet report --html` in a real headless
# browser (tests/cluster/chromium-up.sh); without chromium those tests skip, saying why.
start_cluster Chromium tests/cluster/chromium-up.sh JOBFLEET_CHROMIUM
# Debian's zsh, fish, jq and GNU parallel, for the tests that load `jobfleet completion
# SHELL` into each real shell and run docs/other-tools.md (tests/cluster/tools-up.sh).
start_cluster "Tools (zsh, fish, jq, GNU parallel)" tests/cluster/tools-up.sh JOBFLEET_TOOLS
# Snakemake 9 and its cluster-generic executor in ./.venv-snakemake (no root needed), for
# the tests that run a real workflow through jobfleet (tests/workflows).
if [ "${JOBFLEET_SNAKEMAKE:-1}" = 0 ]; then
  echo "Snakemake: skipped (JOBFLEET_SNAKEMAKE=0); its tests will be skipped"
elif line=$(bash tests/cluster/snakemake-up.sh 2>"${TMPDIR:-/tmp}/jobfleet-snakemake-up.log"); then
  echo "Snakemake: $line"
else
  echo "Snakemake: could not install (see ${TMPDIR:-/tmp}/jobfleet-snakemake-up.log); its tests will be skipped"
  tail -5 "${TMPDIR:-/tmp}/jobfleet-snakemake-up.log" || true
fi

echo "== ruff check"; ruff check src tests bench examples
echo "== ruff format --check"; ruff format --check src tests bench examples
# The site's own Python (its configuration and the extension that makes the generated
# pages); tests/docs builds the site itself, with warnings as errors.
echo "== ruff: docs/conf.py docs/_ext"
ruff check docs/conf.py docs/_ext && ruff format --check docs/conf.py docs/_ext
echo "== mypy --strict src"; mypy
status=0
if [ "$#" -gt 0 ]; then
  echo "== pytest $*"
  python -m pytest --durations=25 "$@" || status=$?
else
  # The tests that mostly wait out a walltime (marker waits_on_clock: SLURM's one-minute
  # minimum, enforced up to 30 s late) run in a second pytest process beside the rest, so
  # their ten minutes of waiting overlap the other tests instead of adding to them. Its
  # report follows the main one; either failing fails the run.
  side_dir=$(mktemp -d "${TMPDIR:-/tmp}/jobfleet-side.XXXXXX")
  echo "== pytest -m waits_on_clock (in the background; its report follows the main one)"
  python -m pytest -m waits_on_clock -p no:cacheprovider --basetemp="$side_dir/tmp" \
    --durations=10 >"$side_dir/log" 2>&1 &
  side=$!
  echo "== pytest -m 'not waits_on_clock'"
  python -m pytest -m "not waits_on_clock" --durations=25 || status=$?
  side_status=0
  wait "$side" || side_status=$?
  echo "== pytest -m waits_on_clock (ran beside the above; exit status $side_status)"
  cat "$side_dir/log"
  rm -rf "$side_dir"
  if [ "$status" = 0 ]; then status=$side_status; fi
fi
# pytest's 5 means no test ran: that is a failure of this script, not a pass.
exit "$status"
