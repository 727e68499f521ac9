//go:build vips && cgo

package vips_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/vips"
)

func TestContract(t *testing.T) {
	t.Parallel()
	e, err := vips.New()
	require.NoError(t, err)
	enginetest.Run(t, e)
}

func TestName(t *testing.T) {
	t.Parallel()
	e, err := vips.New()
	require.NoError(t, err)
	assert.Equal(t, "vips", e.Name())
}
