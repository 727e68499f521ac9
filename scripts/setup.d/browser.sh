# shellcheck shell=bash
# examples/server's browser end-to-end tests drive a real headless Chromium
# through chromedp. Debian's chromium package is installed when missing; the
# tests read its path from CHROMIUM_PATH and, under CI=true, fail when it is
# absent. Set E2E_SCREENSHOTS=docs/screenshots to keep the screenshots the
# tests take (by default they go to a temporary folder).
# Sourced by scripts/test with lib.sh's helpers; idempotent and quick when
# chromium is already installed.
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
