package media

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	xtiff "golang.org/x/image/tiff"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// tiffIFD is one page of a TIFF as the test reads it: SHORT/LONG/RATIONAL
// values by tag (a RATIONAL as numerator, denominator), ASCII values, and
// the strip's bytes.
type tiffIFD struct {
	nums  map[uint16][]uint32
	texts map[uint16]string
	strip []byte
}

// readTIFF parses a little-endian TIFF written by writeTIFF, strictly: a
// reader written for this test, so a writer bug is not mirrored by it.
func readTIFF(t *testing.T, data []byte) []tiffIFD {
	t.Helper()
	require.Greater(t, len(data), 8)
	require.Equal(t, []byte("II*\x00"), data[:4])
	le := binary.LittleEndian
	var out []tiffIFD
	for off := le.Uint32(data[4:]); off != 0; {
		require.Zero(t, off%2, "IFD on a word boundary")
		require.Less(t, len(out), MaxDocumentPages)
		n := int(le.Uint16(data[off:]))
		ifd := tiffIFD{nums: map[uint16][]uint32{}, texts: map[uint16]string{}}
		last := uint16(0)
		for i := range n {
			e := data[int(off)+2+12*i:]
			tag, typ, count := le.Uint16(e), le.Uint16(e[2:]), int(le.Uint32(e[4:]))
			require.Greater(t, tag, last, "tags ascending")
			last = tag
			size := map[uint16]int{2: 1, 3: 2, 4: 4, 5: 8}[typ]
			require.NotZero(t, size, "tag %d type %d", tag, typ)
			val := e[8:12]
			if size*count > 4 {
				at := le.Uint32(e[8:])
				val = data[at : int(at)+size*count]
			}
			switch typ {
			case 2:
				require.Equal(t, byte(0), val[count-1], "ASCII ends in NUL")
				ifd.texts[tag] = string(val[:count-1])
			case 3:
				for j := range count {
					ifd.nums[tag] = append(ifd.nums[tag], uint32(le.Uint16(val[2*j:])))
				}
			default:
				for j := range size * count / 4 {
					ifd.nums[tag] = append(ifd.nums[tag], le.Uint32(val[4*j:]))
				}
			}
		}
		so, sc := ifd.nums[273], ifd.nums[279]
		require.Len(t, so, 1, "one strip")
		require.Len(t, sc, 1)
		ifd.strip = data[so[0] : so[0]+sc[0]]
		out = append(out, ifd)
		off = le.Uint32(data[int(off)+2+12*n:])
	}
	return out
}

func greyJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, g, nil))
	return b.Bytes()
}

func testdataJPEG(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func buildTIFF(t *testing.T, b *Builder, pages ...DocumentPage) ([]byte, fhir.Attachment, *fhir.DocumentReference) {
	t.Helper()
	in := testDocumentInput(pages...)
	in.Format = DocumentTIFF
	var w bytes.Buffer
	d, err := b.BuildDocument(&w, in)
	require.NoError(t, err)
	require.NoError(t, b.ValidateDocument(d))
	return w.Bytes(), d.Content[0].Attachment, d
}

func TestBuildDocumentTIFF(t *testing.T) {
	t.Parallel()
	b := testBuilder(t, WithReferenceBase("https://alexapiuat.medtechglobal.com/fhir"))
	colour := quadrantJPEG(t, 320, 240) // Go's encoder: 4:2:0
	grey := greyJPEG(t, 33, 17)
	full := testdataJPEG(t, "tiff-444.jpg") // cjpeg -sample 1x1
	data, a, d := buildTIFF(t, b,
		DocumentPage{JPEG: bytes.NewReader(colour), Created: testCreated, Metadata: Metadata{Title: "Whānau – “review”", BodySite: "14975008", Laterality: LateralityLeft}},
		DocumentPage{JPEG: io.MultiReader(bytes.NewReader(grey)), Size: int64(len(grey)), Orientation: 6},
		DocumentPage{JPEG: iotestOneByte(full)},
	)
	assert.Equal(t, "image/tiff", *a.ContentType)
	assert.Equal(t, len(data), *a.Size)
	sum := sha1.Sum(data)
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), *a.Hash)
	assert.Equal(t, "https://alexapiuat.medtechglobal.com/fhir/Practitioner/prac-123", *d.Author[0].Reference, "filed in the launching GP's Inbox")
	assert.Equal(t, "Clinical photos (3), 25 Nov 2026 10:42", *a.Title)

	pages := readTIFF(t, data)
	require.Len(t, pages, 3, "one IFD per page")
	for i, in := range [][]byte{colour, grey, full} {
		assert.True(t, bytes.Equal(in, pages[i].strip), "page %d: the JPEG is embedded byte for byte", i+1)
		assert.Equal(t, []uint32{7}, pages[i].nums[259], "Compression JPEG")
		assert.Equal(t, []uint32{2}, pages[i].nums[254], "a page of a multi-page document")
		assert.Equal(t, []uint32{uint32(i), 3}, pages[i].nums[297], "PageNumber")
		assert.Equal(t, pages[i].nums[257], pages[i].nums[278], "one strip holds every row")
		assert.Equal(t, []uint32{72, 1}, pages[i].nums[282])
		assert.Equal(t, "clinicalimages", pages[i].texts[305])
	}
	p := pages[0]
	assert.Equal(t, []uint32{320}, p.nums[256])
	assert.Equal(t, []uint32{240}, p.nums[257])
	assert.Equal(t, []uint32{6}, p.nums[262], "YCbCr")
	assert.Equal(t, []uint32{8, 8, 8}, p.nums[258])
	assert.Equal(t, []uint32{3}, p.nums[277])
	assert.Equal(t, []uint32{2, 2}, p.nums[530], "4:2:0")
	assert.Equal(t, []uint32{0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1}, p.nums[532])
	assert.Equal(t, "Whanau - \"review\"\nLeft forearm, taken 25 Nov 2026 10:42\nPhoto 1 of 3", p.texts[270])
	assert.Equal(t, "2026:11:25 10:42:07", p.texts[306], "taken, in the practice's zone")
	assert.Nil(t, p.nums[274], "upright: no Orientation tag")

	g := pages[1]
	assert.Equal(t, []uint32{1}, g.nums[262], "min-is-black")
	assert.Equal(t, []uint32{1}, g.nums[277])
	assert.Equal(t, []uint32{8}, g.nums[258])
	assert.Nil(t, g.nums[530])
	assert.Equal(t, []uint32{6}, g.nums[274], "EXIF orientation kept as the TIFF's")
	assert.Empty(t, g.texts[306], "no capture time, no DateTime")

	assert.Equal(t, []uint32{1, 1}, pages[2].nums[530], "4:4:4")
}

// iotestOneByte returns a reader that hands out one byte a call, the worst
// case for the header parser.
func iotestOneByte(b []byte) io.Reader { return &oneByte{b: b} }

type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}

func TestBuildDocumentTIFFRefusals(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	img := quadrantJPEG(t, 32, 32)
	tests := []struct {
		name string
		page DocumentPage
		want error
	}{
		{"png", DocumentPage{JPEG: strings.NewReader("\x89PNG\r\n\x1a\n")}, ErrNotJPEG},
		{"empty", DocumentPage{JPEG: strings.NewReader("")}, ErrNotJPEG},
		{"no EOI", DocumentPage{JPEG: bytes.NewReader(img[:len(img)-2])}, ErrNotJPEG},
		{"cut in the headers", DocumentPage{JPEG: bytes.NewReader(img[:40])}, ErrNotJPEG},
		{"Size too small", DocumentPage{JPEG: bytes.NewReader(img), Size: int64(len(img) - 10)}, ErrNotJPEG},
		{"Size too large", DocumentPage{JPEG: bytes.NewReader(img), Size: int64(len(img) + 10)}, ErrNotJPEG},
		{"progressive", DocumentPage{JPEG: bytes.NewReader(testdataJPEG(t, "tiff-progressive.jpg"))}, ErrJPEGNotWrappable},
		{"4:4:0", DocumentPage{JPEG: bytes.NewReader(testdataJPEG(t, "tiff-440.jpg"))}, ErrJPEGNotWrappable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testDocumentInput(tc.page)
			in.Format = DocumentTIFF
			d, err := b.BuildDocument(io.Discard, in)
			assert.Nil(t, d)
			require.ErrorIs(t, err, tc.want)
			assert.NotErrorIs(t, err, ErrInvalid)
			if tc.want == ErrJPEGNotWrappable {
				assert.NotErrorIs(t, err, ErrNotJPEG, "a good JPEG: build it as a PDF")
				in.Format = DocumentPDF
				in.Pages[0].JPEG = bytes.NewReader(testdataJPEG(t, "tiff-"+map[string]string{"progressive": "progressive", "4:4:0": "440"}[tc.name]+".jpg"))
				_, err := b.BuildDocument(io.Discard, in)
				assert.NoError(t, err, "the PDF takes it")
			}
		})
	}

	t.Run("input problems", func(t *testing.T) {
		t.Parallel()
		in := testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img), Size: -1})
		in.Format = 7
		var w bytes.Buffer
		_, err := b.BuildDocument(&w, in)
		assert.Equal(t, []string{"Input.Format", "Input.Pages[0].Size"}, problemFields(t, err))
		assert.Zero(t, w.Len())
	})
	t.Run("too big", func(t *testing.T) {
		t.Parallel()
		small := testBuilder(t, WithMaxSize(int64(len(img))))
		for _, size := range []int64{0, int64(len(img))} {
			in := testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img), Size: size})
			in.Format = DocumentTIFF
			_, err := small.BuildDocument(io.Discard, in)
			assert.Equal(t, []string{"DocumentReference.content[0].attachment.size"}, problemFields(t, err), "Size %d", size)
		}
	})
	t.Run("write error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("disk full")
		in := testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img)})
		in.Format = DocumentTIFF
		_, err := b.BuildDocument(failingWriter{boom}, in)
		assert.ErrorIs(t, err, boom)
	})
}

// TestTIFFMemoryDoesNotGrowWithTheImage: a page with a Size streams through;
// the bytes allocated stay far below the JPEG's size (without a Size the
// JPEG is held, which the second measure shows). Not parallel: it reads the
// process's allocation counter.
func TestTIFFMemoryDoesNotGrowWithTheImage(t *testing.T) {
	noise := image.NewRGBA(image.Rect(0, 0, 1600, 1200))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.IntN(256))
	}
	var jb bytes.Buffer
	require.NoError(t, jpeg.Encode(&jb, noise, &jpeg.Options{Quality: 95}))
	big := jb.Bytes()
	b := testBuilder(t)
	allocated := func(size int64) uint64 {
		in := testDocumentInput(DocumentPage{JPEG: bytes.NewReader(big), Size: size})
		in.Format = DocumentTIFF
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := b.BuildDocument(io.Discard, in)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		return after.TotalAlloc - before.TotalAlloc
	}
	streamed, held := allocated(int64(len(big))), allocated(0)
	t.Logf("JPEG %d bytes; allocated with Size %d bytes, without %d bytes", len(big), streamed, held)
	assert.Less(t, streamed, uint64(len(big)/8), "streamed: memory independent of the image")
	assert.Greater(t, held, uint64(len(big)), "without a Size the JPEG is held")
}

// TestTIFFOpensInLibtiff: libtiff's own tools read every page, and the
// pixels libtiff decodes from the TIFF equal those libjpeg decodes from the
// JPEG (both through libjpeg-turbo, so exactly). Under CI the tools must be
// installed (Debian packages libtiff-tools and libjpeg-turbo-progs).
func TestTIFFOpensInLibtiff(t *testing.T) {
	t.Parallel()
	tools := map[string]string{}
	for _, tool := range []string{"tiffinfo", "tiffdump", "tiffcp", "tiff2rgba", "djpeg"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			pkg := "libtiff-tools"
			if tool == "djpeg" {
				pkg = "libjpeg-turbo-progs"
			}
			testenv.Missing(t, tool+" ("+pkg+")", err.Error())
			return
		}
		tools[tool] = p
	}
	b := testBuilder(t)
	jpegs := [][]byte{quadrantJPEG(t, 320, 240), greyJPEG(t, 33, 17), testdataJPEG(t, "tiff-444.jpg")}
	var pages []DocumentPage
	for _, j := range jpegs {
		pages = append(pages, DocumentPage{JPEG: bytes.NewReader(j), Created: testCreated, Metadata: Metadata{Title: "Rash"}})
	}
	data, _, _ := buildTIFF(t, b, pages...)
	dir := t.TempDir()
	doc := filepath.Join(dir, "doc.tif")
	require.NoError(t, os.WriteFile(doc, data, 0o600))
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), tools[name], args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%s: %s", name, stderr.String())
		require.Empty(t, stderr.String(), "%s warns", name)
		return string(out)
	}
	info := run("tiffinfo", doc)
	assert.Equal(t, 3, strings.Count(info, "Compression Scheme: JPEG"))
	assert.Contains(t, info, "Photometric Interpretation: YCbCr")
	assert.Contains(t, info, "Photometric Interpretation: min-is-black")
	assert.Equal(t, 3, strings.Count(run("tiffdump", doc), "Directory "))

	for i, j := range jpegs {
		page := filepath.Join(dir, "page"+strconv.Itoa(i)+".tif")
		rgba := filepath.Join(dir, "rgba"+strconv.Itoa(i)+".tif")
		run("tiffcp", doc+","+strconv.Itoa(i), page)
		run("tiff2rgba", "-c", "none", page, rgba)
		f, err := os.Open(rgba)
		require.NoError(t, err)
		got, err := xtiff.Decode(f)
		_ = f.Close()
		require.NoError(t, err)

		jp := filepath.Join(dir, "page"+strconv.Itoa(i)+".jpg")
		require.NoError(t, os.WriteFile(jp, j, 0o600))
		want := decodePNM(t, []byte(run("djpeg", "-pnm", jp)))
		require.Equal(t, want.Bounds(), got.Bounds(), "page %d", i+1)
		// tiff2rgba goes through libtiff's RGBA interface, which converts
		// YCbCr to RGB itself with other rounding than libjpeg's (seen: mean
		// 0.6 and 1.6 levels on the colour pages, 0.007 on the grey one): the
		// page decodes whole and close. A wrong photometric or subsampling
		// tag is off by tens of levels.
		n, mean := pixelDiff(want, got)
		t.Logf("page %d: tiff2rgba differs from djpeg in %d pixels, mean %.3f levels", i+1, n, mean)
		assert.Less(t, mean, 3.0, "page %d", i+1)

		// ImageMagick reads the TIFF through libtiff and the JPEG through
		// libjpeg with the same settings: equal to the pixel.
		if convert, err := exec.LookPath("convert"); err == nil {
			ppm, err := exec.CommandContext(t.Context(), convert, doc+"["+strconv.Itoa(i)+"]", "-depth", "8", "ppm:-").Output()
			require.NoError(t, err)
			n, _ := pixelDiff(want, decodePNM(t, ppm))
			assert.Zero(t, n, "page %d: ImageMagick's pixels of the TIFF differ from djpeg's of the JPEG", i+1)
		}
	}
}

// pixelDiff counts the pixels of a and b (same bounds) that differ and the
// mean absolute difference per channel, in 8-bit levels.
func pixelDiff(a, b image.Image) (int, float64) {
	n, sum, r := 0, 0.0, a.Bounds()
	abs := func(x, y uint32) float64 { return math.Abs(float64(x>>8) - float64(y>>8)) }
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			d := abs(ar, br) + abs(ag, bg) + abs(ab, bb)
			if d > 0 {
				n++
			}
			sum += d
		}
	}
	return n, sum / float64(3*r.Dx()*r.Dy())
}

// decodePNM reads a binary PGM (P5) or PPM (P6), skipping # comments
// (ImageMagick writes the TIFF's description as one).
func decodePNM(t *testing.T, b []byte) image.Image {
	t.Helper()
	var magic string
	var w, h, maxv int
	var lines []string
	for len(lines) < 4 {
		i := bytes.IndexByte(b, '\n')
		require.Positive(t, i)
		if b[0] != '#' {
			lines = append(lines, strings.Fields(string(b[:i]))...)
		}
		b = b[i+1:]
		if len(lines) >= 4 {
			b = append([]byte(strings.Join(lines, " ")+"\n"), b...)
		}
	}
	r := bytes.NewReader(b)
	_, err := fmtSscan(r, &magic, &w, &h, &maxv)
	require.NoError(t, err)
	require.Equal(t, 255, maxv)
	_, _ = r.ReadByte()
	rest, _ := io.ReadAll(r)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		switch magic {
		case "P5":
			img.Set(i%w, i/w, color.Gray{Y: rest[i]})
		case "P6":
			img.Set(i%w, i/w, color.RGBA{rest[3*i], rest[3*i+1], rest[3*i+2], 255})
		default:
			t.Fatalf("djpeg wrote %s", magic)
		}
	}
	return img
}

// TestTIFFDocumentAcceptedByALEXSimulator sends a built TIFF Inbox Scan
// through the real client to alextest, whose TIFF check must accept it; a
// TIFF whose JPEG lost its end is refused there too.
func TestTIFFDocumentAcceptedByALEXSimulator(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(), alex.WithFacility(srv.Facility()),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}))
	require.NoError(t, err)
	p, prac := srv.Patients()[0], srv.Practitioners()[0].ID
	b := testBuilder(t, WithReferenceBase(srv.BaseURL()))
	img := quadrantJPEG(t, 64, 48)
	in := DocumentInput{ID: "doc-tiff-1", Patient: Patient{ID: p.ID, NHI: p.NHI}, Author: prac, Facility: srv.Facility(), Format: DocumentTIFF,
		Pages: []DocumentPage{{JPEG: bytes.NewReader(img)}, {JPEG: bytes.NewReader(greyJPEG(t, 20, 10))}}}
	var tif bytes.Buffer
	d, err := b.BuildDocument(&tif, in)
	require.NoError(t, err)
	_, err = c.CreateDocumentReference(t.Context(), d, alex.BytesContent(tif.Bytes()))
	require.NoError(t, err)
	docs := srv.DocumentReferences()
	require.Len(t, docs, 1)
	assert.Equal(t, "image/tiff", *docs[0].Content[0].Attachment.ContentType)
	assert.Equal(t, srv.BaseURL()+"/Practitioner/"+prac, *docs[0].Author[0].Reference)
	stored, ok := srv.DocumentReferenceData(*docs[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.Equal(tif.Bytes(), stored))

	// Damage the first page's JPEG end (its EOI) in the TIFF: refused.
	bad := bytes.Clone(tif.Bytes())
	i := bytes.Index(bad, img) + len(img) - 1
	bad[i] = 0x00
	_, err = c.CreateDocumentReference(t.Context(), d, alex.BytesContent(bad))
	require.ErrorIs(t, err, alex.ErrValidation)
	var ae *alex.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Attachment is not a valid TIFF: page 1: a JPEG strip does not end with EOI", ae.Issues[0].Diagnostics)
}

func fmtSscan(r io.Reader, a ...any) (int, error) { return fmt.Fscan(r, a...) }
