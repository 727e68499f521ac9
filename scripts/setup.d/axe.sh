# shellcheck shell=bash
# axe: the accessibility checker the browser tests inject into the phone and
# desktop pages (TestBrowserPhoneQueue, TestDesktopFitsScreen,
# TestDesktopEditBodyMapCompare).
#  - axe-core from npm (pinned), installed into $TOOLS/node-axe. The test
#    reads the script's path from AXE_CORE_JS, injects it into the page
#    through chromedp and fails on any serious or critical violation.
# Under CI=true a missing axe-core fails that test (elsewhere it skips).
AXE_NPM_PACKAGE="axe-core@4.14.1"
axe_dir=$TOOLS/node-axe
axe_stamp=$axe_dir/.axe-package
if [ "$(cat "$axe_stamp" 2>/dev/null)" != "$AXE_NPM_PACKAGE" ] ||
  [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  log "npm install $AXE_NPM_PACKAGE"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-audit --no-fund --loglevel=error "$AXE_NPM_PACKAGE" >/dev/null
  echo "$AXE_NPM_PACKAGE" >"$axe_stamp"
fi
export AXE_CORE_JS=$axe_dir/node_modules/axe-core/axe.min.js
