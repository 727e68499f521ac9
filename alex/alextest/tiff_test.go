package alextest_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)), nil))
	return b.Bytes()
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// tiffTag is one IFD entry for tiffBytes: SHORT or LONG values.
type tiffTag struct {
	tag, typ uint16
	vals     []uint32
}

// tiffBytes assembles a TIFF by hand, independently of package media's
// writer: one IFD per page, each page's tags then its strip data appended
// after all the IFDs; a StripOffsets value of 0 means "this page's strip".
func tiffBytes(bo byteOrder, pages [][]tiffTag, strips [][]byte) []byte {
	var out []byte
	if bo == binary.LittleEndian {
		out = []byte("II")
	} else {
		out = []byte("MM")
	}
	out = bo.AppendUint16(out, 42)
	out = bo.AppendUint32(out, 8)
	// IFD sizes, then strip positions.
	pos := uint32(8)
	ifdAt := make([]uint32, len(pages))
	for i, tags := range pages {
		ifdAt[i] = pos
		pos += 2 + 12*uint32(len(tags)) + 4
	}
	stripAt := make([]uint32, len(strips))
	for i, s := range strips {
		stripAt[i] = pos
		pos += uint32(len(s))
	}
	for i, tags := range pages {
		out = bo.AppendUint16(out, uint16(len(tags)))
		for _, tg := range tags {
			out = bo.AppendUint16(out, tg.tag)
			out = bo.AppendUint16(out, tg.typ)
			out = bo.AppendUint32(out, uint32(len(tg.vals)))
			v := tg.vals[0]
			if tg.tag == 273 && v == 0 {
				v = stripAt[i]
			}
			var cell [4]byte
			if tg.typ == 3 {
				bo.PutUint16(cell[:], uint16(v))
			} else {
				bo.PutUint32(cell[:], v)
			}
			out = append(out, cell[:]...)
		}
		next := uint32(0)
		if i+1 < len(pages) {
			next = ifdAt[i+1]
		}
		out = bo.AppendUint32(out, next)
	}
	for _, s := range strips {
		out = append(out, s...)
	}
	return out
}

// jpegPage is the IFD of a JPEG-compressed YCbCr page holding j (Go writes
// 4:2:0 JPEGs).
func jpegPage(j []byte, w, h int) []tiffTag {
	return []tiffTag{
		{256, 4, []uint32{uint32(w)}}, {257, 4, []uint32{uint32(h)}},
		{259, 3, []uint32{7}}, {262, 3, []uint32{6}}, {273, 4, []uint32{0}},
		{277, 3, []uint32{3}}, {278, 4, []uint32{uint32(h)}}, {279, 4, []uint32{uint32(len(j))}},
	}
}

// jpegTIFF wraps JPEGs of 8x8 pixels, one page each.
func jpegTIFF(t testing.TB, bo byteOrder, jpegs ...[]byte) []byte {
	t.Helper()
	var pages [][]tiffTag
	for _, j := range jpegs {
		pages = append(pages, jpegPage(j, 8, 8))
	}
	return tiffBytes(bo, pages, jpegs)
}

func withTag(tags []tiffTag, tag uint16, vals ...uint32) []tiffTag {
	out := make([]tiffTag, 0, len(tags))
	for _, tg := range tags {
		if tg.tag == tag {
			if vals == nil {
				continue // removed
			}
			tg.vals = vals
		}
		out = append(out, tg)
	}
	return out
}

func TestCreateDocumentReferenceTIFF(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	j := testJPEG(t, 8, 8)
	post := func(t *testing.T, data []byte) reply {
		t.Helper()
		return do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, data, func(d map[string]any) {
			attachment(d)["contentType"] = "image/tiff"
		})})
	}

	// Runs after the parallel subtests: only accepted documents are stored.
	t.Cleanup(func() { assert.Len(t, srv.DocumentReferences(), 3) })
	accepted := map[string][]byte{
		"one page, little-endian": jpegTIFF(t, binary.LittleEndian, j),
		"three pages, big-endian": jpegTIFF(t, binary.BigEndian, j, j, j),
		"uncompressed grey": tiffBytes(binary.LittleEndian, [][]tiffTag{{
			{256, 4, []uint32{2}}, {257, 4, []uint32{2}}, {262, 3, []uint32{1}}, {273, 4, []uint32{0}}, {279, 4, []uint32{4}},
		}}, [][]byte{{0, 64, 128, 255}}),
	}
	for name, data := range accepted {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := post(t, data)
			require.Equal(t, 201, r.status, string(r.body))
		})
	}

	page := jpegPage(j, 8, 8)
	noEOI := j[:len(j)-2]
	loop := jpegTIFF(t, binary.LittleEndian, j)
	binary.LittleEndian.PutUint32(loop[8+2+12*len(page):], 8) // the IFD's next points at itself
	refused := []struct {
		name, diag string
		data       []byte
	}{
		{"not a TIFF", "no TIFF byte-order mark", []byte("%PDF-1.4 not a tiff")},
		{"header only", "shorter than a TIFF header", []byte("II*\x00")},
		{"wrong magic", "no TIFF magic number", []byte("II\x2c\x00\x08\x00\x00\x00")},
		{"BigTIFF", "BigTIFF is not baseline TIFF", append([]byte("II\x2b\x00"), make([]byte, 12)...)},
		{"no IFD", "no image directory", []byte("II*\x00\x00\x00\x00\x00")},
		{"IFD outside", "page 1: image directory outside the file", []byte("II*\x00\xff\x00\x00\x00")},
		{"IFD loop", "the image directories loop or are too many", loop},
		{"a JPEG without EOI", "page 1: a JPEG strip does not end with EOI",
			tiffBytes(binary.LittleEndian, [][]tiffTag{jpegPage(noEOI, 8, 8)}, [][]byte{noEOI})},
		{"a strip that is not a JPEG", "page 1: a JPEG strip does not start with SOI",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 279, 6)}, [][]byte{[]byte("abcdef")})},
		{"second page broken", "page 2: a JPEG strip does not end with EOI",
			tiffBytes(binary.LittleEndian, [][]tiffTag{page, jpegPage(noEOI, 8, 8)}, [][]byte{j, noEOI})},
		{"strip past the end", "page 1: a strip lies outside the file",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 279, uint32(len(j)+1))}, [][]byte{j})},
		{"no strips", "page 1: no strips, or StripOffsets and StripByteCounts disagree",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(withTag(page, 273), 279)}, [][]byte{j})},
		{"no size", "page 1: no image size", tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 256)}, [][]byte{j})},
		{"no photometric", "page 1: no PhotometricInterpretation", tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 262)}, [][]byte{j})},
		{"old-style JPEG", "page 1: old-style JPEG compression (6) is not readable; use 7",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 259, 6)}, [][]byte{j})},
		{"unknown compression", "page 1: compression 34712 is not supported",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(page, 259, 34712)}, [][]byte{j})},
		{"JPEG of another size", "page 1: the JPEG's size is not the page's size",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(withTag(page, 256, 16), 278, 8)}, [][]byte{j})},
		{"JPEG with other samples", "page 1: the JPEG's components do not match SamplesPerPixel",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(withTag(page, 262, 1), 277, 1)}, [][]byte{j})},
		{"CMYK with JPEG", "page 1: photometric 5 with 4 samples cannot hold a JPEG",
			tiffBytes(binary.LittleEndian, [][]tiffTag{withTag(withTag(page, 262, 5), 277, 4)}, [][]byte{j})},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := post(t, tc.data)
			require.Equal(t, 400, r.status, string(r.body))
			code, diag := r.outcome(t)
			assert.Equal(t, "invalid", code)
			assert.Equal(t, "Attachment is not a valid TIFF: "+tc.diag, diag)
		})
	}
}

// TestTIFFCheckSurvivesDamage: random damage to a valid TIFF (flipped
// bytes, truncation) gets a 201 or a 400, never a crash or a 500. The
// seeds are fixed, so the run is the same every time.
func TestTIFFCheckSurvivesDamage(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	j := testJPEG(t, 8, 8)
	good := jpegTIFF(t, binary.BigEndian, j, j)
	rng := rand.New(rand.NewPCG(14, 6))
	for i := range 200 {
		data := bytes.Clone(good)
		if i%4 == 0 {
			data = data[:rng.IntN(len(data))]
		} else {
			for range 1 + rng.IntN(4) {
				data[rng.IntN(min(len(data), 300))] = byte(rng.IntN(256))
			}
		}
		r := do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, data, func(d map[string]any) {
			attachment(d)["contentType"] = "image/tiff"
		})})
		require.Contains(t, []int{201, 400}, r.status, "case %d: %s", i, r.body)
	}
}
