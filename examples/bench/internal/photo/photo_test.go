package photo

import (
	"bytes"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMakeDeterministicDistinctAndNearTarget(t *testing.T) {
	t.Parallel()
	const target = 16 << 10
	a, err := Make(2, target)
	require.NoError(t, err)
	b, err := Make(2, target)
	require.NoError(t, err)
	assert.Equal(t, a, b, "same inputs, same bytes")
	assert.NotEqual(t, a[0], a[1], "photos differ")
	for _, p := range a {
		assert.InDelta(t, target, len(p), target*0.1)
		_, err := jpeg.DecodeConfig(bytes.NewReader(p))
		assert.NoError(t, err)
	}
	_, err = Make(0, target)
	assert.Error(t, err)
}
