package compress_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// deep returns photo converted to a 16-bit or many-channel image of the
// kind: "rgba64" (PNG truecolour 16), "nrgba64" (truecolour+alpha 16),
// "gray16", "gray",
// "paletted-trns".
func deep(photo *image.RGBA, kind string) image.Image {
	b := photo.Bounds()
	switch kind {
	case "rgba64", "nrgba64":
		m := image.NewNRGBA64(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := photo.RGBAAt(x, y)
				a := uint16(0xffff)
				if kind != "rgba64" {
					a = uint16(0x8000 + (x*y)&0x7fff)
				}
				r, g, bl := uint16(c.R)<<8|uint16(x&0xff), uint16(c.G)<<8|uint16(y&0xff), uint16(c.B)<<8
				m.SetNRGBA64(x, y, color.NRGBA64{R: r, G: g, B: bl, A: a})
			}
		}
		if kind == "rgba64" { // opaque: image/png writes truecolour 16
			o := image.NewRGBA64(b)
			copy(o.Pix, m.Pix)
			return o
		}
		return m
	case "gray16", "gray":
		m := image.NewGray16(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := photo.RGBAAt(x, y)
				m.SetGray16(x, y, color.Gray16{Y: uint16(c.G)<<8 | uint16(x&0xff)})
			}
		}
		if kind == "gray" {
			g := image.NewGray(b)
			for i := range g.Pix {
				g.Pix[i] = m.Pix[2*i]
			}
			return g
		}
		return m
	case "paletted-trns":
		pal := color.Palette{color.NRGBA{0, 0, 0, 0}}
		for i := 1; i < 256; i++ {
			pal = append(pal, color.NRGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255})
		}
		m := image.NewPaletted(b, pal)
		for i := range m.Pix {
			m.Pix[i] = photo.Pix[4*i] // red as index; 0 is transparent
		}
		return m
	}
	panic(kind)
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, m))
	return b.Bytes()
}

// greyAlpha16 returns photo's green as grey with a varying alpha, as a
// 16-bit grey+alpha PNG (colour type 4), which image/png never writes.
func greyAlpha16(photo *image.RGBA) []byte {
	b := photo.Bounds()
	pix := make([]byte, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			pix = append(pix, photo.RGBAAt(x, y).G, uint8(x), 0x80|uint8(y), uint8(x*y))
		}
	}
	return enginetest.RawPNG(b.Dx(), b.Dy(), 16, 4, false, pix)
}

// TestDecodeCostBoundsAllocations holds the decode cost estimate to what a
// Normalize really allocates, format by format: the heap allocated during
// one call (runtime.MemStats.TotalAlloc, which counts garbage too) must not
// exceed the estimate. Not parallel: other tests' allocations would count.
func TestDecodeCostBoundsAllocations(t *testing.T) {
	photo := gradient(1000, 700)
	read := func(name string) []byte {
		b, err := os.ReadFile("internal/jpegdec/testdata/" + name)
		require.NoError(t, err)
		return b
	}
	var gifBuf bytes.Buffer
	require.NoError(t, gif.Encode(&gifBuf, photo, &gif.Options{NumColors: 256}))
	interlaced16 := enginetest.RawPNG(900, 700, 16, 6, true, bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xff, 0xff}, 900*700))
	cases := []struct {
		name string
		data []byte
		opts []compress.Option
	}{
		{"png rgba64", encodePNG(t, deep(photo, "rgba64")), nil},
		{"png nrgba64", encodePNG(t, deep(photo, "nrgba64")), nil},
		{"png grey+alpha 16", greyAlpha16(photo), nil},
		{"png gray16", encodePNG(t, deep(photo, "gray16")), nil},
		{"png gray8", encodePNG(t, deep(photo, "gray")), nil},
		{"png paletted tRNS", encodePNG(t, deep(photo, "paletted-trns")), nil},
		{"png rgba8", encodePNG(t, photo), nil},
		{"png interlaced 16-bit", interlaced16, nil},
		{"png small long edge", encodePNG(t, deep(photo, "nrgba64")), []compress.Option{compress.WithMaxLongEdge(300)}},
		{"jpeg baseline 1/2", enginetest.EncodeJPEG(gradient(2600, 1800), 90), nil},
		{"jpeg baseline full", enginetest.EncodeJPEG(photo, 90), nil},
		{"jpeg rotated", enginetest.InsertSegment(enginetest.EncodeJPEG(photo, 90), 0xE1, append([]byte("Exif\x00\x00"), enginetest.EXIF(6, false)...)), nil},
		{"jpeg progressive", read("progressive.jpg"), nil},
		{"jpeg cmyk", read("cmyk.jpg"), nil},
		{"jpeg rgb", read("rgb.jpg"), nil},
		{"gif", gifBuf.Bytes(), nil},
		{"webp lossy", enginetest.WebPSamples()["webp-lossy"], nil},
		{"webp lossless", enginetest.WebPSamples()["webp-lossless"], nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := compress.New(tc.opts...)
			require.NoError(t, err)
			est, err := n.DecodeCost(tc.data)
			require.NoError(t, err)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = n.Normalize(context.Background(), bytes.NewReader(tc.data), io.Discard)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			got := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("estimate %.1f MiB, allocated %.1f MiB (%.2fx)", mib(est), mib(got), float64(est)/float64(got))
			// 64 KiB for the runtime's own allocations during the call.
			assert.LessOrEqual(t, got, est+64<<10, "the estimate must bound what one Normalize allocates")
		})
	}
}

// gradient is a cheap deterministic RGB picture with some texture.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			o := m.PixOffset(x, y)
			m.Pix[o], m.Pix[o+1], m.Pix[o+2], m.Pix[o+3] = uint8(x*255/w), uint8(y*255/h), uint8((x^y)&0x3f), 255
		}
	}
	return m
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// gatedEngine holds every Decode until the test lets it go, recording the
// decode budget in use seen from inside the critical section.
type gatedEngine struct {
	n       atomic.Pointer[compress.Normalizer]
	entered chan struct{}
	gate    chan struct{}
	calls   atomic.Int32
	mu      sync.Mutex
	peak    int64
	over    bool
}

func (g *gatedEngine) Name() string { return "gated" }

func (g *gatedEngine) Decode(ctx context.Context, src compress.Source, longEdge int) (compress.Picture, error) {
	g.calls.Add(1)
	inUse, limit := g.n.Load().DecodeBudget()
	g.mu.Lock()
	g.peak = max(g.peak, inUse)
	g.over = g.over || inUse > limit
	g.mu.Unlock()
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The pixels do not matter here: decode a tiny stand-in quickly.
	tiny := compress.Source{Data: tinyJPEG, Format: compress.JPEG, Width: 16, Height: 16, Orientation: 1}
	return compress.NewGoEngine(1).Decode(ctx, tiny, longEdge)
}

var tinyJPEG = enginetest.EncodeJPEG(enginetest.Photo(16, 16, 1, false), 80)

func newGated(t *testing.T, opts ...compress.Option) (*compress.Normalizer, *gatedEngine) {
	t.Helper()
	g := &gatedEngine{entered: make(chan struct{}, 64), gate: make(chan struct{})}
	n, err := compress.New(append([]compress.Option{compress.WithEngine(g), compress.WithMaxConcurrent(16)}, opts...)...)
	require.NoError(t, err)
	g.n.Store(n)
	return n, g
}

// TestDecodeBudgetBoundsConcurrentCalls runs six calls whose estimates sum
// to far more than the budget: at most two fit at once, and the budget in
// use, read inside the decoder, never exceeds the limit.
func TestDecodeBudgetBoundsConcurrentCalls(t *testing.T) {
	t.Parallel()
	in := enginetest.RawPNG(1000, 800, 16, 6, false, make([]byte, 1000*800*8))
	probe, err := compress.New()
	require.NoError(t, err)
	cost, err := probe.DecodeCost(in)
	require.NoError(t, err)
	budget := cost*5/2 + 1 // two fit, three do not
	n, g := newGated(t, compress.WithDecodeBudget(budget))

	const calls = 6
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			_, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
			assert.NoError(t, err)
		})
	}
	for i := range calls {
		<-g.entered // a call is inside the decoder, holding its share
		inUse, limit := n.DecodeBudget()
		assert.LessOrEqual(t, inUse, limit)
		if i%2 == 1 { // two inside: let both finish, two more come in
			assert.Equal(t, 2*cost, inUse, "two calls hold the budget")
			g.gate <- struct{}{}
			g.gate <- struct{}{}
		}
	}
	wg.Wait()
	inUse, limit := n.DecodeBudget()
	assert.Zero(t, inUse, "everything given back")
	assert.Equal(t, budget, limit)
	assert.False(t, g.over, "in use never above the limit")
	assert.Equal(t, 2*cost, g.peak, "never more than two at once")
}

// TestDecodeBudgetRefusesOversizeInput refuses an input whose estimate
// alone exceeds the whole budget, before the decoder is called.
func TestDecodeBudgetRefusesOversizeInput(t *testing.T) {
	t.Parallel()
	// 2000 x 2000 at 16 bits a channel: 32 MB decoded, a few KB encoded.
	in := enginetest.RawPNG(2000, 2000, 16, 6, false, make([]byte, 2000*2000*8))
	n, g := newGated(t, compress.WithDecodeBudget(16<<20))
	res, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
	require.ErrorIs(t, err, compress.ErrTooManyPixels, "mapped to 413 too_many_pixels")
	require.ErrorIs(t, err, compress.ErrDecodeBudget)
	var e *compress.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "budget", e.Op)
	assert.Equal(t, int64(16<<20), e.Limit)
	assert.Greater(t, e.Actual, e.Limit)
	assert.Contains(t, err.Error(), "decode memory budget")
	assert.Equal(t, 2000, res.InWidth)
	assert.Zero(t, g.calls.Load(), "refused before any pixel decoding")
	inUse, _ := n.DecodeBudget()
	assert.Zero(t, inUse)
}

// doneSpy reports the first time Normalize asks for its context's Done
// channel: with a concurrency slot free, that is the decode budget's wait.
type doneSpy struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func (c *doneSpy) Done() <-chan struct{} {
	c.once.Do(func() { close(c.called) })
	return c.Context.Done()
}

// TestDecodeBudgetWaitRespectsContext cancels a call waiting for budget
// held by another: it returns its context's error and takes nothing.
func TestDecodeBudgetWaitRespectsContext(t *testing.T) {
	t.Parallel()
	in := enginetest.RawPNG(1000, 800, 16, 2, false, make([]byte, 1000*800*6))
	probe, err := compress.New()
	require.NoError(t, err)
	cost, err := probe.DecodeCost(in)
	require.NoError(t, err)
	n, g := newGated(t, compress.WithDecodeBudget(max(cost*3/2, 16<<20)))
	if cost*2 <= max(cost*3/2, 16<<20) {
		t.Fatalf("cost %d too small for a one-image budget", cost)
	}

	first := make(chan error, 1)
	go func() {
		_, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
		first <- err
	}()
	<-g.entered // the first call holds the budget

	for _, preCancelled := range []bool{true, false} {
		parent, cancel := context.WithCancel(t.Context())
		defer cancel()
		spy := &doneSpy{Context: parent, called: make(chan struct{})}
		if preCancelled {
			cancel()
		}
		second := make(chan error, 1)
		go func() {
			_, err := n.Normalize(spy, bytes.NewReader(in), io.Discard)
			second <- err
		}()
		var err error
		select {
		case <-spy.called: // waiting (or about to) for decode memory
			require.False(t, preCancelled, "a cancelled call stops before waiting")
			cancel()
			err = <-second
		case err = <-second:
			require.True(t, preCancelled, "a live call waits for the budget")
		}
		require.ErrorIs(t, err, context.Canceled)
		assert.False(t, errors.Is(err, compress.ErrTooManyPixels))
		inUse, _ := n.DecodeBudget()
		assert.Equal(t, cost, inUse, "the cancelled call took nothing")
	}

	close(g.gate)
	require.NoError(t, <-first)
	inUse, _ := n.DecodeBudget()
	assert.Zero(t, inUse, "the first call gave its share back")
	assert.Equal(t, int32(1), g.calls.Load(), "the cancelled calls never decoded")
	// The whole budget is free again.
	_, err = n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
	require.NoError(t, err)
}

func TestWithDecodeBudgetValidates(t *testing.T) {
	t.Parallel()
	_, err := compress.New(compress.WithDecodeBudget(1 << 20))
	require.Error(t, err)
	n, err := compress.New()
	require.NoError(t, err)
	inUse, limit := n.DecodeBudget()
	assert.Zero(t, inUse)
	assert.Equal(t, int64(compress.DefaultDecodeBudget), limit)
}

// TestDecodeBudgetCollectsFreedMemory: a reservation that, with what
// earlier images freed, would take the heap's decode share past the budget
// first collects; while the freed bytes and the reservation fit, nothing
// forces a collection (a steady light load pays nothing).
func TestDecodeBudgetCollectsFreedMemory(t *testing.T) {
	t.Parallel()
	in := enginetest.RawPNG(900, 700, 16, 6, false, make([]byte, 900*700*8))
	probe, err := compress.New()
	require.NoError(t, err)
	cost, err := probe.DecodeCost(in)
	require.NoError(t, err)
	normalize := func(n *compress.Normalizer) {
		_, err := n.Normalize(t.Context(), bytes.NewReader(in), io.Discard)
		require.NoError(t, err)
	}

	roomy, err := compress.New(compress.WithDecodeBudget(4*cost + 1))
	require.NoError(t, err)
	for range 3 { // freed 0, 1, 2 costs plus this one: within 4
		normalize(roomy)
	}
	assert.Zero(t, roomy.Collections(), "three images within the budget, freed bytes included")
	normalize(roomy) // 3 freed + 1 reserved = 4 costs: still within
	normalize(roomy) // 4 freed + 1 reserved: over, so it collects first
	assert.EqualValues(t, 1, roomy.Collections(), "collected once the freed bytes and the reservation passed the budget")
	normalize(roomy) // counted from zero again
	assert.EqualValues(t, 1, roomy.Collections())

	tight, err := compress.New(compress.WithDecodeBudget(cost*3/2 + 1))
	require.NoError(t, err)
	for range 4 {
		normalize(tight)
	}
	assert.EqualValues(t, 3, tight.Collections(), "every image after the first follows one that freed most of the budget")
	inUse, _ := tight.DecodeBudget()
	assert.Zero(t, inUse)
}
