package jpegdec

import "fmt"

// Coefficients are a baseline JPEG's quantised DCT coefficients, as coded:
// what a lossless transform (rotation, crop) moves without requantising.
type Coefficients struct {
	Width, Height int // image size, from the frame header
	Comps         []CoefComponent
}

// CoefComponent is one component's coefficients.
type CoefComponent struct {
	ID   byte
	H, V int // sampling factors (1, 1 for a lone component)
	// Quant is the component's quantisation table in natural (row-major)
	// order.
	Quant [64]uint16
	// BlocksW x BlocksH blocks as the scan codes them: the MCU-padded grid
	// for an interleaved scan, ceil(width/8) x ceil(height/8) for a single
	// component.
	BlocksW, BlocksH int
	// Blocks holds 64 quantised coefficients a block, natural order, block
	// rows top to bottom. Nil from [ProbeCoefficients].
	Blocks []int16
}

// Block returns block (bx, by)'s 64 coefficients.
func (c *CoefComponent) Block(bx, by int) []int16 {
	o := (by*c.BlocksW + bx) * 64
	return c.Blocks[o : o+64 : o+64]
}

// Bytes is the size of the coefficient buffers of c's components.
func (c *Coefficients) Bytes() int64 {
	var n int64
	for _, k := range c.Comps {
		n += int64(k.BlocksW) * int64(k.BlocksH) * 128
	}
	return n
}

// errRange reports coefficients a baseline 8-bit transform cannot carry
// (a DC value beyond ±2047, an AC magnitude category above 10): the data
// decodes, but only as pixels.
var errRange = fmt.Errorf("%w: coefficient out of the baseline range", ErrUnsupported)

// ProbeCoefficients reads data's headers and returns what
// [ReadCoefficients] would return, without the blocks (Blocks nil): the
// caller can budget [Coefficients.Bytes] before reading. It refuses
// exactly what [Decode] refuses before the entropy-coded data.
func ProbeCoefficients(data []byte) (*Coefficients, error) {
	d, _, err := parseHeaders(data)
	if err != nil {
		return nil, err
	}
	return d.coefHeader(), nil
}

// ReadCoefficients decodes data's entropy-coded segment to quantised
// coefficients, checking every Huffman code, restart marker and the end of
// the data as [Decode] does. It returns ErrUnsupported (wrapped) for a file
// Decode refuses as such and for coefficients outside the baseline range,
// a FormatError for corrupt or truncated data.
func ReadCoefficients(data []byte) (*Coefficients, error) {
	d, pos, err := parseHeaders(data)
	if err != nil {
		return nil, err
	}
	c := d.coefHeader()
	for i := range c.Comps {
		k := &c.Comps[i]
		k.Blocks = make([]int16, k.BlocksW*k.BlocksH*64)
	}
	r := &reader{data: data, pos: pos}
	st := restartState{left: d.restart}
	if len(d.comps) == 1 {
		k := &c.Comps[0]
		comp := &d.comps[0]
		for by := range k.BlocksH {
			for bx := range k.BlocksW {
				if err := d.restartCheck(r, &st); err != nil {
					return nil, err
				}
				if err := blockRaw(r, d.dc[comp.td], d.ac[comp.ta], &comp.pred, k.Block(bx, by)); err != nil {
					return nil, err
				}
			}
		}
	} else {
		mcuCols, mcuRows := ceilDiv(d.width, 8*d.hmax), ceilDiv(d.height, 8*d.vmax)
		for my := range mcuRows {
			for mx := range mcuCols {
				if err := d.restartCheck(r, &st); err != nil {
					return nil, err
				}
				for i := range d.comps {
					comp, k := &d.comps[i], &c.Comps[i]
					for v := range comp.v {
						for h := range comp.h {
							if err := blockRaw(r, d.dc[comp.td], d.ac[comp.ta], &comp.pred, k.Block(mx*comp.h+h, my*comp.v+v)); err != nil {
								return nil, err
							}
						}
					}
				}
			}
		}
	}
	if r.overrun() {
		return nil, FormatError("truncated entropy-coded data")
	}
	return c, nil
}

func (d *decoder) coefHeader() *Coefficients {
	c := &Coefficients{Width: d.width, Height: d.height}
	for _, comp := range d.comps {
		k := CoefComponent{ID: comp.id, H: comp.h, V: comp.v}
		for z := range 64 {
			k.Quant[zigzag[z]] = uint16(d.quant[comp.tq][z])
		}
		if len(d.comps) == 1 {
			k.BlocksW, k.BlocksH = ceilDiv(d.width, 8), ceilDiv(d.height, 8)
		} else {
			k.BlocksW = ceilDiv(d.width, 8*d.hmax) * comp.h
			k.BlocksH = ceilDiv(d.height, 8*d.vmax) * comp.v
		}
		c.Comps = append(c.Comps, k)
	}
	return c
}

// blockRaw decodes one block's quantised coefficients into out (zero on
// entry), natural order.
func blockRaw(r *reader, dc, ac *huffman, pred *int32, out []int16) error {
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
	out[0] = int16(*pred)
	k := 1
	for k < 64 {
		if r.n < 16 {
			r.fill()
		}
		if f := ac.fastAC[r.acc>>(64-lookBits)]; f != 0 {
			// A whole coefficient in one lookup (its size is at most
			// lookBits, so within the baseline range).
			l := uint(f & 0xFF)
			r.acc <<= l
			r.n -= l
			k += int(f>>8) & 0xFF
			if k > 63 {
				return FormatError("too many coefficients in a block")
			}
			out[zigzag[k]] = int16(f >> 16)
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
				return nil // end of block
			}
			k += 16
			continue
		}
		if s > 10 {
			return errRange
		}
		k += run
		if k > 63 {
			return FormatError("too many coefficients in a block")
		}
		out[zigzag[k]] = int16(r.receive(uint(s)))
		k++
	}
	if k > 64 {
		return FormatError("too many coefficients in a block")
	}
	return nil
}
