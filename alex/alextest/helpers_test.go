package alextest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/stretchr/testify/require"
)

// token fetches an access token with the server's credentials.
func token(t *testing.T, srv *alextest.Server) string {
	t.Helper()
	id, secret, scope := srv.Credentials()
	status, body := postForm(t, srv, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id},
		"client_secret": {secret}, "scope": {scope},
	})
	require.Equal(t, http.StatusOK, status, string(body))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

func postForm(t *testing.T, srv *alextest.Server, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// call sends one request. An empty tok omits Authorization; facility "-"
// omits mt-facilityid. A body is sent as application/fhir+json.
type call struct {
	method, path string // path relative to the root, e.g. /FHIR/Patient
	tok          string
	facility     string
	body         []byte
	header       map[string]string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// outcome returns the code and diagnostics of a single-issue
// OperationOutcome.
func (r reply) outcome(t *testing.T) (code, diagnostics string) {
	t.Helper()
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	require.NoError(t, json.Unmarshal(r.body, &oo), string(r.body))
	require.Equal(t, "OperationOutcome", oo.ResourceType, string(r.body))
	require.Len(t, oo.Issue, 1)
	require.Equal(t, "error", oo.Issue[0].Severity)
	return oo.Issue[0].Code, oo.Issue[0].Diagnostics
}

func do(t *testing.T, srv *alextest.Server, c call) reply {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+c.path, body)
	require.NoError(t, err)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	switch c.facility {
	case "-":
	case "":
		req.Header.Set("mt-facilityid", srv.Facility())
	default:
		req.Header.Set("mt-facilityid", c.facility)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// mediaBody returns a valid Media for the patient with data, edited by edit
// (a generic map so tests can remove or corrupt any field).
func mediaBody(t *testing.T, patientID string, data []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"resourceType": "Media",
		"status":       "completed",
		"identifier":   []any{map[string]any{"system": "https://clinicpro.co.nz/image-id", "value": "IMG-1"}},
		"type": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image"}}},
		"subject":         map[string]any{"reference": "Patient/" + patientID},
		"createdDateTime": "2026-01-12T10:00:00+13:00",
		"content": map[string]any{
			"contentType": "image/jpeg",
			"title":       "Left forearm",
			"data":        base64.StdEncoding.EncodeToString(data),
		},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func content(m map[string]any) map[string]any { return m["content"].(map[string]any) }
