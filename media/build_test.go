package media

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A fixed capture time: 25 Nov 2026 10:42 in Auckland (NZDT, +13:00) is
// 21:42 UTC the day before, so a UTC rendering would land on the wrong day.
var testCreated = time.Date(2026, 11, 24, 21, 42, 7, 500, time.UTC)

var testImage = []byte("\xff\xd8\xff\xe0 not really a jpeg, but bytes all the same \xff\xd9")

func testInput() Input {
	sum := sha1.Sum(testImage)
	return Input{
		Image: ImageFacts{
			ID:          "img_01HZX3K9F2Q7",
			ContentType: "image/jpeg",
			Size:        int64(len(testImage)),
			SHA1:        sum[:],
			Width:       2048,
			Height:      1536,
			Created:     testCreated,
		},
		Patient:  Patient{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", NHI: "ZZZ0016"},
		Operator: "prac-123",
		Facility: "F2N060-E",
		Metadata: Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up"},
	}
}

func testBuilder(t *testing.T, opts ...Option) *Builder {
	t.Helper()
	b, err := New(append([]Option{WithClock(func() time.Time { return testCreated.Add(time.Hour) })}, opts...)...)
	require.NoError(t, err)
	return b
}

func TestBuildMedia(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	in := testInput()
	in.Encounter = "enc-9"
	in.Metadata.Note = "  Pigmented lesion, 6 mm.  "
	in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord, ConsentTeaching}, RecordedBy: "prac-123", RecordedAt: testCreated.Add(-time.Minute)}

	m, err := b.Build(in)
	require.NoError(t, err)

	assert.Equal(t, fhir.EventStatusCompleted, m.Status)
	require.Len(t, m.Identifier, 1)
	assert.Equal(t, DefaultIdentifierSystem, *m.Identifier[0].System)
	assert.Equal(t, "img_01HZX3K9F2Q7", *m.Identifier[0].Value)
	assert.Equal(t, MediaTypeSystem, *m.Type.Coding[0].System)
	assert.Equal(t, "image", *m.Type.Coding[0].Code)
	assert.Equal(t, "Patient/0f1e2d3c4b5a69788796a5b4c3d2e1f0", *m.Subject.Reference)
	assert.Equal(t, NHISystem, *m.Subject.Identifier.System)
	assert.Equal(t, "ZZZ0016", *m.Subject.Identifier.Value)
	assert.Equal(t, "Practitioner/prac-123", *m.Operator.Reference)
	assert.Equal(t, "Encounter/enc-9", *m.Encounter.Reference)
	assert.Equal(t, "2026-11-25T10:42:07+13:00", *m.CreatedDateTime, "Auckland offset, right clinical day, whole seconds")
	assert.Equal(t, 2048, *m.Width)
	assert.Equal(t, 1536, *m.Height)

	c := m.Content
	assert.Equal(t, "image/jpeg", *c.ContentType)
	assert.Equal(t, len(testImage), *c.Size)
	sum := sha1.Sum(testImage)
	assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), *c.Hash)
	assert.Equal(t, DataPlaceholder, *c.Data)
	assert.Equal(t, "Left forearm, close-up, 25 Nov 2026 10:42", *c.Title)
	assert.Equal(t, *m.CreatedDateTime, *c.Creation)

	require.NotNil(t, m.BodySite)
	assert.Equal(t, SNOMEDSystem, *m.BodySite.Coding[0].System)
	assert.Equal(t, "14975008:272741003=7771000", *m.BodySite.Coding[0].Code)
	assert.Equal(t, "Left forearm", *m.BodySite.Text)
	assert.Equal(t, ViewSystem, *m.View.Coding[0].System)
	assert.Equal(t, "close-up", *m.View.Coding[0].Code)

	require.Len(t, m.Note, 2)
	assert.Equal(t, "Pigmented lesion, 6 mm.", m.Note[0].Text)
	assert.Equal(t, "Practitioner/prac-123", *m.Note[0].AuthorReference.Reference)
	assert.Equal(t, "Consent: clinical record: yes; teaching: yes; publication: no.", m.Note[1].Text)
	assert.Equal(t, "2026-11-25T10:41:07+13:00", *m.Note[1].Time)
}

// TestBuildConsentMethod: how consent was given reaches the Media, in the
// consent note's text (issue 14: it was collected and dropped).
func TestBuildConsentMethod(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	for _, tc := range []struct {
		method ConsentMethod
		want   string
	}{
		{ConsentVerbal, "Consent (verbal): clinical record: yes; teaching: no; publication: no."},
		{ConsentWritten, "Consent (written): clinical record: yes; teaching: no; publication: no."},
		{"", "Consent: clinical record: yes; teaching: no; publication: no."},
	} {
		in := testInput()
		in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord}, Method: tc.method, RecordedBy: "prac-7", RecordedAt: testCreated}
		m, err := b.Build(in)
		require.NoError(t, err)
		require.Len(t, m.Note, 1)
		assert.Equal(t, tc.want, m.Note[0].Text)
		assert.Equal(t, "Practitioner/prac-7", *m.Note[0].AuthorReference.Reference)
	}
	assert.True(t, ConsentVerbal.Valid())
	assert.True(t, ConsentWritten.Valid())
	assert.False(t, ConsentMethod("Verbal").Valid())
	assert.False(t, ConsentMethod("").Valid())
}

// TestBuildWritesPlainText: invisible and control characters typed or
// pasted into the title and note never reach the Media (issue 14).
func TestBuildWritesPlainText(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	in := testInput()
	in.Metadata.Title = "\u202eLesion\u202c\u200b"
	in.Metadata.Note = "\ufeffFirst line\r\nsecond\u2066 line\u2069\x00\u00ad\n"
	m, err := b.Build(in)
	require.NoError(t, err)
	assert.Equal(t, "Lesion — left forearm, close-up", *m.Content.Title)
	require.Len(t, m.Note, 1)
	assert.Equal(t, "First line\nsecond line", m.Note[0].Text)

	// A resource built elsewhere with such characters is refused.
	m.Note[0].Text = "left\u202e"
	assert.Equal(t, []string{"Media.note[0].text"}, problemFields(t, b.Validate(m)))
	m.Note[0].Text = "ok"
	m.Content.Title = ptr("Le\u200bsion")
	assert.Equal(t, []string{"Media.content.title"}, problemFields(t, b.Validate(m)))
}

func TestBuildOptionalParts(t *testing.T) {
	t.Parallel()
	b := testBuilder(t, WithIdentifierSystem(""), WithTimeZone(time.UTC))
	in := testInput()
	in.Patient.NHI = ""
	in.Image.SHA1 = nil
	in.Image.Width, in.Image.Height = 0, 0
	in.Image.Created = time.Time{}
	in.Image.ContentType = "Image/JPEG; charset=binary"
	in.Metadata = Metadata{}
	m, err := b.Build(in)
	require.NoError(t, err)
	assert.Nil(t, m.Identifier[0].System)
	assert.Nil(t, m.Subject.Identifier)
	assert.Nil(t, m.Content.Hash)
	assert.Nil(t, m.Width)
	assert.Nil(t, m.Height)
	assert.Nil(t, m.BodySite)
	assert.Nil(t, m.View)
	assert.Nil(t, m.Encounter)
	assert.Empty(t, m.Note)
	assert.Equal(t, "image/jpeg", *m.Content.ContentType, "case and parameters normalised")
	assert.Equal(t, "2026-11-24T22:42:07+00:00", *m.CreatedDateTime, "no capture time: the builder's clock, in its zone")
	assert.Equal(t, "Clinical photo, 24 Nov 2026 22:42", *m.Content.Title)
}

func TestBuildLaterality(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	tests := []struct {
		name, site, lat, wantCode, wantText string
	}{
		{"none", "14975008", "", "14975008", "Forearm"},
		{"left", "14975008", LateralityLeft, "14975008:272741003=7771000", "Left forearm"},
		{"right", "85562004", LateralityRight, "85562004:272741003=24028007", "Right hand"},
		{"bilateral", "2059009", LateralityBilateral, "2059009:272741003=51440002", "Earlobe (bilateral)"},
		{"midline", "45206002", LateralityMidline, "45206002:272741003=399488007", "Nose (midline)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testInput()
			in.Metadata.BodySite, in.Metadata.Laterality = tc.site, tc.lat
			m, err := b.Build(in)
			require.NoError(t, err)
			assert.Equal(t, tc.wantCode, *m.BodySite.Coding[0].Code)
			assert.Equal(t, tc.wantText, *m.BodySite.Text)
			site, lat, ok := parseBodySiteCode(tc.wantCode)
			assert.True(t, ok)
			assert.Equal(t, tc.site, site)
			assert.Equal(t, tc.lat, lat)
		})
	}
}

func problemFields(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, ErrInvalid)
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	require.NotEmpty(t, ve.Problems)
	return ve.Fields()
}

func TestBuildProblems(t *testing.T) {
	t.Parallel()
	b := testBuilder(t, WithConsentRequired())
	tests := []struct {
		name   string
		mutate func(*Input)
		want   []string
	}{
		{"no facility", func(in *Input) { in.Facility = "" }, []string{"Input.Facility"}},
		{"bad facility", func(in *Input) { in.Facility = "clinic" }, []string{"Input.Facility"}},
		{"no id", func(in *Input) { in.Image.ID = "" }, []string{"Media.identifier[0].value"}},
		{"long id", func(in *Input) { in.Image.ID = strings.Repeat("a", MaxIdentifierLength+1) }, []string{"Media.identifier[0].value"}},
		{"id with spaces", func(in *Input) { in.Image.ID = "img 1" }, []string{"Media.identifier[0].value"}},
		{"no patient", func(in *Input) { in.Patient.ID = "" }, []string{"Media.subject"}},
		{"patient id with slash", func(in *Input) { in.Patient.ID = "a/b" }, []string{"Media.subject"}},
		{"bad nhi", func(in *Input) { in.Patient.NHI = "ABC123" }, []string{"Media.subject.identifier.value"}},
		{"no operator", func(in *Input) { in.Operator = "" }, []string{"Media.operator"}},
		{"bad encounter", func(in *Input) { in.Encounter = "x y" }, []string{"Media.encounter"}},
		{"no content type", func(in *Input) { in.Image.ContentType = "" }, []string{"Media.content.contentType"}},
		{"heic not accepted", func(in *Input) { in.Image.ContentType = "image/heic" }, []string{"Media.content.contentType"}},
		{"unparsable content type", func(in *Input) { in.Image.ContentType = "image/jpeg;;" }, []string{"Media.content.contentType"}},
		{"zero size", func(in *Input) { in.Image.Size = 0 }, []string{"Media.content.size"}},
		{"too big", func(in *Input) { in.Image.Size = DefaultMaxSize + 1 }, []string{"Media.content.size"}},
		{"huge", func(in *Input) { in.Image.Size = 1 << 40 }, []string{"Media.content.size", "Media.content.size"}},
		{"short sha1", func(in *Input) { in.Image.SHA1 = []byte{1, 2, 3} }, []string{"Media.content.hash"}},
		{"negative width", func(in *Input) { in.Image.Width = -1 }, []string{"Media.width"}},
		{"unknown site", func(in *Input) { in.Metadata.BodySite = "22298006" }, []string{"Media.bodySite"}},
		{"unknown laterality", func(in *Input) { in.Metadata.Laterality = "123" }, []string{"Media.bodySite"}},
		{"laterality without site", func(in *Input) { in.Metadata.BodySite = "" }, []string{"Media.bodySite"}},
		{"unknown view", func(in *Input) { in.Metadata.View = "selfie" }, []string{"Media.view"}},
		{"long title", func(in *Input) { in.Metadata.Title = strings.Repeat("x", MaxTitleLength+1) }, []string{"Media.content.title"}},
		{"long note", func(in *Input) { in.Metadata.Note = strings.Repeat("x", MaxNoteLength+1) }, []string{"Media.note[0].text"}},
		{"note over the limit once plain", func(in *Input) { in.Metadata.Note = strings.Repeat("x\u200b", MaxNoteLength) + "y" }, []string{"Media.note[0].text"}},
		{"consent missing", func(in *Input) { in.Consent = nil }, []string{"Input.Consent"}},
		{"unknown consent method", func(in *Input) { in.Consent.Method = "implied" }, []string{"Input.Consent.Method"}},
		{"consent without record", func(in *Input) {
			in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentTeaching, "gossip"}, RecordedBy: "p", RecordedAt: testCreated}
		}, []string{"Input.Consent.Purposes", "Input.Consent.Purposes"}},
		{"consent unattributed", func(in *Input) {
			in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord}}
		}, []string{"Input.Consent.RecordedBy", "Input.Consent.RecordedAt", "Media.note[0].authorReference"}},
		{"everything at once", func(in *Input) {
			in.Facility, in.Image.ID, in.Patient.ID, in.Operator, in.Image.ContentType = "", "", "", "", ""
		}, []string{"Input.Facility", "Media.identifier[0].value", "Media.subject", "Media.operator", "Media.content.contentType"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := testInput()
			in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord}, RecordedBy: "prac-123", RecordedAt: testCreated}
			tc.mutate(&in)
			m, err := b.Build(in)
			assert.Nil(t, m)
			assert.Equal(t, tc.want, problemFields(t, err))
		})
	}
}

func TestValidationErrorHasNoPHI(t *testing.T) {
	t.Parallel()
	in := testInput()
	in.Patient.NHI = "ZZZ00X6"
	in.Image.ID = "secret id with spaces"
	in.Metadata.Title = strings.Repeat("Mrs Smith's rash ", 10)
	_, err := testBuilder(t).Build(in)
	require.Error(t, err)
	msg := err.Error()
	for _, phi := range []string{"ZZZ00X6", "secret", "Smith"} {
		assert.NotContains(t, msg, phi)
	}
	assert.Contains(t, msg, "Media.subject.identifier.value")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  Option
	}{
		{"relative system", WithIdentifierSystem("clinical-images")},
		{"nil zone", WithTimeZone(nil)},
		{"zero size", WithMaxSize(0)},
		{"no types", WithContentTypes()},
		{"type with params", WithContentTypes("image/jpeg; q=1")},
		{"not a type", WithContentTypes("jpeg")},
		{"nil clock", WithClock(nil)},
		{"nil option", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := New(tc.opt)
			assert.Error(t, err)
			assert.Nil(t, b)
		})
	}
	b, err := New(WithContentTypes("image/jpeg", "image/heic"), WithMaxSize(100))
	require.NoError(t, err)
	in := testInput()
	in.Image.ContentType = "image/heic"
	_, err = b.Build(in)
	require.NoError(t, err)
	in.Image.Size = 101
	assert.Equal(t, []string{"Media.content.size"}, problemFields(t, func() error { _, err := b.Build(in); return err }()))
	assert.Equal(t, []string{"image/jpeg", "image/png"}, DefaultContentTypes())
}

func TestPackageLevelHelpers(t *testing.T) {
	t.Parallel()
	m, err := Build(testInput())
	require.NoError(t, err)
	require.NoError(t, Validate(m))
	_, err = Build(testInput(), WithMaxSize(-1))
	assert.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalid, "an option error is not a validation problem")
	assert.ErrorIs(t, Validate(nil), ErrInvalid)
}

func TestBuilderIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	sites := BodySites()
	done := make(chan *fhir.Media, len(sites))
	for _, s := range sites {
		go func() {
			in := testInput()
			in.Metadata = Metadata{BodySite: s.Code, Laterality: LateralityRight, View: "overview"}
			m, err := b.Build(in)
			if err != nil {
				t.Error(err)
			}
			done <- m
		}()
	}
	seen := map[string]bool{}
	for range sites {
		m := <-done
		require.NotNil(t, m)
		require.NoError(t, b.Validate(m))
		seen[*m.BodySite.Coding[0].Code] = true
	}
	assert.Len(t, seen, len(sites), "every goroutine got its own resource")
}
