//go:build vips && cgo

package engines

import (
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/vips"
)

const vipsAvailable = true

func newVips() (compress.Engine, error) { return vips.New() }
