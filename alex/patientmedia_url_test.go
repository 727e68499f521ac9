package alex

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatientMediaContentURL: a Media with content.url instead of data has
// it fetched only from ALEX's own origin (raw bytes or a FHIR Binary); a URL
// elsewhere never receives a request (it would get the bearer token).
func TestPatientMediaContentURL(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var foreignHits atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		_, _ = w.Write([]byte("stolen"))
	}))
	t.Cleanup(foreign.Close)

	raw := []byte{0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9}
	binary := []byte{0xff, 0xd8, 9, 9, 0xff, 0xd9}
	entry := func(id, created, content string) string {
		return fmt.Sprintf(`{"fullUrl":"x","resource":{"resourceType":"Media","id":%q,"status":"completed",
			"subject":{"reference":"Patient/0123456789abcdef0123456789abcdef"},%s"content":%s}}`, id, created, content)
	}
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/prefix/FHIR/Media":
			body := `{"resourceType":"Bundle","type":"searchset","entry":[` + strings.Join([]string{
				entry("a-raw", `"createdDateTime":"2026-01-03",`, `{"contentType":"image/jpeg","url":"`+f.srv.URL+`/prefix/fhir/Binary/raw"}`),
				entry("b-bin", `"createdDateTime":"2026-01-02",`, `{"contentType":"image/jpeg","url":"Binary/bin"}`),
				entry("c-foreign", `"createdDateTime":"2026-01-04",`, `{"contentType":"image/jpeg","url":"`+foreign.URL+`/Binary/x"}`),
				entry("d-none", ``, `{"contentType":"image/jpeg","data":"AAAA"}`),
				entry("e-updated", `"meta":{"lastUpdated":"2026-01-05T00:00:00.0000000+00:00"},`, `{"contentType":"image/jpeg","data":"AAAA"}`),
			}, ",") + `],"link":[{"relation":"self","url":"x"}]}`
			writeJSON(w, 200, body)
		case r.URL.Path == "/prefix/FHIR/Binary/raw":
			w.Header().Set("Content-Type", "image/jpeg")
			_, _ = w.Write(raw)
		case r.URL.Path == "/prefix/FHIR/Binary/bin":
			writeJSON(w, 200, `{"resourceType":"Binary","contentType":"image/jpeg","data":"`+base64.StdEncoding.EncodeToString(binary)+`"}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := f.client(t)
	got, err := c.PatientMedia(t.Context(), testNHI)
	require.NoError(t, err)
	var ids []string
	data := map[string]*string{}
	for _, m := range got {
		ids = append(ids, *m.Id)
		data[*m.Id] = m.Content.Data
	}
	assert.Equal(t, []string{"e-updated", "c-foreign", "a-raw", "b-bin", "d-none"}, ids, "newest first; lastUpdated when no created time; none last")
	require.NotNil(t, data["a-raw"])
	assert.Equal(t, base64.StdEncoding.EncodeToString(raw), *data["a-raw"])
	require.NotNil(t, data["b-bin"])
	assert.Equal(t, base64.StdEncoding.EncodeToString(binary), *data["b-bin"])
	assert.Nil(t, data["c-foreign"], "a foreign URL is not fetched")
	assert.Zero(t, foreignHits.Load(), "no request left ALEX's origin")

	reqs, _ := f.recorded()
	for _, r := range reqs {
		if strings.Contains(r.URL.Path, "Binary") {
			assert.True(t, strings.HasPrefix(r.URL.Path, "/prefix/FHIR/"), "base path's case restored: %s", r.URL.Path)
			assert.Equal(t, reqs[0].Header.Get(HeaderCorrelationID), r.Header.Get(HeaderCorrelationID))
		}
	}
}

// TestPatientMediaNotABundle: a reply that is not a searchset Bundle is a
// typed error, not an empty history.
func TestPatientMediaNotABundle(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"OperationOutcome","issue":[]}`)
	})
	_, err := f.client(t).PatientMedia(t.Context(), testNHI)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 200, ae.Status)
	requireNoSecrets(t, err.Error())
}

// TestPatientMediaRefusesForeignNextLink: a next link to another host
// would carry the bearer token there.
func TestPatientMediaRefusesForeignNextLink(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"https://elsewhere.example/fhir/Media?page=2"}]}`)
	})
	_, err := f.client(t).PatientMedia(t.Context(), testNHI)
	require.Error(t, err)
	reqs, _ := f.recorded()
	assert.Len(t, reqs, 1)
}
