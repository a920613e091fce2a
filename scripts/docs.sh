#!/usr/bin/env bash
# The documentation site (docs/, docs/dependencies.md says why Sphinx): installs jobfleet
# with its docs extra into ./.venv, then builds the site into ./site with warnings as errors
# (a broken link, or a reference to a name the code no longer has, fails), as the tests do.
#   bash scripts/docs.sh           build site/ (open site/index.html)
#   bash scripts/docs.sh serve     build, then serve it on http://127.0.0.1:${PORT:-8000}
set -euo pipefail
source "$(dirname "$0")/_venv.sh" "[docs]"
cd "$repo"
python -m sphinx -W --keep-going -n -E -q -b html docs site
echo "built site/index.html"
if [ "${1:-build}" = serve ]; then
  python -m http.server --directory site --bind 127.0.0.1 "${PORT:-8000}"
fi
