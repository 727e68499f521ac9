package heic_test

import (
	"bytes"
	"image"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// benchFile is the HEIC the benchmarks time, from HEIC_BENCH_FILE
// (examples/bench/compress/run.sh makes a 12 MP one); they skip without it.
func benchFile(b *testing.B) []byte {
	b.Helper()
	p := os.Getenv("HEIC_BENCH_FILE")
	if p == "" {
		b.Skip("HEIC_BENCH_FILE not set")
	}
	d, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("HEIC decoder: %s", heic.Active())
	return d
}

// rssMiB is the process's resident set now, in MiB (Linux; 0 elsewhere).
func rssMiB() float64 {
	s, _ := os.ReadFile("/proc/self/status")
	for l := range strings.Lines(string(s)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkDecodeFile times the decode alone (the time the backend spends
// in libheif or WebAssembly plus the copy into Go memory) and reports how
// far the resident set grew over the run with the Go heap returned to the
// OS: a decoder that leaks native memory grows by its picture each time.
// One warm-up decode first (the WebAssembly module compiles on it).
func BenchmarkDecodeFile(b *testing.B) {
	d := benchFile(b)
	if _, err := heic.Decode(bytes.NewReader(d)); err != nil {
		b.Fatal(err)
	}
	debug.FreeOSMemory()
	before := rssMiB()
	for b.Loop() {
		if _, err := heic.Decode(bytes.NewReader(d)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	debug.FreeOSMemory()
	b.ReportMetric(rssMiB()-before, "rss-growth-MiB")
}

// BenchmarkNormalizeFile times the whole Normalize of the file (decode,
// resize to 2048 px, JPEG encode under the byte budget), after a warm-up,
// and splits each iteration's time into decode-ms (inside [heic.Decode]:
// libheif or WebAssembly, plus the copy into Go memory) and rest-ms (what
// compress does after: plane resize, JPEG encode, budget fitting).
func BenchmarkNormalizeFile(b *testing.B) {
	d := benchFile(b)
	var decode time.Duration
	timed := func(r io.Reader) (image.Image, error) {
		t0 := time.Now()
		img, err := heic.Decode(r)
		decode += time.Since(t0)
		return img, err
	}
	n, err := compress.New(compress.WithDecoder(compress.HEIC, timed), compress.WithMaxInputBytes(int64(len(d))+1))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := n.Normalize(b.Context(), bytes.NewReader(d), io.Discard); err != nil {
		b.Fatal(err)
	}
	decode = 0
	start := time.Now()
	for b.Loop() {
		if _, err := n.Normalize(b.Context(), bytes.NewReader(d), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	total := time.Since(start)
	ms := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(decode), "decode-ms")
	b.ReportMetric(ms(total-decode), "rest-ms")
}
