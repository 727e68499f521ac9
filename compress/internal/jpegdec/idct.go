package jpegdec

// The reduced inverse DCTs. An 8x8 block's coefficients F(v, u) describe
//
//	f(x, y) = 1/4 Σ C(u) C(v) F(v, u) cos((2x+1)uπ/16) cos((2y+1)vπ/16)
//
// with C(0) = 1/√2 and C(u) = 1 otherwise. Keeping the n x n lowest
// frequencies and evaluating the n-point transform
//
//	g(x, y) = 1/4 Σ_{u,v<n} C(u) C(v) F(v, u) cos((2x+1)uπ/2n) cos((2y+1)vπ/2n)
//
// gives the block at 1/(8/n) size with the same mean: an ideal low-pass
// within the block, which is what libjpeg's scaled decoding does too.

const (
	cos1 = 0.9238795325112867  // cos(π/8)
	cos2 = 0.7071067811865476  // cos(2π/8) = 1/√2
	cos3 = 0.38268343236508984 // cos(3π/8)
)

func clampPix(v float32) byte {
	v += 128.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return byte(v)
}

func clampInt(v int32) byte {
	v += 128
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// idct4 turns the 4x4 low-frequency corner (natural order) into 4x4 pixels.
func idct4(c []int32, dst []byte, stride int) {
	c = c[:16]
	var t [16]float32
	for u := range 4 {
		f0, f1, f2, f3 := float32(c[u]), float32(c[4+u]), float32(c[8+u]), float32(c[12+u])
		if f1 == 0 && f2 == 0 && f3 == 0 {
			v := f0 * (cos2 / 2)
			t[u], t[4+u], t[8+u], t[12+u] = v, v, v, v
			continue
		}
		e0, e1 := f0*cos2+f2*cos2, f0*cos2-f2*cos2
		o0, o1 := f1*cos1+f3*cos3, f1*cos3-f3*cos1
		t[u], t[4+u], t[8+u], t[12+u] = (e0+o0)/2, (e1+o1)/2, (e1-o1)/2, (e0-o0)/2
	}
	for y := range 4 {
		f := t[4*y : 4*y+4 : 4*y+4]
		e0, e1 := f[0]*cos2+f[2]*cos2, f[0]*cos2-f[2]*cos2
		o0, o1 := f[1]*cos1+f[3]*cos3, f[1]*cos3-f[3]*cos1
		out := dst[y*stride : y*stride+4 : y*stride+4]
		out[0] = clampPix((e0 + o0) / 2)
		out[1] = clampPix((e1 + o1) / 2)
		out[2] = clampPix((e1 - o1) / 2)
		out[3] = clampPix((e0 - o0) / 2)
	}
}

// idct2 turns the 2x2 low-frequency corner into 2x2 pixels.
func idct2(c []int32, dst []byte, stride int) {
	c = c[:4]
	a, b, p, q := c[0], c[1], c[2], c[3]
	r0 := dst[:2:2]
	r1 := dst[stride : stride+2 : stride+2]
	r0[0] = clampInt((a + b + p + q + 4) >> 3)
	r0[1] = clampInt((a - b + p - q + 4) >> 3)
	r1[0] = clampInt((a + b - p - q + 4) >> 3)
	r1[1] = clampInt((a - b - p + q + 4) >> 3)
}

// idct1 turns the DC coefficient into one pixel.
func idct1(c []int32, dst []byte, _ int) {
	dst[0] = clampInt((c[0] + 4) >> 3)
}

// aanIDCT folds the Arai-Agui-Nakajima scale factors, cos(kπ/16)·√2 (1 at
// 0), into each dequantised coefficient of a full 8x8 inverse DCT.
var aanIDCT = func() (t [64]float32) {
	aan := [8]float64{1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.541196100, 0.275899379}
	for i := range t {
		t[i] = float32(aan[i/8] * aan[i%8] / 8) // the 1/8 is the transform's own scale
	}
	return t
}()

// idct8 is the full-size floating-point inverse DCT (the Arai-Agui-Nakajima
// factorisation: 5 multiplications per 8 points).
func idct8(c []int32, dst []byte, stride int) {
	c = c[:64]
	var ws [64]float32
	for u := range 8 {
		if c[8+u] == 0 && c[16+u] == 0 && c[24+u] == 0 && c[32+u] == 0 && c[40+u] == 0 && c[48+u] == 0 && c[56+u] == 0 {
			v := float32(c[u]) * aanIDCT[u]
			for y := range 8 {
				ws[8*y+u] = v
			}
			continue
		}
		var in [8]float32
		for v := range 8 {
			in[v] = float32(c[8*v+u]) * aanIDCT[8*v+u]
		}
		var out [8]float32
		idct1D(&in, &out)
		for y := range 8 {
			ws[8*y+u] = out[y]
		}
	}
	for y := range 8 {
		in := (*[8]float32)(ws[8*y : 8*y+8])
		var out [8]float32
		idct1D(in, &out)
		row := dst[y*stride : y*stride+8 : y*stride+8]
		for x := range 8 {
			row[x] = clampPix(out[x])
		}
	}
}

func idct1D(in, out *[8]float32) {
	// Even part.
	tmp10, tmp11 := in[0]+in[4], in[0]-in[4]
	tmp13 := in[2] + in[6]
	tmp12 := (in[2]-in[6])*1.414213562 - tmp13
	tmp0, tmp3 := tmp10+tmp13, tmp10-tmp13
	tmp1, tmp2 := tmp11+tmp12, tmp11-tmp12
	// Odd part.
	z13, z10 := in[5]+in[3], in[5]-in[3]
	z11, z12 := in[1]+in[7], in[1]-in[7]
	tmp7 := z11 + z13
	tmp11 = (z11 - z13) * 1.414213562
	z5 := (z10 + z12) * 1.847759065
	tmp10 = 1.082392200*z12 - z5
	tmp12 = -2.613125930*z10 + z5
	tmp6 := tmp12 - tmp7
	tmp5 := tmp11 - tmp6
	tmp4 := tmp10 + tmp5
	out[0], out[7] = tmp0+tmp7, tmp0-tmp7
	out[1], out[6] = tmp1+tmp6, tmp1-tmp6
	out[2], out[5] = tmp2+tmp5, tmp2-tmp5
	out[4], out[3] = tmp3+tmp4, tmp3-tmp4
}
