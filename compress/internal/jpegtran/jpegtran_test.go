package jpegtran

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

const testdata = "../../testdata/edit"

var variants = []string{"s420", "s422", "s444", "s440", "s411", "gray", "s420-rst1"}

func readCoef(t *testing.T, data []byte) *jpegdec.Coefficients {
	t.Helper()
	c, err := jpegdec.ReadCoefficients(data)
	if err != nil {
		t.Fatalf("ReadCoefficients: %v", err)
	}
	return c
}

func load(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit plans, applies and writes; it returns the written file.
func edit(t *testing.T, data []byte, rotate int, crop image.Rectangle) []byte {
	t.Helper()
	src := readCoef(t, data)
	p, err := NewPlan(FrameOf(src), rotate, crop)
	if err != nil {
		t.Fatalf("NewPlan(%d, %v): %v", rotate, crop, err)
	}
	out, err := p.Apply(src)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, out); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

// sameImageBlocks compares the blocks that cover the picture (not the
// padding of a partial MCU, which encoders fill as they like).
func sameImageBlocks(t *testing.T, got, want *jpegdec.Coefficients) {
	t.Helper()
	if got.Width != want.Width || got.Height != want.Height || len(got.Comps) != len(want.Comps) {
		t.Fatalf("frame %dx%d with %d components, want %dx%d with %d", got.Width, got.Height, len(got.Comps), want.Width, want.Height, len(want.Comps))
	}
	hmax, vmax := 1, 1
	for _, k := range want.Comps {
		hmax, vmax = max(hmax, k.H), max(vmax, k.V)
	}
	for i := range want.Comps {
		g, w := &got.Comps[i], &want.Comps[i]
		if len(want.Comps) > 1 && (g.H != w.H || g.V != w.V) {
			t.Fatalf("component %d sampled %dx%d, want %dx%d", i, g.H, g.V, w.H, w.V)
		}
		if g.Quant != w.Quant {
			t.Fatalf("component %d quantisation table differs", i)
		}
		h, v := w.H, w.V
		if len(want.Comps) == 1 {
			h, v = 1, 1
		}
		bw := ceilDiv(ceilDiv(want.Width*h, hmax), 8)
		bh := ceilDiv(ceilDiv(want.Height*v, vmax), 8)
		for by := range bh {
			for bx := range bw {
				if !slicesEqual(g.Block(bx, by), w.Block(bx, by)) {
					t.Fatalf("component %d block (%d,%d) differs:\n got %v\nwant %v", i, bx, by, g.Block(bx, by), w.Block(bx, by))
				}
			}
		}
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMatchesJPEGTran holds rotations and a crop to libjpeg-turbo's
// jpegtran -rotate N -trim and -crop on committed reference files: the
// same coefficients in every block of the picture.
func TestMatchesJPEGTran(t *testing.T) {
	for _, v := range variants {
		src := load(t, v+".jpg")
		for _, r := range []int{90, 180, 270} {
			t.Run(v+"/rotate", func(t *testing.T) {
				got := readCoef(t, edit(t, src, r, image.Rectangle{}))
				want := readCoef(t, load(t, v+"-r"+itoa(r)+".jpg"))
				sameImageBlocks(t, got, want)
			})
		}
		t.Run(v+"/crop", func(t *testing.T) {
			got := readCoef(t, edit(t, src, 0, image.Rect(32, 16, 72, 46)))
			want := readCoef(t, load(t, v+"-crop.jpg"))
			sameImageBlocks(t, got, want)
		})
	}
}

func itoa(n int) string {
	switch n {
	case 90:
		return "90"
	case 180:
		return "180"
	}
	return "270"
}

// TestRoundTrip reads, writes (no edit) and reads again: every coefficient
// survives, and the file is smaller or equal thanks to optimal tables.
func TestRoundTrip(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			src := load(t, v+".jpg")
			a := readCoef(t, src)
			out := edit(t, src, 0, image.Rectangle{})
			b := readCoef(t, out)
			if a.Width != b.Width || a.Height != b.Height {
				t.Fatalf("size %dx%d, want %dx%d", b.Width, b.Height, a.Width, a.Height)
			}
			for i := range a.Comps {
				if !slicesEqual(a.Comps[i].Blocks, b.Comps[i].Blocks) {
					t.Fatalf("component %d changed", i)
				}
			}
		})
	}
}

// TestFourQuarterTurns: four 90° turns give the once-trimmed picture's
// coefficients back exactly, and 90° then 270° is the identity on it.
func TestFourQuarterTurns(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			once := edit(t, load(t, v+".jpg"), 90, image.Rectangle{})
			// 90 trims the bottom edge, 270 the right: after one full turn
			// both are whole MCUs and nothing else is lost.
			base := edit(t, edit(t, edit(t, once, 90, image.Rectangle{}), 90, image.Rectangle{}), 90, image.Rectangle{})
			cur := base
			for range 4 {
				cur = edit(t, cur, 90, image.Rectangle{})
			}
			if !bytes.Equal(cur, base) {
				t.Fatal("four quarter turns changed the file")
			}
			back := edit(t, edit(t, base, 90, image.Rectangle{}), 270, image.Rectangle{})
			if !bytes.Equal(back, base) {
				t.Fatal("90 then 270 changed the file")
			}
		})
	}
}

func TestPlanRefusals(t *testing.T) {
	f := Frame{Width: 77, Height: 53, Sampling: [][2]int{{2, 2}, {1, 1}, {1, 1}}}
	cases := []struct {
		name   string
		rotate int
		crop   image.Rectangle
		lossy  bool // ErrNotLossless rather than invalid
	}{
		{"rotation", 45, image.Rectangle{}, false},
		{"crop outside", 0, image.Rect(70, 0, 80, 10), false},
		{"crop empty", 0, image.Rect(10, 10, 10, 20), false},
		{"off grid", 0, image.Rect(8, 0, 40, 40), true},
		{"off grid rotated", 90, image.Rect(6, 0, 20, 20), true}, // 90: the first 5 columns are trimmed
		{"in the trim", 90, image.Rect(0, 0, 5, 20), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPlan(f, c.rotate, c.crop)
			if err == nil || errors.Is(err, ErrNotLossless) != c.lossy {
				t.Fatalf("err = %v, want lossy=%v", err, c.lossy)
			}
		})
	}
	p, err := NewPlan(f, 90, image.Rect(5, 0, 30, 20))
	if err != nil {
		t.Fatal(err)
	}
	if want := image.Rect(5, 0, 53, 77); p.Kept != want || p.Region != image.Rect(5, 0, 30, 20) {
		t.Fatalf("kept %v region %v, want kept %v", p.Kept, p.Region, want)
	}
	// A crop reaching into the trimmed edge is clipped to what is kept.
	p, err = NewPlan(f, 90, image.Rect(0, 0, 30, 20))
	if err != nil || p.Region != image.Rect(5, 0, 30, 20) {
		t.Fatalf("region %v (%v), want (5,0)-(30,20)", p.Region, err)
	}
}

// TestOptimalTableLengths: code lengths never exceed 16 bits, even for a
// skewed (Fibonacci) distribution that would want longer ones, and the
// codes are prefix-free and never all ones.
func TestOptimalTableLengths(t *testing.T) {
	var freq [257]int64
	a, b := int64(1), int64(1)
	for i := range 40 {
		freq[i] = a
		a, b = b, a+b
	}
	h := optimalTable(&freq)
	if h.nsym != 40 {
		t.Fatalf("%d symbols, want 40", h.nsym)
	}
	for s := range 40 {
		l := h.size[s]
		if l == 0 || l > 16 {
			t.Fatalf("symbol %d has length %d", s, l)
		}
		if h.code[s] == 1<<l-1 {
			t.Fatalf("symbol %d is all ones", s)
		}
		for u := range 40 {
			if u == s || h.size[u] < l {
				continue
			}
			if h.code[u]>>(h.size[u]-l) == h.code[s] {
				t.Fatalf("code of %d is a prefix of %d's", s, u)
			}
		}
	}
}
