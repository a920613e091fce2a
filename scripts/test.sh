#!/usr/bin/env bash
# The whole test suite: install jobfleet with its test tools into ./.venv, run the linters,
# the type checker and every test. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "[test]"
cd "$repo"

echo "== live clusters"
echo "skipped: SLURM and Grid Engine backends do not exist yet (issues 3 and 4); only the local backend is tested live"

echo "== ruff check"; ruff check src tests bench examples
echo "== ruff format --check"; ruff format --check src tests bench examples
echo "== mypy --strict src"; mypy
echo "== pytest"
status=0
python -m pytest "$@" || status=$?
# pytest's 5 means no test ran: that is a failure of this script, not a pass.
exit "$status"
