#!/usr/bin/env bash
# The main job: install jobfleet into ./.venv and run 100 short jobs as one array on the
# local backend, waiting with a progress bar and printing a summary.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
exec bash "$repo/examples/hello_array.sh"
