package compress

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// encodeYCbCr codes 8-bit RGB with matrix m at full or limited range, in
// floating point, as a video or HEVC encoder does.
func encodeYCbCr(r, g, b uint8, c YCbCrCoding) (y, cb, cr uint8) {
	kr, kb := c.Matrix.kr()
	R, G, B := float64(r)/255, float64(g)/255, float64(b)/255
	yy := kr*R + (1-kr-kb)*G + kb*B
	u := (B - yy) / (2 * (1 - kb))
	v := (R - yy) / (2 * (1 - kr))
	yo, ys, cs := 0.0, 255.0, 255.0
	if c.Limited {
		yo, ys, cs = 16, 219, 224
	}
	return clampF8(yo + ys*yy), clampF8(128 + cs*u), clampF8(128 + cs*v)
}

// TestToJFIF checks the conversion of every coding told apart to JFIF:
// colours coded with it, converted, then read through image/color (which
// assumes JFIF) come back within two levels. Without the conversion the
// same samples are off by far more, so the test can fail.
func TestToJFIF(t *testing.T) {
	t.Parallel()
	colours := [][3]uint8{{0, 0, 0}, {255, 255, 255}, {224, 172, 105}, {200, 60, 60}, {60, 170, 80}, {40, 60, 200}, {128, 128, 128}, {250, 240, 20}}
	for _, c := range []YCbCrCoding{{Limited: true}, {Matrix: BT709}, {Matrix: BT709, Limited: true}, {Matrix: BT2020, Limited: true}} {
		m := image.NewYCbCr(image.Rect(0, 0, len(colours), 1), image.YCbCrSubsampleRatio444)
		for i, rgb := range colours {
			m.Y[i], m.Cb[i], m.Cr[i] = encodeYCbCr(rgb[0], rgb[1], rgb[2], c)
		}
		worst := func() float64 {
			var w float64
			for i, rgb := range colours {
				r, g, b := color.YCbCrToRGB(m.Y[i], m.Cb[i], m.Cr[i])
				for k, v := range []uint8{r, g, b} {
					w = math.Max(w, math.Abs(float64(v)-float64(rgb[k])))
				}
			}
			return w
		}
		if before := worst(); before < 8 {
			t.Fatalf("%+v: read as JFIF the samples are off by only %.0f: the case tests nothing", c, before)
		}
		toJFIF(m, c, 2)
		if after := worst(); after > 2 {
			t.Errorf("%+v: after toJFIF a colour is off by %.0f levels, want at most 2", c, after)
		}
	}
}

// TestToJFIFSubsampled checks a 4:2:0 picture: the chroma planes convert at
// their own size and luma uses the chroma sample covering it.
func TestToJFIFSubsampled(t *testing.T) {
	t.Parallel()
	c := YCbCrCoding{Matrix: BT709, Limited: true}
	m := image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio420)
	want := [3]uint8{200, 60, 60}
	y, cb, cr := encodeYCbCr(want[0], want[1], want[2], c)
	for i := range m.Y {
		m.Y[i] = y
	}
	for i := range m.Cb {
		m.Cb[i], m.Cr[i] = cb, cr
	}
	toJFIF(m, c, 1)
	for py := 0; py < 4; py++ {
		for px := 0; px < 4; px++ {
			got := m.YCbCrAt(px, py)
			r, g, b := color.YCbCrToRGB(got.Y, got.Cb, got.Cr)
			for k, v := range []uint8{r, g, b} {
				if math.Abs(float64(v)-float64(want[k])) > 2 {
					t.Fatalf("pixel %d,%d: got %d,%d,%d want %v", px, py, r, g, b, want)
				}
			}
		}
	}
}

// TestSourceCoding checks what Normalize tells the engine: limited-range
// BT.601 for lossy WebP, the nclx box's matrix and range for HEIC.
func TestSourceCoding(t *testing.T) {
	t.Parallel()
	nclx := func(matrix uint16, full bool) []byte {
		b := []byte("nclx\x00\x01\x00\x0d\x00\x00\x00")
		b[8], b[9] = byte(matrix>>8), byte(matrix)
		if full {
			b[10] = 0x80
		}
		return b
	}
	for _, c := range []struct {
		body []byte
		want YCbCrCoding
	}{
		{nclx(1, false), YCbCrCoding{Matrix: BT709, Limited: true}},
		{nclx(6, true), YCbCrCoding{}},
		{nclx(9, true), YCbCrCoding{Matrix: BT2020}},
		{nclx(5, false), YCbCrCoding{Limited: true}},
	} {
		d := heifWithProperty(box{"colr", c.body})
		if got := scanHEIF(d).ycbcr; got != c.want {
			t.Errorf("nclx %x: got %+v, want %+v", c.body, got, c.want)
		}
	}
	if got := scanHEIF(heifWithProperty(box{"colr", []byte("prof")})).ycbcr; !got.JFIF() {
		t.Errorf("no nclx box: got %+v, want JFIF", got)
	}
}

// heifWithProperty builds the smallest meta box scanHEIF reads: item 1
// primary, associated with one ispe and the given property.
func heifWithProperty(p box) []byte {
	mk := func(typ string, body []byte) []byte {
		n := 8 + len(body)
		return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), typ[0], typ[1], typ[2], typ[3]}, body...)
	}
	ispe := mk("ispe", []byte{0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 16})
	ipco := mk("ipco", append(ispe, mk(p.typ, p.body)...))
	ipma := mk("ipma", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 0x81, 0x82})
	meta := mk("meta", append([]byte{0, 0, 0, 0}, append(mk("pitm", []byte{0, 0, 0, 0, 0, 1}), mk("iprp", append(ipco, ipma...))...)...))
	return append(mk("ftyp", []byte("heic\x00\x00\x00\x00mif1heic")), meta...)
}
