package jpegdec

// lookBits is how many bits one table lookup decodes; longer codes take
// the canonical slow path.
const lookBits = 10

type huffman struct {
	// lookup holds len<<8 | symbol for codes of at most lookBits bits,
	// indexed by the next lookBits bits; 0 means "longer code".
	lookup [1 << lookBits]uint16
	// fastAC, for AC tables, holds value<<16 | run<<8 | bits for a
	// run/size symbol whose code and magnitude bits together fit in
	// lookBits: one lookup decodes a whole coefficient. 0 means no.
	fastAC [1 << lookBits]int32
	// skipAC, for AC tables, is fastAC for Verify, which keeps no values:
	// advance<<5 | bits, where advance is how far the symbol moves the
	// coefficient index (run+1; 16 for ZRL; skipEnd for an end of block)
	// and bits its code and magnitude bits. It also covers the ends of
	// blocks, which fastAC leaves to the slow path. 0 means no.
	skipAC [1 << lookBits]uint16
	// pairAC is skipAC for two symbols: for the next pairBits bits, the
	// bits and advance of the first symbol and, when it is no end of
	// block and the second lies within them too, of both. Filled by
	// buildPairs, for Verify only.
	pairAC  [1 << pairBits]uint16
	maxcode [17]int32 // largest code of each length, -1 when none
	valptr  [17]int32 // index in vals of the first code of each length, less that code
	vals    [256]uint8
}

// skipEnd is skipAC's advance for an end of block: past any index a
// block can reach (at most 63+16), so the index says the block ended.
const skipEnd = 128

// pairBits is how many bits one pairAC lookup decodes.
const pairBits = 12

// buildPairs fills pairAC from skipAC.
func (h *huffman) buildPairs() {
	const mask = 1<<pairBits - 1
	for v := range 1 << pairBits {
		e1 := h.skipAC[v>>(pairBits-lookBits)]
		if e1 == 0 {
			continue // a long code, or its magnitude past lookBits: slow path
		}
		entry := e1
		if l1 := uint(e1 & 31); e1>>5 < skipEnd && l1 < pairBits {
			v2 := v << l1 & mask // the bits after the first symbol, then zeros
			if e2 := h.skipAC[v2>>(pairBits-lookBits)]; e2 != 0 && uint(e2&31) <= pairBits-l1 {
				entry = (e1>>5+e2>>5)<<5 | uint16(l1+uint(e2&31))
			}
		}
		h.pairAC[v] = entry
	}
}

func newHuffman(counts [16]int, symbols []byte, ac bool) (*huffman, error) {
	h := &huffman{}
	copy(h.vals[:], symbols)
	code, k := int32(0), 0
	for l := 1; l <= 16; l++ {
		n := counts[l-1]
		h.valptr[l] = int32(k) - code
		h.maxcode[l] = -1
		if n > 0 {
			h.maxcode[l] = code + int32(n) - 1
		}
		for range n {
			if code >= 1<<l {
				return nil, FormatError("bad Huffman table")
			}
			if l <= lookBits {
				shift := lookBits - l
				for i := code << shift; i < (code+1)<<shift; i++ {
					h.lookup[i] = uint16(l)<<8 | uint16(symbols[k])
				}
			}
			code++
			k++
		}
		code <<= 1
	}
	if ac {
		for i := range h.lookup {
			e := h.lookup[i]
			if e == 0 {
				continue
			}
			l, rs := int(e>>8), int(e&0xFF)
			run, s := rs>>4, rs&15
			switch {
			case s == 0 && run == 15:
				h.skipAC[i] = 16<<5 | uint16(l)
			case s == 0:
				h.skipAC[i] = skipEnd<<5 | uint16(l)
			case s <= 10 && l+s <= lookBits:
				h.skipAC[i] = uint16(run+1)<<5 | uint16(l+s)
			}
			if s == 0 || l+s > lookBits {
				continue
			}
			v := int32(i>>(lookBits-l-s)) & (1<<s - 1)
			if v < 1<<(s-1) {
				v += -1<<s + 1
			}
			h.fastAC[i] = v<<16 | int32(run)<<8 | int32(l+s)
		}
	}
	return h, nil
}

// reader reads entropy-coded bits, undoing 0xFF00 stuffing. At a marker or
// the end of the data it supplies zero bits, counting them in fake so that
// a scan which needed them can be refused as truncated.
type reader struct {
	data []byte
	pos  int
	acc  uint64 // next bits, most significant first
	n    uint   // valid bits in acc
	fake uint   // zero bits supplied past the real data
	// loaded counts every bit put into acc, real or fake: loaded-n is
	// the position of the next bit in the unstuffed data (Verify's
	// coordinate for a block's start).
	loaded int
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// fill tops acc up to at least 57 bits.
func (r *reader) fill() {
	if r.pos+8 <= len(r.data) {
		x := uint64(r.data[r.pos])<<56 | uint64(r.data[r.pos+1])<<48 | uint64(r.data[r.pos+2])<<40 | uint64(r.data[r.pos+3])<<32 |
			uint64(r.data[r.pos+4])<<24 | uint64(r.data[r.pos+5])<<16 | uint64(r.data[r.pos+6])<<8 | uint64(r.data[r.pos+7])
		if nx := ^x; (nx-ones)&^nx&highs == 0 { // no 0xFF byte among the eight
			k := (64 - r.n) / 8
			r.acc |= x >> (64 - 8*k) << (64 - r.n - 8*k)
			r.n += 8 * k
			r.pos += int(k)
			r.loaded += int(8 * k)
			return
		}
	}
	for r.n <= 56 {
		var c uint64
		switch {
		case r.pos >= len(r.data):
			r.fake += 8
		case r.data[r.pos] != 0xFF:
			c = uint64(r.data[r.pos])
			r.pos++
		case r.pos+1 < len(r.data) && r.data[r.pos+1] == 0:
			c = 0xFF
			r.pos += 2
		default: // a marker: stay before it
			r.fake += 8
		}
		r.acc |= c << (56 - r.n)
		r.n += 8
		r.loaded += 8
	}
}

// overrun reports whether any supplied zero bit has been consumed.
func (r *reader) overrun() bool { return r.fake > r.n }

// reset drops the buffered bits, for a restart marker; pos must already
// point past it.
func (r *reader) reset() { r.acc, r.n, r.fake = 0, 0, 0 }

func (r *reader) decode(h *huffman) (int, error) {
	if r.n < 16 {
		r.fill()
	}
	if e := h.lookup[r.acc>>(64-lookBits)]; e != 0 {
		l := uint(e >> 8)
		r.acc <<= l
		r.n -= l
		return int(e & 0xFF), nil
	}
	code := int32(r.acc >> 48)
	for l := lookBits + 1; l <= 16; l++ {
		c := code >> (16 - l)
		if c <= h.maxcode[l] {
			r.acc <<= uint(l)
			r.n -= uint(l)
			return int(h.vals[(h.valptr[l]+c)&0xFF]), nil
		}
	}
	return 0, FormatError("bad Huffman code")
}

// receive reads s (1..16) magnitude bits and sign-extends them as JPEG does.
func (r *reader) receive(s uint) int32 {
	if r.n < s {
		r.fill()
	}
	v := int32(r.acc >> (64 - s))
	r.acc <<= s
	r.n -= s
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// nextMarker skips to just past the next marker at or after pos, returning
// it, or 0 when the data ends first.
func nextMarker(data []byte, pos int) (byte, int) {
	for pos+1 < len(data) {
		if data[pos] == 0xFF && data[pos+1] != 0 && data[pos+1] != 0xFF {
			return data[pos+1], pos + 2
		}
		pos++
	}
	return 0, len(data)
}
