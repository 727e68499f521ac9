package alextest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	r := do(t, srv, call{path: "/FHIR/metadata", tok: token(t, srv)})
	require.Equal(t, 200, r.status)
	cs, err := fhir.UnmarshalCapabilityStatement(r.body)
	require.NoError(t, err)
	assert.Equal(t, "4.0.1", cs.FhirVersion.Code())
	require.Len(t, cs.Rest, 1)
	var types []string
	for _, res := range cs.Rest[0].Resource {
		types = append(types, res.Type.Code())
	}
	assert.Subset(t, types, []string{"Patient", "Media", "Location", "Practitioner", "DocumentReference"})
}

func TestLocation(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	for _, facility := range srv.Facilities() {
		r := do(t, srv, call{path: "/FHIR/Location", tok: tok, facility: facility})
		require.Equal(t, 200, r.status)
		b, err := fhir.UnmarshalBundle(r.body)
		require.NoError(t, err)
		require.Len(t, b.Entry, 1)
		loc, err := fhir.UnmarshalLocation(b.Entry[0].Resource)
		require.NoError(t, err)
		assert.Regexp(t, hex32, *loc.Id)
		require.Len(t, loc.Identifier, 1)
		assert.Equal(t, alextest.HPIFacilitySystem, *loc.Identifier[0].System)
		assert.Equal(t, facility, *loc.Identifier[0].Value)
		assert.Equal(t, alextest.HPIOrgSystem, *loc.ManagingOrganization.Identifier.System)
		require.Len(t, loc.Extension, 1)
		assert.Equal(t, alextest.PMSVersionURL, loc.Extension[0].Url)
	}
}

// pages follows next links from first and returns every entry's id.
func pages(t *testing.T, srv *alextest.Server, tok, first string) (ids []string, pageCount int) {
	t.Helper()
	path := first
	for path != "" {
		r := do(t, srv, call{path: path, tok: tok})
		require.Equal(t, 200, r.status, string(r.body))
		b, err := fhir.UnmarshalBundle(r.body)
		require.NoError(t, err)
		pageCount++
		for _, e := range b.Entry {
			var res struct{ ID string }
			require.NoError(t, json.Unmarshal(e.Resource, &res))
			ids = append(ids, res.ID)
		}
		path = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				require.True(t, strings.HasPrefix(l.Url, srv.URL()+"/fhir/"), "next link is absolute with lowercase /fhir: %s", l.Url)
				path = strings.TrimPrefix(l.Url, srv.URL())
			}
		}
		require.Less(t, pageCount, 20, "paging does not end")
	}
	return ids, pageCount
}

func TestPractitionerPaging(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	var want []string
	for _, p := range srv.Practitioners() {
		want = append(want, p.ID)
	}
	cases := []struct {
		name      string
		path      string
		wantPages int
	}{
		{"default page size", "/FHIR/Practitioner", 1},
		{"_count=2", "/FHIR/Practitioner?_count=2", 2},
		{"_count=1", "/FHIR/Practitioner?_count=1", 3},
		{"_count equal to total", "/FHIR/Practitioner?_count=3", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ids, n := pages(t, srv, tok, tc.path)
			assert.Equal(t, want, ids)
			assert.Equal(t, tc.wantPages, n)
		})
	}
	r := do(t, srv, call{path: "/FHIR/Practitioner/" + want[0], tok: tok})
	require.Equal(t, 200, r.status)
	p, err := fhir.UnmarshalPractitioner(r.body)
	require.NoError(t, err)
	assert.Equal(t, "Api", *p.Name[0].Family)
	assert.Equal(t, 404, do(t, srv, call{path: "/FHIR/Practitioner/" + strings.Repeat("b", 32), tok: tok}).status)
}

func TestMediaSearchAndRead(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t, alextest.WithPageSize(2))
	tok := token(t, srv)
	p0, p1 := srv.Patients()[0], srv.Patients()[1]
	create := func(p alextest.Patient, facility string, data []byte) string {
		r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, facility: facility, body: mediaBody(t, p.ID, data, nil)})
		require.Equal(t, 201, r.status, string(r.body))
		m, err := fhir.UnmarshalMedia(r.body)
		require.NoError(t, err)
		return *m.Id
	}
	var mine []string
	for i := range 5 {
		mine = append(mine, create(p0, "", []byte{byte(i), 1, 2, 3}))
	}
	other := create(p1, "", []byte("other patient"))
	elsewhere := create(p0, alextest.LocalFacility, []byte("other facility"))

	ids, n := pages(t, srv, tok, "/FHIR/Media?patient.identifier="+nhiQuery(p0.NHI))
	assert.Equal(t, mine, ids, "only this patient's Media at this facility, in order")
	assert.Equal(t, 3, n, "5 entries in pages of 2")
	assert.NotContains(t, ids, other)
	assert.NotContains(t, ids, elsewhere)

	// Data are included in search results, as ALEX does.
	r := do(t, srv, call{path: "/FHIR/Media?patient.identifier=" + nhiQuery(p0.NHI) + "&_count=1", tok: tok})
	require.Equal(t, 200, r.status)
	b, err := fhir.UnmarshalBundle(r.body)
	require.NoError(t, err)
	assert.Equal(t, 5, *b.Total)
	m, err := fhir.UnmarshalMedia(b.Entry[0].Resource)
	require.NoError(t, err)
	require.NotNil(t, m.Content.Data)
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 3}), *m.Content.Data)

	// Read by id: data included, only at its own facility.
	r = do(t, srv, call{path: "/FHIR/Media/" + elsewhere, tok: tok, facility: alextest.LocalFacility})
	require.Equal(t, 200, r.status)
	assert.Equal(t, `W/"`+elsewhere+`"`, r.header.Get("ETag"))
	m, err = fhir.UnmarshalMedia(r.body)
	require.NoError(t, err)
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("other facility")), *m.Content.Data)
	assert.Equal(t, 404, do(t, srv, call{path: "/FHIR/Media/" + elsewhere, tok: tok}).status)

	// An unknown NHI finds nothing.
	ids, _ = pages(t, srv, tok, "/FHIR/Media?patient.identifier="+nhiQuery("ZZZ0032"))
	assert.Empty(t, ids)
}

func docRefBody(t *testing.T, patientID string, data []byte, edit func(map[string]any)) []byte {
	t.Helper()
	d := map[string]any{
		"resourceType": "DocumentReference",
		"identifier":   []any{map[string]any{"system": "https://clinicpro.co.nz/image-id", "value": "SCAN-1"}},
		"status":       "current",
		"date":         "2026-01-12T10:00:00+13:00",
		"type": map[string]any{"coding": []any{map[string]any{
			"system": "http://loinc.org", "code": "72170-4", "display": "Photographic image"}}},
		"subject": map[string]any{"reference": "https://alexapiuat.medtechglobal.com/fhir/Patient/" + patientID},
		"author":  []any{map[string]any{"reference": "Practitioner/9bf0832786e2293848942167532e0a91"}},
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "application/pdf", "title": "Wound photo",
			"data": base64.StdEncoding.EncodeToString(data)}}},
	}
	if edit != nil {
		edit(d)
	}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	return b
}

func attachment(d map[string]any) map[string]any {
	return d["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
}

func TestCreateDocumentReference(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[3].ID
	pdf := []byte("%PDF-1.4 fake")
	r := do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, pdf, nil)})
	require.Equal(t, 201, r.status, string(r.body))
	d, err := fhir.UnmarshalDocumentReference(r.body)
	require.NoError(t, err)
	id := *d.Id
	assert.Regexp(t, hex32, id)
	assert.Equal(t, id, *d.Meta.VersionId)
	assert.Equal(t, srv.URL()+"/fhir/DocumentReference/"+id+"/_history/"+id, r.header.Get("Location"))
	assert.Equal(t, `W/"`+id+`"`, r.header.Get("ETag"))
	assert.Equal(t, base64.StdEncoding.EncodeToString(pdf), *d.Content[0].Attachment.Data, "echoed with data")

	stored := srv.DocumentReferences()
	require.Len(t, stored, 1)
	assert.Nil(t, stored[0].Content[0].Attachment.Data)
	data, ok := srv.DocumentReferenceData(id)
	require.True(t, ok)
	assert.True(t, bytes.Equal(pdf, data))

	t.Run("tiff and relative subject accepted", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, jpegTIFF(t, binary.LittleEndian, testJPEG(t, 8, 8)), func(d map[string]any) {
			attachment(d)["contentType"] = "image/tiff"
			d["subject"] = map[string]any{"reference": "Patient/" + pid}
		})})
		assert.Equal(t, 201, r.status, string(r.body))
	})
}

func TestCreateDocumentReferenceRejects(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	cases := []struct {
		name       string
		edit       func(map[string]any)
		data       []byte
		code, diag string
	}{
		{name: "no identifier", edit: func(d map[string]any) { delete(d, "identifier") }, code: "business-rule", diag: "The mandatory Identifier.value with the reference number is missing"},
		{name: "no status", edit: func(d map[string]any) { delete(d, "status") }, code: "invalid", diag: "DocumentReference.status must be current"},
		{name: "superseded", edit: func(d map[string]any) { d["status"] = "superseded" }, code: "invalid", diag: "DocumentReference.status must be current"},
		{name: "no type", edit: func(d map[string]any) { delete(d, "type") }, code: "invalid", diag: "DocumentReference.type must be LOINC 72170-4"},
		{name: "other LOINC", edit: func(d map[string]any) {
			d["type"] = map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "11488-4"}}}
		}, code: "invalid", diag: "DocumentReference.type must be LOINC 72170-4"},
		{name: "no subject", edit: func(d map[string]any) { delete(d, "subject") }, code: "required", diag: "DocumentReference.subject must reference a Patient"},
		{name: "unknown patient", edit: func(d map[string]any) {
			d["subject"] = map[string]any{"reference": "Patient/" + strings.Repeat("c", 32)}
		}, code: "business-rule", diag: "The subject Patient was not found"},
		{name: "no author", edit: func(d map[string]any) { delete(d, "author") }, code: "required", diag: "DocumentReference.author must reference a Practitioner"},
		{name: "author not a practitioner", edit: func(d map[string]any) { d["author"] = []any{map[string]any{"reference": "Organization/x"}} }, code: "required", diag: "DocumentReference.author must reference a Practitioner"},
		{name: "no content", edit: func(d map[string]any) { delete(d, "content") }, code: "required", diag: "DocumentReference.content is required"},
		{name: "jpeg", edit: func(d map[string]any) { attachment(d)["contentType"] = "image/jpeg" }, code: "invalid", diag: "Attachment contentType must be application/pdf or image/tiff"},
		{name: "png", edit: func(d map[string]any) { attachment(d)["contentType"] = "image/png" }, code: "invalid", diag: "Attachment contentType must be application/pdf or image/tiff"},
		{name: "no data", edit: func(d map[string]any) { delete(attachment(d), "data") }, code: "required", diag: "Attachment data is required"},
		{name: "bad base64", edit: func(d map[string]any) { attachment(d)["data"] = "%%%" }, code: "invalid", diag: "Attachment data is not valid base64"},
		{name: "8 MB exactly", data: make([]byte, 8<<20), code: "business-rule", diag: "Attachment must be under 8 MB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.data
			if data == nil {
				data = []byte("%PDF")
			}
			r := do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, data, tc.edit)})
			require.Equal(t, 400, r.status, string(r.body))
			code, diag := r.outcome(t)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.diag, diag)
		})
	}
	t.Run("just under 8 MB", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, call{method: "POST", path: "/FHIR/DocumentReference", tok: tok, body: docRefBody(t, pid, make([]byte, 8<<20-1), nil)})
		assert.Equal(t, 201, r.status)
	})
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	cases := map[string]alextest.Option{
		"scope form":            alextest.WithCredentials("id", "secret", "https://x/.default"),
		"empty secret":          alextest.WithCredentials("id", "", alextest.DefaultScope),
		"no facilities":         alextest.WithFacilities(),
		"blank facility":        alextest.WithFacilities(" "),
		"short lifetime":        alextest.WithTokenLifetime(0),
		"patient without NHI":   alextest.WithPatients(alextest.Patient{Family: "X"}),
		"bad patient id":        alextest.WithPatients(alextest.Patient{ID: "123", NHI: "ZZZ0016"}),
		"same NHI, derived ids": alextest.WithPatients(alextest.Patient{NHI: "ZZZ0016"}, alextest.Patient{NHI: "zzz0016"}),
		"nil clock":             alextest.WithClock(nil),
		"page size":             alextest.WithPageSize(0),
		"tenant":                alextest.WithTenant("a/b"),
		"practitioner id":       alextest.WithPractitioners(alextest.Practitioner{ID: "x"}),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Panics(t, func() { alextest.NewServer(opt).Close() })
		})
	}
}

func TestCustomConfiguration(t *testing.T) {
	t.Parallel()
	const scope = "api://bf7945a6-e812-4121-898a-76fea7c13f4d/.default"
	srv := alextest.NewTestServer(t,
		alextest.WithCredentials("client-1", "secret-1", scope),
		alextest.WithTenant("tenant-1"),
		alextest.WithFacilities("F11111-A"),
		alextest.WithPatients(alextest.Patient{NHI: "zzz0032", Family: "Only"}),
	)
	id, secret, gotScope := srv.Credentials()
	assert.Equal(t, []string{"client-1", "secret-1", scope}, []string{id, secret, gotScope})
	assert.Equal(t, srv.URL()+"/tenant-1/oauth2/v2.0/token", srv.TokenURL())
	assert.Equal(t, "F11111-A", srv.Facility())
	ps := srv.Patients()
	require.Len(t, ps, 1)
	assert.Equal(t, "ZZZ0032", ps[0].NHI)
	assert.Regexp(t, hex32, ps[0].ID)

	tok := token(t, srv)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Patient/" + ps[0].ID, tok: tok}).status)
	assert.Equal(t, 403, do(t, srv, call{path: "/FHIR/Location", tok: tok, facility: alextest.DefaultFacility}).status,
		"the default facility is not linked any more")
}
