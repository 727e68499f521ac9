package compress_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// fakeEngine records what Normalize hands an engine and fails or blocks on
// demand.
type fakeEngine struct {
	err     error
	gate    chan struct{} // when set, Decode waits for it
	active  atomic.Int32
	peak    atomic.Int32
	lastSrc compress.Source
	mu      sync.Mutex
}

func (f *fakeEngine) Name() string { return "fake" }

func (f *fakeEngine) Decode(ctx context.Context, src compress.Source, longEdge int) (compress.Picture, error) {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	f.lastSrc = src
	f.mu.Unlock()
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return compress.NewGoEngine(1).Decode(ctx, src, longEdge)
}

func TestEngineErrorsAreClassified(t *testing.T) {
	t.Parallel()
	in := enginetest.EncodeJPEG(enginetest.Photo(64, 48, 1, false), 90)
	typed := &compress.Error{Kind: compress.ErrTooManyPixels, Op: "decode"}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"plain error is corrupt data", errors.New("bad huffman code"), compress.ErrCorrupt},
		{"typed error passes through", typed, compress.ErrTooManyPixels},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(compress.WithEngine(&fakeEngine{err: c.err}), compress.WithPassthrough(false))
			require.NoError(t, err)
			res, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
			require.ErrorIs(t, err, c.want)
			assert.Equal(t, "fake", res.Engine)
		})
	}
}

func TestEngineGetsCheckedSource(t *testing.T) {
	t.Parallel()
	f := &fakeEngine{}
	n, err := compress.New(compress.WithEngine(f), compress.WithPassthrough(false))
	require.NoError(t, err)
	in := enginetest.InsertSegment(enginetest.EncodeJPEG(enginetest.Photo(64, 48, 1, false), 90), 0xE1,
		append([]byte("Exif\x00\x00"), enginetest.EXIF(8, true)...))
	_, err = n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
	require.NoError(t, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, compress.JPEG, f.lastSrc.Format)
	assert.Equal(t, 64, f.lastSrc.Width)
	assert.Equal(t, 48, f.lastSrc.Height)
	assert.Equal(t, 8, f.lastSrc.Orientation)
	assert.Equal(t, in, f.lastSrc.Data)
	assert.Nil(t, f.lastSrc.Decoder, "JPEG is decoded natively")
}

func TestEngineGetsRegisteredDecoder(t *testing.T) {
	t.Parallel()
	f := &fakeEngine{err: errors.New("stop after recording the source")}
	n, err := compress.New(compress.WithEngine(f), heic.Option())
	require.NoError(t, err)
	_, err = n.Normalize(t.Context(), bytes.NewReader(enginetest.MarkerHEIC()), io.Discard)
	require.ErrorIs(t, err, compress.ErrCorrupt)
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.Equal(t, compress.HEIC, f.lastSrc.Format)
	assert.Equal(t, 1, f.lastSrc.Orientation, "HEIC is never rotated by EXIF")
	assert.NotNil(t, f.lastSrc.Decoder, "the engine is handed the registered decoder")
}

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	f := &fakeEngine{gate: make(chan struct{})}
	n, err := compress.New(compress.WithEngine(f), compress.WithMaxConcurrent(2), compress.WithPassthrough(false))
	require.NoError(t, err)
	in := enginetest.EncodeJPEG(enginetest.Photo(32, 32, 1, false), 90)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			_, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
			assert.NoError(t, err)
		})
	}
	require.Eventually(t, func() bool { return f.active.Load() == 2 }, 5*time.Second, time.Millisecond)
	// A caller whose context ends while waiting gives up with its context's error.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err = n.Normalize(ctx, bytes.NewReader(in), io.Discard)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(f.gate)
	wg.Wait()
	assert.Equal(t, int32(2), f.peak.Load(), "never more than 2 at once")
}
