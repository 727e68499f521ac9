package compress_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rwcarlsen/goexif/exif"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// scanData returns a JPEG's bytes from its SOS marker to the end of EOI.
func scanData(t *testing.T, jpg []byte) []byte {
	t.Helper()
	for i := 2; i+4 <= len(jpg); {
		require.Equal(t, byte(0xFF), jpg[i], "marker at %d", i)
		if jpg[i+1] == 0xDA {
			// The scan ends at the first marker that is not a stuffed
			// zero or a restart: EOI.
			for k := i + 2 + (int(jpg[i+2])<<8 | int(jpg[i+3])); k+1 < len(jpg); k++ {
				if jpg[k] == 0xFF && jpg[k+1] != 0 && (jpg[k+1] < 0xD0 || jpg[k+1] > 0xD7) {
					require.Equal(t, byte(0xD9), jpg[k+1], "scan ends at EOI")
					return jpg[i : k+2]
				}
			}
			t.Fatal("no EOI")
		}
		i += 2 + (int(jpg[i+2])<<8 | int(jpg[i+3]))
	}
	t.Fatal("no SOS")
	return nil
}

// phoneJPEG is what the phone page uploads: a compliant baseline JPEG,
// here with EXIF and GPS, XMP, a comment naming a patient, and trailing
// bytes after EOI (as an MPF preview or a sloppy writer leaves).
func phoneJPEG(w, h, orientation int) (jpg, clean []byte) {
	clean = enginetest.EncodeJPEG(enginetest.Photo(w, h, 11, true), 85)
	jpg = enginetest.InsertSegment(clean, 0xFE, []byte("patient: Jane Doe NHI ZZZ0016"))
	jpg = enginetest.InsertSegment(jpg, 0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	jpg = enginetest.InsertSegment(jpg, 0xE1, append([]byte("Exif\x00\x00"), enginetest.EXIF(orientation, true)...))
	jpg = append(jpg, []byte("\xFF\xD8trailing MPF preview Jane Doe\xFF\xD9")...)
	return jpg, clean
}

func normalizeBytes(t *testing.T, n *compress.Normalizer, in []byte) (compress.Result, []byte, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
	return res, out.Bytes(), err
}

// TestPassthroughKeepsScanData: a compliant JPEG keeps its entropy-coded
// data bit for bit while its metadata and trailing bytes go.
func TestPassthroughKeepsScanData(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	in, clean := phoneJPEG(400, 300, 1)
	res, out, err := normalizeBytes(t, n, in)
	require.NoError(t, err)
	require.True(t, res.Passthrough, "a compliant JPEG takes the lossless path")
	assert.Equal(t, scanData(t, in), scanData(t, out), "scan data kept bit for bit")
	assert.Equal(t, scanData(t, clean), scanData(t, out))
	assert.Equal(t, int64(len(out)), res.OutBytes)
	assert.Equal(t, 400, res.OutWidth)
	assert.Equal(t, 300, res.OutHeight)
	assert.Equal(t, 85, res.Quality, "quality estimated from the tables")
	for _, m := range []compress.Metadata{compress.MetaEXIF, compress.MetaGPS, compress.MetaXMP, compress.MetaComment} {
		assert.True(t, res.Stripped.Has(m), "Stripped should report %v", m)
	}
	enginetest.AssertNoMetadata(t, out)
	_, err = exif.Decode(bytes.NewReader(out))
	assert.Error(t, err, "no EXIF (so no GPS) in the output")
	assert.NotContains(t, string(out), "Jane Doe")
	assert.True(t, bytes.HasSuffix(out, []byte{0xFF, 0xD9}), "ends at EOI: nothing after it survives")
	assert.Equal(t, 1, bytes.Count(out, []byte{0xFF, 0xD9}), "one EOI, the trailing file is gone")
	// The output is a JPEG that decodes to the input's pixels exactly.
	a, err := jpegDecode(in)
	require.NoError(t, err)
	b, err := jpegDecode(out)
	require.NoError(t, err)
	assert.Equal(t, a, b)

	// Deterministic, and a fixed point: passing the output through again
	// gives the same bytes.
	res2, again, err := normalizeBytes(t, n, out)
	require.NoError(t, err)
	assert.True(t, res2.Passthrough)
	assert.Equal(t, out, again)
}

// TestPassthroughOffByOption: WithPassthrough(false) re-encodes.
func TestPassthroughOffByOption(t *testing.T) {
	t.Parallel()
	n, err := compress.New(compress.WithPassthrough(false))
	require.NoError(t, err)
	in, _ := phoneJPEG(400, 300, 1)
	res, out, err := normalizeBytes(t, n, in)
	require.NoError(t, err)
	assert.False(t, res.Passthrough)
	assert.NotEqual(t, scanData(t, in), scanData(t, out))
}

// TestPassthroughNormalPath lists what must take the normal path, each
// checked against the same file that passes through under default options.
func TestPassthroughNormalPath(t *testing.T) {
	t.Parallel()
	compliant, _ := phoneJPEG(400, 300, 1)
	rotated, _ := phoneJPEG(400, 300, 6)
	progressive, err := os.ReadFile(filepath.Join("enginetest", "testdata", "prog422.jpg"))
	require.NoError(t, err)
	p3 := enginetest.EncodeJPEG(enginetest.Photo(200, 150, 3, false), 90)
	for _, seg := range enginetest.ICCSegments(enginetest.DisplayP3Profile()) {
		p3 = enginetest.InsertSegment(p3, 0xE2, seg)
	}
	cases := []struct {
		name string
		in   []byte
		opts []compress.Option
		want func(t *testing.T, res compress.Result)
	}{
		{"orientation 6", rotated, nil, func(t *testing.T, res compress.Result) {
			assert.Equal(t, 6, res.Orientation)
			assert.Equal(t, 300, res.OutWidth, "rotated upright")
		}},
		{"over the byte budget", compliant, []compress.Option{compress.WithByteBudget(int64(len(compliant)) / 2)}, func(t *testing.T, res compress.Result) {
			assert.LessOrEqual(t, res.OutBytes, int64(len(compliant))/2)
		}},
		{"over the long edge", compliant, []compress.Option{compress.WithMaxLongEdge(200)}, func(t *testing.T, res compress.Result) {
			assert.Equal(t, 200, res.OutWidth)
		}},
		{"progressive", progressive, nil, nil},
		{"display p3", p3, nil, func(t *testing.T, res compress.Result) {
			assert.True(t, res.ColourConverted)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n, err := compress.New(c.opts...)
			require.NoError(t, err)
			res, out, err := normalizeBytes(t, n, c.in)
			require.NoError(t, err)
			assert.False(t, res.Passthrough, "must be decoded and encoded again")
			enginetest.AssertNoMetadata(t, out)
			if c.want != nil {
				c.want(t, res)
			}
		})
	}
}

// TestPassthroughNeverPassesCorruptData: truncated or damaged scan data is
// refused as corrupt or normalised, never stored as it came.
func TestPassthroughNeverPassesCorruptData(t *testing.T) {
	t.Parallel()
	_, clean := phoneJPEG(400, 300, 1)
	sos := len(clean) - len(scanData(t, clean))
	cases := map[string][]byte{
		"truncated":           clean[:len(clean)*2/3],
		"no EOI":              clean[:len(clean)-2],
		"marker in the scan":  append(append(bytes.Clone(clean[:sos+400]), 0xFF, 0xC4), clean[sos+402:]...),
		"restart in the scan": append(append(bytes.Clone(clean[:sos+400]), 0xFF, 0xD3), clean[sos+402:]...),
		"scan cut short":      append(bytes.Clone(clean[:sos+len(scanData(t, clean))/2]), 0xFF, 0xD9),
	}
	n, err := compress.New()
	require.NoError(t, err)
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			res, _, err := normalizeBytes(t, n, in)
			if err != nil {
				assert.ErrorIs(t, err, compress.ErrCorrupt)
			}
			assert.False(t, res.Passthrough, "never passed through")
		})
	}
}

// BenchmarkPassthrough normalises a compliant phone-sized JPEG (1600x1200,
// q85, as the phone page sends) with the lossless path off and on.
func BenchmarkPassthrough(b *testing.B) {
	in := enginetest.EncodeJPEG(enginetest.Photo(1600, 1200, 5, false), 85)
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			n, err := compress.New(compress.WithPassthrough(on))
			require.NoError(b, err)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				res, err := n.Normalize(b.Context(), bytes.NewReader(in), io.Discard)
				if err != nil || res.Passthrough != on {
					b.Fatalf("passthrough %v, err %v", res.Passthrough, err)
				}
			}
		})
	}
}

func jpegDecode(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }

// TestPassthroughWithinDecodeBudget: a compliant scan inside a file padded
// with metadata past the whole decode budget does not wait forever for
// budget it can never get; it takes the normal path, which refuses it.
func TestPassthroughWithinDecodeBudget(t *testing.T) {
	t.Parallel()
	_, clean := phoneJPEG(400, 300, 1)
	in := clean
	for range 300 { // 300 APP9 segments of 64 KiB: about 19 MiB of metadata
		in = enginetest.InsertSegment(in, 0xE9, bytes.Repeat([]byte{'x'}, 65000))
	}
	n, err := compress.New(compress.WithDecodeBudget(16 << 20))
	require.NoError(t, err)
	res, _, err := normalizeBytes(t, n, in)
	assert.False(t, res.Passthrough)
	assert.ErrorIs(t, err, compress.ErrTooManyPixels, "refused as over the decode budget")
}

// TestStartChecksWhileTheCallerStores: Start gives the passthrough's bytes
// before their check; Check confirms them, and they are Normalize's output.
// Any other input is final when Start returns.
func TestStartChecksWhileTheCallerStores(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	for name, c := range map[string]struct {
		orientation int
		passthrough bool
	}{"compliant": {1, true}, "turned": {6, false}} {
		t.Run(name, func(t *testing.T) {
			in, _ := phoneJPEG(400, 300, c.orientation)
			want, wantBytes, err := normalizeBytes(t, n, in)
			require.NoError(t, err)
			o, err := n.Start(t.Context(), bytes.NewReader(in))
			require.NoError(t, err)
			assert.Equal(t, c.passthrough, o.Result().Passthrough)
			replaced, err := o.Check(t.Context())
			require.NoError(t, err)
			assert.False(t, replaced)
			assert.Equal(t, want, o.Result())
			assert.Equal(t, wantBytes, o.Bytes())
			replaced, err = o.Check(t.Context())
			require.NoError(t, err, "Check again")
			assert.False(t, replaced)
		})
	}
}

// TestStartReplacesWhatFailsTheCheck: a file whose structure passes the
// rebuild but whose scan is cut short gets the passthrough's bytes from
// Start; Check then refuses them and either normalises the input the
// normal way (replaced, no longer a passthrough) or reports it corrupt,
// exactly as Normalize does.
func TestStartReplacesWhatFailsTheCheck(t *testing.T) {
	t.Parallel()
	_, clean := phoneJPEG(400, 300, 1)
	sos := len(clean) - len(scanData(t, clean))
	in := append(bytes.Clone(clean[:sos+len(scanData(t, clean))/2]), 0xFF, 0xD9)
	n, err := compress.New()
	require.NoError(t, err)
	o, err := n.Start(t.Context(), bytes.NewReader(in))
	require.NoError(t, err)
	require.True(t, o.Result().Passthrough, "a candidate until checked")
	first := bytes.Clone(o.Bytes())
	replaced, err := o.Check(t.Context())
	want, wantBytes, werr := normalizeBytes(t, n, in)
	if werr != nil {
		assert.ErrorIs(t, err, compress.ErrCorrupt)
		assert.ErrorIs(t, werr, compress.ErrCorrupt)
		return
	}
	require.NoError(t, err)
	assert.True(t, replaced)
	assert.False(t, o.Result().Passthrough)
	assert.Equal(t, want, o.Result())
	assert.Equal(t, wantBytes, o.Bytes())
	assert.NotEqual(t, first, o.Bytes())
}

// TestReleaseWaitsForTheCheck: an Output released before its check ends
// gives its buffers back only once the check is done with them; run with
// -race, a buffer reused while the check still reads it is reported.
func TestReleaseWaitsForTheCheck(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	in, _ := phoneJPEG(1200, 900, 1)
	for range 20 {
		o, err := n.Start(t.Context(), bytes.NewReader(in))
		require.NoError(t, err)
		require.True(t, o.Result().Passthrough)
		o.Release()
		assert.Nil(t, o.Bytes(), "no bytes after Release")
		// The next image takes the released buffers at once.
		_, out, err := normalizeBytes(t, n, in)
		require.NoError(t, err)
		require.NotEmpty(t, out)
	}
}
