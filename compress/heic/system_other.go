//go:build !((linux || darwin) && (amd64 || arm64)) || nodynamic

package heic

import (
	"errors"
	"image"
)

// libheif is never loaded in this build: it was built with -tags nodynamic
// (HEIC stays inside the WebAssembly sandbox) or for a platform where this
// package does not dlopen libheif itself.
type libheif struct{ path, version string }

func openSystem() (*libheif, error) {
	return nil, errors.New("built without the system libheif (-tags nodynamic or an unsupported platform)")
}

func (*libheif) decode([]byte) (image.Image, error) { return nil, ErrDecode }
