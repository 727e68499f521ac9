package compress_test

import (
	"bytes"
	"image"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// TestConcurrentNormalize runs many images through one Normalizer at once
// and checks every output against the same image done alone: recycled
// buffers must never be shared between images in flight.
func TestConcurrentNormalize(t *testing.T) {
	t.Parallel()
	n, err := compress.New(compress.WithMaxLongEdge(200), compress.WithByteBudget(6<<10), compress.WithMaxConcurrent(4))
	require.NoError(t, err)
	var inputs [][]byte
	for _, in := range enginetest.Inputs() {
		inputs = append(inputs, in.Data)
	}
	noise := image.NewGray(image.Rect(0, 0, 300, 200)) // forces the shrink path
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * 2654435761 >> 13)
	}
	inputs = append(inputs, enginetest.EncodeJPEG(noise, 95))

	want := make([][]byte, len(inputs))
	for i, in := range inputs {
		var out bytes.Buffer
		_, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
		require.NoError(t, err)
		want[i] = out.Bytes()
	}
	var wg sync.WaitGroup
	for round := range 3 {
		for i, in := range inputs {
			wg.Go(func() {
				var out bytes.Buffer
				_, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
				if assert.NoError(t, err) {
					assert.True(t, bytes.Equal(want[i], out.Bytes()), "round %d input %d differs when run concurrently", round, i)
				}
			})
		}
	}
	wg.Wait()
}
