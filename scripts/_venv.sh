# Sourced by scripts/demo.sh and scripts/test.sh: makes ./.venv with jobfleet installed.
# Works on a fresh Debian 12 with Python 3.11: installs python3-venv through apt when
# venv is missing and we are root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
extras="${1:-}"

pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "jobfleet: need Python >= 3.10 (apt-get install python3)" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python)
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "jobfleet: installing python3-venv (apt-get)" >&2
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$py" -m venv "$venv"
    else
      echo "jobfleet: '$py -m venv' failed; install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
# An install with the test extras also serves the demo.
stamp="$venv/.jobfleet-installed$extras"
fresh() { [ -f "$1" ] && [ ! "$repo/pyproject.toml" -nt "$1" ]; }
if ! fresh "$stamp" && { [ -n "$extras" ] || ! fresh "$venv/.jobfleet-installed[test]"; }; then
  echo "jobfleet: installing into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo$extras"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
