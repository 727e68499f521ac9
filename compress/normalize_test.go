package compress_test

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// bombPNG returns a valid 8-bit greyscale PNG of w x h pixels, all black,
// whose IDAT is built from one repeated deflate block so that making it costs
// almost nothing: 30000 x 30000 (900 MB decoded) is about 0.9 MB.
func bombPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	const rowsPerBlock = 100
	require.Zero(t, h%rowsPerBlock)
	var blk bytes.Buffer
	fw, err := flate.NewWriter(&blk, flate.BestCompression)
	require.NoError(t, err)
	_, err = fw.Write(make([]byte, (w+1)*rowsPerBlock)) // filter byte 0 + zero pixels
	require.NoError(t, err)
	require.NoError(t, fw.Flush())
	block := blk.Bytes() // a non-final block ending on a byte boundary
	var z bytes.Buffer
	z.Write([]byte{0x78, 0xDA})
	for i := 0; i < h/rowsPerBlock; i++ {
		z.Write(block)
	}
	z.Write([]byte{0x03, 0x00}) // final empty fixed-Huffman block
	n := uint64(w+1) * uint64(h)
	var adler [4]byte // adler32 of n zero bytes: a = 1, b = n mod 65521
	binary.BigEndian.PutUint32(adler[:], uint32(n%65521)<<16|1)
	z.Write(adler[:])

	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(data)))
		out.Write(l[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.BigEndian.PutUint32(l[:], c.Sum32())
		out.Write(l[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	chunk("IHDR", ihdr)
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return out.Bytes()
}

func TestBombPNGIsValid(t *testing.T) {
	t.Parallel()
	// The generator itself must make a real PNG, or the bomb test proves nothing.
	small := bombPNG(t, 300, 200)
	img, err := png.Decode(bytes.NewReader(small))
	require.NoError(t, err)
	assert.Equal(t, image.Pt(300, 200), img.Bounds().Size())
}

// TestDecompressionBomb is not parallel: it measures process-wide allocation.
func TestDecompressionBomb(t *testing.T) {
	bomb := bombPNG(t, 30000, 30000)
	assert.InDelta(t, 1<<20, len(bomb), 600<<10, "about 1 MB")
	// Lift the side limit so that the pixel count is what refuses it.
	n, err := compress.New(compress.WithMaxDimension(60000))
	require.NoError(t, err)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var out bytes.Buffer
	_, err = n.Normalize(t.Context(), bytes.NewReader(bomb), &out)
	runtime.ReadMemStats(&after)

	require.ErrorIs(t, err, compress.ErrTooManyPixels)
	var e *compress.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 30000, e.Width)
	assert.Equal(t, int64(900_000_000), e.Actual)
	assert.Zero(t, out.Len(), "nothing written on error")
	// Decoding would need 900 MB; refusing from the header costs a few KB.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "memory must not grow with the declared size")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	photo := enginetest.EncodeJPEG(enginetest.Photo(200, 150, 1, false), 90)
	var pngBuf bytes.Buffer
	require.NoError(t, png.Encode(&pngBuf, enginetest.Photo(60, 40, 2, false)))
	big := enginetest.EncodeJPEG(enginetest.Photo(300, 300, 3, false), 95)
	sof := bytes.Index(photo, []byte{0xFF, 0xC0})
	require.Positive(t, sof)
	hugeJPEG := append([]byte{}, photo...)
	binary.BigEndian.PutUint16(hugeJPEG[sof+5:], 60000) // height
	binary.BigEndian.PutUint16(hugeJPEG[sof+7:], 60000) // width

	cases := []struct {
		name string
		in   []byte
		opts []compress.Option
		want error
	}{
		{"empty", nil, nil, compress.ErrCorrupt},
		{"html disguised as jpg", []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"), nil, compress.ErrUnsupportedFormat},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`), nil, compress.ErrUnsupportedFormat},
		{"pdf", []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"), nil, compress.ErrUnsupportedFormat},
		{"avif", append([]byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"), make([]byte, 40)...), nil, compress.ErrUnsupportedFormat},
		{"jpeg magic only", []byte{0xFF, 0xD8, 0xFF}, nil, compress.ErrCorrupt},
		{"truncated jpeg header", photo[:100], nil, compress.ErrCorrupt},
		{"truncated jpeg data", photo[:len(photo)/2], nil, compress.ErrCorrupt},
		{"truncated png", pngBuf.Bytes()[:pngBuf.Len()/2], nil, compress.ErrCorrupt},
		{"too many bytes", big, []compress.Option{compress.WithMaxInputBytes(int64(len(big) - 1))}, compress.ErrTooLarge},
		{"too many pixels", photo, []compress.Option{compress.WithMaxPixels(200*150 - 1)}, compress.ErrTooManyPixels},
		{"side too long", photo, []compress.Option{compress.WithMaxDimension(199)}, compress.ErrTooManyPixels},
		{"jpeg header bomb", hugeJPEG, nil, compress.ErrTooManyPixels},
		{"format disabled", pngBuf.Bytes(), []compress.Option{compress.WithFormats(compress.JPEG)}, compress.ErrUnsupportedFormat},
		{"heic without a decoder", enginetest.MarkerHEIC(), nil, compress.ErrUnsupportedFormat},
	}
	sentinels := []error{compress.ErrCorrupt, compress.ErrUnsupportedFormat, compress.ErrTooLarge, compress.ErrTooManyPixels, compress.ErrBudget}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(c.opts...)
			require.NoError(t, err)
			var out bytes.Buffer
			_, err = n.Normalize(t.Context(), bytes.NewReader(c.in), &out)
			require.ErrorIs(t, err, c.want)
			var e *compress.Error
			require.ErrorAs(t, err, &e, "refusals are typed")
			for _, s := range sentinels {
				if s != c.want {
					assert.NotErrorIs(t, err, s, "exactly one sentinel")
				}
			}
			assert.Zero(t, out.Len(), "nothing written on error")
		})
	}
}

func TestAcceptedExactlyAtLimits(t *testing.T) {
	t.Parallel()
	photo := enginetest.EncodeJPEG(enginetest.Photo(200, 150, 1, false), 90)
	n, err := compress.New(compress.WithMaxInputBytes(int64(len(photo))), compress.WithMaxPixels(200*150), compress.WithMaxDimension(200))
	require.NoError(t, err)
	res, err := n.Normalize(t.Context(), bytes.NewReader(photo), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, compress.JPEG, res.Format)
	assert.Equal(t, int64(len(photo)), res.InBytes)
}

func TestDeclaredTypeIsNotTrusted(t *testing.T) {
	t.Parallel()
	// A PNG named .jpg, a JPEG with trailing junk: decided by the bytes.
	var pngBuf bytes.Buffer
	require.NoError(t, png.Encode(&pngBuf, enginetest.Photo(60, 40, 2, false)))
	n, err := compress.New()
	require.NoError(t, err)
	res, err := n.Normalize(t.Context(), bytes.NewReader(pngBuf.Bytes()), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, compress.PNG, res.Format)
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = n.Normalize(ctx, bytes.NewReader(enginetest.EncodeJPEG(enginetest.Photo(64, 64, 1, false), 90)), io.Discard)
	require.ErrorIs(t, err, context.Canceled)
	var e *compress.Error
	assert.False(t, errors.As(err, &e), "cancellation is not a refusal of the input")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorIsReturned(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	_, err = n.Normalize(t.Context(), bytes.NewReader(enginetest.EncodeJPEG(enginetest.Photo(64, 64, 1, false), 90)), failingWriter{})
	require.ErrorContains(t, err, "disk full")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	cases := map[string]compress.Option{
		"zero input bytes": compress.WithMaxInputBytes(0),
		"negative pixels":  compress.WithMaxPixels(-1),
		"zero dimension":   compress.WithMaxDimension(0),
		"tiny long edge":   compress.WithMaxLongEdge(8),
		"huge long edge":   compress.WithMaxLongEdge(70000),
		"tiny budget":      compress.WithByteBudget(100),
		"quality inverted": compress.WithQuality(90, 80),
		"quality too high": compress.WithQuality(50, 101),
		"nil engine":       compress.WithEngine(nil),
		"no formats":       compress.WithFormats(),
		"unknown format":   compress.WithFormats("bmp"),
		"nil logger":       compress.WithLogger(nil),
		"nil decoder":      compress.WithDecoder(compress.HEIC, nil),
		"heic, no decoder": compress.WithFormats(compress.HEIC),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(opt)
			assert.Error(t, err)
			assert.Nil(t, n)
		})
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		head string
		want compress.Format
	}{
		{"jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF", compress.JPEG},
		{"png", "\x89PNG\r\n\x1a\n\x00\x00", compress.PNG},
		{"gif87", "GIF87a", compress.GIF},
		{"gif89", "GIF89a", compress.GIF},
		{"webp", "RIFF\x10\x00\x00\x00WEBPVP8 ", compress.WebP},
		{"heic", "\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", compress.HEIC},
		{"heif mif1 generic", "\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", compress.HEIC},
		{"avif", "\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", ""},
		{"riff wave", "RIFF\x10\x00\x00\x00WAVEfmt ", ""},
		{"bmp", "BM\x00\x00\x00\x00", ""},
		{"svg", "<svg xmlns=", ""},
		{"two bytes", "\xff\xd8", ""},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, c.want, compress.Sniff([]byte(c.head)))
		})
	}
}

func TestMetadataString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "none", compress.Metadata(0).String())
	assert.Equal(t, "exif,gps,icc", (compress.MetaEXIF | compress.MetaGPS | compress.MetaICC).String())
}

func TestDCTScale(t *testing.T) {
	for _, c := range []struct{ long, limit, want int }{
		{4032, 2048, 2},  // 2016 >= 95% of 2048
		{4000, 2048, 2},  // 2000
		{3800, 2048, 1},  // 1900 < 1945.6
		{8064, 2048, 4},  // 48 MP: 2016
		{16384, 2048, 8}, // 2048
		{2048, 2048, 1},  // at the limit: never shrink
		{1000, 2048, 1},  // smaller: never upscale
		{320, 160, 2},
		{319, 160, 2}, // ceil(319/2) = 160
		{303, 160, 2}, // ceil(303/2) = 152, exactly 95%
		{301, 160, 1}, // 151 < 152
	} {
		assert.Equal(t, c.want, compress.DCTScale(c.long, c.limit), "DCTScale(%d, %d)", c.long, c.limit)
	}
}
