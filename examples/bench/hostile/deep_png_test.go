package hostile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// deepPNG is a PNG of w x h at the given bit depth and colour type (0 grey,
// 2 RGB, 4 grey+alpha, 6 RGBA) whose rows repeat a short pattern, so even
// 7000 x 7000 at 16 bits (392 MB decoded) is a few hundred kilobytes: the
// hostile upload the issue measured (381 KB, 796 MB of server RSS).
func deepPNG(w, h, depth int, colourType byte, interlaced bool) []byte {
	band := max(w, h) / 4 // four flat bands a side: big files stay tiny
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colourType]
	bpp := channels * depth / 8
	pix := make([]byte, w*h*bpp)
	rowLen := w * bpp
	for y := range h {
		row := pix[y*rowLen : (y+1)*rowLen]
		if y > 0 && y/band == (y-1)/band { // rows repeat within a band
			copy(row, pix[(y-1)*rowLen:y*rowLen])
			continue
		}
		for x := range w {
			px := row[x*bpp : (x+1)*bpp]
			for c := range px {
				px[c] = uint8((x/band)*37 + (y/band)*11 + c*50)
			}
			if colourType == 4 || colourType == 6 { // alpha: opaque, one translucent band
				px[len(px)-1] = 0xFF
				if depth == 16 {
					px[len(px)-2] = 0xFF
				}
				if y/band == 1 {
					px[len(px)-bpp/channels] = 0x40
				}
			}
		}
	}
	return enginetest.RawPNG(w, h, depth, colourType, interlaced, pix)
}

// tallHeader rewrites a PNG's IHDR height (and its CRC), leaving the
// pixel data short: a file whose header declares h rows.
func tallHeader(p []byte, h int) []byte {
	p = bytes.Clone(p)
	binary.BigEndian.PutUint32(p[20:], uint32(h))
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

// palettedTRNS is an 8-bit paletted PNG whose palette has transparent
// entries (a tRNS chunk).
func palettedTRNS(t testing.TB, w, h int) []byte {
	t.Helper()
	pal := color.Palette{color.NRGBA{0, 0, 0, 0}}
	for i := 1; i < 256; i++ {
		pal = append(pal, color.NRGBA{uint8(i), uint8(255 - i), uint8(i * 7), uint8(128 + i/2)})
	}
	m := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range m.Pix {
		m.Pix[i] = uint8(i/w + i%w)
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, m))
	return b.Bytes()
}

// TestHostileDeepPNGs sends high-bit-depth and many-channel PNGs under the
// pixel limit to the phone upload: each is normalised to an upright JPEG
// of the right size, or refused with 413 too_many_pixels before decoding
// when its decode alone needs more than the instance's decode budget. The
// budget in use is back to zero after each. Not parallel: the big case
// checks how much the server allocated while refusing it.
func TestHostileDeepPNGs(t *testing.T) {
	norm, err := compress.New(compress.WithMaxInputBytes(maxUpload)) // the Service's default, plus its budget reading
	require.NoError(t, err)
	r := newRig(t, ci.WithNormalizer(norm))
	// The header of the 381 KB file: refused on its header, so its
	// pixel data is cut short here (a full one takes a minute to compress
	// under the race detector). BenchmarkDecodeBudgetPeakHeap sends whole ones.
	big := tallHeader(deepPNG(7000, 16, 16, 6, false), 7000)
	tests := []struct {
		name   string
		body   []byte
		w, h   int // 0: refused
		status int
	}{
		{"16-bit RGBA 7000x7000 (49 MP, 392 MB decoded, over the budget)", big, 0, 0, http.StatusRequestEntityTooLarge},
		{"16-bit RGB", deepPNG(1200, 900, 16, 2, false), 1200, 900, http.StatusCreated},
		{"16-bit grey+alpha", deepPNG(1200, 900, 16, 4, false), 1200, 900, http.StatusCreated},
		{"16-bit grey", deepPNG(1200, 900, 16, 0, false), 1200, 900, http.StatusCreated},
		{"16-bit RGBA interlaced", deepPNG(1000, 700, 16, 6, true), 1000, 700, http.StatusCreated},
		{"paletted with tRNS", palettedTRNS(t, 1200, 900), 1200, 900, http.StatusCreated},
		{"16-bit RGBA 2200x1600 (3.5 MP, inside the budget)", deepPNG(2200, 1600, 16, 6, false), 2048, 1489, http.StatusCreated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			images, blobs := r.stored()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			status, body := r.upload(tc.body)
			runtime.ReadMemStats(&after)
			assert.Equal(t, tc.status, status, "status: %s", body)
			inUse, limit := norm.DecodeBudget()
			assert.Zero(t, inUse, "decode budget given back")
			gotImages, gotBlobs := r.stored()
			if tc.w == 0 {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				require.NoError(t, json.Unmarshal(body, &e), "%s", body)
				assert.Equal(t, "too_many_pixels", e.Error.Code)
				assert.Equal(t, images, gotImages, "no image listed")
				assert.Equal(t, blobs, gotBlobs, "no blob stored")
				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("refused; server allocated %.1f MiB meanwhile (decode budget %d MiB)", float64(alloc)/(1<<20), limit>>20)
				assert.Less(t, alloc, uint64(64<<20), "refused before decoding: nothing near the 392 MB image was allocated")
				return
			}
			var img struct{ Width, Height int }
			require.NoError(t, json.Unmarshal(body, &img), "%s", body)
			assert.Equal(t, [2]int{tc.w, tc.h}, [2]int{img.Width, img.Height}, "normalised size")
			assert.Equal(t, images+1, gotImages, "listed")
		})
	}
}

// upload sends body as a phone upload and returns the status and body.
func (r *rig) upload(body []byte) (int, []byte) {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), http.MethodPost, r.srv.URL+"/api/phone/images", bytes.NewReader(body))
	require.NoError(r.t, err)
	req.Header.Set("Authorization", "Bearer "+r.phone)
	req.Header.Set("Content-Type", "image/png")
	resp, err := r.srv.Client().Do(req)
	require.NoError(r.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// BenchmarkDecodeBudgetPeakHeap runs four concurrent normalisations of a
// 7000 x 7000 16-bit RGBA PNG (the 381 KB file) under several
// decode budgets and reports the peak heap in use (runtime.MemStats
// HeapInuse sampled every millisecond) side by side: 256 MiB refuses each
// file before decoding, 1 GiB lets one decode at a time, unlimited lets
// all four decode at once; each with Go's default collector and with
// GOMEMLIMIT at 1.25 GiB (the budget bounds live bytes; without a memory
// limit the heap also holds a finished image's garbage until the next
// collection). It prints numbers; nothing is asserted.
//
//	go test ./examples/bench/hostile -run '^$' -bench DecodeBudgetPeakHeap -benchtime 1x
func BenchmarkDecodeBudgetPeakHeap(b *testing.B) {
	in := deepPNG(7000, 7000, 16, 6, false)
	budgets := []struct {
		name  string
		bytes int64
		limit int64 // GOMEMLIMIT for the run; 0 leaves the default
	}{{"256MiB", 256 << 20, 0}, {"1GiB", 1 << 30, 0}, {"1GiB+lim", 1 << 30, 1280 << 20}, {"unlimited", 1 << 62, 0}}
	var table bytes.Buffer
	fmt.Fprintf(&table, "4 x 7000x7000 16-bit RGBA PNG (%d KB) at once:\n%-10s %10s %14s %10s %9s %9s\n", len(in)>>10, "budget", "GOMEMLIMIT", "peak heap MiB", "sys MiB", "refused", "seconds")
	for _, bud := range budgets {
		b.Run(bud.name, func(b *testing.B) {
			// Four slots: only the budget decides how many decode at once.
			n, err := compress.New(compress.WithDecodeBudget(bud.bytes), compress.WithMaxConcurrent(4))
			require.NoError(b, err)
			lim := "default"
			if bud.limit > 0 {
				defer debug.SetMemoryLimit(debug.SetMemoryLimit(bud.limit))
				lim = fmt.Sprintf("%d MiB", bud.limit>>20)
			}
			var peak, sys uint64
			var refused atomic.Int32
			var took time.Duration
			for b.Loop() {
				runtime.GC()
				stop := samplePeaks()
				start := time.Now()
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						_, err := n.Normalize(context.Background(), bytes.NewReader(in), io.Discard)
						if err != nil {
							require.ErrorIs(b, err, compress.ErrTooManyPixels)
							refused.Add(1)
						}
					})
				}
				wg.Wait()
				took = time.Since(start)
				p, s := stop()
				peak, sys = max(peak, p), max(sys, s)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(refused.Load()), "refused")
			fmt.Fprintf(&table, "%-10s %10s %14.0f %10.0f %9d %9.1f\n", bud.name, lim, float64(peak)/(1<<20), float64(sys)/(1<<20), refused.Load(), took.Seconds())
		})
	}
	b.Log("\n" + table.String())
}
