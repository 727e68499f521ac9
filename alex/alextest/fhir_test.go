package alextest_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func nhiQuery(nhi string) string {
	return url.QueryEscape(alextest.NHISystem + "|" + nhi)
}

func TestPatientSearchByNHI(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	for _, p := range srv.Patients() {
		t.Run(p.NHI, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, call{path: "/FHIR/Patient?identifier=" + nhiQuery(p.NHI), tok: tok})
			require.Equal(t, 200, r.status, string(r.body))
			assert.Equal(t, "application/fhir+json; charset=utf-8", r.header.Get("Content-Type"))
			b, err := fhir.UnmarshalBundle(r.body)
			require.NoError(t, err)
			assert.Equal(t, fhir.BundleTypeSearchset, b.Type)
			require.Len(t, b.Entry, 1)
			require.NotNil(t, b.Total)
			assert.Equal(t, 1, *b.Total)
			pat, err := fhir.UnmarshalPatient(b.Entry[0].Resource)
			require.NoError(t, err)
			assert.Regexp(t, hex32, *pat.Id)
			assert.Equal(t, p.ID, *pat.Id)
			require.Len(t, pat.Identifier, 1)
			assert.Equal(t, alextest.NHISystem, *pat.Identifier[0].System)
			assert.Equal(t, p.NHI, *pat.Identifier[0].Value)
			assert.Equal(t, p.Family, *pat.Name[0].Family)
			assert.Equal(t, p.BirthDate, *pat.BirthDate)
			assert.Equal(t, srv.URL()+"/fhir/Patient/"+p.ID, *b.Entry[0].FullUrl)
		})
	}
	t.Run("unknown NHI is an empty searchset", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, call{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0032"), tok: tok})
		require.Equal(t, 200, r.status)
		b, err := fhir.UnmarshalBundle(r.body)
		require.NoError(t, err)
		assert.Empty(t, b.Entry)
		assert.Equal(t, 0, *b.Total)
	})
	t.Run("lowercase /fhir accepted", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, call{path: "/fhir/Patient?identifier=" + nhiQuery("ZZZ0016"), tok: tok})
		assert.Equal(t, 200, r.status)
	})
}

func TestDefaultPatientsHaveTestNHIs(t *testing.T) {
	t.Parallel()
	var old, newForm int
	for _, p := range alextest.DefaultPatients() {
		assert.True(t, strings.HasPrefix(p.NHI, "ZZZ"), p.NHI)
		assert.True(t, alex.ValidNHI(p.NHI), "%s passes the check the client applies", p.NHI)
		assert.Regexp(t, hex32, p.ID)
		if regexp.MustCompile(`^[A-Z]{3}\d{4}$`).MatchString(p.NHI) {
			old++
		} else if regexp.MustCompile(`^[A-Z]{3}\d{2}[A-Z]{2}$`).MatchString(p.NHI) {
			newForm++
		}
	}
	assert.GreaterOrEqual(t, old, 1)
	assert.GreaterOrEqual(t, newForm, 1)
}

func TestPatientRead(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	p := srv.Patients()[1]
	r := do(t, srv, call{path: "/FHIR/Patient/" + p.ID, tok: tok})
	require.Equal(t, 200, r.status)
	pat, err := fhir.UnmarshalPatient(r.body)
	require.NoError(t, err)
	assert.Equal(t, p.ID, *pat.Id)

	r = do(t, srv, call{path: "/FHIR/Patient/" + strings.Repeat("0", 32), tok: tok})
	require.Equal(t, 404, r.status)
	code, _ := r.outcome(t)
	assert.Equal(t, "not-found", code)
}

// TestRules is the table of ALEX's request rules: each case is one request
// and the status and OperationOutcome (or non-FHIR body) it must get.
func TestRules(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	jpeg := []byte("\xff\xd8\xff\xe0 not really a jpeg")
	const forbiddenDiag = "Authorization failed."
	cases := []struct {
		name       string
		c          call
		status     int
		code, diag string // OperationOutcome; empty code: non-FHIR body
		message    string // non-FHIR message
	}{
		{name: "no token", c: call{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016")}, status: 401, message: "Unauthorized. Access token is missing or invalid."},
		{name: "metadata without token", c: call{path: "/FHIR/metadata"}, status: 401, message: "Unauthorized. Access token is missing or invalid."},
		{name: "no facility", c: call{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016"), tok: tok, facility: "-"}, status: 403, code: "forbidden", diag: "Practice Facility not found"},
		{name: "unknown facility", c: call{path: "/FHIR/Location", tok: tok, facility: "F00000-A"}, status: 403, code: "forbidden", diag: "Practice Facility not found"},
		{name: "Facility-Id is not mt-facilityid", c: call{path: "/FHIR/Location", tok: tok, facility: "-", header: map[string]string{"Facility-Id": "F2N060-E"}}, status: 403, code: "forbidden", diag: "Practice Facility not found"},
		{name: "unknown facility on POST Media", c: call{method: "POST", path: "/FHIR/Media", tok: tok, facility: "F00000-A", body: mediaBody(t, pid, jpeg, nil)}, status: 403, code: "forbidden", diag: "Practice Facility not found"},
		{name: "metadata needs no facility", c: call{path: "/FHIR/metadata", tok: tok, facility: "-"}, status: 200},
		{name: "Patient without filter", c: call{path: "/FHIR/Patient", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Patient by name", c: call{path: "/FHIR/Patient?family=Testing", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Patient identifier without system", c: call{path: "/FHIR/Patient?identifier=ZZZ0016", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Patient identifier plus name", c: call{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016") + "&family=x", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Media by patient", c: call{path: "/FHIR/Media?patient=" + pid, tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Media by subject", c: call{path: "/FHIR/Media?subject=" + pid, tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Media without filter", c: call{path: "/FHIR/Media", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "DocumentReference by subject", c: call{path: "/FHIR/DocumentReference?subject=" + pid, tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Task", c: call{path: "/FHIR/Task?_count=1", tok: tok}, status: 403, code: "forbidden", diag: forbiddenDiag},
		{name: "Encounter", c: call{path: "/FHIR/Encounter", tok: tok}, status: 404, message: "Resource not found"},
		{name: "Encounter by patient", c: call{path: "/FHIR/Encounter?patient=" + pid, tok: tok}, status: 404, message: "Resource not found"},
		{name: "Encounter without token", c: call{path: "/FHIR/Encounter"}, status: 404, message: "Resource not found"},
		{name: "unknown root path", c: call{path: "/nothing", tok: tok}, status: 404, message: "Resource not found"},
		{name: "FHIR twice", c: call{path: "/FHIR/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016"), tok: tok}, status: 404, message: "Resource not found"},
		{name: "DELETE Media", c: call{method: "DELETE", path: "/FHIR/Media/" + pid, tok: tok}, status: 404, message: "Resource not found"},
		{name: "PUT Patient", c: call{method: "PUT", path: "/FHIR/Patient/" + pid, tok: tok, body: []byte(`{}`)}, status: 404, message: "Resource not found"},
		{name: "Media read unknown id", c: call{path: "/FHIR/Media/" + pid, tok: tok}, status: 404, code: "not-found", diag: "Media not found"},
		{name: "bad _count", c: call{path: "/FHIR/Practitioner?_count=x", tok: tok}, status: 400, code: "invalid", diag: "_count and _offset must be non-negative integers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, tc.c)
			require.Equal(t, tc.status, r.status, string(r.body))
			switch {
			case tc.code != "":
				assert.Equal(t, "application/fhir+json; charset=utf-8", r.header.Get("Content-Type"))
				code, diag := r.outcome(t)
				assert.Equal(t, tc.code, code)
				assert.Equal(t, tc.diag, diag)
			case tc.message != "":
				assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
				m := r.json(t)
				assert.Equal(t, float64(tc.status), m["statusCode"])
				assert.Equal(t, tc.message, m["message"])
				assert.NotContains(t, m, "resourceType")
			}
		})
	}
	assert.Empty(t, srv.Media(), "no refused request stores anything")
}

// TestRoles checks each endpoint against a token that lacks its role.
func TestRoles(t *testing.T) {
	t.Parallel()
	pid := alextest.DefaultPatients()[0].ID
	img := mediaBody(t, pid, []byte("img"), nil)
	cases := []struct {
		role string
		c    call
	}{
		{alextest.RoleLocation, call{path: "/FHIR/Location"}},
		{alextest.RoleNHISearch, call{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016")}},
		{alextest.RoleNHISearch, call{path: "/FHIR/Patient/" + pid}},
		{alextest.RolePractitioner, call{path: "/FHIR/Practitioner"}},
		{alextest.RoleMediaWrite, call{method: "POST", path: "/FHIR/Media", body: img}},
		{alextest.RoleMediaRead, call{path: "/FHIR/Media?patient.identifier=" + nhiQuery("ZZZ0016")}},
		{alextest.RoleScanInboxWrite, call{method: "POST", path: "/FHIR/DocumentReference", body: []byte(`{"resourceType":"DocumentReference"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.role+" "+tc.c.method+" "+tc.c.path, func(t *testing.T) {
			t.Parallel()
			var others []string
			for _, r := range alextest.DefaultRoles() {
				if r != tc.role {
					others = append(others, r)
				}
			}
			srv := alextest.NewTestServer(t, alextest.WithRoles(others...))
			tc.c.tok = token(t, srv)
			r := do(t, srv, tc.c)
			require.Equal(t, 403, r.status, string(r.body))
			code, diag := r.outcome(t)
			assert.Equal(t, "forbidden", code)
			assert.Equal(t, "Authorization failed.", diag)

			srv.SetRoles(alextest.DefaultRoles()...)
			tc.c.tok = token(t, srv)
			r = do(t, srv, tc.c)
			assert.NotEqual(t, 403, r.status, "with the role: %s", r.body)
		})
	}
}

func TestCreateMedia(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 11, 21, 0, 0, 600_000_000, time.FixedZone("NZDT", 13*3600))
	srv := alextest.NewTestServer(t, alextest.WithClock(func() time.Time { return now }))
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	img := make([]byte, 70_000)
	_, _ = rand.Read(img)

	r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: mediaBody(t, pid, img, nil),
		header: map[string]string{"mt-correlationid": "c0ffee00-0000-4000-8000-000000000001"}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	m, err := fhir.UnmarshalMedia(r.body)
	require.NoError(t, err)
	require.NotNil(t, m.Id)
	id := *m.Id
	assert.Regexp(t, hex32, id)
	assert.Equal(t, id, *m.Meta.VersionId)
	assert.Equal(t, "2026-01-11T08:00:00.6+00:00", *m.Meta.LastUpdated)
	assert.Equal(t, srv.URL()+"/fhir/Media/"+id+"/_history/"+id, r.header.Get("Location"))
	assert.Equal(t, `W/"`+id+`"`, r.header.Get("ETag"))
	// The whole resource is echoed, data included.
	require.NotNil(t, m.Content.Data)
	echoed, err := base64.StdEncoding.DecodeString(*m.Content.Data)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(img, echoed))
	assert.Equal(t, "Left forearm", *m.Content.Title)
	assert.Equal(t, "IMG-1", *m.Identifier[0].Value)
	assert.Equal(t, "2026-01-12T10:00:00+13:00", *m.CreatedDateTime)
	assert.Equal(t, fhir.EventStatusCompleted, m.Status)

	stored := srv.Media()
	require.Len(t, stored, 1)
	assert.Equal(t, id, *stored[0].Id)
	assert.Nil(t, stored[0].Content.Data, "Media() removes content.data")
	data, ok := srv.MediaData(id)
	require.True(t, ok)
	assert.True(t, bytes.Equal(img, data))
	fac, ok := srv.MediaFacility(id)
	require.True(t, ok)
	assert.Equal(t, srv.Facility(), fac)

	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "POST", reqs[0].Method)
	assert.Equal(t, "/FHIR/Media", reqs[0].Path)
	assert.Equal(t, srv.Facility(), reqs[0].Facility)
	assert.Equal(t, "c0ffee00-0000-4000-8000-000000000001", reqs[0].CorrelationID)
	assert.Equal(t, int64(len(mediaBody(t, pid, img, nil))), reqs[0].BodyBytes)
	assert.Equal(t, "application/fhir+json", reqs[0].Header.Get("Content-Type"))
	assert.Equal(t, now, reqs[0].Time)
}

func TestCreateMediaAccepts(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[2].ID
	cases := []struct {
		name string
		edit func(map[string]any)
	}{
		{"png", func(m map[string]any) { content(m)["contentType"] = "image/png" }},
		{"pdf", func(m map[string]any) { content(m)["contentType"] = "application/pdf" }},
		{"absolute subject", func(m map[string]any) {
			m["subject"] = map[string]any{"reference": "https://alexapiuat.medtechglobal.com/fhir/Patient/" + pid}
		}},
		{"identifier without system", func(m map[string]any) { m["identifier"] = []any{map[string]any{"value": "REF-9"}} }},
		{"encounter, operator and body site", func(m map[string]any) {
			m["encounter"] = map[string]any{"reference": "Encounter/app-made-1"}
			m["operator"] = map[string]any{"reference": "Practitioner/9bf0832786e2293848942167532e0a91"}
			m["bodySite"] = map[string]any{"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "14975008"}}}
		}},
		{"escaped slash in base64", func(m map[string]any) {
			content(m)["data"] = base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff, 0xfe})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := mediaBody(t, pid, []byte("some image bytes"), tc.edit)
			if tc.name == "escaped slash in base64" {
				body = bytes.ReplaceAll(body, []byte("/"), []byte(`\/`))
			}
			r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: body})
			require.Equal(t, 201, r.status, string(r.body))
			m, err := fhir.UnmarshalMedia(r.body)
			require.NoError(t, err)
			data, ok := srv.MediaData(*m.Id)
			require.True(t, ok)
			var sent struct {
				Content struct{ Data string } `json:"content"`
			}
			require.NoError(t, json.Unmarshal(body, &sent))
			want, err := base64.StdEncoding.DecodeString(sent.Content.Data)
			require.NoError(t, err)
			assert.Equal(t, want, data)
		})
	}
}

func TestCreateMediaRejects(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	cases := []struct {
		name       string
		edit       func(map[string]any)
		raw        []byte
		header     map[string]string
		status     int
		code, diag string
	}{
		{name: "no identifier", edit: func(m map[string]any) { delete(m, "identifier") }, status: 400, code: "business-rule", diag: "The mandatory Identifier.value with the reference number is missing"},
		{name: "identifier without value", edit: func(m map[string]any) { m["identifier"] = []any{map[string]any{"system": "urn:x"}} }, status: 400, code: "business-rule", diag: "The mandatory Identifier.value with the reference number is missing"},
		{name: "blank identifier value", edit: func(m map[string]any) { m["identifier"] = []any{map[string]any{"value": " "}} }, status: 400, code: "business-rule", diag: "The mandatory Identifier.value with the reference number is missing"},
		{name: "identifier checked first", edit: func(m map[string]any) { delete(m, "identifier"); delete(m, "status"); delete(m, "subject") }, status: 400, code: "business-rule", diag: "The mandatory Identifier.value with the reference number is missing"},
		{name: "no status", edit: func(m map[string]any) { delete(m, "status") }, status: 400, code: "required", diag: "Media.status is required"},
		{name: "invalid status", edit: func(m map[string]any) { m["status"] = "done" }, status: 400, code: "invalid", diag: "The Media resource could not be parsed"},
		{name: "no subject", edit: func(m map[string]any) { delete(m, "subject") }, status: 400, code: "required", diag: "Media.subject must reference a Patient"},
		{name: "subject not a patient", edit: func(m map[string]any) { m["subject"] = map[string]any{"reference": "Group/" + pid} }, status: 400, code: "required", diag: "Media.subject must reference a Patient"},
		{name: "unknown patient", edit: func(m map[string]any) {
			m["subject"] = map[string]any{"reference": "Patient/" + strings.Repeat("a", 32)}
		}, status: 400, code: "business-rule", diag: "The subject Patient was not found"},
		{name: "no content type", edit: func(m map[string]any) { delete(content(m), "contentType") }, status: 400, code: "invalid", diag: "Media.content.contentType must be image/jpeg, image/png or application/pdf"},
		{name: "heic", edit: func(m map[string]any) { content(m)["contentType"] = "image/heic" }, status: 400, code: "invalid", diag: "Media.content.contentType must be image/jpeg, image/png or application/pdf"},
		{name: "tiff", edit: func(m map[string]any) { content(m)["contentType"] = "image/tiff" }, status: 400, code: "invalid", diag: "Media.content.contentType must be image/jpeg, image/png or application/pdf"},
		{name: "no data", edit: func(m map[string]any) { delete(content(m), "data") }, status: 400, code: "required", diag: "Media.content.data is required"},
		{name: "empty data", edit: func(m map[string]any) { content(m)["data"] = "" }, status: 400, code: "required", diag: "Media.content.data is required"},
		{name: "url instead of data", edit: func(m map[string]any) { delete(content(m), "data"); content(m)["url"] = "https://x/y.jpg" }, status: 400, code: "required", diag: "Media.content.data is required"},
		{name: "bad base64 characters", edit: func(m map[string]any) { content(m)["data"] = "not*base64!" }, status: 400, code: "invalid", diag: "Media.content.data is not valid base64"},
		{name: "base64 without padding", edit: func(m map[string]any) { content(m)["data"] = "QUJDRA" }, status: 400, code: "invalid", diag: "Media.content.data is not valid base64"},
		{name: "base64url alphabet", edit: func(m map[string]any) { content(m)["data"] = "__--" }, status: 400, code: "invalid", diag: "Media.content.data is not valid base64"},
		{name: "data after padding", edit: func(m map[string]any) { content(m)["data"] = "QQ==QUJD" }, status: 400, code: "invalid", diag: "Media.content.data is not valid base64"},
		{name: "wrong resource type", edit: func(m map[string]any) { m["resourceType"] = "Binary" }, status: 400, code: "invalid", diag: "The request body must be a Media resource"},
		{name: "not JSON", raw: []byte(`{"resourceType":"Media",`), status: 400, code: "structure", diag: "The request body is not valid JSON"},
		{name: "unterminated data", raw: []byte(`{"resourceType":"Media","content":{"data":"QUJD`), status: 400, code: "structure", diag: "The request body is not valid JSON"},
		{name: "application/json", header: map[string]string{"Content-Type": "application/json"}, status: 415, code: "not-supported", diag: "Content-Type must be application/fhir+json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := tc.raw
			if body == nil {
				body = mediaBody(t, pid, []byte("image"), tc.edit)
			}
			r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: body, header: tc.header})
			require.Equal(t, tc.status, r.status, string(r.body))
			code, diag := r.outcome(t)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.diag, diag)
		})
	}
	assert.Empty(t, srv.Media(), "nothing refused is stored")
}
