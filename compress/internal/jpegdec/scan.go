package jpegdec

import (
	"fmt"
	gosync "sync"
)

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// band is how many MCU rows of coefficients are decoded before their
// inverse DCTs run.
const band = 4

// layout works out the planes and coefficient bands a scan at scale
// allocates, from the frame header alone.
func (d *decoder) layout(scale int, concurrent bool) Layout {
	bs := 8 / scale // output pixels per block side
	lay := Layout{Width: d.width, Height: d.height}
	if len(d.comps) > 1 {
		lay.mcuCols, lay.mcuRows = ceilDiv(d.width, 8*d.hmax), ceilDiv(d.height, 8*d.vmax)
		for _, c := range d.comps {
			lay.Planes = append(lay.Planes, PlaneLayout{
				W:      ceilDiv(ceilDiv(d.width*c.h, d.hmax), scale),
				H:      ceilDiv(ceilDiv(d.height*c.v, d.vmax), scale),
				Stride: lay.mcuCols * c.h * bs,
				Rows:   lay.mcuRows * c.v * bs,
			})
		}
	} else {
		lay.mcuCols, lay.mcuRows = ceilDiv(d.width, 8), ceilDiv(d.height, 8)
		lay.Planes = []PlaneLayout{{W: ceilDiv(d.width, scale), H: ceilDiv(d.height, scale), Stride: lay.mcuCols * bs, Rows: lay.mcuRows * bs}}
	}
	perMCU := 0
	for _, c := range d.comps {
		perMCU += c.h * c.v
	}
	lay.rowLen = lay.mcuCols * perMCU * bs * bs
	// The entropy decoding is serial; the inverse DCTs of a band of MCU
	// rows run on a second goroutine while the next band is decoded.
	lay.bands = 1
	if concurrent && lay.mcuRows > 2*band {
		lay.bands = 3
	}
	lay.CoefBytes = 4 * lay.bands * band * lay.rowLen
	return lay
}

// scan decodes the entropy-coded segment starting at pos into the
// components' planes.
func (d *decoder) scan(pos, scale int, alloc Alloc, concurrent bool) error {
	bs := 8 / scale // output pixels per block side
	lay := d.layout(scale, concurrent)
	mcuCols, mcuRows := lay.mcuCols, lay.mcuRows
	for i, pl := range lay.Planes {
		d.comps[i].plane = Plane{W: pl.W, H: pl.H, Stride: pl.Stride, Pix: alloc(pl.Stride, pl.Rows)}
	}
	idct := idct1
	switch scale {
	case 1:
		idct = idct8
	case 2:
		idct = idct4
	case 4:
		idct = idct2
	}
	nb := bs * bs // coefficients kept per block
	rowLen, bufs := lay.rowLen, lay.bands
	free := make(chan []int32, bufs)
	for range bufs {
		free <- getBand(band * rowLen)
	}
	type job struct {
		my0, rows int
		coef      []int32
	}
	var work chan job
	var done chan struct{}
	var workerPanic any // set before done closes
	if bufs > 1 {
		work, done = make(chan job, bufs), make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				// Not expected (every write is in bounds by construction),
				// but a panic here could not be recovered by the caller.
				if workerPanic = recover(); workerPanic != nil {
					for j := range work { // keep the decoder's buffers coming
						free <- j.coef
					}
				}
			}()
			for j := range work {
				d.inverse(j.my0, j.rows, mcuCols, bs, j.coef, idct)
				free <- j.coef
			}
		}()
	}
	keep := keepTable(bs)
	r := &reader{data: d.data, pos: pos}
	st := restartState{left: d.restart}
	var err error
	for my0 := 0; my0 < mcuRows && err == nil; my0 += band {
		rows := min(band, mcuRows-my0)
		coef := <-free
		err = d.entropy(r, &st, rows, mcuCols, coef[:rows*rowLen], nb, &keep)
		if err != nil {
			break
		}
		if work != nil {
			work <- job{my0, rows, coef}
		} else {
			d.inverse(my0, rows, mcuCols, bs, coef, idct)
			free <- coef
		}
	}
	if work != nil {
		close(work)
		<-done
		if workerPanic != nil {
			return fmt.Errorf("jpegdec: inverse DCT failed: %v", workerPanic)
		}
	}
	if err != nil {
		return err
	}
	// Every band was inverted, so zeroed: they may serve another decode.
	for range bufs {
		putBand(<-free)
	}
	if r.overrun() {
		return FormatError("truncated entropy-coded data")
	}
	return nil
}

// bands recycles zeroed coefficient bands between decodes.
var bands gosync.Pool

func getBand(n int) []int32 {
	if b, ok := bands.Get().(*[]int32); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]int32, n)
}

func putBand(b []int32) {
	bands.Put(&b)
}

type restartState struct{ left, next int }

// entropy decodes rows MCU rows into coef, nb coefficients per block in
// decoding order. coef must be zero: inverse leaves it so.
func (d *decoder) entropy(r *reader, st *restartState, rows, mcuCols int, coef []int32, nb int, keep *[80]int8) error {
	off := 0
	for range rows {
		for range mcuCols {
			if err := d.restartCheck(r, st); err != nil {
				return err
			}
			for i := range d.comps {
				c := &d.comps[i]
				dc, ac, q := d.dc[c.td], d.ac[c.ta], &d.quant[c.tq]
				for range c.h * c.v {
					if err := block(r, dc, ac, q, &c.pred, keep, coef[off:off+nb:off+nb]); err != nil {
						return err
					}
					off += nb
				}
			}
		}
	}
	return nil
}

// inverse turns the coefficients of rows MCU rows from my0, as entropy
// stored them, into pixels, zeroing them for the next band (here, on the
// second core, while they are in cache).
func (d *decoder) inverse(my0, rows, mcuCols, bs int, coef []int32, idct func([]int32, []byte, int)) {
	nb := bs * bs
	off := 0
	for my := my0; my < my0+rows; my++ {
		for mx := range mcuCols {
			for i := range d.comps {
				c := &d.comps[i]
				p := &c.plane
				for v := range c.v {
					row := ((my*c.v + v) * bs) * p.Stride
					for h := range c.h {
						b := coef[off : off+nb : off+nb]
						idct(b, p.Pix[row+(mx*c.h+h)*bs:], p.Stride)
						clear(b)
						off += nb
					}
				}
			}
		}
	}
}

// restartCheck handles the restart marker due before the next MCU, for
// the pixel decoder and the coefficient reader alike. Small enough to be
// inlined into their per-MCU loops.
func (d *decoder) restartCheck(r *reader, st *restartState) error {
	if d.restart > 0 {
		if st.left == 0 {
			return d.restartAt(r, st)
		}
		st.left--
	}
	return nil
}

// restartAt checks that the interval just decoded ended cleanly at the
// expected RSTn marker, then resets the reader and the DC predictions and
// starts the next interval with its first MCU.
func (d *decoder) restartAt(r *reader, st *restartState) error {
	if r.overrun() {
		return FormatError("truncated restart interval")
	}
	m, next := nextMarker(r.data, r.pos)
	if m != 0xD0+byte(st.next) {
		return FormatError("missing restart marker")
	}
	r.pos = next
	r.reset()
	for i := range d.comps {
		d.comps[i].pred = 0
	}
	st.next, st.left = (st.next+1)&7, d.restart-1
	return nil
}

// block decodes one 8x8 block, keeping the dequantised coefficients that
// the reduced IDCT uses (keep maps zigzag index to their position in coef,
// which must be zero on entry).
func block(r *reader, dc, ac *huffman, q *[64]int32, pred *int32, keep *[80]int8, coef []int32) error {
	t, err := r.decode(dc)
	if err != nil {
		return err
	}
	if t > 11 {
		return FormatError("bad DC difference size")
	}
	if t > 0 {
		*pred += r.receive(uint(t))
	}
	coef[0] = *pred * q[0]
	k := 1
	for k < 64 {
		if r.n < 16 {
			r.fill()
		}
		if f := ac.fastAC[r.acc>>(64-lookBits)]; f != 0 {
			l := uint(f & 0xFF)
			r.acc <<= l
			r.n -= l
			k += int(f>>8) & 0xFF
			if z := keep[k]; z >= 0 {
				coef[z] = (f >> 16) * q[k]
			}
			k++
			continue
		}
		rs, err := r.decode(ac)
		if err != nil {
			return err
		}
		run, s := rs>>4, rs&15
		if s == 0 {
			if run != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += run
		v := r.receive(uint(s))
		if z := keep[k]; z >= 0 {
			coef[z] = v * q[k]
		}
		k++
	}
	if k > 64 {
		return FormatError("too many coefficients in a block")
	}
	return nil
}
