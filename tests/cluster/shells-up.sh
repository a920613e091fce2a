#!/usr/bin/env bash
# shells-up.sh - Debian's zsh and fish, for the tests that load `jobfleet completion SHELL`
# into each real shell and ask it to complete (tests/cli/test_completion.py); bash is
# always there.
#
# Idempotent: installs the packages only when a shell is missing, checks each one runs,
# prints ONE summary line on stdout (progress: stderr). Must run as root (apt-get).
set -euo pipefail
exec </dev/null

log() { echo "shells-up: $*" >&2; }
die() { echo "shells-up: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
if ! command -v zsh >/dev/null 2>&1 || ! command -v fish >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get to install zsh and fish"
  log "installing zsh and fish"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends zsh fish >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends zsh fish >&2; } \
    || die "apt-get could not install zsh and fish"
fi
zsh_version=$(zsh -c 'echo $ZSH_VERSION') || die "zsh does not run"
fish_version=$(fish -c 'echo $version') || die "fish does not run"
echo "ready: bash ${BASH_VERSION%%(*}, zsh $zsh_version, fish $fish_version"
