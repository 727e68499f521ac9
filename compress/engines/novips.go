//go:build !vips || !cgo

package engines

import (
	"errors"

	"github.com/clinicpro/clinicalimages/compress"
)

const vipsAvailable = false

func newVips() (compress.Engine, error) { return nil, errors.New("engines: built without vips") }
