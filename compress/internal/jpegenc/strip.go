package jpegenc

// stripEncoder codes MCU rows of one strip into buf: DC predictions start
// at zero and the bits end padded with ones, as after a restart marker.
type stripEncoder struct {
	img     Image
	full    bool // chroma at full resolution, averaged 2x2 here
	t       *tables
	mcuCols int
	buf     []byte
	acc     uint64 // pending bits, right-aligned
	nacc    uint   // how many
	pred    [3]int32
	blk     [64]float32
	q       [64]int32
}

func (e *stripEncoder) encode(row0, row1 int) {
	for my := row0; my < row1; my++ {
		for mx := range e.mcuCols {
			if e.img.Gray {
				e.block(&e.img.Y, mx*8, my*8, 0, 0)
				continue
			}
			for i := range 4 {
				e.block(&e.img.Y, mx*16+(i&1)*8, my*16+(i>>1)*8, 0, 0)
			}
			if e.full {
				e.block2x2(&e.img.Cb, mx*16, my*16, 1)
				e.block2x2(&e.img.Cr, mx*16, my*16, 2)
			} else {
				e.block(&e.img.Cb, mx*8, my*8, 1, 1)
				e.block(&e.img.Cr, mx*8, my*8, 1, 2)
			}
		}
	}
	e.flush()
}

// block codes the 8x8 block of p at (x0, y0), repeating the last column
// and row past the plane's edge. id is 0 for luma, 1 for chroma; c the
// component (for its DC prediction).
func (e *stripEncoder) block(p *Plane, x0, y0, id, c int) {
	b := &e.blk
	if x0+8 <= p.W && y0+8 <= p.H {
		for y := range 8 {
			r := p.Pix[(y0+y)*p.Stride+x0:]
			r = r[:8]
			o := b[y*8 : y*8+8 : y*8+8]
			for x := range 8 {
				o[x] = float32(r[x]) - 128
			}
		}
	} else {
		for y := range 8 {
			r := p.Pix[min(y0+y, p.H-1)*p.Stride:]
			for x := range 8 {
				b[y*8+x] = float32(r[min(x0+x, p.W-1)]) - 128
			}
		}
	}
	e.code(id, c)
}

// block2x2 codes the 8x8 chroma block whose 16x16 full-resolution area
// starts at (x0, y0), averaging each 2x2 group as image/jpeg does.
func (e *stripEncoder) block2x2(p *Plane, x0, y0, c int) {
	b := &e.blk
	for y := range 8 {
		r0 := p.Pix[min(y0+2*y, p.H-1)*p.Stride:]
		r1 := p.Pix[min(y0+2*y+1, p.H-1)*p.Stride:]
		for x := range 8 {
			i0, i1 := min(x0+2*x, p.W-1), min(x0+2*x+1, p.W-1)
			s := int(r0[i0]) + int(r0[i1]) + int(r1[i0]) + int(r1[i1])
			b[y*8+x] = float32((s+2)>>2) - 128
		}
	}
	e.code(1, c)
}

// code transforms, quantises and entropy-codes e.blk.
func (e *stripEncoder) code(id, c int) {
	fdct(&e.blk)
	div := &e.t.div[id]
	for i, v := range e.blk {
		// Round to nearest: the offset keeps the conversion's truncation
		// on the positive side. Baseline allows AC magnitudes up to 1023.
		e.q[i] = min(max(int32(v*div[i]+16384.5)-16384, -1023), 1023)
	}
	dc, ac := &e.t.huff[2*id], &e.t.huff[2*id+1]
	d := e.q[0] - e.pred[c]
	e.pred[c] = e.q[0]
	e.emitValue(dc, 0, d)
	run := int32(0)
	for k := 1; k < 64; k++ {
		v := e.q[zigzag[k]]
		if v == 0 {
			run++
			continue
		}
		for run > 15 {
			e.emit(ac.code[0xF0], uint(ac.size[0xF0]))
			run -= 16
		}
		e.emitValue(ac, run, v)
		run = 0
	}
	if run > 0 {
		e.emit(ac.code[0], uint(ac.size[0]))
	}
}

// emitValue codes the symbol run<<4|size(v) and v's magnitude bits.
func (e *stripEncoder) emitValue(h *huffEnc, run, v int32) {
	a, bits := v, v
	if a < 0 {
		a, bits = -a, v-1
	}
	n := uint(0)
	for a != 0 {
		n++
		a >>= 1
	}
	sym := uint8(run<<4) | uint8(n)
	e.emit(h.code[sym]<<n|uint32(bits)&(1<<n-1), uint(h.size[sym])+n)
}

// emit appends the low n (at most 32) bits of bits, stuffing a zero byte
// after every 0xFF.
func (e *stripEncoder) emit(bits uint32, n uint) {
	e.acc = e.acc<<n | uint64(bits)&(1<<n-1)
	e.nacc += n
	for e.nacc >= 8 {
		e.nacc -= 8
		b := byte(e.acc >> e.nacc)
		e.buf = append(e.buf, b)
		if b == 0xFF {
			e.buf = append(e.buf, 0)
		}
	}
}

// flush pads the last byte with ones.
func (e *stripEncoder) flush() {
	if e.nacc > 0 {
		e.emit(1<<(8-e.nacc)-1, 8-e.nacc)
	}
}

// fdct is the floating-point Arai-Agui-Nakajima forward DCT, in place; its
// outputs are scaled by aan[u]·aan[v]·8, which the quantisation divisors
// undo.
func fdct(b *[64]float32) {
	for i := 0; i < 64; i += 8 {
		d := b[i : i+8 : i+8]
		fdct1(&d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7])
	}
	for i := range 8 {
		fdct1(&b[i], &b[8+i], &b[16+i], &b[24+i], &b[32+i], &b[40+i], &b[48+i], &b[56+i])
	}
}

func fdct1(d0, d1, d2, d3, d4, d5, d6, d7 *float32) {
	tmp0, tmp7 := *d0+*d7, *d0-*d7
	tmp1, tmp6 := *d1+*d6, *d1-*d6
	tmp2, tmp5 := *d2+*d5, *d2-*d5
	tmp3, tmp4 := *d3+*d4, *d3-*d4

	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
	*d0, *d4 = tmp10+tmp11, tmp10-tmp11
	z1 := (tmp12 + tmp13) * 0.707106781
	*d2, *d6 = tmp13+z1, tmp13-z1

	tmp10 = tmp4 + tmp5
	tmp11 = tmp5 + tmp6
	tmp12 = tmp6 + tmp7
	z5 := (tmp10 - tmp12) * 0.382683433
	z2 := 0.541196100*tmp10 + z5
	z4 := 1.306562965*tmp12 + z5
	z3 := tmp11 * 0.707106781
	z11, z13 := tmp7+z3, tmp7-z3
	*d5, *d3 = z13+z2, z13-z2
	*d1, *d7 = z11+z4, z11-z4
}
