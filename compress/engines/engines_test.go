package engines_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress/engines"
)

func TestNew(t *testing.T) {
	t.Parallel()
	for _, name := range engines.Names() {
		e, err := engines.New(name)
		require.NoError(t, err, name)
		assert.Equal(t, name, e.Name())
	}
	e, err := engines.New("")
	require.NoError(t, err)
	assert.Equal(t, "go", e.Name(), "the default is the pure-Go engine")
	_, err = engines.New("imagemagick")
	assert.ErrorContains(t, err, "unknown engine")
}
