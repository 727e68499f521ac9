# shellcheck shell=bash
# compress: the cgo libvips engine (compress/vips, build tag vips) needs
# Debian's libvips-dev, pkg-config and a C compiler. Once they are present
# the vips tag is added so vet, staticcheck and the tests cover that engine
# too (its contract suite is the same as the pure-Go engine's). The pure-Go
# engine and the HEIC test (committed test data) need nothing installed.
# bench/compress/run.sh installs its own tools (vipsthumbnail, ImageMagick,
# hyperfine, heif-enc).
compress_vips_ready() {
  pkg-config --exists vips 2>/dev/null && command -v gcc >/dev/null 2>&1
}
if ! compress_vips_ready; then
  apt_install libvips-dev pkg-config gcc libc6-dev
fi
if compress_vips_ready && [ "$(go env CGO_ENABLED)" = "1" ]; then
  case " $GO_TEST_TAGS " in
    *" vips "*) ;;
    *) GO_TEST_TAGS="$GO_TEST_TAGS vips" ;;
  esac
else
  log "compress: libvips or cgo unavailable; the libvips engine is not tested"
fi
