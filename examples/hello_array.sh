#!/usr/bin/env bash
# 100 short jobs as one array on the local backend: submit, wait (a progress bar on a
# terminal), then a summary and one element's output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

id=$(jobfleet submit --backend local --name hello --array 1-100 --cores 1 --walltime 5m \
       -- python3 "$here/work.py")
echo "submitted array job $id (100 elements) to the local backend"
jobfleet wait "$id"
jobfleet status "$id"
echo "element 42 wrote: $(jobfleet logs "$id" --index 42)"
