# shellcheck shell=bash
# heic: the system libheif that compress/heic loads with dlopen (the fast
# HEIC path; without it HEIC decodes in WebAssembly, several times slower).
# libheif1 is the runtime package (libheif.so.1, with libde265-0); the -dev
# package is not needed. HEIC_REQUIRE_SYSTEM=1 makes compress/heic's
# TestActive fail unless the tests really decode with it.
if ! ldconfig -p 2>/dev/null | grep -q 'libheif\.so\.1 '; then
  apt_install libheif1
fi
export HEIC_REQUIRE_SYSTEM=1
