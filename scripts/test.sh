#!/usr/bin/env bash
# The whole test suite: install jobfleet with its test tools into ./.venv, run the linters,
# the type checker and every test. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "[test]"
cd "$repo"

echo "== live clusters"
# A single-node SLURM 22.05 with slurmdbd accounting, from Debian's packages (about 10 s;
# tests/cluster/slurm-up.sh). It needs root; without it the live SLURM tests skip, saying so.
# The cluster is left running for the next run; tests/cluster/slurm-down.sh stops it.
if [ "${JOBFLEET_LIVE_SLURM:-1}" = 0 ]; then
  echo "SLURM: skipped (JOBFLEET_LIVE_SLURM=0); live SLURM tests will be skipped"
elif [ "$(id -u)" != 0 ]; then
  echo "SLURM: skipped (starting a test cluster needs root); live SLURM tests will be skipped"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "SLURM: skipped (no apt-get to install it); live SLURM tests will be skipped"
else
  slurm_log="${TMPDIR:-/tmp}/jobfleet-slurm-up.log"
  if line=$(bash tests/cluster/slurm-up.sh 2>"$slurm_log"); then
    echo "SLURM: $line"
  else
    echo "SLURM: could not start (see $slurm_log); live SLURM tests will be skipped"
    tail -5 "$slurm_log" || true
  fi
fi
# A single-node Son of Grid Engine 8.1.9 from Debian's packages (tests/cluster/sge-up.sh),
# likewise root only; left running, tests/cluster/sge-down.sh stops it.
if [ "${JOBFLEET_LIVE_SGE:-1}" = 0 ]; then
  echo "Grid Engine: skipped (JOBFLEET_LIVE_SGE=0); live Grid Engine tests will be skipped"
elif [ "$(id -u)" != 0 ]; then
  echo "Grid Engine: skipped (starting a test cluster needs root); live Grid Engine tests will be skipped"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "Grid Engine: skipped (no apt-get to install it); live Grid Engine tests will be skipped"
else
  sge_log="${TMPDIR:-/tmp}/jobfleet-sge-up.log"
  if line=$(bash tests/cluster/sge-up.sh 2>"$sge_log"); then
    echo "Grid Engine: $line"
  else
    echo "Grid Engine: could not start (see $sge_log); live Grid Engine tests will be skipped"
    tail -5 "$sge_log" || true
  fi
fi

echo "== ruff check"; ruff check src tests bench examples
echo "== ruff format --check"; ruff format --check src tests bench examples
echo "== mypy --strict src"; mypy
echo "== pytest"
status=0
python -m pytest "$@" || status=$?
# pytest's 5 means no test ran: that is a failure of this script, not a pass.
exit "$status"
