package alex

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMedia() *fhir.Media {
	return &fhir.Media{
		Status:     fhir.EventStatusCompleted,
		Identifier: []fhir.Identifier{{System: ptr("https://clinicpro.co.nz/ns/image-id"), Value: ptr("img-01")}},
		Type:       &fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptr("http://terminology.hl7.org/CodeSystem/media-type"), Code: ptr("image")}}},
		Subject:    &fhir.Reference{Reference: ptr("Patient/0123456789abcdef0123456789abcdef")},
		Content:    fhir.Attachment{ContentType: ptr("image/jpeg"), Title: ptr("Left forearm & <wrist>")},
	}
}

// echoMedia answers like ALEX: 201, Location with lowercase /fhir and
// _history, ETag, and the whole resource echoed with its data.
func echoMedia(t *testing.T, f *fake, id string) {
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&m))
		m["id"] = id
		m["meta"] = map[string]any{"versionId": id, "lastUpdated": "2026-11-25T01:02:03Z"}
		w.Header().Set("Location", f.srv.URL+"/fhir/Media/"+id+"/_history/"+id)
		w.Header().Set("ETag", `W/"`+id+`"`)
		writeJSON(w, http.StatusCreated, m)
	})
}

func TestCreateMediaStreamsExactlyWhatJSONMarshalWould(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	echoMedia(t, f, "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e")
	img := make([]byte, 300<<10+1)
	_, _ = rand.Read(img)
	m := testMedia()
	cr, err := f.client(t).CreateMedia(t.Context(), m, BytesContent(img))
	require.NoError(t, err)
	assert.Equal(t, "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e", cr.ID)
	assert.Equal(t, "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e", cr.VersionID)
	assert.Equal(t, `W/"4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e"`, cr.ETag)
	assert.Contains(t, cr.Location, "/fhir/Media/")
	assert.NotEmpty(t, cr.CorrelationID)
	assert.Nil(t, m.Content.Data, "the caller's Media is not modified")

	want := *m
	want.Content.Data = ptr(base64.StdEncoding.EncodeToString(img))
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	reqs, bodies := f.recorded()
	require.Len(t, reqs, 1)
	assert.True(t, bytes.Equal(wantJSON, bodies[0]), "streamed body differs from json.Marshal")
	assert.Equal(t, int64(len(wantJSON)), reqs[0].ContentLength, "Content-Length is exact")
	assert.Equal(t, "/prefix/FHIR/Media", reqs[0].URL.Path)
}

func TestCreateMediaWithUnknownSizeIsChunked(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	echoMedia(t, f, "m2")
	content := Content{Size: -1, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("abc")), nil
	}}
	cr, err := f.client(t).CreateMedia(t.Context(), testMedia(), content)
	require.NoError(t, err)
	assert.Equal(t, "m2", cr.ID)
	reqs, bodies := f.recorded()
	assert.EqualValues(t, -1, reqs[0].ContentLength)
	assert.Contains(t, string(bodies[0]), `"data":"YWJj"`)
}

func TestCreateMediaRefusesWhatALEXRejects(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c := f.client(t)
	cases := map[string]func(m *fhir.Media){
		"no identifier":   func(m *fhir.Media) { m.Identifier = nil },
		"empty value":     func(m *fhir.Media) { m.Identifier[0].Value = ptr("") },
		"no subject":      func(m *fhir.Media) { m.Subject = nil },
		"no content type": func(m *fhir.Media) { m.Content.ContentType = nil },
	}
	for name, mutate := range cases {
		m := testMedia()
		mutate(m)
		_, err := c.CreateMedia(t.Context(), m, BytesContent([]byte("x")))
		require.ErrorIs(t, err, ErrValidation, name)
	}
	_, err := c.CreateMedia(t.Context(), testMedia(), Content{})
	require.ErrorIs(t, err, ErrValidation)
	_, err = c.CreateMedia(t.Context(), testMedia(), Content{Size: 1, Open: func(context.Context) (io.ReadCloser, error) {
		return nil, fmt.Errorf("blob gone")
	}})
	require.ErrorContains(t, err, "blob gone")
	reqs, _ := f.recorded()
	assert.Empty(t, reqs, "nothing invalid reached ALEX")
}

func TestCreateMediaMissingIDInReplyIsAnError(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 201, `{}`) })
	_, err := f.client(t).CreateMedia(t.Context(), testMedia(), BytesContent([]byte("x")))
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown)
}

func TestCreateDocumentReferenceStreams(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", f.srv.URL+"/fhir/DocumentReference/d1/_history/d1")
		writeJSON(w, 201, `{"resourceType":"DocumentReference","id":"d1"}`)
	})
	d := &fhir.DocumentReference{
		Status:  fhir.DocumentReferenceStatusCurrent,
		Subject: &fhir.Reference{Reference: ptr("Patient/p")},
		Content: []fhir.DocumentReferenceContent{{Attachment: fhir.Attachment{ContentType: ptr("application/pdf")}}},
	}
	cr, err := f.client(t).CreateDocumentReference(t.Context(), d, BytesContent([]byte("%PDF-1.4")))
	require.NoError(t, err)
	assert.Equal(t, "d1", cr.ID)
	_, bodies := f.recorded()
	assert.Contains(t, string(bodies[0]), `"data":"JVBERi0xLjQ="`)
	assert.Nil(t, d.Content[0].Attachment.Data)
}

func TestSearchMediaByNHIPagesAndDropsData(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	big := strings.Repeat("QUJD", 1<<18) // 1 MiB of base64 per entry
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		require.Equal(t, NHISystem+"|"+testNHI, q.Get("patient.identifier"))
		page := q.Get("page")
		next := ""
		if page == "" {
			// ALEX writes links with a lowercase /fhir.
			next = fmt.Sprintf(`,"link":[{"relation":"next","url":"%s/prefix/fhir/Media?patient.identifier=%s&page=2"}]`, f.srv.URL, q.Get("patient.identifier"))
		}
		writeJSON(w, 200, fmt.Sprintf(`{"resourceType":"Bundle","type":"searchset"%s,"entry":[{"resource":{"resourceType":"Media","id":"m-%s","status":"completed","identifier":[{"value":"img-%s"}],"content":{"contentType":"image/jpeg","data":"%s"}}},{"resource":{"resourceType":"OperationOutcome","issue":[]}}]}`, next, page, page, big))
	})
	c := f.client(t)
	var ids []string
	for m, err := range c.SearchMediaByNHI(t.Context(), strings.ToLower(testNHI)) {
		require.NoError(t, err)
		ids = append(ids, *m.Id)
		assert.True(t, m.Content.Data == nil || *m.Content.Data == "", "data filtered out")
	}
	assert.Equal(t, []string{"m-", "m-2"}, ids)
	reqs, _ := f.recorded()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/prefix/FHIR/Media", reqs[1].URL.Path, "next link put back in the base's case")

	m, err := c.FindMediaByIdentifier(t.Context(), testNHI, "", "img-2")
	require.NoError(t, err)
	assert.Equal(t, "m-2", *m.Id)
	_, err = c.FindMediaByIdentifier(t.Context(), testNHI, "", "img-404")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSearchRefusesNextLinkToAnotherHost(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"https://evil.example/FHIR/Practitioner?page=2"}],"entry":[{"resource":{"resourceType":"Practitioner","id":"p1"}}]}`)
	})
	var n int
	var lastErr error
	for p, err := range f.client(t).Practitioners(t.Context()) {
		if err != nil {
			lastErr = err
			break
		}
		n++
		assert.Equal(t, "p1", *p.Id)
	}
	assert.Equal(t, 1, n)
	require.ErrorContains(t, lastErr, "another host")
}

func TestFindPatientByNHI(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var entries atomic.Int64
	entries.Store(1)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		var es []string
		for range entries.Load() {
			es = append(es, `{"resource":`+patientJSON+`}`)
		}
		writeJSON(w, 200, `{"resourceType":"Bundle","type":"searchset","entry":[`+strings.Join(es, ",")+`]}`)
	})
	c := f.client(t)
	p, err := c.FindPatientByNHI(t.Context(), "zzz0016")
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef0123456789abcdef", *p.Id)
	reqs, _ := f.recorded()
	assert.Equal(t, NHISystem+"|ZZZ0016", reqs[0].URL.Query().Get("identifier"))

	entries.Store(0)
	_, err = c.FindPatientByNHI(t.Context(), testNHI)
	require.ErrorIs(t, err, ErrNotFound)
	entries.Store(2)
	_, err = c.FindPatientByNHI(t.Context(), testNHI)
	require.ErrorIs(t, err, ErrAmbiguous)

	_, err = c.FindPatientByNHI(t.Context(), "ZZZ0017")
	require.ErrorIs(t, err, ErrValidation)
	reqs, _ = f.recorded()
	assert.Len(t, reqs, 3, "an invalid NHI is refused before any call")
}

func TestReadChecksResourceType(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Practitioner","id":"x"}`)
	})
	_, err := f.client(t).ReadPatient(t.Context(), "x")
	require.ErrorContains(t, err, `want "Patient"`)
	_, err = f.client(t).ReadPatient(t.Context(), "../Practitioner/x")
	require.ErrorIs(t, err, ErrValidation)
}

func TestCapabilitiesLocationsPractitioners(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/prefix/FHIR/metadata":
			writeJSON(w, 200, `{"resourceType":"CapabilityStatement","status":"active","date":"2026","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
		case "/prefix/FHIR/Location":
			writeJSON(w, 200, `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Location","id":"l1","identifier":[{"system":"`+HPIFacilitySystem+`","value":"F2N060-E"}]}}]}`)
		default:
			writeJSON(w, 403, outcome("forbidden", "Authorization failed."))
		}
	})
	c := f.client(t)
	cs, err := c.Capabilities(t.Context())
	require.NoError(t, err)
	assert.Equal(t, fhir.FHIRVersion4_0_1, cs.FhirVersion)
	for l, err := range c.Locations(t.Context()) {
		require.NoError(t, err)
		assert.Equal(t, "F2N060-E", *l.Identifier[0].Value)
	}
	for _, err := range c.Practitioners(t.Context()) {
		require.ErrorIs(t, err, ErrForbidden)
		require.NotErrorIs(t, err, ErrFacilityNotFound)
	}
}

func TestLaunchContext(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.EscapedPath(), "/ctx%2F1%2B/sig%3D%3D"):
			writeJSON(w, 200, `{"patientId":"0123456789abcdef0123456789abcdef","facilityCode":"F2N060-E","providerId":"P123","createdTime":"2026-11-25T10:42:00+13:00"}`)
		case strings.HasSuffix(r.URL.Path, "/nopatient/sig"):
			writeJSON(w, 200, `{"patientId":null,"facilityCode":"F2N060-E","providerId":"P123","createdTime":"2026-11-25T10:42:00"}`)
		default:
			writeJSON(w, 403, outcome("forbidden", "Invalid signature"))
		}
	})
	c, err := New(f.base(), WithClientCredentials(f.creds()), WithRetryPolicy(fastRetry)) // no default facility
	require.NoError(t, err)
	l, err := c.LaunchContext(t.Context(), "ctx/1+", "sig==")
	require.NoError(t, err)
	assert.Equal(t, "0123456789abcdef0123456789abcdef", l.PatientID)
	assert.Equal(t, "F2N060-E", l.FacilityCode)
	assert.Equal(t, "P123", l.ProviderID)
	assert.Equal(t, 2026, l.Created.Year())
	reqs, _ := f.recorded()
	assert.Equal(t, "/vendorforms/api/getlaunchcontextstring/ctx%2F1%2B/sig%3D%3D", reqs[0].URL.EscapedPath(), "at the host root, segments escaped")
	assert.Empty(t, reqs[0].Header.Get("mt-facilityid"))
	assert.Equal(t, "Bearer tok-1", reqs[0].Header.Get("Authorization"))

	l, err = c.LaunchContext(t.Context(), "nopatient", "sig")
	require.ErrorIs(t, err, ErrNoPatient)
	assert.Equal(t, "F2N060-E", l.FacilityCode)

	_, err = c.LaunchContext(t.Context(), "forged", "sig")
	require.ErrorIs(t, err, ErrForbidden)
	_, err = c.LaunchContext(t.Context(), "", "sig")
	require.ErrorIs(t, err, ErrValidation)
}

// BenchmarkCreateMedia compares bytes allocated per CreateMedia (streamed
// encode, POST, streamed read of the echo) with a naive path that builds the
// whole resource with json.Marshal, as most clients do. Run:
//
//	go test -run '^$' -bench CreateMedia -benchmem ./alex
func BenchmarkCreateMedia(b *testing.B) {
	for _, size := range []int{1 << 20, 10 << 20} {
		img := make([]byte, size)
		_, _ = rand.Read(img)
		b.Run(fmt.Sprintf("streamed/%dMB", size>>20), func(b *testing.B) {
			f := newBenchFake(b)
			c, err := New(f.base(), WithClientCredentials(f.creds()), WithFacility(fakeFacility))
			require.NoError(b, err)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.CreateMedia(b.Context(), testMedia(), BytesContent(img)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("naive-json.Marshal/%dMB", size>>20), func(b *testing.B) {
			f := newBenchFake(b)
			c, err := New(f.base(), WithClientCredentials(f.creds()), WithFacility(fakeFacility))
			require.NoError(b, err)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				m := testMedia()
				m.Content.Data = ptr(base64.StdEncoding.EncodeToString(img))
				body, err := json.Marshal(m)
				if err != nil {
					b.Fatal(err)
				}
				tok, _ := c.tokens.Token(b.Context())
				req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, f.base()+"/Media", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var echo fhir.Media
				if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// newBenchFake echoes the request body back as ALEX does, streaming it.
func newBenchFake(b *testing.B) *fake {
	f := &fake{expiresIn: 3599}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"tok"}`)
	})
	mux.HandleFunc("POST /prefix/FHIR/Media", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://x/fhir/Media/m/_history/m")
		w.Header().Set("Content-Type", ContentTypeFHIR)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.Copy(w, r.Body)
	})
	f.srv = httptest.NewServer(mux)
	b.Cleanup(f.srv.Close)
	return f
}
