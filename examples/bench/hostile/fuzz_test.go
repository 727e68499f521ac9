package hostile_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	ci "github.com/clinicpro/clinicalimages"
)

// serve sends one request straight to the handler (no network) and checks
// the invariants every answer keeps: no 5xx from bad input, and an error
// answer is JSON naming a machine code.
func serve(t *testing.T, h http.Handler, req *http.Request) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s answered %d: %s", req.Method, req.URL.Path, rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
			t.Fatalf("%s %s answered %d without a JSON error code: %q", req.Method, req.URL.Path, rec.Code, rec.Body.String())
		}
	}
	return rec.Code
}

// contentTypes are the upload content types the fuzzer picks from.
var contentTypes = []string{"image/jpeg", "multipart/form-data; boundary=x", "multipart/form-data", "", "text/html", "multipart/form-data; boundary=\"a b\""}

// FuzzPhoneUpload sends arbitrary bodies (raw or multipart) to the phone's
// upload endpoint: never a 5xx, and a refused upload lists nothing.
func FuzzPhoneUpload(f *testing.F) {
	r := newRig(f)
	api, err := r.svc.Handler(ci.HTTPOptions{})
	if err != nil {
		f.Fatal(err)
	}
	h := http.StripPrefix("/api", api)
	f.Add(uint8(0), r.photo[:64])
	f.Add(uint8(1), []byte("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n\xff\xd8\xff\r\n--x--\r\n"))
	f.Add(uint8(1), []byte("--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n"))
	f.Add(uint8(2), []byte("--x\r\n\r\n"))
	f.Add(uint8(4), []byte("<svg onload=alert(1)>"))
	f.Fuzz(func(t *testing.T, ct uint8, body []byte) {
		before, err := r.svc.Session(t.Context(), r.a.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/phone/images", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+r.phone)
		if c := contentTypes[int(ct)%len(contentTypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		code := serve(t, h, req)
		after, err := r.svc.Session(t.Context(), r.a.Session.ID)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusCreated && len(after.Images) != len(before.Images) {
			t.Fatalf("refused upload (%d) changed the image count %d -> %d", code, len(before.Images), len(after.Images))
		}
		if code == http.StatusCreated {
			// Keep the session under its image limit.
			img := after.Images[len(after.Images)-1]
			if err := r.svc.RemoveImage(t.Context(), r.a.Session.ID, img.ID); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzUnauthenticatedBodies sends arbitrary JSON-ish bodies to the endpoints
// that take input before any credential: the handoff claim and the launch
// (Evolution context and signature, or a launch token). Never a 5xx, and
// never a session or a phone token from garbage.
func FuzzUnauthenticatedBodies(f *testing.F) {
	r := newRig(f)
	api, err := r.svc.Handler(ci.HTTPOptions{})
	if err != nil {
		f.Fatal(err)
	}
	h := http.StripPrefix("/api", api)
	for _, s := range []string{
		`{"code":"AAAA-BBBB"}`, `{"code":"","device":"x"}`, `{"code":1}`, `[]`, `{"context":"a/b=","signature":"c+d="}`,
		`{"token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."}`, `{"token":"a.b.c","context":"x"}`, `{"context":"%2F..%2F","signature":"\u0000"}`,
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, launch bool, body []byte) {
		path := "/api/phone/claim"
		if launch {
			path = "/api/launch"
		}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "192.0.2.1:1234" // one address: the claim rate limit applies as to an attacker
		if code := serve(t, h, req); code < 400 {
			t.Fatalf("%s accepted garbage %q with %d", path, body, code)
		}
	})
}
