#!/usr/bin/env bash
# modules-up.sh - Environment Modules (Debian's environment-modules) and a tiny test module,
# for the live tests of the job model's `modules:` (tests/backends/local/test_local_environment.py,
# tests/live/test_environment_live.py).
#
# Idempotent: installs the package only when /etc/profile.d/modules.sh (or Lmod's init) is
# missing, (re)writes the module file, prints ONE summary line on stdout (progress: stderr).
# Must run as root (apt-get); needs no stdin.
#
# The test module is jftest/1.0 in $JOBFLEET_MODULES_DIR (default /tmp/jobfleet-modules):
# loading it sets JFTEST_LOADED=1 and JFTEST_VERSION=1.0. The tests point MODULEPATH at that
# directory; jobs find `module` by sourcing the site's init script (see docs/environment.md).
set -euo pipefail
exec </dev/null

DIR=${JOBFLEET_MODULES_DIR:-/tmp/jobfleet-modules}
log() { echo "modules-up: $*" >&2; }
die() { echo "modules-up: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
if [ ! -r /etc/profile.d/modules.sh ]; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get to install environment-modules"
  log "installing environment-modules"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends environment-modules >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends environment-modules >&2; } \
    || die "apt-get could not install environment-modules"
fi
[ -r /etc/profile.d/modules.sh ] || die "environment-modules installed no /etc/profile.d/modules.sh"

mkdir -p "$DIR/jftest"
chmod 755 "$DIR" "$DIR/jftest"
cat >"$DIR/jftest/1.0" <<'MODULE'
#%Module1.0
## jobfleet's test module: loading it sets JFTEST_LOADED=1.
setenv JFTEST_LOADED 1
setenv JFTEST_VERSION 1.0
MODULE
chmod 644 "$DIR/jftest/1.0"

# Check it the way a job does: a non-interactive shell sourcing the init script.
out=$(MODULEPATH="$DIR" sh -c '. /etc/profile.d/modules.sh && module load jftest/1.0 && echo "$JFTEST_LOADED"' 2>&1) \
  || die "module load jftest/1.0 failed: $out"
[ "$out" = 1 ] || die "module load jftest/1.0 did not set JFTEST_LOADED: $out"
version=$(MODULEPATH="$DIR" bash -c '. /etc/profile.d/modules.sh && module --version 2>&1 | head -1')
echo "ready: ${version:-environment modules}; test module jftest/1.0 in $DIR (MODULEPATH)"
