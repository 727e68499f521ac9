package compress

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// ErrDecodeBudget is the cause wrapped, next to [ErrTooManyPixels], by the
// [*Error] for an input whose decoding alone would need more memory than the
// whole decode budget ([WithDecodeBudget]). The input was refused before
// any pixel was decoded; an HTTP layer maps it as ErrTooManyPixels (413).
var ErrDecodeBudget = errors.New("decoding it needs more memory than the whole decode memory budget")

// DecodeBudget reports the decode memory budget shared by every Normalize
// on n: the estimated bytes held by the images being decoded, resized and
// encoded right now, and the limit set by [WithDecodeBudget]. inUse never
// exceeds limit. It is meant for a metrics gauge; it is safe to call at any
// time from any goroutine.
func (n *Normalizer) DecodeBudget() (inUse, limit int64) {
	return n.inUse.Load(), n.cfg.decodeBudget
}

// acquire reserves cost bytes of the decode budget, waiting for them in
// arrival order (a large image is not starved by a stream of small ones)
// until ctx ends. It returns the release function, or ctx's error having
// reserved nothing.
//
// The budget bounds what the images in flight hold, but what a finished
// image freed stays in the heap until the collector runs, and the plane
// pool keeps its largest buffers: left alone, a mix of inputs that each
// fit the budget grows the heap to about twice the budget before Go's
// collector catches up. So when this reservation, the others in flight
// and what finished images freed since the last collection together exceed
// the budget, acquire first empties the plane pool and collects (see
// [Normalizer.reclaim]): the heap's decode share then stays near the
// budget. Under light load that never happens.
func (n *Normalizer) acquire(ctx context.Context, cost int64) (func(), error) {
	if err := n.mem.Acquire(ctx, cost); err != nil {
		return nil, err
	}
	if n.inUse.Add(cost)+n.rc.freed.Load() > n.cfg.decodeBudget {
		n.reclaim()
	}
	return func() {
		n.inUse.Add(-cost)
		n.rc.freed.Add(cost)
		n.mem.Release(cost)
	}, nil
}

// reclaim empties the engine's plane pool and the buffer pool and runs the collector, once for
// any number of goroutines arriving together; it counts what finished
// images freed from zero again.
func (n *Normalizer) reclaim() {
	n.rc.mu.Lock()
	defer n.rc.mu.Unlock()
	if n.inUse.Load()+n.rc.freed.Load() <= n.cfg.decodeBudget {
		return // collected while this one waited
	}
	n.rc.freed.Store(0)
	if g, ok := n.cfg.engine.(*GoEngine); ok {
		g.pool.drain()
	}
	drainPool(&n.bufs) // the input and candidate buffers too
	for len(n.warm) > 0 {
		select {
		case <-n.warm:
		default:
		}
	}
	runtime.GC()
	n.rc.collections.Add(1)
}

// drain drops every buffer pp holds, so the next collection frees them.
func (pp *planePool) drain() {
	for i := range pp.classes {
		drainPool(&pp.classes[i])
	}
}

// drainPool takes what p holds, so the next collection frees it. Bounded:
// buffers other goroutines put back meanwhile stay.
func drainPool(p *sync.Pool) {
	for range 64 {
		if p.Get() == nil {
			return
		}
	}
}

// reclaimer is the Normalizer's account of what finished images freed.
type reclaimer struct {
	mu          sync.Mutex
	freed       atomic.Int64 // bytes released since the last collection it ran
	collections atomic.Int64 // collections it ran, for tests
}

// overBudget is the refusal of an input that alone exceeds the budget.
func (n *Normalizer) overBudget(src Source, cost int64) error {
	return &Error{Kind: ErrTooManyPixels, Op: "budget", Format: src.Format, Width: src.Width, Height: src.Height,
		Limit: n.cfg.decodeBudget, Actual: cost, Err: ErrDecodeBudget}
}

// decodeCost estimates, from the headers alone, the most heap one Normalize
// of src allocates with the pure-Go engine: the input buffer, what the
// decoder allocates (its output image at the layout and bit depth it will
// actually use, and its larger work buffers), the planes the engine
// converts that image into, the resize and orientation planes, and the
// encode working set. Memory freed along the way is not subtracted: it
// stays in the heap until the next collection, so the sum bounds what the
// call adds to the heap between two collections. Pooled planes are counted
// at the power-of-two size the pool hands out. An input whose headers
// cannot be read costs what its decoder reads before it fails, which the
// fixed overhead covers.
func (n *Normalizer) decodeCost(src Source) int64 {
	workers := runtime.GOMAXPROCS(0)
	if g, ok := n.cfg.engine.(*GoEngine); ok {
		workers = g.nworkers()
	}
	c := costModel{workers: workers}
	c.add(int64(cap(src.Data)))
	c.add(fixedOverhead)
	w, h := int64(src.Width), int64(src.Height)
	var ps planeSet
	switch src.Format {
	case JPEG:
		ps = c.jpeg(src, n.cfg.longEdge)
	case PNG:
		ps = c.png(src.Data, w, h)
	case GIF:
		// The first frame as a paletted image, a second copy when it is
		// interlaced, then three planes.
		c.add(2 * w * h)
		ps = c.rgbPlanes(src.Width, src.Height)
	case WebP:
		c.add(int64(len(src.Data))) // partitions copied by the VP8 decoder
		ps = c.webp(src.Data, src.Width, src.Height)
	default:
		// A registered decoder (HEIC): assume it returns 8-bit RGBA, as
		// libheif does, after reading its input into memory once more.
		c.add(int64(len(src.Data)) + 4*w*h)
		ps = c.rgbPlanes(src.Width, src.Height)
	}
	c.resize(ps, orientation(src.Orientation), n.cfg.longEdge, parseICC(src.ICC) != nil, n.cfg.budget)
	return c.total
}

// fixedOverhead covers the decoders' tables and stream buffers (zlib, LZW,
// Huffman), the filter weights and goroutine stacks: small and independent
// of the image size.
const fixedOverhead = 1 << 20

// costModel sums allocations, saturating rather than overflowing.
type costModel struct {
	total   int64
	workers int
}

func (c *costModel) add(b int64) {
	if b > 0 {
		c.total = min(c.total+b, math.MaxInt64/2)
	}
}

// poolBytes is what planePool.get(w, h) allocates when its pool is empty.
func poolBytes(w, h int) int64 {
	n := int64(w) * int64(h)
	if n <= 0 {
		return 0
	}
	if n > 1<<(minClassBits+planeClasses-1) {
		return n
	}
	return int64(1) << (planeClass(int(n)) + minClassBits)
}

// planeSet is the decoded picture as the engine holds it before resizing:
// a Y plane and, unless grey, two chroma planes.
type planeSet struct {
	yw, yh, cw, ch int
	gray           bool
}

// rgbPlanes counts the three full-size planes toPlanes converts an RGB
// image into.
func (c *costModel) rgbPlanes(w, h int) planeSet {
	c.add(3 * poolBytes(w, h))
	return planeSet{yw: w, yh: h, cw: w, ch: h}
}

// jpeg costs a JPEG: through internal/jpegdec at the DCT scale chosen when
// it supports the file, else through image/jpeg at full scale.
func (c *costModel) jpeg(src Source, longEdge int) planeSet {
	scale := DCTScale(max(src.Width, src.Height), longEdge)
	lay, err := jpegdec.Probe(src.Data, jpegdec.Options{Scale: scale, Concurrent: c.workers > 1})
	if err == nil {
		for _, p := range lay.Planes {
			c.add(poolBytes(p.Stride, p.Rows))
		}
		c.add(int64(lay.CoefBytes))
		if len(lay.Planes) == 1 {
			return planeSet{yw: lay.Planes[0].W, yh: lay.Planes[0].H, gray: true}
		}
		if len(lay.Planes) == 3 {
			return planeSet{yw: lay.Planes[0].W, yh: lay.Planes[0].H, cw: lay.Planes[1].W, ch: lay.Planes[1].H}
		}
	}
	if err != nil && !errors.Is(err, jpegdec.ErrUnsupported) {
		return planeSet{yw: 1, yh: 1, gray: true} // refused before any pixel
	}
	h := scanJPEGFrame(src.Data)
	w, ht := int64(src.Width), int64(src.Height)
	if len(h.comps) == 0 {
		// No frame header image/jpeg would accept: count the worst
		// layout (four full-size progressive components, then RGBA).
		h.comps = [][2]int{{1, 1}, {1, 1}, {1, 1}, {1, 1}}
		h.progressive, h.rgb = true, true
	}
	h0, v0 := h.comps[0][0], h.comps[0][1]
	if len(h.comps) == 1 {
		h0, v0 = 1, 1
	}
	mxx, myy := (w+8*int64(h0)-1)/(8*int64(h0)), (ht+8*int64(v0)-1)/(8*int64(v0))
	var samples int64
	for _, hv := range h.comps {
		if len(h.comps) == 1 {
			hv = [2]int{1, 1}
		}
		samples += 64 * mxx * myy * int64(hv[0]) * int64(hv[1])
	}
	c.add(samples) // the decoded YCbCr, Gray or YCbCr-plus-black image
	if h.progressive {
		c.add(4 * samples) // every coefficient kept as an int32
	}
	switch {
	case len(h.comps) == 1:
		return planeSet{yw: src.Width, yh: src.Height, gray: true}
	case len(h.comps) == 3 && !h.rgb:
		// Zero-copy YCbCr planes; chroma no larger than luma.
		return planeSet{yw: src.Width, yh: src.Height, cw: src.Width, ch: src.Height}
	}
	c.add(4 * w * ht) // RGB-coded or CMYK: converted to an RGBA/CMYK image
	return c.rgbPlanes(src.Width, src.Height)
}

// jpegFrame is what image/jpeg's allocations depend on.
type jpegFrame struct {
	comps       [][2]int // sampling factors
	progressive bool
	rgb         bool // may be decoded as RGB (no JFIF and an Adobe transform 0 or R, G, B ids)
}

// scanJPEGFrame walks every marker of d (skipping entropy-coded data) for
// the first frame header, and for the JFIF and Adobe segments wherever
// they are, since image/jpeg looks at them after the last scan.
func scanJPEGFrame(d []byte) jpegFrame {
	var f jpegFrame
	var jfif, adobe0, rgbIDs bool
	for i := 2; i+4 <= len(d); {
		if d[i] != 0xFF {
			// Entropy-coded data: skip to the next marker that is not a
			// stuffed zero, a restart or fill.
			k := bytes.IndexByte(d[i:], 0xFF)
			if k < 0 {
				break
			}
			i += k
			continue
		}
		m := d[i+1]
		if m == 0xFF || m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			if m == 0xFF {
				i--
			}
			continue
		}
		if m == 0xD9 {
			break
		}
		l := int(binary.BigEndian.Uint16(d[i+2:]))
		if l < 2 || i+2+l > len(d) {
			break
		}
		seg := d[i+4 : i+2+l]
		switch {
		case (m == 0xC0 || m == 0xC1 || m == 0xC2) && f.comps == nil && len(seg) >= 6:
			f.progressive = m == 0xC2
			nf := int(seg[5])
			if len(seg) < 6+3*nf {
				break
			}
			for k := 0; k < nf; k++ {
				b := seg[6+3*k:]
				f.comps = append(f.comps, [2]int{max(int(b[1]>>4), 1), max(int(b[1]&15), 1)})
			}
			rgbIDs = nf == 3 && seg[6] == 'R' && seg[9] == 'G' && seg[12] == 'B'
		case m == 0xE0 && bytes.HasPrefix(seg, []byte("JFIF\x00")):
			jfif = true
		case m == 0xEE && len(seg) >= 12 && bytes.HasPrefix(seg, []byte("Adobe")):
			adobe0 = adobe0 || seg[11] == 0
		}
		i += 2 + l
	}
	f.rgb = !jfif && (adobe0 || rgbIDs)
	return f
}

// png costs a PNG as image/png decodes it: the image type follows the
// colour type, the bit depth and a tRNS chunk (Gray, Gray16, RGBA, NRGBA,
// RGBA64, NRGBA64 or Paletted), plus one image per Adam7 pass when
// interlaced; then toPlanes' planes.
func (c *costModel) png(d []byte, w, h int64) planeSet {
	const ihdrEnd = 8 + 8 + 13
	if len(d) < ihdrEnd || string(d[12:16]) != "IHDR" {
		return planeSet{yw: 1, yh: 1, gray: true}
	}
	depth, ct, interlaced := int(d[24]), d[25], d[28] == 1
	trns := false
	for i := 8; i+8 <= len(d); {
		n := int64(binary.BigEndian.Uint32(d[i:]))
		typ := string(d[i+4 : i+8])
		if typ == "IDAT" || n > int64(len(d)) {
			break
		}
		if typ == "tRNS" {
			trns = true
		}
		i += 12 + int(n)
	}
	var bpp, bitsPP int64 // bytes per pixel of the image; bits per pixel in the stream
	gray, gray16 := false, false
	switch ct {
	case 0: // grey
		bitsPP = int64(depth)
		switch {
		case depth == 16 && trns:
			bpp = 8
		case depth == 16:
			bpp, gray16 = 2, true
		case trns:
			bpp = 4
		default:
			bpp, gray = 1, true
		}
	case 2: // truecolour
		bitsPP = 3 * int64(depth)
		bpp = 4
		if depth == 16 {
			bpp = 8
		}
	case 3: // paletted
		bpp, bitsPP = 1, int64(depth)
	case 4: // grey + alpha
		bitsPP = 2 * int64(depth)
		bpp = 4
		if depth == 16 {
			bpp = 8
		}
	default: // 6, truecolour + alpha (image/png refuses the rest)
		bitsPP = 4 * int64(depth)
		bpp = 4
		if depth == 16 {
			bpp = 8
		}
	}
	rows := 2 * (1 + (bitsPP*w+7)/8) // current and previous row
	c.add(bpp * w * h)
	if interlaced {
		for _, p := range adam7 {
			pw, ph := (w-p[0]+p[2]-1)/p[2], (h-p[1]+p[3]-1)/p[3]
			if pw > 0 && ph > 0 {
				c.add(bpp*pw*ph + 2*(1+(bitsPP*pw+7)/8))
			}
		}
	} else {
		c.add(rows)
	}
	switch {
	case gray:
		return planeSet{yw: int(w), yh: int(h), gray: true}
	case gray16:
		c.add(poolBytes(int(w), int(h)))
		return planeSet{yw: int(w), yh: int(h), gray: true}
	}
	return c.rgbPlanes(int(w), int(h))
}

// adam7 is image/png's interlacing: x offset, y offset, x factor, y factor.
var adam7 = [7][4]int64{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}

// webp costs a WebP as x/image/webp decodes it: lossy as MB-padded 4:2:0
// YCbCr (plus an alpha plane, itself decoded through VP8L when compressed),
// lossless as VP8L's ARGB pixels, a second buffer for its colour-indexing
// transform, and the NRGBA image.
func (c *costModel) webp(d []byte, w, h int) planeSet {
	var lossy, alpha bool
	for i := 12; i+8 <= len(d); {
		n := int64(binary.LittleEndian.Uint32(d[i+4:]))
		switch string(d[i : i+4]) {
		case "VP8 ":
			lossy = true
		case "ALPH":
			alpha = true
		}
		if n > int64(len(d)) {
			break
		}
		i += 8 + int(n) + int(n&1)
	}
	px := int64(w) * int64(h)
	const lossless = 10 // bytes per pixel, see above
	if !lossy {
		c.add(lossless * px)
		return c.rgbPlanes(w, h)
	}
	pw, ph := int64(w+15)&^15, int64(h+15)&^15
	c.add(pw*ph + pw*ph/2)
	if !alpha {
		return planeSet{yw: w, yh: h, cw: (w + 1) / 2, ch: (h + 1) / 2}
	}
	c.add((lossless + 1) * px)
	c.add(poolBytes(w, h) + 2*poolBytes((w+1)/2, (h+1)/2)) // flattened onto white
	return planeSet{yw: w, yh: h, cw: (w + 1) / 2, ch: (h + 1) / 2}
}

// resize costs GoEngine.Decode's resize and orientation of ps, and the
// encode working set: the strips' coded bytes, the candidate and output
// buffers, and planes for a further shrink when the budget needs one.
func (c *costModel) resize(ps planeSet, o orient, longEdge int, convert bool, byteBudget int64) {
	sw, sh := fitLongEdge(ps.yw, ps.yh, longEdge)
	fx, fy := o.flipX && !o.transpose, o.flipY && !o.transpose
	c.resizePlane(ps.yw, ps.yh, sw, sh, fx, fy)
	out := poolBytes(sw, sh)
	samples := int64(sw) * int64(sh)
	cw, ch := 0, 0
	if !ps.gray {
		cw, ch = (sw+1)/2, (sh+1)/2
		if convert {
			cw, ch = sw, sh
		}
		c.resizePlane(ps.cw, ps.ch, cw, ch, fx, fy)
		c.resizePlane(ps.cw, ps.ch, cw, ch, fx, fy)
		out += 2 * poolBytes(cw, ch)
		samples += 2 * int64(cw) * int64(ch)
	}
	if o.transpose {
		c.add(out)
	}
	c.add(2 * out)                                      // planes of up to two shrinks
	c.add(2*samples + jpegStrips*jpegStripBuf)          // coded strips, grown by doubling
	c.add(4 * byteBudget)                               // candidate and output buffers, grown by doubling
	c.add(int64(c.workers) * 4 * int64(max(ps.yw, sw))) // vertical pass accumulators
}

const (
	jpegStrips   = 4
	jpegStripBuf = 256 << 10
)

// resizePlane costs resizePlane(w x h -> dw x dh): an intermediate plane
// for the vertical pass, the output plane for the horizontal one, and
// their filter weights.
func (c *costModel) resizePlane(w, h, dw, dh int, flipX, flipY bool) {
	if dh != h || flipY {
		c.add(poolBytes(w, dh) + weightBytes(h, dh))
	}
	if dw != w || flipX {
		c.add(poolBytes(dw, dh) + weightBytes(w, dw))
	}
}

// weightBytes is the size of makeWeights(inN, outN).
func weightBytes(inN, outN int) int64 {
	if inN <= 0 || outN <= 0 {
		return 0
	}
	fscale := math.Min(float64(outN)/float64(inN), 1)
	taps := min(int(2*3/fscale)+2, inN)
	return int64(outN)*int64(taps)*4 + int64(outN)*8 + int64(taps)*8
}

// checkBudget refuses an input whose cost alone exceeds the budget.
func (n *Normalizer) checkBudget(src Source) (int64, error) {
	cost := n.decodeCost(src)
	if cost > n.cfg.decodeBudget {
		return cost, n.overBudget(src, cost)
	}
	return cost, nil
}
