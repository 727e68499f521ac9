// Package engines picks a compress.Engine by name, so that commands and
// services can offer the engines this binary was built with: "go" always,
// "vips" when built with the vips build tag (cgo and libvips-dev).
package engines

import (
	"fmt"
	"strings"

	"github.com/clinicpro/clinicalimages/compress"
)

// Names lists the engines available in this binary, the default first.
func Names() []string {
	n := []string{"go"}
	if vipsAvailable {
		n = append(n, "vips")
	}
	return n
}

// New returns the engine called name ("go" or, with the vips build tag,
// "vips"). The empty name means "go".
func New(name string) (compress.Engine, error) {
	switch name {
	case "", "go":
		return compress.NewGoEngine(0), nil
	case "vips":
		if vipsAvailable {
			return newVips()
		}
		return nil, fmt.Errorf("engines: %q is not built into this binary (build with -tags vips); have %s", name, strings.Join(Names(), ", "))
	}
	return nil, fmt.Errorf("engines: unknown engine %q; have %s", name, strings.Join(Names(), ", "))
}
