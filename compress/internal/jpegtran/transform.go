// Package jpegtran rotates and crops baseline JPEGs losslessly, as
// libjpeg's jpegtran -rotate N -trim -crop does: the quantised DCT
// coefficients are moved between blocks (and, within a block, transposed
// and sign-flipped), never requantised, and the file is entropy-coded again
// with optimal Huffman tables and the same quantisation tables.
//
// A rotation that flips an axis (90° flips the vertical, 180° both, 270°
// the horizontal) cannot move a partial MCU at the flipped edge, so that
// edge is trimmed to whole MCUs (at most 8·Vmax-1 or 8·Hmax-1 pixels: 15
// for 4:2:0, 7 for grey). A crop is lossless when its top-left corner lies
// on the output's MCU grid; its size may be anything, the blocks of a
// partial MCU at its right and bottom edges are kept whole as padding.
package jpegtran

import (
	"errors"
	"fmt"
	"image"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// ErrNotLossless reports an edit this package cannot make without
// decoding: a crop whose corner is off the MCU grid, a crop wholly inside
// the trimmed edge, or a picture smaller than one MCU along a flipped axis.
var ErrNotLossless = errors.New("jpegtran: edit is not lossless")

// Frame is what a plan needs from the headers.
type Frame struct {
	Width, Height int
	// Sampling holds each component's H and V factors.
	Sampling [][2]int
}

// FrameOf returns c's frame.
func FrameOf(c *jpegdec.Coefficients) Frame {
	f := Frame{Width: c.Width, Height: c.Height}
	for _, k := range c.Comps {
		f.Sampling = append(f.Sampling, [2]int{k.H, k.V})
	}
	return f
}

// mcu returns the MCU size in pixels of the unrotated picture.
func (f Frame) mcu() (int, int) {
	hmax, vmax := 1, 1
	if len(f.Sampling) > 1 {
		for _, s := range f.Sampling {
			hmax, vmax = max(hmax, s[0]), max(vmax, s[1])
		}
	}
	return 8 * hmax, 8 * vmax
}

// Plan is a lossless edit worked out from the headers: the picture it
// keeps and where that lies in the rotated picture.
type Plan struct {
	Rotate int
	// Kept is the part of the rotated picture a lossless rotation keeps
	// (all of it but the trimmed edge), in rotated-picture pixels.
	Kept image.Rectangle
	// Region is the part of the rotated picture the output shows: the crop
	// (the whole picture when none) clipped to Kept.
	Region image.Rectangle
	// grid is the output MCU size.
	gridW, gridH int
}

// Grid returns the MCU grid of the picture f rotated clockwise by rotate
// degrees: a crop whose top-left corner is at Kept.Min plus multiples of
// it is lossless.
func (f Frame) Grid(rotate int) image.Point {
	mw, mh := f.mcu()
	if rotate == 90 || rotate == 270 {
		return image.Pt(mh, mw)
	}
	return image.Pt(mw, mh)
}

// Rotated returns the size of f's picture rotated by rotate degrees.
func (f Frame) Rotated(rotate int) image.Rectangle {
	if rotate == 90 || rotate == 270 {
		return image.Rect(0, 0, f.Height, f.Width)
	}
	return image.Rect(0, 0, f.Width, f.Height)
}

// NewPlan plans rotating f clockwise by rotate (0, 90, 180 or 270) degrees
// and cropping to crop, in the rotated picture's pixels (the zero
// rectangle: no crop). The crop must lie within the rotated picture. It
// returns ErrNotLossless (wrapped) when only a decode can make the edit.
func NewPlan(f Frame, rotate int, crop image.Rectangle) (Plan, error) {
	switch rotate {
	case 0, 90, 180, 270:
	default:
		return Plan{}, fmt.Errorf("jpegtran: rotation %d is not 0, 90, 180 or 270", rotate)
	}
	full := f.Rotated(rotate)
	if crop == (image.Rectangle{}) {
		crop = full
	}
	if crop.Empty() || !crop.In(full) {
		return Plan{}, errors.New("jpegtran: crop outside the picture")
	}
	mw, mh := f.mcu()
	wt, ht := f.Width, f.Height
	flipX, flipY := rotate == 180 || rotate == 270, rotate == 90 || rotate == 180
	if flipX {
		wt = wt / mw * mw
	}
	if flipY {
		ht = ht / mh * mh
	}
	if wt == 0 || ht == 0 {
		return Plan{}, fmt.Errorf("%w: picture smaller than one MCU along a flipped axis", ErrNotLossless)
	}
	var kept image.Rectangle
	switch rotate {
	case 0:
		kept = full
	case 90:
		kept = image.Rect(f.Height-ht, 0, f.Height, f.Width)
	case 180:
		kept = image.Rect(f.Width-wt, f.Height-ht, f.Width, f.Height)
	case 270:
		kept = image.Rect(0, f.Width-wt, f.Height, f.Width)
	}
	p := Plan{Rotate: rotate, Kept: kept, Region: crop.Intersect(kept)}
	g := f.Grid(rotate)
	p.gridW, p.gridH = g.X, g.Y
	if p.Region.Empty() {
		return Plan{}, fmt.Errorf("%w: crop lies in the trimmed edge", ErrNotLossless)
	}
	if (p.Region.Min.X-kept.Min.X)%g.X != 0 || (p.Region.Min.Y-kept.Min.Y)%g.Y != 0 {
		return Plan{}, fmt.Errorf("%w: crop corner off the %dx%d MCU grid", ErrNotLossless, g.X, g.Y)
	}
	return p, nil
}

// OutputBytes is the size of the coefficient buffers [Apply] allocates
// for the plan.
func (p Plan) OutputBytes(f Frame) int64 {
	var n int64
	for _, c := range p.outComps(f) {
		n += int64(c.BlocksW) * int64(c.BlocksH) * 128
	}
	return n
}

// outComps returns the output components' layout, without blocks.
func (p Plan) outComps(f Frame) []jpegdec.CoefComponent {
	transpose := p.Rotate == 90 || p.Rotate == 270
	ow, oh := p.Region.Dx(), p.Region.Dy()
	mcuCols, mcuRows := ceilDiv(ow, p.gridW), ceilDiv(oh, p.gridH)
	out := make([]jpegdec.CoefComponent, len(f.Sampling))
	for i, s := range f.Sampling {
		h, v := s[0], s[1]
		if transpose {
			h, v = v, h
		}
		out[i].H, out[i].V = h, v
		if len(f.Sampling) == 1 {
			out[i].BlocksW, out[i].BlocksH = ceilDiv(ow, 8), ceilDiv(oh, 8)
		} else {
			out[i].BlocksW, out[i].BlocksH = mcuCols*h, mcuRows*v
		}
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Apply makes the planned edit on src, whose frame the plan was made for,
// returning new coefficients; src is not changed.
func (p Plan) Apply(src *jpegdec.Coefficients) (*jpegdec.Coefficients, error) {
	f := FrameOf(src)
	if p.gridW == 0 || src.Width != f.Width || len(src.Comps) == 0 {
		return nil, errors.New("jpegtran: plan not made for this picture")
	}
	mw, mh := f.mcu()
	transpose := p.Rotate == 90 || p.Rotate == 270
	flipX, flipY := p.Rotate == 180 || p.Rotate == 270, p.Rotate == 90 || p.Rotate == 180
	perm, sign := blockMap(transpose, flipX, flipY)
	// The region's corner in the trimmed, rotated picture, in MCUs.
	offX, offY := (p.Region.Min.X-p.Kept.Min.X)/p.gridW, (p.Region.Min.Y-p.Kept.Min.Y)/p.gridH
	out := &jpegdec.Coefficients{Width: p.Region.Dx(), Height: p.Region.Dy(), Comps: p.outComps(f)}
	for i := range out.Comps {
		sc, oc := &src.Comps[i], &out.Comps[i]
		oc.ID = sc.ID
		oc.Quant = sc.Quant
		if transpose {
			for r := range 8 {
				for c := range 8 {
					oc.Quant[r*8+c] = sc.Quant[c*8+r]
				}
			}
		}
		oc.Blocks = make([]int16, oc.BlocksW*oc.BlocksH*64)
		// Source blocks of this component in the trimmed picture, along
		// the flipped axes (whole numbers: the trim is to whole MCUs).
		hs, vs := sc.H, sc.V
		if len(src.Comps) == 1 {
			hs, vs = 1, 1
		}
		nbx := (f.Width / mw * mw) * hs / mw
		nby := (f.Height / mh * mh) * vs / mh
		bx0, by0 := offX*oc.H, offY*oc.V
		if len(src.Comps) == 1 {
			bx0, by0 = offX, offY
		}
		for by := range oc.BlocksH {
			for bx := range oc.BlocksW {
				tx, ty := bx0+bx, by0+by // block in the trimmed, rotated picture
				var sx, sy int
				switch p.Rotate {
				case 0:
					sx, sy = tx, ty
				case 90:
					sx, sy = ty, nby-1-tx
				case 180:
					sx, sy = nbx-1-tx, nby-1-ty
				case 270:
					sx, sy = nbx-1-ty, tx
				}
				if sx < 0 || sy < 0 || sx >= sc.BlocksW || sy >= sc.BlocksH {
					continue // padding past the source's coded blocks: zero
				}
				in, o := sc.Block(sx, sy), oc.Block(bx, by)
				for k := range 64 {
					o[k] = in[perm[k]] * sign[k]
				}
			}
		}
	}
	return out, nil
}

// blockMap returns, for each output coefficient (natural order), the input
// coefficient it comes from and its sign. A spatial flip of the input's x
// negates its odd horizontal frequencies, of its y its odd vertical ones;
// a transpose swaps rows and columns.
func blockMap(transpose, flipX, flipY bool) (perm [64]int, sign [64]int16) {
	for r := range 8 { // output row (vertical frequency)
		for c := range 8 { // output column (horizontal frequency)
			ir, ic := r, c // input row and column
			if transpose {
				ir, ic = c, r
			}
			s := int16(1)
			if flipX && ic%2 == 1 {
				s = -s
			}
			if flipY && ir%2 == 1 {
				s = -s
			}
			perm[r*8+c], sign[r*8+c] = ir*8+ic, s
		}
	}
	return perm, sign
}
