package alextest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// BenchmarkCreateMedia measures what one POST /Media costs the simulator,
// beside a naive encoding/json handler (read the body, unmarshal, decode the
// base64, marshal the echo). The alloc-B/image-B metric is bytes allocated
// per byte of image: the simulator keeps one decoded copy (about 1.0); the
// naive path holds several.
//
//	go test -run '^$' -bench CreateMedia -benchtime 5x ./alex/alextest/
func BenchmarkCreateMedia(b *testing.B) {
	for _, size := range []int{1 << 20, 10 << 20} {
		img := make([]byte, size)
		_, _ = rand.Read(img)
		body := benchMediaBody(img)
		name := strconv.Itoa(size>>20) + "MB"

		b.Run(name+"/streaming", func(b *testing.B) {
			s := NewServer()
			defer s.Close()
			tok := s.signToken(tokenClaims{Aud: strings.TrimSuffix(DefaultScope, "/.default"),
				Exp: s.now().Unix() + 3600, Roles: DefaultRoles()})
			b.ReportAllocs()
			b.SetBytes(int64(size))
			start := totalAlloc()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/FHIR/Media", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set(HeaderFacility, DefaultFacility)
				req.Header.Set("Content-Type", "application/fhir+json")
				w := &countWriter{h: http.Header{}}
				s.serveHTTP(w, req)
				if w.status != http.StatusCreated {
					b.Fatalf("status %d", w.status)
				}
				b.StopTimer()
				s.Reset()
				b.StartTimer()
			}
			perImage(b, start, size)
		})
		b.Run(name+"/naive", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			start := totalAlloc()
			for b.Loop() {
				raw, _ := io.ReadAll(bytes.NewReader(body))
				var m fhir.Media
				if err := json.Unmarshal(raw, &m); err != nil {
					b.Fatal(err)
				}
				data, err := base64.StdEncoding.DecodeString(*m.Content.Data)
				if err != nil || len(data) != size {
					b.Fatal(err)
				}
				out, _ := json.Marshal(m)
				_, _ = io.Discard.Write(out)
			}
			perImage(b, start, size)
		})
	}
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// perImage reports bytes allocated per op per byte of image since start.
func perImage(b *testing.B, start uint64, size int) {
	b.ReportMetric(float64(totalAlloc()-start)/float64(b.N)/float64(size), "alloc-B/image-B")
}

type countWriter struct {
	h      http.Header
	status int
	n      int64
}

func (c *countWriter) Header() http.Header { return c.h }
func (c *countWriter) WriteHeader(s int)   { c.status = s }
func (c *countWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.n += int64(len(p))
	return len(p), nil
}

func benchMediaBody(img []byte) []byte {
	m := map[string]any{
		"resourceType": "Media", "status": "completed",
		"identifier": []any{map[string]any{"value": "BENCH"}},
		"subject":    map[string]any{"reference": "Patient/" + DefaultPatients()[0].ID},
		"content":    map[string]any{"contentType": "image/jpeg", "data": base64.StdEncoding.EncodeToString(img)},
	}
	b, _ := json.Marshal(m)
	return b
}
