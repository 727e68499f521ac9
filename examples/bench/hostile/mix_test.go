package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
)

var mixCeiling = flag.Int("mix-ceiling-mib", 768, "BenchmarkDecodeBudgetMix: the memory ceiling in MiB (GOMEMLIMIT); the decode budget is half of it, as the reference server sets it")

// BenchmarkDecodeBudgetMix is the budget's promise under a mix: six
// uploads at a time, each input fitting the decode budget on its own
// (16-bit RGBA and RGB PNGs of 9 to 12 MP, a 12 MP JPEG, a 4 MP 16-bit grey
// PNG), three rounds each, with the runtime's soft limit (GOMEMLIMIT) at
// the ceiling and the decode budget at half of it, as the reference server
// configures MEMORY_LIMIT_MB. It reports the peak heap in use (sampled
// every millisecond), the process's peak RSS (VmHWM) and both as a ratio of
// the ceiling. Run it alone in its process, since VmHWM is the process's
// lifetime peak:
//
//	cd examples && go test ./bench/hostile -run '^$' -bench DecodeBudgetMix -benchtime 1x
func BenchmarkDecodeBudgetMix(b *testing.B) {
	ceiling := int64(*mixCeiling) << 20
	budget := ceiling / 2
	inputs := []struct {
		name string
		data []byte
	}{
		{"png16-rgba-3000x3000", deepPNG(3000, 3000, 16, 6, false)},
		{"png16-rgb-4000x3000", deepPNG(4000, 3000, 16, 2, false)},
		{"png16-grey-2000x2000", deepPNG(2000, 2000, 16, 0, false)},
		{"jpeg-4032x3024", photoJPEG(b, 4032, 3024)},
		{"png16-rgba-2600x3400", deepPNG(2600, 3400, 16, 6, false)},
	}
	n, err := compress.New(compress.WithDecodeBudget(budget), compress.WithMaxConcurrent(6))
	require.NoError(b, err)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(ceiling))
	var peak uint64
	var took time.Duration
	for b.Loop() {
		runtime.GC()
		stop := samplePeaks()
		start := time.Now()
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for k := range 3 * len(inputs) {
					in := inputs[(g+k)%len(inputs)]
					if _, err := n.Normalize(context.Background(), bytes.NewReader(in.data), io.Discard); err != nil {
						b.Errorf("%s: %v", in.name, err)
					}
				}
			})
		}
		wg.Wait()
		took = time.Since(start)
		p, _ := stop()
		peak = max(peak, p)
	}
	hwm := vmHWM(b)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(hwm)/(1<<20), "VmHWM-MiB")
	b.ReportMetric(float64(hwm)/float64(ceiling), "VmHWM/ceiling")
	b.Logf("\n6 concurrent uploads x 15, mixed inputs each within the budget:\n%-12s %-12s %-14s %-10s %-14s %s\n%-12d %-12d %-14.0f %-10.0f %-14.2f %.1f",
		"ceiling MiB", "budget MiB", "peak heap MiB", "VmHWM MiB", "VmHWM/ceiling", "seconds",
		ceiling>>20, budget>>20, float64(peak)/(1<<20), float64(hwm)/(1<<20), float64(hwm)/float64(ceiling), took.Seconds())
}

// samplePeaks reads the runtime's memory statistics every millisecond until
// the returned stop is called, which returns the largest heap in use and
// the largest memory obtained from the OS seen meanwhile.
func samplePeaks() (stop func() (heapInuse, sys uint64)) {
	ctx, cancel := context.WithCancel(context.Background())
	var peak, peakSys uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak, peakSys = max(peak, ms.HeapInuse), max(peakSys, ms.Sys)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		cancel()
		<-sampled
		return peak, peakSys
	}
}

// photoJPEG is a w x h JPEG of smooth gradients with some texture: a
// camera-sized photo made in the test.
func photoJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x ^ y) & 0x3F), 0xFF})
		}
	}
	var buf bytes.Buffer
	require.NoError(tb, jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

// vmHWM is this process's peak resident set size, from /proc/self/status.
func vmHWM(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(tb, err)
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM line")
	return 0
}
