package compress_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// headOnly serves head and then fails: an input refused after sniffing is
// never read further.
type headOnly struct {
	head []byte
	rest bool // set when a read went past head
}

func (h *headOnly) Read(p []byte) (int, error) {
	if len(h.head) == 0 {
		h.rest = true
		return 0, errors.New("read past the sniffed head")
	}
	k := copy(p, h.head)
	h.head = h.head[k:]
	return k, nil
}

func TestHEICRefusedWithoutDecoder(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	in := &headOnly{head: enginetest.MarkerHEIC()[:64]}
	var out bytes.Buffer
	_, err = n.Normalize(t.Context(), in, &out)
	require.ErrorIs(t, err, compress.ErrUnsupportedFormat)
	assert.NotErrorIs(t, err, compress.ErrCorrupt)
	var e *compress.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "sniff", e.Op)
	assert.Equal(t, compress.HEIC, e.Format, "HEIC is still recognised")
	assert.Contains(t, err.Error(), "HEIC decoding is not enabled")
	assert.Contains(t, err.Error(), "compress/heic")
	assert.False(t, in.rest, "refused from the sniffed head, before reading the rest")
	assert.Zero(t, out.Len())

	// Left out by WithFormats, a HEIC is refused the same way.
	n, err = compress.New(compress.WithFormats(compress.JPEG))
	require.NoError(t, err)
	_, err = n.Normalize(t.Context(), bytes.NewReader(enginetest.MarkerHEIC()), io.Discard)
	require.ErrorIs(t, err, compress.ErrUnsupportedFormat)
}

func TestHEICWithOption(t *testing.T) {
	t.Parallel()
	// WithFormats before the decoder: New checks once all options are in.
	n, err := compress.New(compress.WithFormats(compress.JPEG, compress.HEIC), heic.Option())
	require.NoError(t, err)
	var out bytes.Buffer
	res, err := n.Normalize(t.Context(), bytes.NewReader(enginetest.MarkerHEIC()), &out)
	require.NoError(t, err)
	assert.Equal(t, compress.HEIC, res.Format)
	assert.Equal(t, 1, res.Orientation)
	img := decodeJPEG(t, out.Bytes())
	require.Equal(t, image.Pt(240, 320), img.Bounds().Size(), "upright portrait")
	r, g, b := enginetest.MeanRGB(img, image.Rect(24, 24, 36, 36))
	assert.True(t, r > 150 && g < 90 && b < 90, "top-left should be red, got %.0f,%.0f,%.0f", r, g, b)

	// A HEIC decoder registered but HEIC left out: refused, as configured.
	n, err = compress.New(heic.Option(), compress.WithFormats(compress.JPEG))
	require.NoError(t, err)
	_, err = n.Normalize(t.Context(), bytes.NewReader(enginetest.MarkerHEIC()), io.Discard)
	require.ErrorIs(t, err, compress.ErrUnsupportedFormat)
}

func TestWithDecoderValidates(t *testing.T) {
	t.Parallel()
	ok := func(io.Reader) (image.Image, error) { return nil, errors.New("unused") }
	cases := map[string][]compress.Option{
		"nil decoder":             {compress.WithDecoder(compress.HEIC, nil)},
		"jpeg is native":          {compress.WithDecoder(compress.JPEG, ok)},
		"png is native":           {compress.WithDecoder(compress.PNG, ok)},
		"gif is native":           {compress.WithDecoder(compress.GIF, ok)},
		"webp is native":          {compress.WithDecoder(compress.WebP, ok)},
		"unknown format":          {compress.WithDecoder("avif", ok)},
		"empty format":            {compress.WithDecoder("", ok)},
		"heic format, no decoder": {compress.WithFormats(compress.JPEG, compress.HEIC)},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(opts...)
			assert.Error(t, err)
			assert.Nil(t, n)
		})
	}
	n, err := compress.New(compress.WithDecoder(compress.HEIC, ok))
	require.NoError(t, err)
	assert.NotNil(t, n)
}

// fakeHEIC is a HEIC header whose ispe box declares w x h, enough for
// Normalize's header scan; the "decoders" below ignore the bytes.
func fakeHEIC(w, h uint32) []byte {
	be := func(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	box := func(typ string, body ...[]byte) []byte {
		b := bytes.Join(body, nil)
		return append(append(be(uint32(8+len(b))), typ...), b...)
	}
	full := be(0) // version 0, flags 0
	ispe := box("ispe", full, be(w), be(h))
	ipco := box("ipco", ispe)
	ipma := box("ipma", full, be(1), []byte{0, 1, 1, 0x81}) // item 1: property 1
	pitm := box("pitm", full, []byte{0, 1})
	meta := box("meta", full, pitm, box("iprp", ipco, ipma))
	ftyp := box("ftyp", []byte("heic"), be(0), []byte("mif1heic"))
	return append(append(ftyp, meta...), make([]byte, 64)...)
}

func TestRegisteredDecoder(t *testing.T) {
	t.Parallel()
	in := fakeHEIC(40, 30)
	require.Equal(t, compress.HEIC, compress.Sniff(in))
	blue := func(w, h int) image.Image {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(m, m.Bounds(), image.NewUniform(color.RGBA{20, 20, 220, 255}), image.Point{}, draw.Src)
		return m
	}
	cases := []struct {
		name string
		dec  compress.DecodeFunc
		want error // nil: decodes
	}{
		{"decodes", func(r io.Reader) (image.Image, error) {
			if b, err := io.ReadAll(r); err != nil || !bytes.Equal(b, in) {
				return nil, errors.New("decoder must get the whole input")
			}
			return blue(40, 30), nil
		}, nil},
		{"decoder error is corrupt", func(io.Reader) (image.Image, error) { return nil, errors.New("bad hvcC") }, compress.ErrCorrupt},
		{"no image, no error", func(io.Reader) (image.Image, error) { return nil, nil }, compress.ErrCorrupt},
		{"larger than declared", func(io.Reader) (image.Image, error) { return blue(400, 300), nil }, compress.ErrCorrupt},
		{"panic", func(io.Reader) (image.Image, error) { panic("decoder bug") }, compress.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			dec := func(r io.Reader) (image.Image, error) { calls.Add(1); return c.dec(r) }
			n, err := compress.New(compress.WithDecoder(compress.HEIC, dec))
			require.NoError(t, err)
			var out bytes.Buffer
			res, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
			assert.Equal(t, int32(1), calls.Load())
			if c.want != nil {
				require.ErrorIs(t, err, c.want)
				var e *compress.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, "decode", e.Op)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, image.Pt(40, 30), image.Pt(res.OutWidth, res.OutHeight))
			r, g, b := enginetest.MeanRGB(decodeJPEG(t, out.Bytes()), image.Rect(10, 10, 30, 20))
			assert.True(t, b > 180 && r < 60 && g < 60, "decoder's pixels, got %.0f,%.0f,%.0f", r, g, b)
		})
	}
}

func TestRegisteredDecoderLastWins(t *testing.T) {
	t.Parallel()
	var first, second atomic.Int32
	dec := func(c *atomic.Int32) compress.DecodeFunc {
		return func(io.Reader) (image.Image, error) { c.Add(1); return image.NewGray(image.Rect(0, 0, 40, 30)), nil }
	}
	n, err := compress.New(compress.WithDecoder(compress.HEIC, dec(&first)), compress.WithDecoder(compress.HEIC, dec(&second)))
	require.NoError(t, err)
	_, err = n.Normalize(t.Context(), bytes.NewReader(fakeHEIC(40, 30)), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int32(0), first.Load())
	assert.Equal(t, int32(1), second.Load())
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err, "output must be a JPEG")
	return img
}

func TestFormats(t *testing.T) {
	t.Parallel()
	native := []compress.Format{compress.JPEG, compress.PNG, compress.GIF, compress.WebP}
	cases := []struct {
		name string
		opts []compress.Option
		want []compress.Format
	}{
		{"default: what decodes natively", nil, native},
		{"with the HEIC decoder", []compress.Option{heic.Option()}, compress.AllFormats()},
		{"restricted", []compress.Option{heic.Option(), compress.WithFormats(compress.HEIC, compress.JPEG)}, []compress.Format{compress.JPEG, compress.HEIC}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(c.opts...)
			require.NoError(t, err)
			assert.Equal(t, c.want, n.Formats())
		})
	}
}
