package jpegdec

import "encoding/binary"

// Verify reports whether data decodes completely, exactly as
// [ReadCoefficients] would (and therefore [Decode], at any scale): the
// headers, every Huffman code, every restart marker, the end of the data,
// and the baseline coefficient range a lossless transform needs. It stores
// nothing and allocates only the decoder's tables: it is the check for a
// file that is kept as coded, about as costly as the entropy decoding
// alone. Its errors are ReadCoefficients'.
func Verify(data []byte) error {
	d, pos, err := parseHeaders(data)
	if err != nil {
		return err
	}
	r := &reader{data: data, pos: pos}
	var mcus, perBlock int
	if len(d.comps) == 1 {
		// A lone component's scan is not interleaved: one block an MCU.
		mcus = ceilDiv(d.width, 8) * ceilDiv(d.height, 8)
		perBlock = 1
	} else {
		mcus = ceilDiv(d.width, 8*d.hmax) * ceilDiv(d.height, 8*d.vmax)
	}
	if err := d.verifyScan(r, mcus, perBlock); err != nil {
		return err
	}
	if r.overrun() {
		return FormatError("truncated entropy-coded data")
	}
	return nil
}

// verifyScan reads mcus MCUs as skipBlock would, block by block, with the
// reader's bit buffer in local variables and the common cases (a lookup
// that decodes the whole code, eight bytes without a 0xFF to load) written
// out in place: the compiler keeps them in registers, which the calls
// through the reader do not allow. Every other case goes through the
// reader, with the buffer synced before and reloaded after.
func (d *decoder) verifyScan(r *reader, mcus, perBlock int) error {
	st := restartState{left: d.restart}
	data := r.data
	acc, n, pos := r.acc, r.n, r.pos
	for range mcus {
		if d.restart > 0 {
			r.acc, r.n, r.pos = acc, n, pos
			if err := d.restartCheck(r, &st); err != nil {
				return err
			}
			acc, n, pos = r.acc, r.n, r.pos
		}
		for i := range d.comps {
			c := &d.comps[i]
			dc, ac := d.dc[c.td], d.ac[c.ta]
			blocks := c.h * c.v
			if perBlock != 0 {
				blocks = perBlock
			}
			pred := c.pred
			for range blocks {
				// DC: a size category and its magnitude bits.
				if n < 32 {
					if pos+8 <= len(data) {
						x := binary.BigEndian.Uint64(data[pos:])
						if nx := ^x; (nx-ones)&^nx&highs == 0 {
							k := (64 - n) / 8
							acc |= x >> (64 - 8*k) << (64 - n - 8*k)
							n += 8 * k
							pos += int(k)
						} else {
							r.acc, r.n, r.pos = acc, n, pos
							r.fill()
							acc, n, pos = r.acc, r.n, r.pos
						}
					} else {
						r.acc, r.n, r.pos = acc, n, pos
						r.fill()
						acc, n, pos = r.acc, r.n, r.pos
					}
				}
				var t uint
				if e := dc.lookup[acc>>(64-lookBits)]; e != 0 {
					l := uint(e >> 8)
					acc <<= l
					n -= l
					t = uint(e & 0xFF)
				} else {
					r.acc, r.n, r.pos = acc, n, pos
					v, err := r.decode(dc)
					if err != nil {
						return err
					}
					acc, n, pos = r.acc, r.n, r.pos
					t = uint(v)
				}
				if t > 11 {
					return FormatError("bad DC difference size")
				}
				if t > 0 {
					// n >= 32 - 16 after the code, enough for 11 bits.
					v := int32(acc >> (64 - t))
					acc <<= t
					n -= t
					if v < 1<<(t-1) {
						v += -1<<t + 1
					}
					pred += v
				}
				if pred < -2047 || pred > 2047 {
					return errRange
				}
				// AC: run/size symbols to the end of the block.
				for k := 1; k < 64; {
					if n < 16 {
						if pos+8 <= len(data) {
							x := binary.BigEndian.Uint64(data[pos:])
							if nx := ^x; (nx-ones)&^nx&highs == 0 {
								k := (64 - n) / 8
								acc |= x >> (64 - 8*k) << (64 - n - 8*k)
								n += 8 * k
								pos += int(k)
							} else {
								r.acc, r.n, r.pos = acc, n, pos
								r.fill()
								acc, n, pos = r.acc, r.n, r.pos
							}
						} else {
							r.acc, r.n, r.pos = acc, n, pos
							r.fill()
							acc, n, pos = r.acc, r.n, r.pos
						}
					}
					if f := ac.fastAC[acc>>(64-lookBits)]; f != 0 {
						l := uint(f & 0xFF)
						acc <<= l
						n -= l
						k += int(f>>8)&0xFF + 1
						if k > 64 {
							return FormatError("too many coefficients in a block")
						}
						continue
					}
					var rs int
					if e := ac.lookup[acc>>(64-lookBits)]; e != 0 {
						l := uint(e >> 8)
						acc <<= l
						n -= l
						rs = int(e & 0xFF)
					} else {
						r.acc, r.n, r.pos = acc, n, pos
						v, err := r.decode(ac)
						if err != nil {
							return err
						}
						acc, n, pos = r.acc, r.n, r.pos
						rs = v
					}
					run, s := rs>>4, uint(rs&15)
					if s == 0 {
						if run != 15 {
							break // end of block
						}
						k += 16
						if k > 64 {
							return FormatError("too many coefficients in a block")
						}
						continue
					}
					if s > 10 {
						return errRange
					}
					k += run + 1
					if k > 64 {
						return FormatError("too many coefficients in a block")
					}
					if n < s {
						r.acc, r.n, r.pos = acc, n, pos
						r.fill()
						acc, n, pos = r.acc, r.n, r.pos
					}
					acc <<= s
					n -= s
				}
			}
			c.pred = pred
		}
	}
	r.acc, r.n, r.pos = acc, n, pos
	return nil
}

// skipBlock reads one block as blockRaw does, with the same checks, and
// keeps nothing but the DC prediction.
func skipBlock(r *reader, dc, ac *huffman, pred *int32) error {
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
	if *pred < -2047 || *pred > 2047 {
		return errRange
	}
	k := 1
	for k < 64 {
		if r.n < 16 {
			r.fill()
		}
		if f := ac.fastAC[r.acc>>(64-lookBits)]; f != 0 {
			l := uint(f & 0xFF)
			r.acc <<= l
			r.n -= l
			k += int(f>>8)&0xFF + 1
			continue
		}
		rs, err := r.decode(ac)
		if err != nil {
			return err
		}
		run, s := rs>>4, uint(rs&15)
		if s == 0 {
			if run != 15 {
				return nil // end of block
			}
			k += 16
			continue
		}
		if s > 10 {
			return errRange
		}
		k += run + 1
		if r.n < s {
			r.fill()
		}
		r.acc <<= s
		r.n -= s
	}
	if k > 64 {
		return FormatError("too many coefficients in a block")
	}
	return nil
}
