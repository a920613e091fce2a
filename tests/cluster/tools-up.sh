#!/usr/bin/env bash
# tools-up.sh - Debian's zsh, fish, jq and GNU parallel: the shells the tests load
# `jobfleet completion SHELL` into (tests/cli/test_completion.py; bash is always there),
# and the tools of docs/other-tools.md's snippets, which the tests run
# (tests/workflows/test_other_tools.py).
#
# Idempotent: installs the packages only when one is missing, checks each one runs,
# prints ONE summary line on stdout (progress: stderr). Must run as root (apt-get).
set -euo pipefail
exec </dev/null

log() { echo "tools-up: $*" >&2; }
die() { echo "tools-up: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
missing=()
for tool in zsh fish jq parallel; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get to install ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } \
    || die "apt-get could not install ${missing[*]}"
fi
zsh_version=$(zsh -c 'echo $ZSH_VERSION') || die "zsh does not run"
fish_version=$(fish -c 'echo $version') || die "fish does not run"
jq_version=$(jq --version) || die "jq does not run"
parallel_version=$(parallel --version </dev/null | head -1) || die "GNU parallel does not run"
echo "ready: bash ${BASH_VERSION%%(*}, zsh $zsh_version, fish $fish_version, $jq_version, $parallel_version"
