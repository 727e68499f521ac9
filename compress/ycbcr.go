package compress

import (
	"image"
	"math"
)

// YCbCrMatrix is the matrix a decoder's YCbCr samples were coded with, as
// the nclx colour description of ITU-T H.273 numbers them.
type YCbCrMatrix uint8

// The matrices Normalize tells apart. Every other H.273 value is read as
// BT.601, the matrix JPEG uses.
const (
	// BT601 (H.273 values 5 and 6) is JPEG's, VP8's (lossy WebP) and the
	// HEIF default: Kr 0.299, Kb 0.114.
	BT601 YCbCrMatrix = iota
	// BT709 (H.273 value 1): Kr 0.2126, Kb 0.0722.
	BT709
	// BT2020 (H.273 value 9, non-constant luminance): Kr 0.2627, Kb 0.0593.
	BT2020
)

// YCbCrCoding says how to read the samples of an *image.YCbCr or
// *image.NYCbCrA that a decoder returns. Go's image/color conversions, and
// the JPEG that Normalize writes, assume JFIF: BT.601 at full range (0-255
// for Y, Cb and Cr). The zero value is that, so only sources coded
// otherwise need to say so.
type YCbCrCoding struct {
	// Matrix is the YCbCr to RGB matrix.
	Matrix YCbCrMatrix
	// Limited is true for limited ("studio", "video") range: Y in 16-235
	// and Cb, Cr in 16-240 for black to white and the full colour range,
	// as VP8 (lossy WebP) and most video codecs store them.
	Limited bool
}

// JFIF reports whether c is JPEG's own coding, which needs no conversion.
func (c YCbCrCoding) JFIF() bool { return c == YCbCrCoding{} }

// matrixFromH273 maps an H.273 matrix_coefficients value to the matrices
// told apart here.
func matrixFromH273(v uint16) YCbCrMatrix {
	switch v {
	case 1:
		return BT709
	case 9:
		return BT2020
	}
	return BT601
}

func (m YCbCrMatrix) kr() (kr, kb float64) {
	switch m {
	case BT709:
		return 0.2126, 0.0722
	case BT2020:
		return 0.2627, 0.0593
	}
	return 0.299, 0.114
}

// ycbcrTransform maps samples coded as c to JFIF samples:
//
//	Y' = yLUT[Y] + ya*(Cb-128) + yb*(Cr-128)
//	Cb' = 128 + cc[0]*(Cb-128) + cc[1]*(Cr-128), Cr' likewise with cc[2], cc[3]
//
// Chroma never depends on Y (both matrices' luma weights sum to one), so
// the chroma planes convert at their own resolution.
type ycbcrTransform struct {
	yLUT   [256]float32
	ya, yb float32
	cc     [4]float32
	// cLUT is the chroma mapping when it is a plain range expansion
	// (same matrix): Cb' = cLUT[Cb], Cr' = cLUT[Cr].
	cLUT        [256]uint8
	diagonal    bool // ya = yb = 0 and cc is diagonal with equal entries
	yLUT8       [256]uint8
	hasChromaYs bool
}

func newYCbCrTransform(c YCbCrCoding) *ycbcrTransform {
	yo, ys, cs := 0.0, 255.0, 255.0
	if c.Limited {
		yo, ys, cs = 16, 219, 224
	}
	kr, kb := c.Matrix.kr()
	kg := 1 - kr - kb
	const jr, jb = 0.299, 0.114
	const jg = 1 - jr - jb
	// From normalised (y, cb, cr) in the source coding to RGB, then to
	// JFIF; everything is linear, so read the coefficients off the basis.
	conv := func(y, cb, cr float64) (float64, float64, float64) {
		r := y + 2*(1-kr)*cr
		b := y + 2*(1-kb)*cb
		g := (y - kr*r - kb*b) / kg
		yy := jr*r + jg*g + jb*b
		return 255 * yy, 255 * (b - yy) / (2 * (1 - jb)), 255 * (r - yy) / (2 * (1 - jr))
	}
	t := &ycbcrTransform{}
	yFromCb, cbFromCb, crFromCb := conv(0, 1/cs, 0)
	yFromCr, cbFromCr, crFromCr := conv(0, 0, 1/cs)
	t.ya, t.yb = float32(yFromCb), float32(yFromCr)
	t.cc = [4]float32{float32(cbFromCb), float32(cbFromCr), float32(crFromCb), float32(crFromCr)}
	for v := range 256 {
		t.yLUT[v] = float32(255 * (float64(v) - yo) / ys)
		t.yLUT8[v] = clampF8(float64(t.yLUT[v]))
		t.cLUT[v] = clampF8(128 + float64(cbFromCb)*(float64(v)-128))
	}
	const eps = 1e-6
	t.hasChromaYs = math.Abs(yFromCb) > eps || math.Abs(yFromCr) > eps
	t.diagonal = !t.hasChromaYs && math.Abs(cbFromCr) < eps && math.Abs(crFromCb) < eps && math.Abs(cbFromCb-crFromCr) < eps
	return t
}

func clampF8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// toJFIF converts m's samples in place from coding c to JFIF. The luma
// correction of a matrix change uses the chroma sample covering each
// pixel.
func toJFIF(m *image.YCbCr, c YCbCrCoding, workers int) {
	if c.JFIF() {
		return
	}
	t := newYCbCrTransform(c)
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	cw, ch, ok := chromaSize(w, h, m.SubsampleRatio)
	if !ok {
		return
	}
	if t.hasChromaYs {
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				row := m.Y[m.YOffset(b.Min.X, b.Min.Y+j):][:w]
				for i := range row {
					co := m.COffset(b.Min.X+i, b.Min.Y+j)
					v := t.yLUT[row[i]] + t.ya*(float32(m.Cb[co])-128) + t.yb*(float32(m.Cr[co])-128)
					row[i] = clampF8(float64(v))
				}
			}
		})
	} else {
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				row := m.Y[m.YOffset(b.Min.X, b.Min.Y+j):][:w]
				for i, v := range row {
					row[i] = t.yLUT8[v]
				}
			}
		})
	}
	c0 := m.COffset(b.Min.X, b.Min.Y)
	parallelRows(ch, workers, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			cb := m.Cb[c0+j*m.CStride:][:cw]
			cr := m.Cr[c0+j*m.CStride:][:cw]
			if t.diagonal {
				for i := range cb {
					cb[i], cr[i] = t.cLUT[cb[i]], t.cLUT[cr[i]]
				}
				continue
			}
			for i := range cb {
				u, v := float32(cb[i])-128, float32(cr[i])-128
				cb[i] = clampF8(float64(128 + t.cc[0]*u + t.cc[1]*v))
				cr[i] = clampF8(float64(128 + t.cc[2]*u + t.cc[3]*v))
			}
		}
	})
}
