package compress

import (
	"math"
	"math/bits"
	"sync"
)

// plane is one 8-bit image channel.
type plane struct {
	w, h, stride int
	pix          []byte
	pooled       bool // pix came from a planePool and may go back to it
}

func newPlane(w, h int) plane { return plane{w: w, h: h, stride: w, pix: make([]byte, w*h)} }

// samePixels reports whether a and b share their first pixel.
func samePixels(a, b plane) bool {
	return len(a.pix) > 0 && len(b.pix) > 0 && &a.pix[0] == &b.pix[0]
}

// planePool recycles pixel buffers by power-of-two size class, so a steady
// stream of images neither allocates nor zeroes fresh memory for its
// intermediate and output planes. Buffers are handed out dirty: every user
// writes every pixel. A nil *planePool allocates.
type planePool struct{ classes [planeClasses]sync.Pool }

const (
	minClassBits = 16 // smallest class: 64 KiB
	planeClasses = 12 // largest class: 128 MiB
)

func planeClass(n int) int { return max(bits.Len(uint(n-1))-minClassBits, 0) }

func (pp *planePool) get(w, h int) plane {
	n := w * h
	c := planeClass(n)
	if pp == nil || n == 0 || c >= planeClasses {
		return newPlane(w, h)
	}
	if v, ok := pp.classes[c].Get().(*[]byte); ok {
		return plane{w: w, h: h, stride: w, pix: (*v)[:n], pooled: true}
	}
	return plane{w: w, h: h, stride: w, pix: make([]byte, n, 1<<(c+minClassBits)), pooled: true}
}

// put returns p's buffer; p must not be used afterwards.
func (pp *planePool) put(p plane) {
	if pp == nil || !p.pooled {
		return
	}
	b := p.pix[:0]
	pp.classes[planeClass(cap(b))].Put(&b)
}

func (p plane) row(y int) []byte { return p.pix[y*p.stride : y*p.stride+p.w] }

// Fixed-point filter weights: 14 fractional bits keep a 12-tap Lanczos sum
// of 8-bit samples well inside int32.
const wBits = 14

// weights is a precomputed separable filter from inN samples to outN: each
// output i reads taps consecutive inputs from start[i].
type weights struct {
	taps  int
	start []int
	w     []int32
}

func lanczos3(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x >= 3 {
		return 0
	}
	if x < 1e-9 {
		return 1
	}
	px := math.Pi * x
	return 3 * math.Sin(px) * math.Sin(px/3) / (px * px)
}

// makeWeights builds a Lanczos-3 filter widened by the reduction factor, so
// downscaling does not alias. Edges are handled by renormalising over the
// samples that exist.
func makeWeights(inN, outN int) *weights {
	scale := float64(outN) / float64(inN)
	fscale := math.Min(scale, 1)
	support := 3 / fscale
	taps := min(int(2*support)+2, inN)
	ws := &weights{taps: taps, start: make([]int, outN), w: make([]int32, outN*taps)}
	f := make([]float64, taps)
	for i := 0; i < outN; i++ {
		center := (float64(i)+0.5)/scale - 0.5
		lo := max(int(math.Ceil(center-support)), 0)
		hi := min(int(math.Floor(center+support)), inN-1)
		if hi-lo+1 > taps {
			hi = lo + taps - 1
		}
		if hi < lo { // far outside (cannot happen for sane sizes); nearest sample
			lo = min(max(int(math.Round(center)), 0), inN-1)
			hi = lo
		}
		start, shift := lo, 0
		if lo+taps > inN {
			start = inN - taps
			shift = lo - start
		}
		clear(f)
		sum := 0.0
		for k := lo; k <= hi; k++ {
			v := lanczos3((float64(k) - center) * fscale)
			f[k-lo+shift] = v
			sum += v
		}
		if sum == 0 {
			f[shift] = 1
			sum = 1
		}
		out := ws.w[i*taps : (i+1)*taps]
		total, big := int32(0), 0
		for k, v := range f {
			out[k] = int32(math.Round(v / sum * (1 << wBits)))
			total += out[k]
			if out[k] > out[big] {
				big = k
			}
		}
		out[big] += 1<<wBits - total // exact unity gain
		ws.start[i] = start
	}
	return ws
}

func clamp8(v int32) byte {
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// parallelRows runs fn over [0, n) split into contiguous chunks, one per
// worker, and waits for all of them.
func parallelRows(n, workers int, fn func(lo, hi int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Go(func() { fn(lo, min(lo+chunk, n)) })
	}
	wg.Wait()
}

// resizePlane scales src to dw x dh with a separable Lanczos-3 filter,
// mirroring horizontally and/or vertically on the way (EXIF orientation is
// applied as flips here plus an optional transpose by the caller). It
// never upsamples beyond what it is asked; scale 1 in a direction is a copy.
func resizePlane(src plane, dw, dh int, flipX, flipY bool, workers int, pp *planePool) plane {
	// Vertical pass first: it streams whole rows (cheap per tap), so it
	// takes the larger share of the work; the horizontal pass, which sums
	// taps per output sample, then runs on the already reduced row count.
	tmp := src
	if dh != src.h || flipY {
		tmp = pp.get(src.w, dh)
		if dh == src.h {
			parallelRows(dh, workers, func(lo, hi int) {
				for y := lo; y < hi; y++ {
					copy(tmp.row(dh-1-y), src.row(y))
				}
			})
		} else {
			ws := makeWeights(src.h, dh)
			parallelRows(dh, workers, func(lo, hi int) { vpass(tmp, src, ws, lo, hi, flipY) })
		}
	}
	if dw == tmp.w && !flipX {
		return tmp // may share src's pixels: callers own src and discard it
	}
	dst := pp.get(dw, dh)
	if dw == tmp.w {
		parallelRows(dh, workers, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				in, out := tmp.row(y), dst.row(y)
				for i, v := range in {
					out[len(out)-1-i] = v
				}
			}
		})
	} else {
		ws := makeWeights(tmp.w, dw)
		parallelRows(dh, workers, func(lo, hi int) { hpass(dst, tmp, ws, lo, hi, flipX) })
	}
	if !samePixels(tmp, src) {
		pp.put(tmp)
	}
	return dst
}

func hpass(dst, src plane, ws *weights, y0, y1 int, flip bool) {
	taps := ws.taps
	for y := y0; y < y1; y++ {
		in, out := src.row(y), dst.row(y)
		last := len(out) - 1
		for i := range out {
			w := ws.w[i*taps : i*taps+taps]
			r := in[ws.start[i]:]
			r = r[:len(w)]
			acc := int32(1 << (wBits - 1))
			k := 0
			for ; k+4 <= len(w); k += 4 {
				ww, rr := w[k:k+4:k+4], r[k:k+4:k+4]
				acc += int32(rr[0])*ww[0] + int32(rr[1])*ww[1] + int32(rr[2])*ww[2] + int32(rr[3])*ww[3]
			}
			for ; k < len(w); k++ {
				acc += int32(r[k]) * w[k]
			}
			if flip {
				out[last-i] = clamp8(acc >> wBits)
			} else {
				out[i] = clamp8(acc >> wBits)
			}
		}
	}
}

func vpass(dst, src plane, ws *weights, j0, j1 int, flip bool) {
	taps := ws.taps
	acc := make([]int32, dst.w)
	for j := j0; j < j1; j++ {
		for x := range acc {
			acc[x] = 1 << (wBits - 1)
		}
		w := ws.w[j*taps : j*taps+taps]
		s := ws.start[j]
		for k, wk := range w {
			if wk == 0 {
				continue
			}
			in := src.row(s + k)
			in = in[:len(acc)]
			for x, v := range in {
				acc[x] += int32(v) * wk
			}
		}
		oj := j
		if flip {
			oj = dst.h - 1 - j
		}
		out := dst.row(oj)
		out = out[:len(acc)]
		for x, a := range acc {
			out[x] = clamp8(a >> wBits)
		}
	}
}

// transposePlane mirrors p across its main diagonal, in cache-sized tiles,
// after flipping it horizontally and/or vertically: the flips cost nothing
// here, where the pass would otherwise be one more copy of the plane.
func transposePlane(p plane, flipX, flipY bool, workers int, pp *planePool) plane {
	d := pp.get(p.h, p.w)
	const tile = 32
	// Source pixel (x, y) lands at row fx(x), column fy(y) of d.
	step, first := d.stride, 0
	if flipX {
		step, first = -d.stride, p.w-1
	}
	parallelRows((p.h+tile-1)/tile, workers, func(lo, hi int) {
		for ty := lo * tile; ty < min(hi*tile, p.h); ty += tile {
			for tx := 0; tx < p.w; tx += tile {
				for y := ty; y < min(ty+tile, p.h); y++ {
					col := y
					if flipY {
						col = p.h - 1 - y
					}
					i := (first+tx)*d.stride + col
					if flipX {
						i = (first-tx)*d.stride + col
					}
					for _, v := range p.pix[y*p.stride+tx : y*p.stride+min(tx+tile, p.w)] {
						d.pix[i] = v
						i += step
					}
				}
			}
		}
	})
	return d
}

// orient describes an EXIF orientation as flips of the stored image
// followed by an optional transpose.
type orient struct{ flipX, flipY, transpose bool }

func orientation(o int) orient {
	switch o {
	case 2:
		return orient{flipX: true}
	case 3:
		return orient{flipX: true, flipY: true}
	case 4:
		return orient{flipY: true}
	case 5:
		return orient{transpose: true}
	case 6:
		return orient{flipY: true, transpose: true}
	case 7:
		return orient{flipX: true, flipY: true, transpose: true}
	case 8:
		return orient{flipX: true, transpose: true}
	}
	return orient{}
}

// fitLongEdge returns w, h scaled so the longer side is at most long,
// keeping the aspect ratio and never upscaling.
func fitLongEdge(w, h, long int) (int, int) {
	m := max(w, h)
	if m <= long {
		return w, h
	}
	s := float64(long) / float64(m)
	return max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
}
