package jpegtran

import (
	"bytes"
	"errors"
	"io"
	"math/bits"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// ErrRange reports coefficients a baseline scan cannot code once moved: a
// DC difference between new neighbours needing more than 11 bits. The
// edit then has to go through pixels.
var ErrRange = errors.New("jpegtran: DC difference out of the baseline range")

// jfifAPP0 is the only header segment written: JFIF 1.01, no density
// units, 1:1 pixels, no thumbnail. It carries no information about the
// picture or its source.
var jfifAPP0 = []byte{0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00}

// zigzag maps a zigzag index to its natural (row-major) position.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

// Write codes c as a JPEG in one sequential scan: SOI, a JFIF APP0, the
// quantisation tables c's components use, SOF0 (SOF1 when a table needs
// 16-bit entries), optimal Huffman tables (one DC and one AC table for
// luma, one each shared by the chroma components, from two passes over the
// coefficients), SOS, the entropy-coded data without restart markers, EOI.
// Nothing else: no metadata can reach the output. The whole file is built
// in memory and written to w in one call.
func Write(w io.Writer, c *jpegdec.Coefficients) error {
	if len(c.Comps) != 1 && len(c.Comps) != 3 || c.Width <= 0 || c.Height <= 0 || c.Width > 0xFFFF || c.Height > 0xFFFF {
		return errors.New("jpegtran: cannot write this layout")
	}
	for _, k := range c.Comps {
		if len(k.Blocks) != k.BlocksW*k.BlocksH*64 {
			return errors.New("jpegtran: blocks do not match the layout")
		}
	}
	// Quantisation tables, shared where equal.
	var tables [][64]uint16
	tq := make([]int, len(c.Comps))
	extended := false
	for i, k := range c.Comps {
		tq[i] = -1
		for j, t := range tables {
			if t == k.Quant {
				tq[i] = j
			}
		}
		if tq[i] < 0 {
			tq[i] = len(tables)
			tables = append(tables, k.Quant)
		}
		for _, q := range k.Quant {
			if q == 0 {
				return errors.New("jpegtran: zero quantiser")
			}
			extended = extended || q > 255
		}
	}
	e := &scanWriter{c: c}
	// Pass one: symbol statistics; pass two: the codes.
	var freq [4][257]int64 // DC luma, AC luma, DC chroma, AC chroma
	if err := e.scan(func(t int, sym byte, _ uint32, _ uint) { freq[t][sym]++ }); err != nil {
		return err
	}
	var huff [4]huffTable
	for t := range huff {
		if t >= 2 && len(c.Comps) == 1 {
			break
		}
		huff[t] = optimalTable(&freq[t])
	}

	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8})
	out.Write(jfifAPP0)
	for j, t := range tables {
		if extended {
			seg(&out, 0xDB, 1+128, func(b *bytes.Buffer) {
				b.WriteByte(0x10 | byte(j))
				for _, z := range zigzag {
					b.WriteByte(byte(t[z] >> 8))
					b.WriteByte(byte(t[z]))
				}
			})
			continue
		}
		seg(&out, 0xDB, 1+64, func(b *bytes.Buffer) {
			b.WriteByte(byte(j))
			for _, z := range zigzag {
				b.WriteByte(byte(t[z]))
			}
		})
	}
	sof := byte(0xC0)
	if extended {
		sof = 0xC1
	}
	seg(&out, sof, 6+3*len(c.Comps), func(b *bytes.Buffer) {
		b.Write([]byte{8, byte(c.Height >> 8), byte(c.Height), byte(c.Width >> 8), byte(c.Width), byte(len(c.Comps))})
		for i, k := range c.Comps {
			b.Write([]byte{k.ID, byte(k.H<<4 | k.V), byte(tq[i])})
		}
	})
	for t := range huff {
		h := &huff[t]
		if h.nsym == 0 {
			continue
		}
		seg(&out, 0xC4, 17+h.nsym, func(b *bytes.Buffer) {
			b.WriteByte(byte(t&1)<<4 | byte(t>>1)) // class, id
			b.Write(h.bits[1:17])
			b.Write(h.vals[:h.nsym])
		})
	}
	seg(&out, 0xDA, 4+2*len(c.Comps), func(b *bytes.Buffer) {
		b.WriteByte(byte(len(c.Comps)))
		for i, k := range c.Comps {
			id := byte(min(i, 1))
			b.Write([]byte{k.ID, id<<4 | id})
		}
		b.Write([]byte{0, 63, 0})
	})
	e.out = &out
	if err := e.scan(func(t int, sym byte, bits uint32, n uint) {
		h := &huff[t]
		e.emit(h.code[sym]<<n|bits&(1<<n-1), uint(h.size[sym])+n)
	}); err != nil {
		return err
	}
	e.flush()
	out.Write([]byte{0xFF, 0xD9})
	_, err := w.Write(out.Bytes())
	return err
}

// seg writes a marker segment whose payload is n bytes.
func seg(out *bytes.Buffer, marker byte, n int, body func(*bytes.Buffer)) {
	out.Write([]byte{0xFF, marker, byte((n + 2) >> 8), byte(n + 2)})
	body(out)
}

// scanWriter walks the blocks in scan order, coding each as symbols.
type scanWriter struct {
	c    *jpegdec.Coefficients
	out  *bytes.Buffer
	acc  uint64
	nacc uint
}

// scan calls sym for every Huffman symbol of the scan in order, with the
// magnitude bits that follow it: t is the table (0 DC luma, 1 AC luma, 2
// DC chroma, 3 AC chroma).
func (e *scanWriter) scan(sym func(t int, s byte, bits uint32, n uint)) error {
	c := e.c
	pred := make([]int32, len(c.Comps))
	code := func(comp int, blk []int16) error {
		t := 2 * min(comp, 1)
		d := int32(blk[0]) - pred[comp]
		pred[comp] = int32(blk[0])
		n, bits := magnitude(d)
		if n > 11 {
			return ErrRange
		}
		sym(t, byte(n), bits, n)
		run := 0
		for k := 1; k < 64; k++ {
			v := int32(blk[zigzag[k]])
			if v == 0 {
				run++
				continue
			}
			for run > 15 {
				sym(t+1, 0xF0, 0, 0)
				run -= 16
			}
			n, bits := magnitude(v)
			if n > 10 {
				return ErrRange
			}
			sym(t+1, byte(run<<4)|byte(n), bits, n)
			run = 0
		}
		if run > 0 {
			sym(t+1, 0, 0, 0)
		}
		return nil
	}
	if len(c.Comps) == 1 {
		k := &c.Comps[0]
		for by := range k.BlocksH {
			for bx := range k.BlocksW {
				if err := code(0, k.Block(bx, by)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	k0 := &c.Comps[0]
	mcuCols, mcuRows := k0.BlocksW/k0.H, k0.BlocksH/k0.V
	for my := range mcuRows {
		for mx := range mcuCols {
			for i := range c.Comps {
				k := &c.Comps[i]
				for v := range k.V {
					for h := range k.H {
						if err := code(i, k.Block(mx*k.H+h, my*k.V+v)); err != nil {
							return err
						}
					}
				}
			}
		}
	}
	return nil
}

// magnitude returns v's size category and its magnitude bits, as JPEG
// codes them (negative values as v-1 in n bits).
func magnitude(v int32) (uint, uint32) {
	a, b := v, v
	if a < 0 {
		a, b = -a, v-1
	}
	n := uint(bits.Len32(uint32(a)))
	return n, uint32(b) & (1<<n - 1)
}

// emit appends the low n (at most 32) bits of bits, stuffing a zero byte
// after every 0xFF.
func (e *scanWriter) emit(bits uint32, n uint) {
	e.acc = e.acc<<n | uint64(bits)&(1<<n-1)
	e.nacc += n
	for e.nacc >= 8 {
		e.nacc -= 8
		b := byte(e.acc >> e.nacc)
		e.out.WriteByte(b)
		if b == 0xFF {
			e.out.WriteByte(0)
		}
	}
}

// flush pads the last byte with ones.
func (e *scanWriter) flush() {
	if e.nacc > 0 {
		e.emit(1<<(8-e.nacc)-1, 8-e.nacc)
	}
}

// huffTable is one Huffman table: its DHT form and its codes.
type huffTable struct {
	bits [17]byte // bits[l]: how many codes of length l
	vals [256]byte
	nsym int
	code [256]uint32
	size [256]uint8
}

// optimalTable builds the code-length-limited optimal table for freq
// (entry 256 is ignored on entry) as libjpeg's jpeg_gen_optimal_table
// does (ITU T.81 K.2): a reserved pseudo-symbol keeps any code from being
// all ones, lengths over 16 are folded back.
func optimalTable(in *[257]int64) huffTable {
	var freq [257]int64
	copy(freq[:256], in[:256])
	any := false
	for _, f := range freq[:256] {
		any = any || f > 0
	}
	if !any {
		freq[0] = 1 // a table must code something
	}
	freq[256] = 1
	var codesize [257]int
	var others [257]int
	for i := range others {
		others[i] = -1
	}
	for {
		c1, c2 := -1, -1
		var v1, v2 int64 = 1 << 62, 1 << 62
		for i := range freq { // ties go to the larger index, as libjpeg's
			if freq[i] > 0 && freq[i] <= v1 {
				v1, c1 = freq[i], i
			}
		}
		for i := range freq {
			if freq[i] > 0 && freq[i] <= v2 && i != c1 {
				v2, c2 = freq[i], i
			}
		}
		if c2 < 0 {
			break
		}
		freq[c1] += freq[c2]
		freq[c2] = 0
		codesize[c1]++
		for others[c1] >= 0 {
			c1 = others[c1]
			codesize[c1]++
		}
		others[c1] = c2
		codesize[c2]++
		for others[c2] >= 0 {
			c2 = others[c2]
			codesize[c2]++
		}
	}
	var bits [33]int
	for _, s := range codesize {
		if s > 0 {
			bits[s]++
		}
	}
	for i := 32; i > 16; i-- {
		for bits[i] > 0 {
			j := i - 2
			for bits[j] == 0 {
				j--
			}
			bits[i] -= 2
			bits[i-1]++
			bits[j+1] += 2
			bits[j]--
		}
	}
	i := 16
	for bits[i] == 0 {
		i--
	}
	bits[i]-- // the pseudo-symbol's code, the longest, goes
	var h huffTable
	for l := 1; l <= 32; l++ {
		for s := range 256 {
			if codesize[s] == l {
				h.vals[h.nsym] = byte(s)
				h.nsym++
			}
		}
	}
	for l := 1; l <= 16; l++ {
		h.bits[l] = byte(bits[l])
	}
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for range int(h.bits[l]) {
			s := h.vals[k]
			h.code[s], h.size[s] = code, uint8(l)
			code++
			k++
		}
		code <<= 1
	}
	return h
}
