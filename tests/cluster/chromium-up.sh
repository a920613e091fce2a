#!/usr/bin/env bash
# chromium-up.sh - Debian's chromium, for the test that opens `jobfleet report --html` in a real
# headless browser (tests/report/test_report_browser.py): it renders the page, checks the
# plot's bars are drawn and that the console printed no error, and takes a screenshot.
#
# Idempotent: installs the package only when chromium is missing, checks that it starts
# headless and renders a page, prints ONE summary line on stdout (progress: stderr).
# Must run as root (apt-get); needs no stdin.
set -euo pipefail
exec </dev/null

log() { echo "chromium-up: $*" >&2; }
die() { echo "chromium-up: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
if ! command -v chromium >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "no apt-get to install chromium"
  log "installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2 \
    || { apt-get update -q >&2 \
      && apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2; } \
    || die "apt-get could not install chromium"
fi
command -v chromium >/dev/null 2>&1 || die "the chromium package installed no chromium"

# Check it the way the test does: render a tiny page headless and read its DOM back.
page=$(mktemp --suffix=.html)
trap 'rm -f "$page"' EXIT
echo '<html><body><p id="x">ok</p><script>document.getElementById("x").textContent = "rendered"</script></body></html>' >"$page"
dom=$(timeout 60 chromium --headless --disable-gpu --no-sandbox --dump-dom "file://$page" 2>/dev/null) \
  || die "chromium --headless --dump-dom failed"
case "$dom" in
  *rendered*) ;;
  *) die "chromium --headless did not run the page's script: $dom" ;;
esac
version=$(timeout 30 chromium --version 2>/dev/null | head -1)
echo "ready: ${version:-chromium} ($(command -v chromium)); renders a page headless"
