package compress

import (
	"encoding/binary"
	"math"
)

// colourTransform converts 8-bit RGB in a source ICC space (matrix/TRC
// profiles: Display P3, Adobe RGB, ProPhoto, ...) to 8-bit sRGB.
type colourTransform struct {
	lin [3][256]float32 // source TRC: code value -> linear light
	m   [9]float32      // linear source RGB -> linear sRGB (row major)
}

// srgbD50 is sRGB's colorant matrix adapted to the ICC PCS illuminant D50
// (Bradford), as found in the sRGB IEC61966-2.1 profile, columns r, g, b.
var srgbD50 = [9]float64{
	0.4360747, 0.3850649, 0.1430804,
	0.2225045, 0.7168786, 0.0606169,
	0.0139322, 0.0971045, 0.7141733,
}

// parseICC builds a transform for an RGB matrix/TRC profile. It returns nil
// when the profile is absent, malformed, not RGB, LUT-based (which pure Go
// here does not evaluate; such images are treated as sRGB), or already
// equivalent to sRGB (no work needed).
func parseICC(p []byte) *colourTransform {
	t, _ := iccTransform(p)
	return t
}

// isSRGBProfile reports whether p is a matrix/TRC RGB profile equivalent to
// sRGB (within the tolerances parseICC uses to skip a conversion).
func isSRGBProfile(p []byte) bool {
	_, srgb := iccTransform(p)
	return srgb
}

// iccTransform is parseICC, also saying whether a nil transform means the
// profile is sRGB (rather than unreadable).
func iccTransform(p []byte) (*colourTransform, bool) {
	if len(p) < 132 || string(p[16:20]) != "RGB " || string(p[36:40]) != "acsp" {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(p[128:]))
	if n > (len(p)-132)/12 {
		return nil, false
	}
	tags := map[string][]byte{}
	for i := 0; i < n; i++ {
		e := p[132+12*i:]
		off, size := binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:])
		if uint64(off)+uint64(size) > uint64(len(p)) {
			continue
		}
		tags[string(e[:4])] = p[off : off+size]
	}
	var src [9]float64
	for c, sig := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		t := tags[sig]
		if len(t) < 20 || string(t[:4]) != "XYZ " {
			return nil, false
		}
		for k := 0; k < 3; k++ {
			src[3*k+c] = s15(t[8+4*k:])
		}
	}
	var t colourTransform
	identity := true
	for c, sig := range []string{"rTRC", "gTRC", "bTRC"} {
		f := parseTRC(tags[sig])
		if f == nil {
			return nil, false
		}
		for v := 0; v < 256; v++ {
			x := float64(v) / 255
			y := f(x)
			t.lin[c][v] = float32(y)
			if math.Abs(y-srgbToLinear(x)) > 0.004 {
				identity = false
			}
		}
	}
	inv, ok := invert3(srgbD50)
	if !ok {
		return nil, false
	}
	m := mul3(inv, src)
	for i := range m {
		want := 0.0
		if i%4 == 0 {
			want = 1
		}
		if math.Abs(m[i]-want) > 0.01 {
			identity = false
		}
		t.m[i] = float32(m[i])
	}
	if identity {
		return nil, true
	}
	return &t, false
}

func s15(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) / 65536 }

// parseTRC returns the tone curve of a curv or para tag, or nil.
func parseTRC(t []byte) func(float64) float64 {
	if len(t) < 12 {
		return nil
	}
	switch string(t[:4]) {
	case "curv":
		n := int(binary.BigEndian.Uint32(t[8:]))
		switch {
		case n == 0:
			return func(x float64) float64 { return x }
		case n == 1 && len(t) >= 14:
			g := float64(binary.BigEndian.Uint16(t[12:])) / 256
			return func(x float64) float64 { return math.Pow(x, g) }
		case n >= 2 && len(t) >= 12+2*n:
			tab := make([]float64, n)
			for i := range tab {
				tab[i] = float64(binary.BigEndian.Uint16(t[12+2*i:])) / 65535
			}
			return func(x float64) float64 {
				pos := x * float64(n-1)
				i := int(pos)
				if i >= n-1 {
					return tab[n-1]
				}
				f := pos - float64(i)
				return tab[i]*(1-f) + tab[i+1]*f
			}
		}
	case "para":
		typ := binary.BigEndian.Uint16(t[8:])
		need := []int{1, 3, 4, 5, 7}
		if int(typ) >= len(need) || len(t) < 12+4*need[typ] {
			return nil
		}
		var g [7]float64
		for i := 0; i < need[typ]; i++ {
			g[i] = s15(t[12+4*i:])
		}
		gamma, a, b, c, d, e, f := g[0], g[1], g[2], g[3], g[4], g[5], g[6]
		pow := func(v float64) float64 {
			if v <= 0 {
				return 0
			}
			return math.Pow(v, gamma)
		}
		switch typ {
		case 0:
			return pow
		case 1:
			return func(x float64) float64 { return pow(a*x + b) }
		case 2:
			return func(x float64) float64 { return pow(a*x+b) + c }
		case 3:
			return func(x float64) float64 {
				if x >= d {
					return pow(a*x + b)
				}
				return c * x
			}
		case 4:
			return func(x float64) float64 {
				if x >= d {
					return pow(a*x+b) + e
				}
				return c*x + f
			}
		}
	}
	return nil
}

func srgbToLinear(x float64) float64 {
	if x <= 0.04045 {
		return x / 12.92
	}
	return math.Pow((x+0.055)/1.055, 2.4)
}

func linearToSRGB(x float64) float64 {
	if x <= 0.0031308 {
		return 12.92 * x
	}
	return 1.055*math.Pow(x, 1/2.4) - 0.055
}

func mul3(a, b [9]float64) [9]float64 {
	var r [9]float64
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				r[3*i+j] += a[3*i+k] * b[3*k+j]
			}
		}
	}
	return r
}

func invert3(m [9]float64) ([9]float64, bool) {
	a, b, c, d, e, f, g, h, i := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
	det := a*(e*i-f*h) - b*(d*i-f*g) + c*(d*h-e*g)
	if math.Abs(det) < 1e-12 {
		return [9]float64{}, false
	}
	return [9]float64{
		(e*i - f*h) / det, (c*h - b*i) / det, (b*f - c*e) / det,
		(f*g - d*i) / det, (a*i - c*g) / det, (c*d - a*f) / det,
		(d*h - e*g) / det, (b*g - a*h) / det, (a*e - b*d) / det,
	}, true
}

// encodeLUTSize is the resolution of the linear -> sRGB table; 16384 steps
// keep the darkest tones within one code value.
const encodeLUTSize = 1 << 14

func srgbEncodeLUT() *[encodeLUTSize + 1]uint8 {
	var t [encodeLUTSize + 1]uint8
	for i := range t {
		t[i] = uint8(math.Round(255 * linearToSRGB(float64(i)/encodeLUTSize)))
	}
	return &t
}
