package enginetest

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	gosync "sync"
)

// Marker colours placed in generated images so tests can find where the
// top-left and top-right corners of the upright picture ended up.
var (
	MarkerTL = color.RGBA{220, 20, 20, 255} // red, top-left
	MarkerTR = color.RGBA{20, 20, 220, 255} // blue, top-right
)

// Photo returns a deterministic camera-like RGB image of w x h: smooth
// lighting gradients, shapes with hard edges, fine texture and sensor-like
// noise, so that it compresses like a real photo rather than a flat test
// card. The same seed gives the same pixels. If markers is true a red
// square sits at the top-left and a blue one at the top-right (each 1/8 of
// the short side, inset by 1/16).
func Photo(w, h int, seed uint64, markers bool) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type disc struct{ x, y, r, cr, cg, cb float64 }
	discs := make([]disc, 24)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h),
			(0.03 + 0.12*rng.Float64()) * float64(min(w, h)),
			rng.Float64()*120 - 60, rng.Float64()*120 - 60, rng.Float64()*120 - 60}
	}
	fx, fy := 2*math.Pi/float64(w), 2*math.Pi/float64(h)
	// Separable terms, tabulated once per column, row and diagonal.
	rx, gx, tx := make([]float64, w), make([]float64, w), make([]float64, w)
	for x := range rx {
		rx[x] = 50 * math.Sin(float64(x)*fx*0.7+0.3)
		gx[x] = 40 * math.Sin(float64(x)*fx*0.5+1.1)
		tx[x] = 10 * math.Sin(float64(x)*0.9)
	}
	ry, gy, ty := make([]float64, h), make([]float64, h), make([]float64, h)
	for y := range ry {
		ry[y] = 20 * math.Cos(float64(y)*fy*1.3)
		gy[y] = math.Cos(float64(y) * fy * 0.8)
		ty[y] = math.Sin(float64(y) * 0.7)
	}
	bd := make([]float64, w+h)
	for i := range bd {
		bd[i] = 35 * math.Cos(float64(i)*fx*0.6)
	}
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		fyy := float64(y)
		for x := 0; x < w; x++ {
			// lighting: warm skin-like base with broad gradients;
			// texture: fine pores / fabric
			t := tx[x] * ty[y]
			r := 170 + rx[x] + ry[y] + t
			g := 120 + gx[x]*gy[y] + t
			b := 95 + bd[x+y] + t
			for _, d := range discs {
				dx, dy := float64(x)-d.x, fyy-d.y
				if dx*dx+dy*dy < d.r*d.r {
					r, g, b = r+d.cr, g+d.cg, b+d.cb
				}
			}
			n := rng.NormFloat64() * 6.5
			p := row[4*x : 4*x+4]
			p[0], p[1], p[2], p[3] = clamp(r+n), clamp(g+n+rng.NormFloat64()*2), clamp(b+n), 255
		}
	}
	if markers {
		s := max(min(w, h)/8, 2)
		in := max(min(w, h)/16, 1)
		fill(img, image.Rect(in, in, in+s, in+s), MarkerTL)
		fill(img, image.Rect(w-in-s, in, w-in, in+s), MarkerTR)
	}
	return img
}

func clamp(v float64) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v + 0.5)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// Orient returns img transformed as EXIF orientation o describes: the
// image a viewer shows when the file's stored pixels are img and its tag is
// o. It is the reference the engines are checked against, written from the
// EXIF 2.32 definitions independently of package compress.
func Orient(img image.Image, o int) *image.RGBA {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	ow, oh := W, H
	if o >= 5 {
		ow, oh = H, W
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = W-1-x, y
			case 3:
				sx, sy = W-1-x, H-1-y
			case 4:
				sx, sy = x, H-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, H-1-x
			case 7:
				sx, sy = W-1-y, H-1-x
			case 8:
				sx, sy = W-1-y, x
			default:
				sx, sy = x, y
			}
			out.Set(x, y, img.At(b.Min.X+sx, b.Min.Y+sy))
		}
	}
	return out
}

// Unorient returns the stored pixels that display as upright under EXIF
// orientation o (the inverse of [Orient]).
func Unorient(upright image.Image, o int) *image.RGBA {
	switch o {
	case 6:
		return Orient(upright, 8)
	case 8:
		return Orient(upright, 6)
	}
	return Orient(upright, o)
}

// EncodeJPEG encodes img at quality q, panicking on error (generated images
// always encode).
func EncodeJPEG(img image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// InsertSegment inserts a JPEG marker segment (marker 0xE0-0xFE) with the
// given payload right after SOI.
func InsertSegment(jpg []byte, marker byte, payload []byte) []byte {
	seg := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// EXIF returns a big-endian TIFF block for an APP1 "Exif" segment (without
// the "Exif\0\0" prefix) holding the orientation tag (if o > 0), a camera
// make and model, and, if gps, a GPS IFD with latitude and longitude
// (Wellington).
func EXIF(o int, gps bool) []byte {
	be := binary.BigEndian
	type ent struct {
		tag, typ uint16
		count    uint32
		val      []byte // inline when <= 4 bytes, else stored after the IFD
	}
	var ifd0, gpsIFD []ent
	short := func(v uint16) []byte { b := make([]byte, 2); be.PutUint16(b, v); return b }
	rat := func(vals ...uint32) []byte {
		b := make([]byte, 8*len(vals))
		for i, v := range vals {
			be.PutUint32(b[8*i:], v)
			be.PutUint32(b[8*i+4:], 1)
		}
		return b
	}
	ifd0 = append(ifd0, ent{0x010F, 2, 6, []byte("Phone\x00")}, ent{0x0110, 2, 8, []byte("Model X\x00")})
	if o > 0 {
		ifd0 = append(ifd0, ent{0x0112, 3, 1, short(uint16(o))})
	}
	if gps {
		ifd0 = append(ifd0, ent{0x8825, 4, 1, nil}) // offset patched below
		gpsIFD = []ent{
			{0x0000, 1, 4, []byte{2, 2, 0, 0}},
			{0x0001, 2, 2, []byte("S\x00")},
			{0x0002, 5, 3, rat(41, 17, 0)},
			{0x0003, 2, 2, []byte("E\x00")},
			{0x0004, 5, 3, rat(174, 46, 0)},
		}
	}
	size := func(es []ent) int {
		n := 2 + 12*len(es) + 4
		for _, e := range es {
			if len(e.val) > 4 {
				n += len(e.val)
			}
		}
		return n
	}
	ifd0Off := 8
	gpsOff := ifd0Off + size(ifd0)
	buf := make([]byte, gpsOff+size(gpsIFD))
	copy(buf, "MM\x00\x2a")
	be.PutUint32(buf[4:], uint32(ifd0Off))
	write := func(off int, es []ent) {
		be.PutUint16(buf[off:], uint16(len(es)))
		data := off + 2 + 12*len(es) + 4
		for i, e := range es {
			p := off + 2 + 12*i
			be.PutUint16(buf[p:], e.tag)
			be.PutUint16(buf[p+2:], e.typ)
			be.PutUint32(buf[p+4:], e.count)
			switch {
			case e.tag == 0x8825:
				be.PutUint32(buf[p+8:], uint32(gpsOff))
			case len(e.val) <= 4:
				copy(buf[p+8:p+12], e.val)
			default:
				be.PutUint32(buf[p+8:], uint32(data))
				copy(buf[data:], e.val)
				data += len(e.val)
			}
		}
	}
	write(ifd0Off, ifd0)
	if gps {
		write(gpsOff, gpsIFD)
	}
	return buf
}

// Display P3 colorants adapted to D50, as in Apple's Display P3 profile.
var p3D50 = [9]float64{
	0.515102, 0.291965, 0.157153,
	0.241196, 0.692245, 0.0665588,
	-0.00104981, 0.0418818, 0.784378,
}

var srgbD50 = [9]float64{
	0.4360747, 0.3850649, 0.1430804,
	0.2225045, 0.7168786, 0.0606169,
	0.0139322, 0.0971045, 0.7141733,
}

// DisplayP3Profile returns a minimal ICC v4 Display P3 profile (matrix and
// parametric sRGB-shaped tone curves), enough for any colour-managed reader.
func DisplayP3Profile() []byte {
	be := binary.BigEndian
	s15 := func(v float64) []byte {
		b := make([]byte, 4)
		be.PutUint32(b, uint32(int32(math.Round(v*65536))))
		return b
	}
	xyz := func(x, y, z float64) []byte {
		b := append([]byte("XYZ \x00\x00\x00\x00"), s15(x)...)
		return append(append(b, s15(y)...), s15(z)...)
	}
	para := append([]byte("para\x00\x00\x00\x00\x00\x03\x00\x00"), s15(2.4)...)
	para = append(para, s15(1/1.055)...)
	para = append(para, s15(0.055/1.055)...)
	para = append(para, s15(1/12.92)...)
	para = append(para, s15(0.04045)...)
	desc := []byte("mluc\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x0cenUS\x00\x00\x00\x14\x00\x00\x00\x1c\x00D\x00i\x00s\x00p\x00l\x00a\x00y\x00 \x00P\x003\x00\x00")
	type tag struct {
		sig  string
		data []byte
	}
	tags := []tag{
		{"desc", desc},
		{"wtpt", xyz(0.9642, 1.0, 0.8249)},
		{"rXYZ", xyz(p3D50[0], p3D50[3], p3D50[6])},
		{"gXYZ", xyz(p3D50[1], p3D50[4], p3D50[7])},
		{"bXYZ", xyz(p3D50[2], p3D50[5], p3D50[8])},
		{"rTRC", para}, {"gTRC", para}, {"bTRC", para},
	}
	head := make([]byte, 128)
	copy(head[8:], []byte{4, 0x30, 0, 0})
	copy(head[12:], "mntrRGB XYZ ")
	copy(head[36:], "acsp")
	copy(head[68:], s15(0.9642))
	copy(head[72:], s15(1.0))
	copy(head[76:], s15(0.8249))
	table := make([]byte, 4+12*len(tags))
	be.PutUint32(table, uint32(len(tags)))
	var data []byte
	off := 128 + len(table)
	for i, t := range tags {
		for len(data)%4 != 0 {
			data = append(data, 0)
		}
		copy(table[4+12*i:], t.sig)
		be.PutUint32(table[4+12*i+4:], uint32(off+len(data)))
		be.PutUint32(table[4+12*i+8:], uint32(len(t.data)))
		data = append(data, t.data...)
	}
	p := append(append(head, table...), data...)
	be.PutUint32(p, uint32(len(p)))
	return p
}

// SRGBToP3 converts an 8-bit sRGB colour to the 8-bit Display P3 values
// that show the same colour.
func SRGBToP3(c color.RGBA) color.RGBA {
	lin := func(v uint8) float64 {
		x := float64(v) / 255
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	enc := func(x float64) uint8 {
		if x <= 0.0031308 {
			x *= 12.92
		} else {
			x = 1.055*math.Pow(x, 1/2.4) - 0.055
		}
		return clamp(x * 255)
	}
	r, g, b := lin(c.R), lin(c.G), lin(c.B)
	X := srgbD50[0]*r + srgbD50[1]*g + srgbD50[2]*b
	Y := srgbD50[3]*r + srgbD50[4]*g + srgbD50[5]*b
	Z := srgbD50[6]*r + srgbD50[7]*g + srgbD50[8]*b
	m := p3D50
	det := m[0]*(m[4]*m[8]-m[5]*m[7]) - m[1]*(m[3]*m[8]-m[5]*m[6]) + m[2]*(m[3]*m[7]-m[4]*m[6])
	inv := [9]float64{
		(m[4]*m[8] - m[5]*m[7]) / det, (m[2]*m[7] - m[1]*m[8]) / det, (m[1]*m[5] - m[2]*m[4]) / det,
		(m[5]*m[6] - m[3]*m[8]) / det, (m[0]*m[8] - m[2]*m[6]) / det, (m[2]*m[3] - m[0]*m[5]) / det,
		(m[3]*m[7] - m[4]*m[6]) / det, (m[1]*m[6] - m[0]*m[7]) / det, (m[0]*m[4] - m[1]*m[3]) / det,
	}
	return color.RGBA{
		enc(inv[0]*X + inv[1]*Y + inv[2]*Z),
		enc(inv[3]*X + inv[4]*Y + inv[5]*Z),
		enc(inv[6]*X + inv[7]*Y + inv[8]*Z), 255}
}

// ICCSegments splits an ICC profile into APP2 "ICC_PROFILE" payloads.
func ICCSegments(p []byte) [][]byte {
	const chunk = 65519
	n := (len(p) + chunk - 1) / chunk
	var out [][]byte
	for i := 0; i < n; i++ {
		part := p[i*chunk : min(len(p), (i+1)*chunk)]
		out = append(out, append([]byte("ICC_PROFILE\x00"), append([]byte{byte(i + 1), byte(n)}, part...)...))
	}
	return out
}

// Phone12MP returns the benchmarks' phone photo: a 4032x3024 Photo (seed
// 42, markers) as a quality-92 JPEG carrying EXIF orientation 6 and GPS, as
// a phone held upright writes it. It is made once per process; callers must
// not modify it.
var Phone12MP = gosync.OnceValue(func() []byte {
	return InsertSegment(EncodeJPEG(Photo(4032, 3024, 42, true), 92), 0xE1,
		append([]byte("Exif\x00\x00"), EXIF(6, true)...))
})
