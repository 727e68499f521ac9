// Package hostile_test is the catalogue of hostile inputs against the
// Service's HTTP API: each case sends something an attacker or a broken
// client would and asserts a clear error (status and machine code) and that
// nothing was stored (no image listed, no blob written). It runs in process
// with the memory store, a blob directory and the ALEX simulator, in
// seconds, as part of go test ./....
package hostile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/examples/bench/internal/photo"
	"github.com/clinicpro/clinicalimages/session/fsblob"
)

const maxUpload = 1 << 20

// rig is one Service behind its HTTP API with two sessions (A and B), a
// claimed phone on A, and one photo already uploaded to B.
type rig struct {
	t       testing.TB
	srv     *httptest.Server
	svc     *ci.Service
	blobDir string
	a, b    *ci.Started
	phone   string // phone token of session A
	imageB  string // an image of session B
	photo   []byte
}

func newRig(t testing.TB, opts ...ci.Option) *rig {
	t.Helper()
	sim := alextest.NewTestServer(t)
	id, secret, scope := sim.Credentials()
	ac, err := alex.New(sim.BaseURL(), alex.WithClientCredentials(alex.Credentials{TokenURL: sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}), alex.WithFacility(sim.Facility()))
	require.NoError(t, err)
	r := &rig{t: t, blobDir: t.TempDir()}
	blobs, err := fsblob.New(r.blobDir)
	require.NoError(t, err)
	r.svc, err = ci.New(ac, append([]ci.Option{ci.WithBlobStore(blobs), ci.WithLimits(ci.Limits{MaxUploadBytes: maxUpload})}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.svc.Close() })
	api, err := r.svc.Handler(ci.HTTPOptions{})
	require.NoError(t, err)
	r.srv = httptest.NewServer(http.StripPrefix("/api", api))
	t.Cleanup(r.srv.Close)
	ps, err := photo.Make(1, 48<<10)
	require.NoError(t, err)
	r.photo = ps[0]

	start := func(p alextest.Patient) *ci.Started {
		st, err := r.svc.StartSession(t.Context(), ci.VerifiedLaunch{Facility: sim.Facility(), PatientID: p.ID, NHI: p.NHI,
			Practitioner: alextest.DefaultPractitioners()[0].ID, Source: "token"})
		require.NoError(t, err)
		return st
	}
	r.a, r.b = start(sim.Patients()[0]), start(sim.Patients()[1])
	code, _, err := r.svc.IssueHandoff(t.Context(), r.a.Session.ID)
	require.NoError(t, err)
	r.phone, _, err = r.svc.ClaimHandoff(t.Context(), code, "phone", "127.0.0.1")
	require.NoError(t, err)
	img, err := r.svc.AcceptUpload(t.Context(), ci.Uploader{SessionID: r.b.Session.ID}, bytes.NewReader(r.photo))
	require.NoError(t, err)
	r.imageB = img.ID
	return r
}

// request is one hostile request.
type request struct {
	method, path string
	bearer       string
	contentType  string
	body         io.Reader
	length       int64 // Content-Length; -1 sends the body chunked
}

func (r *rig) do(q request) (*http.Response, string) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), q.method, r.srv.URL+"/api"+q.path, q.body)
	require.NoError(r.t, err)
	if q.length != 0 {
		req.ContentLength = q.length
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.contentType != "" {
		req.Header.Set("Content-Type", q.contentType)
	}
	resp, err := r.srv.Client().Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp, e.Error.Code
}

// stored reports how many images session A lists and how many blob files exist.
func (r *rig) stored() (images, blobs int) {
	r.t.Helper()
	sess, err := r.svc.Session(r.t.Context(), r.a.Session.ID)
	require.NoError(r.t, err)
	require.NoError(r.t, filepath.WalkDir(r.blobDir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			blobs++
		}
		return err
	}))
	return len(sess.Images), blobs
}

// bomb returns a valid small JPEG whose frame header claims 65500 x 65500
// pixels (4.3 gigapixels): a decoder that trusts it allocates gigabytes.
func bomb(t testing.TB, jpg []byte) []byte {
	t.Helper()
	b := bytes.Clone(jpg)
	for i := 0; i+8 < len(b); i++ {
		if b[i] == 0xFF && (b[i+1] == 0xC0 || b[i+1] == 0xC2) {
			b[i+5], b[i+6], b[i+7], b[i+8] = 0xFF, 0xDC, 0xFF, 0xDC
			return b
		}
	}
	t.Fatal("no SOF marker")
	return nil
}

func multipartBody(t testing.TB, filename string, content []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", filename)
	require.NoError(t, err)
	_, _ = fw.Write(content)
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

func TestHostileUploads(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>`)
	html := []byte(`<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>`)
	gifHTML := []byte("GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;<script>alert(1)</script>")
	pathName, pathCT := multipartBody(t, "../../../etc/passwd", html)
	tests := []struct {
		name   string
		q      request
		status int
		code   string
	}{
		{"declared oversize body", request{body: bytes.NewReader(make([]byte, 2*maxUpload)), contentType: "image/jpeg"}, http.StatusRequestEntityTooLarge, "too_large"},
		{"chunked oversize body", request{body: io.MultiReader(bytes.NewReader(r.photo), io.LimitReader(zeroReader{}, 2*maxUpload)), length: -1, contentType: "image/jpeg"}, http.StatusRequestEntityTooLarge, "too_large"},
		{"chunked zeros (no image signature)", request{body: io.LimitReader(zeroReader{}, 2*maxUpload), length: -1, contentType: "image/jpeg"}, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"decompression bomb (JPEG header claims 4.3 gigapixels)", request{body: bytes.NewReader(bomb(t, r.photo)), contentType: "image/jpeg"}, http.StatusRequestEntityTooLarge, "too_many_pixels"},
		{"truncated JPEG", request{body: bytes.NewReader(r.photo[:len(r.photo)/3]), contentType: "image/jpeg"}, http.StatusUnprocessableEntity, "corrupt_image"},
		{"empty body", request{body: bytes.NewReader(nil), contentType: "image/jpeg"}, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"SVG disguised as JPEG", request{body: bytes.NewReader(svg), contentType: "image/jpeg"}, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"HTML disguised as PNG", request{body: bytes.NewReader(html), contentType: "image/png"}, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"GIF/JavaScript polyglot", request{body: bytes.NewReader(gifHTML), contentType: "image/gif"}, http.StatusUnprocessableEntity, "corrupt_image"},
		{"path-like file name carrying HTML", request{body: pathName, contentType: pathCT}, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"multipart without a file part", request{body: strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n"), contentType: "multipart/form-data; boundary=x"}, http.StatusBadRequest, "invalid_request"},
		{"forged phone token", request{body: bytes.NewReader(r.photo), contentType: "image/jpeg", bearer: "forged-token-0123456789abcdef"}, http.StatusUnauthorized, "unauthenticated"},
		{"desktop credential used as phone token", request{body: bytes.NewReader(r.photo), contentType: "image/jpeg", bearer: r.a.Credential}, http.StatusUnauthorized, "unauthenticated"},
	}
	// Sequential: each case checks that nothing was added since the last.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.method, q.path = http.MethodPost, "/phone/images"
			if q.bearer == "" {
				q.bearer = r.phone
			}
			images, blobs := r.stored()
			resp, code := r.do(q)
			assert.Equal(t, tc.status, resp.StatusCode, "status")
			assert.Equal(t, tc.code, code, "machine code")
			gotImages, gotBlobs := r.stored()
			assert.Equal(t, images, gotImages, "no image listed")
			assert.Equal(t, blobs, gotBlobs, "no blob stored")
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestHostileDesktopAndHandoff(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	code, _, err := r.svc.IssueHandoff(t.Context(), r.a.Session.ID)
	require.NoError(t, err)
	claim := func(code string) request {
		return request{method: http.MethodPost, path: "/phone/claim", contentType: "application/json", body: strings.NewReader(fmt.Sprintf(`{"code":%q}`, code))}
	}
	first, _ := r.do(claim(code))
	require.Equal(t, http.StatusCreated, first.StatusCode, "the first claim of a fresh code works")
	injected := `{"clinical":{"title":"x\r\nSet-Cookie: ci_desktop=stolen\r\nX-Injected: 1"}}`

	tests := []struct {
		name   string
		q      request
		status int
		code   string
	}{
		{"replayed handoff code", claim(code), http.StatusBadRequest, "invalid_code"},
		{"forged handoff code", claim("AAAA-BBBB-CCCC"), http.StatusBadRequest, "invalid_code"},
		{"forged desktop credential", request{method: http.MethodGet, path: "/session", bearer: "forged"}, http.StatusUnauthorized, "unauthenticated"},
		{"phone token used as desktop credential", request{method: http.MethodGet, path: "/session", bearer: r.phone}, http.StatusUnauthorized, "unauthenticated"},
		{"cross-session image read", request{method: http.MethodGet, path: "/images/" + r.imageB + "/content", bearer: r.a.Credential}, http.StatusNotFound, "not_found"},
		{"cross-session image edit", request{method: http.MethodPatch, path: "/images/" + r.imageB, bearer: r.a.Credential, contentType: "application/json", body: strings.NewReader(`{"clinical":{"title":"mine now"}}`)}, http.StatusNotFound, "not_found"},
		{"cross-session image delete", request{method: http.MethodDelete, path: "/images/" + r.imageB, bearer: r.a.Credential}, http.StatusNotFound, "not_found"},
		{"cross-session commit", request{method: http.MethodPost, path: "/commit", bearer: r.a.Credential, contentType: "application/json", body: strings.NewReader(`{"images":["` + r.imageB + `"]}`)}, http.StatusOK, ""},
		{"path-like image id", request{method: http.MethodGet, path: "/images/..%2F..%2Fetc%2Fpasswd/content", bearer: r.a.Credential}, http.StatusNotFound, "not_found"},
		{"unknown JSON fields in metadata", request{method: http.MethodPatch, path: "/images/" + r.imageB, bearer: r.b.Credential, contentType: "application/json", body: strings.NewReader(`{"clinical":{},"patientId":"someone-else"}`)}, http.StatusBadRequest, "invalid_request"},
		{"oversize metadata body", request{method: http.MethodPatch, path: "/images/" + r.imageB, bearer: r.b.Credential, contentType: "application/json", body: strings.NewReader(`{"clinical":{"note":"` + strings.Repeat("a", 64<<10) + `"}}`)}, http.StatusBadRequest, "invalid_request"},
		{"header injection in metadata", request{method: http.MethodPatch, path: "/images/" + r.imageB, bearer: r.b.Credential, contentType: "application/json", body: strings.NewReader(injected)}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, code := r.do(tc.q)
			assert.Empty(t, resp.Header.Get("X-Injected"), "no header reflected from input")
			for _, c := range resp.Cookies() {
				assert.NotEqual(t, "stolen", c.Value, "no cookie reflected from input")
			}
			if tc.status == 0 {
				// Either refused as invalid metadata, or stored as text and
				// never reflected into a header (checked above).
				assert.Contains(t, []int{http.StatusOK, http.StatusUnprocessableEntity, http.StatusBadRequest}, resp.StatusCode)
				return
			}
			assert.Equal(t, tc.status, resp.StatusCode, "status")
			assert.Equal(t, tc.code, code, "machine code")
		})
	}

	// Session B's image is untouched by A's attempts.
	sess, err := r.svc.Session(t.Context(), r.b.Session.ID)
	require.NoError(t, err)
	require.NotNil(t, sess.Image(r.imageB))
	assert.NotEqual(t, "mine now", sess.Image(r.imageB).Clinical.Title)
	assert.NotEqual(t, "committed", string(sess.Image(r.imageB).State), "A cannot commit B's photo")
}
