package media

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	red    = color.RGBA{220, 20, 20, 255}
	green  = color.RGBA{20, 200, 20, 255}
	blue   = color.RGBA{20, 20, 220, 255}
	yellow = color.RGBA{230, 220, 20, 255}
)

// quadrantJPEG returns a w x h JPEG whose stored quadrants are red (top
// left), green (top right), blue (bottom left) and yellow (bottom right),
// so a rendering shows which way up it was drawn.
func quadrantJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := red
			switch {
			case x >= w/2 && y < h/2:
				c = green
			case x < w/2 && y >= h/2:
				c = blue
			case x >= w/2 && y >= h/2:
				c = yellow
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func testDocumentInput(pages ...DocumentPage) DocumentInput {
	return DocumentInput{
		ID:       "doc_01HZX3K9F2Q7",
		Patient:  Patient{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", NHI: "ZZZ0016"},
		Author:   "prac-123",
		Facility: "F2N060-E",
		Date:     testCreated,
		Pages:    pages,
	}
}

// testDocumentReference builds a two-page DocumentReference (its PDF is
// discarded) for tests that need one.
func testDocumentReference(t testing.TB) *fhir.DocumentReference {
	t.Helper()
	b, err := New(WithClock(func() time.Time { return testCreated }))
	require.NoError(t, err)
	img := quadrantJPEG(t, 64, 48)
	d, err := b.BuildDocument(io.Discard, testDocumentInput(
		DocumentPage{JPEG: bytes.NewReader(img), Metadata: Metadata{BodySite: "14975008", Laterality: LateralityLeft}},
		DocumentPage{JPEG: bytes.NewReader(img), Metadata: Metadata{View: "close-up"}},
	))
	require.NoError(t, err)
	return d
}

func TestBuildDocument(t *testing.T) {
	t.Parallel()
	b := testBuilder(t, WithReferenceBase("https://alexapiuat.medtechglobal.com/fhir/"))
	img := quadrantJPEG(t, 320, 240)
	in := testDocumentInput(
		DocumentPage{JPEG: bytes.NewReader(img), Created: testCreated, Metadata: Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up", Note: "Lesion (6 mm) \\ irregular"}},
		DocumentPage{JPEG: bytes.NewReader(img), Created: testCreated, Metadata: Metadata{BodySite: "20233005", Title: "Whānau asked – “review”"}},
	)
	in.Encounter = "enc-4"
	in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord, ConsentPublication}, RecordedBy: "prac-7", RecordedAt: testCreated}
	var pdf bytes.Buffer
	d, err := b.BuildDocument(&pdf, in)
	require.NoError(t, err)

	assert.Equal(t, fhir.DocumentReferenceStatusCurrent, d.Status)
	assert.Equal(t, "doc_01HZX3K9F2Q7", *d.Identifier[0].Value)
	assert.Equal(t, LOINCSystem, *d.Type.Coding[0].System)
	assert.Equal(t, "72170-4", *d.Type.Coding[0].Code)
	assert.Equal(t, "https://alexapiuat.medtechglobal.com/fhir/Patient/0f1e2d3c4b5a69788796a5b4c3d2e1f0", *d.Subject.Reference)
	assert.Equal(t, "https://alexapiuat.medtechglobal.com/fhir/Practitioner/prac-123", *d.Author[0].Reference)
	assert.Equal(t, "https://alexapiuat.medtechglobal.com/fhir/Encounter/enc-4", *d.Context.Encounter[0].Reference)
	assert.Equal(t, "2026-11-25T10:42:07+13:00", *d.Date)
	assert.Equal(t, "Consent: clinical record: yes; teaching: no; publication: yes. Recorded by https://alexapiuat.medtechglobal.com/fhir/Practitioner/prac-7 at 2026-11-25T10:42:07+13:00.", *d.Description)
	a := d.Content[0].Attachment
	assert.Equal(t, "application/pdf", *a.ContentType)
	assert.Equal(t, DataPlaceholder, *a.Data)
	assert.Equal(t, pdf.Len(), *a.Size)
	sum := sha1.Sum(pdf.Bytes())
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), *a.Hash)
	assert.Equal(t, "Clinical photos (2), 25 Nov 2026 10:42", *a.Title)

	assert.True(t, bytes.HasPrefix(pdf.Bytes(), []byte("%PDF-1.4\n")))
	assert.True(t, bytes.HasSuffix(pdf.Bytes(), []byte("%%EOF\n")))
	assert.Equal(t, 2, bytes.Count(pdf.Bytes(), img), "each JPEG is embedded unchanged")
	assert.Contains(t, pdf.String(), `(Left forearm, close-up, taken 25 Nov 2026 10:42) Tj`)
	assert.Contains(t, pdf.String(), `(Lesion \(6 mm\) \\ irregular) Tj`)
	assert.Contains(t, pdf.String(), `(Whanau asked \226 \223review\224) Tj`)
	assert.Contains(t, pdf.String(), `(Scrotum, taken 25 Nov 2026 10:42) Tj`, "the page names the site; the photo is on it anyway")
	assert.Contains(t, pdf.String(), `(Photo 2 of 2) Tj`)
	require.NoError(t, b.ValidateDocument(d))
}

func TestDocumentTitles(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	img := quadrantJPEG(t, 16, 16)
	tests := []struct {
		name string
		in   DocumentInput
		want string
	}{
		{"one page uses its title", testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img), Metadata: Metadata{BodySite: "85562004", Laterality: LateralityRight}}), "Right hand, 25 Nov 2026 10:42"},
		{"one sensitive page", testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img), Metadata: Metadata{BodySite: "53505006"}}), "Clinical photo (sensitive site), 25 Nov 2026 10:42"},
		{"given title", func() DocumentInput {
			in := testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img)})
			in.Title = " Referral photos "
			return in
		}(), "Referral photos"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := b.BuildDocument(io.Discard, tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, *d.Content[0].Attachment.Title)
		})
	}
}

func TestBuildDocumentProblems(t *testing.T) {
	t.Parallel()
	b := testBuilder(t, WithConsentRequired())
	img := quadrantJPEG(t, 16, 16)
	page := func() DocumentPage { return DocumentPage{JPEG: bytes.NewReader(img)} }
	tests := []struct {
		name   string
		mutate func(*DocumentInput)
		want   []string
	}{
		{"no facility", func(in *DocumentInput) { in.Facility = "" }, []string{"Input.Facility"}},
		{"no id", func(in *DocumentInput) { in.ID = "" }, []string{"DocumentReference.identifier[0].value"}},
		{"no patient", func(in *DocumentInput) { in.Patient.ID = "" }, []string{"DocumentReference.subject"}},
		{"no author", func(in *DocumentInput) { in.Author = "" }, []string{"DocumentReference.author[0]"}},
		{"bad encounter", func(in *DocumentInput) { in.Encounter = "a b" }, []string{"DocumentReference.context.encounter[0]"}},
		{"no pages", func(in *DocumentInput) { in.Pages = nil }, []string{"Input.Pages"}},
		{"consent required", func(in *DocumentInput) { in.Consent = nil }, []string{"Input.Consent"}},
		{"too many pages", func(in *DocumentInput) {
			in.Pages = nil
			for range MaxDocumentPages + 1 {
				in.Pages = append(in.Pages, page())
			}
		}, []string{"Input.Pages"}},
		{"page problems", func(in *DocumentInput) {
			in.Pages = []DocumentPage{{Orientation: 9, Metadata: Metadata{BodySite: "1", Laterality: "2", View: "3"}}}
		}, []string{"Input.Pages[0].JPEG", "Input.Pages[0].Orientation", "Input.Pages[0].Metadata.BodySite", "Input.Pages[0].Metadata.Laterality", "Input.Pages[0].Metadata.View"}},
		{"page metadata checked as CheckMetadata checks it", func(in *DocumentInput) {
			in.Pages = []DocumentPage{page()}
			in.Pages[0].Metadata = Metadata{Laterality: LateralityLeft, Title: strings.Repeat("t", MaxTitleLength+1), Note: strings.Repeat("n", MaxNoteLength+1)}
		}, []string{"Input.Pages[0].Metadata.Laterality", "Input.Pages[0].Metadata.Title", "Input.Pages[0].Metadata.Note"}},
		{"long title", func(in *DocumentInput) { in.Title = strings.Repeat("t", MaxTitleLength+1) }, []string{"DocumentReference.content[0].attachment.title"}},
		{"consent without record", func(in *DocumentInput) {
			in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentTeaching}, RecordedBy: "p 1"}
		}, []string{"Input.Consent.Purposes", "Input.Consent.RecordedAt", "Input.Consent.RecordedBy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testDocumentInput(page())
			in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord}, RecordedBy: "prac-1", RecordedAt: testCreated}
			tc.mutate(&in)
			var w bytes.Buffer
			d, err := b.BuildDocument(&w, in)
			assert.Nil(t, d)
			assert.Equal(t, tc.want, problemFields(t, err))
			assert.Zero(t, w.Len(), "nothing is written for invalid input")
		})
	}
}

func TestBuildDocumentTooBigAndNotJPEG(t *testing.T) {
	t.Parallel()
	img := quadrantJPEG(t, 256, 256)
	small := testBuilder(t, WithMaxSize(int64(len(img))))
	var w bytes.Buffer
	d, err := small.BuildDocument(&w, testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img)}))
	assert.Nil(t, d)
	assert.Equal(t, []string{"DocumentReference.content[0].attachment.size"}, problemFields(t, err))
	assert.Positive(t, w.Len(), "the PDF was written before its size was known")

	_, err = testBuilder(t).BuildDocument(io.Discard, testDocumentInput(DocumentPage{JPEG: strings.NewReader("\x89PNG\r\n\x1a\n")}))
	assert.ErrorIs(t, err, ErrNotJPEG)
	assert.NotErrorIs(t, err, ErrInvalid)

	boom := errors.New("disk full")
	_, err = testBuilder(t).BuildDocument(failingWriter{boom}, testDocumentInput(DocumentPage{JPEG: bytes.NewReader(img)}))
	assert.ErrorIs(t, err, boom)
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestValidateDocument(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	tests := []struct {
		name   string
		mutate func(*fhir.DocumentReference)
		want   []string
	}{
		{"as built", func(*fhir.DocumentReference) {}, nil},
		{"tiff", func(d *fhir.DocumentReference) { d.Content[0].Attachment.ContentType = ptr("image/tiff") }, nil},
		{"jpeg refused", func(d *fhir.DocumentReference) { d.Content[0].Attachment.ContentType = ptr("image/jpeg") }, []string{"DocumentReference.content[0].attachment.contentType"}},
		{"superseded", func(d *fhir.DocumentReference) { d.Status = fhir.DocumentReferenceStatusSuperseded }, []string{"DocumentReference.status"}},
		{"other type", func(d *fhir.DocumentReference) { d.Type.Coding[0].Code = ptr("11488-4") }, []string{"DocumentReference.type"}},
		{"no author", func(d *fhir.DocumentReference) { d.Author = nil }, []string{"DocumentReference.author"}},
		{"no date", func(d *fhir.DocumentReference) { d.Date = nil }, []string{"DocumentReference.date"}},
		{"two contents", func(d *fhir.DocumentReference) { d.Content = append(d.Content, d.Content[0]) }, []string{"DocumentReference.content"}},
		{"bad encounter", func(d *fhir.DocumentReference) {
			d.Context = &fhir.DocumentReferenceContext{Encounter: []fhir.Reference{{Reference: ptr("Patient/x")}}}
		}, []string{"DocumentReference.context.encounter[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := testDocumentReference(t)
			tc.mutate(d)
			err := b.ValidateDocument(d)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, tc.want, problemFields(t, err))
		})
	}
	assert.ErrorIs(t, b.ValidateDocument(nil), ErrInvalid)
}

func TestWrapAndPDFString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"one two", "three"}, wrap("one two three", 7))
	assert.Equal(t, []string{"abcde", "fgh", "ij"}, wrap("abcdefgh ij", 5))
	assert.Empty(t, wrap("   ", 5))
	assert.Equal(t, `(a\(b\)c\\ \351 ? ?)`, pdfString("a(b)c\\ é ✓ \u4e2d"))
	assert.Equal(t, "D:20261125104207+13'00'", pdfDate(testCreated.In(mustZone(t, "Pacific/Auckland"))))
	assert.Equal(t, "D:20261124214207Z", pdfDate(testCreated))
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// pdftoppm renders page of the PDF at 72 dpi (one pixel a point) and
// returns the bitmap, or skips/fails through testenv.Missing when poppler
// is not installed.
func renderPage(t *testing.T, pdf []byte, page int) image.Image {
	t.Helper()
	bin, err := exec.LookPath("pdftoppm")
	if err != nil {
		testenv.Missing(t, "pdftoppm (poppler-utils)", err.Error())
		return nil
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "doc.pdf")
	require.NoError(t, os.WriteFile(in, pdf, 0o600))
	out := filepath.Join(dir, "page")
	p := strconv.Itoa(page)
	cmd := exec.CommandContext(t.Context(), bin, "-r", "72", "-f", p, "-l", p, "-singlefile", in, out)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "pdftoppm: %s", msg)
	return readPPM(t, out+".ppm")
}

func readPPM(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := bufio.NewReader(f)
	var w, h, maxv int
	var magic string
	_, err = fmt.Fscan(r, &magic, &w, &h, &maxv)
	require.NoError(t, err)
	require.Equal(t, "P6", magic)
	require.Equal(t, 255, maxv)
	_, err = r.ReadByte() // the single white space after the header
	require.NoError(t, err)
	raw := make([]byte, w*h*3)
	_, err = io.ReadFull(r, raw)
	require.NoError(t, err)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		copy(img.Pix[i*4:i*4+3], raw[i*3:i*3+3])
		img.Pix[i*4+3] = 255
	}
	return img
}

// quadrants finds the drawn photo (the box of saturated pixels) and names
// the colour at the middle of each of its quadrants: top left, top right,
// bottom left, bottom right. It also returns the box.
func quadrants(t *testing.T, img image.Image) ([4]string, image.Rectangle) {
	t.Helper()
	box := image.Rectangle{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
		for x := bnd.Min.X; x < bnd.Max.X; x++ {
			if colourName(img.At(x, y)) != "" {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	require.False(t, box.Empty(), "no photo on the page")
	at := func(fx, fy float64) string {
		return colourName(img.At(box.Min.X+int(fx*float64(box.Dx())), box.Min.Y+int(fy*float64(box.Dy()))))
	}
	return [4]string{at(0.25, 0.25), at(0.75, 0.25), at(0.25, 0.75), at(0.75, 0.75)}, box
}

// colourName names a saturated test colour, or "" for white, black and
// greys (page, caption text).
func colourName(c color.Color) string {
	r, g, b, _ := c.RGBA()
	r, g, b = r>>8, g>>8, b>>8
	switch {
	case r > 150 && g < 90 && b < 90:
		return "red"
	case g > 150 && r < 90 && b < 90:
		return "green"
	case b > 150 && r < 90 && g < 90:
		return "blue"
	case r > 150 && g > 150 && b < 90:
		return "yellow"
	}
	return ""
}

func TestPDFRendersInAPDFReader(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	landscape := quadrantJPEG(t, 400, 200)
	tests := []struct {
		orientation int
		want        [4]string // TL, TR, BL, BR as displayed
		portrait    bool      // page orientation
	}{
		{1, [4]string{"red", "green", "blue", "yellow"}, false},
		{2, [4]string{"green", "red", "yellow", "blue"}, false},
		{3, [4]string{"yellow", "blue", "green", "red"}, false},
		{4, [4]string{"blue", "yellow", "red", "green"}, false},
		{5, [4]string{"red", "blue", "green", "yellow"}, true},
		{6, [4]string{"blue", "red", "yellow", "green"}, true},
		{7, [4]string{"yellow", "green", "blue", "red"}, true},
		{8, [4]string{"green", "yellow", "red", "blue"}, true},
	}
	var pages []DocumentPage
	for _, tc := range tests {
		pages = append(pages, DocumentPage{JPEG: bytes.NewReader(landscape), Orientation: tc.orientation, Created: testCreated,
			Metadata: Metadata{BodySite: "14975008", Laterality: LateralityRight, View: "overview", Note: strings.Repeat("A long note that wraps. ", 12)}})
	}
	var pdf bytes.Buffer
	_, err := b.BuildDocument(&pdf, testDocumentInput(pages...))
	require.NoError(t, err)

	if bin, err := exec.LookPath("pdfinfo"); err == nil {
		path := filepath.Join(t.TempDir(), "doc.pdf")
		require.NoError(t, os.WriteFile(path, pdf.Bytes(), 0o600))
		info, err := exec.CommandContext(t.Context(), bin, path).CombinedOutput()
		require.NoError(t, err, "pdfinfo: %s", info)
		assert.Regexp(t, `(?m)^Pages:\s+`+strconv.Itoa(len(tests))+`$`, string(info))
		assert.Regexp(t, `(?m)^Title:\s+Clinical photos \(8\), 25 Nov 2026 10:42$`, string(info))
		assert.NotContains(t, string(info), "rror", "pdfinfo found no syntax errors")
	} else {
		testenv.Missing(t, "pdfinfo (poppler-utils)", err.Error())
	}

	for i, tc := range tests {
		t.Run(fmt.Sprintf("orientation %d", tc.orientation), func(t *testing.T) {
			t.Parallel()
			img := renderPage(t, pdf.Bytes(), i+1)
			if img == nil {
				return
			}
			size := img.Bounds().Size()
			if tc.portrait {
				assert.Equal(t, image.Pt(596, 842), size, "A4 portrait (595.28 x 841.89 pt) at 72 dpi, rounded up")
			} else {
				assert.Equal(t, image.Pt(842, 596), size, "A4 landscape at 72 dpi, rounded up")
			}
			got, box := quadrants(t, img)
			assert.Equal(t, tc.want, got)
			ratio := float64(box.Dx()) / float64(box.Dy())
			want := 2.0
			if tc.portrait {
				want = 0.5
			}
			assert.InDelta(t, want, ratio, 0.03, "aspect ratio kept")
			assert.Less(t, box.Max.Y, size.Y-36-13*5, "the photo stays above its caption")
		})
	}
}
