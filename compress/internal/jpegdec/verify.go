package jpegdec

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync/atomic"
)

// Verify reports whether data decodes completely, exactly as
// [ReadCoefficients] would (and therefore [Decode], at any scale): the
// headers, every Huffman code, every restart marker, the end of the data,
// and the baseline coefficient range a lossless transform needs. It stores
// nothing and allocates only the decoder's tables: it is the check for a
// file that is kept as coded, about as costly as the entropy decoding
// alone. Its errors are ReadCoefficients'.
func Verify(data []byte) error { return verify(data, -1) }

// VerifyConcurrent is [Verify] on two goroutines for a scan of more than
// 64 KiB without restart markers (what phones and browsers write), with
// the same verdict and errors: it takes about half the time when a second
// core is free, a little more CPU in all.
//
// A Huffman-coded scan can only be read from its start, so the second
// goroutine guesses: it starts reading halfway, as if a block started
// there, and records where each block it reads starts and which
// component's it is. Such a reading falls into step with the true one
// after a few blocks, in practice, and then stays in step. When the first
// goroutine, reading from the start, reaches a block start the second
// recorded with the same component, everything after it has already been
// read correctly by the second and the first stops there. Only a clean
// result is taken from the second goroutine (every remaining block read
// without error, nothing read past the data, the DC values in range); in
// every other case, including a guess that never falls into step, the
// first goroutine reads on to the end itself, so the verdict and error are
// Verify's.
func VerifyConcurrent(data []byte) error { return verify(data, minConcurrent) }

// verify is Verify, on two goroutines when the entropy-coded data is at
// least split bytes long (never when split is negative).
func verify(data []byte, split int) error {
	d, pos, err := parseHeaders(data)
	if err != nil {
		return err
	}
	for _, h := range d.ac {
		if h != nil {
			h.buildPairs()
		}
	}
	s := d.plan()
	r := &reader{data: data, pos: pos}
	var sp *speculation
	if split >= 0 && d.restart == 0 && len(data)-pos >= split {
		sp = d.speculate(data, pos, s)
		defer sp.stop.Store(true)
	}
	return d.verifyScan(r, s, sp)
}

// yieldEvery+1 is how many blocks the two goroutines of VerifyConcurrent
// read between yields to the scheduler: they would otherwise hold both
// processors of a two-core machine until preempted (10 ms), and a request
// handler that the check runs beside waits that long for its network
// replies. A yield costs well under a microsecond; 1024 blocks take about
// 0.1 ms.
const yieldEvery = 1023

// minConcurrent is the shortest entropy-coded data VerifyConcurrent splits:
// below it the second goroutine's start-up and guess cost more than they
// save.
const minConcurrent = 64 << 10

// scanPlan is the order of blocks in a scan.
type scanPlan struct {
	phases []int // component index of each block of an MCU, in order
	blocks int   // blocks in the scan: MCUs x len(phases)
}

func (d *decoder) plan() scanPlan {
	if len(d.comps) == 1 {
		// A lone component's scan is not interleaved: one block an MCU.
		return scanPlan{phases: []int{0}, blocks: ceilDiv(d.width, 8) * ceilDiv(d.height, 8)}
	}
	var p scanPlan
	for i, c := range d.comps {
		for range c.h * c.v {
			p.phases = append(p.phases, i)
		}
	}
	p.blocks = ceilDiv(d.width, 8*d.hmax) * ceilDiv(d.height, 8*d.vmax) * len(p.phases)
	return p
}

// bits is a reader's bit buffer as verifyBlock carries it: passed and
// returned by value, it stays in registers.
type bits struct {
	acc    uint64
	n      uint
	pos    int
	loaded int
}

func (r *reader) bits() bits     { return bits{r.acc, r.n, r.pos, r.loaded} }
func (r *reader) setBits(b bits) { r.acc, r.n, r.pos, r.loaded = b.acc, b.n, b.pos, b.loaded }

// verifyBlock reads one block as ReadCoefficients does, with the same
// checks, keeping nothing but the DC prediction. The common cases (a
// lookup that decodes a whole code, eight bytes without a 0xFF to load)
// are written out on b; every other goes through r, synced before and
// after. The eight-byte load is written out twice (before the DC and in
// the AC loop) on purpose: as a function the compiler does not inline it,
// and the call made the whole check about 5% slower.
func verifyBlock(r *reader, b bits, dc, ac *huffman, pred int32) (bits, int32, error) {
	data := r.data
	// DC: a size category and its magnitude bits.
	if b.n < 32 {
		if b.pos+8 <= len(data) {
			x := binary.BigEndian.Uint64(data[b.pos:])
			if nx := ^x; (nx-ones)&^nx&highs == 0 {
				k := (64 - b.n) / 8
				b.acc |= x >> (64 - 8*k) << (64 - b.n - 8*k)
				b.n += 8 * k
				b.pos += int(k)
				b.loaded += int(8 * k)
			} else {
				r.setBits(b)
				r.fill()
				b = r.bits()
			}
		} else {
			r.setBits(b)
			r.fill()
			b = r.bits()
		}
	}
	var t uint
	if e := dc.lookup[b.acc>>(64-lookBits)]; e != 0 {
		l := uint(e >> 8)
		b.acc <<= l
		b.n -= l
		t = uint(e & 0xFF)
	} else {
		r.setBits(b)
		v, err := r.decode(dc)
		if err != nil {
			return b, pred, err
		}
		b = r.bits()
		t = uint(v)
	}
	if t > 11 {
		return b, pred, FormatError("bad DC difference size")
	}
	if t > 0 {
		// At least 32-16 bits are left after the code: enough for 11.
		v := int32(b.acc >> (64 - t))
		b.acc <<= t
		b.n -= t
		if v < 1<<(t-1) {
			v += -1<<t + 1
		}
		pred += v
	}
	if pred < -2047 || pred > 2047 {
		return b, pred, errRange
	}
	// AC: run/size symbols to the end of the block.
	k := 1
	for k < 64 {
		if b.n < 16 {
			if b.pos+8 <= len(data) {
				x := binary.BigEndian.Uint64(data[b.pos:])
				if nx := ^x; (nx-ones)&^nx&highs == 0 {
					m := (64 - b.n) / 8
					b.acc |= x >> (64 - 8*m) << (64 - b.n - 8*m)
					b.n += 8 * m
					b.pos += int(m)
					b.loaded += int(8 * m)
				} else {
					r.setBits(b)
					r.fill()
					b = r.bits()
				}
			} else {
				r.setBits(b)
				r.fill()
				b = r.bits()
			}
		}
		if k < pairMaxK {
			// Two symbols at once; the first leaves the block open (its
			// advance is at most 16), so the second is this block's.
			if f := ac.pairAC[b.acc>>(64-pairBits)]; f != 0 {
				l := uint(f & 31)
				b.acc <<= l
				b.n -= l
				k += int(f >> 5)
				continue
			}
		}
		if f := ac.skipAC[b.acc>>(64-lookBits)]; f != 0 {
			l := uint(f & 31)
			b.acc <<= l
			b.n -= l
			k += int(f >> 5)
			continue
		}
		var rs int
		if e := ac.lookup[b.acc>>(64-lookBits)]; e != 0 {
			l := uint(e >> 8)
			b.acc <<= l
			b.n -= l
			rs = int(e & 0xFF)
		} else {
			r.setBits(b)
			v, err := r.decode(ac)
			if err != nil {
				return b, pred, err
			}
			b = r.bits()
			rs = v
		}
		run, s := rs>>4, uint(rs&15)
		if s == 0 {
			if run != 15 {
				k += skipEnd
				break // end of block
			}
			k += 16
			continue
		}
		if s > 10 {
			return b, pred, errRange
		}
		k += run + 1
		if k > 64 {
			// (A coefficient past the block: the error now, before its
			// magnitude bits, as ReadCoefficients reports it.)
			return b, pred, FormatError("too many coefficients in a block")
		}
		if b.n < s {
			r.setBits(b)
			r.fill()
			b = r.bits()
		}
		b.acc <<= s
		b.n -= s
	}
	// An end of block leaves k at skipEnd or more; any other index past
	// 64 is a run past the block's end.
	if k > 64 && k < skipEnd {
		return b, pred, FormatError("too many coefficients in a block")
	}
	return b, pred, nil
}

// pairMaxK bounds the coefficient index at which verifyBlock reads two
// symbols at once: from 48 on, a first symbol's advance (up to 16) could
// complete the block, and the bits after it would be the next block's.
const pairMaxK = 48

// verifyScan reads the scan's blocks from the start and checks that the
// last did not read past the data. With sp, once past the point where sp's
// guess began, it looks for the block start where the guess fell into
// step, and returns there when the guess read everything after it
// cleanly.
func (d *decoder) verifyScan(r *reader, s scanPlan, sp *speculation) error {
	st := restartState{left: d.restart}
	b := r.bits()
	var preds [maxComps]int32
	var w *window // sp's record, once this reader is past its start
	wi := 0
	for blk, ph := 0, 0; blk < s.blocks; blk++ {
		if ph == 0 && d.restart > 0 {
			if st.left == 0 {
				r.setBits(b)
				if err := d.restartAt(r, &st); err != nil {
					return err
				}
				b = r.bits()
				preds = [maxComps]int32{}
			} else {
				st.left--
			}
		}
		if sp != nil {
			at := b.loaded - int(b.n)
			if w == nil && at >= sp.from {
				if w = sp.await(); w == nil {
					sp = nil // no usable guess: read on alone
				}
			}
			if w != nil {
				for wi < len(w.starts) && w.starts[wi].at < at {
					wi++
				}
				switch {
				case wi == len(w.starts):
					sp, w = nil, nil // past the guess's record: read on alone
				case w.starts[wi].at == at && int(w.starts[wi].phase) == ph && r.fake <= b.n:
					// (Not once this reader has read past the data, at a
					// marker: its positions are no longer the data's.)
					if sp.cleanFrom(w, wi, s.blocks-blk, preds) {
						tookGuess.Add(1)
						return nil
					}
					sp, w = nil, nil // not clean: read on alone, for the error
				}
			}
		}
		if blk&yieldEvery == yieldEvery && sp != nil {
			runtime.Gosched()
		}
		c := s.phases[ph]
		comp := &d.comps[c]
		var err error
		b, preds[c], err = verifyBlock(r, b, d.dc[comp.td], d.ac[comp.ta], preds[c])
		if err != nil {
			return err
		}
		if ph++; ph == len(s.phases) {
			ph = 0
		}
	}
	r.setBits(b)
	if r.overrun() {
		return FormatError("truncated entropy-coded data")
	}
	return nil
}

// tookGuess counts the verifications finished by a guess, for tests.
var tookGuess atomic.Int64

// maxComps is the most components a baseline frame the decoder takes has.
const maxComps = 4

// windowLen is the most block starts the guess records: it must fall into
// step within them (within a few dozen, in practice).
const windowLen = 1024

// blockStart is where one block of the guess starts: the position of its
// first bit in the unstuffed entropy-coded data, its phase in the MCU, and
// the DC predictions before it, relative to the guess's start.
type blockStart struct {
	at    int
	phase uint8
	preds [maxComps]int32
}

// window is the guess's record: the starts of the first blocks of its
// last run without error.
type window struct {
	starts []blockStart
}

// speculation is the second goroutine's guess and, once it ends, its
// result.
type speculation struct {
	from int           // the first goroutine waits for the window from here
	win  chan *window  // the window, once recorded (nil: no usable guess)
	done chan struct{} // closed when the guess has read to its end
	stop atomic.Bool   // set by the first goroutine when it needs no more
	plan scanPlan
	wlen int // block starts to record
	// Known once done is closed: how many blocks the run read cleanly
	// (no error, nothing past the data), and the range of its DC
	// predictions, relative to its start, after each clean block from
	// block wlen-1 on.
	clean    int
	min, max [maxComps]int32
}

// speculate starts the guess at the middle of the entropy-coded data from
// pos, moved off a stuffed zero byte. Its position in the unstuffed data
// discounts the stuffed zeros before it.
func (d *decoder) speculate(data []byte, pos int, s scanPlan) *speculation {
	mid := pos + (len(data)-pos)/2
	for mid < len(data) && data[mid-1] == 0xFF {
		mid++
	}
	at := 8 * (mid - pos - bytes.Count(data[pos:mid], []byte{0xFF, 0x00}))
	sp := &speculation{from: at, win: make(chan *window, 1), done: make(chan struct{}), plan: s,
		wlen: max(min(windowLen, s.blocks/8), 1)}
	go sp.run(d, data, mid, at)
	return sp
}

// run reads from byte start (at bits into the unstuffed data) as if a
// block of phase 0 started there. Until wlen block starts are recorded, an
// error starts a new run at the reader's next byte (a wrong guess runs
// into errors; the record must hold one run that reads on cleanly), up to
// a bound; then the window is published and the run reads on to an error,
// the end of the data, or a stop.
func (sp *speculation) run(d *decoder, data []byte, start, at int) {
	defer close(sp.done)
	const maxRuns = 64
	w := &window{starts: make([]blockStart, 0, sp.wlen)}
	published := false
	defer func() {
		if !published {
			sp.win <- nil
		}
	}()
	defer func() {
		// A panic (none is known) here could not be recovered by the
		// caller: it leaves the guess unused, and the first goroutine
		// reads on alone.
		if recover() != nil {
			sp.clean = 0
		}
	}()
	r := &reader{data: data, pos: start, loaded: at}
	b := r.bits()
	var preds [maxComps]int32
	ph, runs := 0, 1
	for blk := 0; ; blk++ {
		if blk&255 == 0 && sp.stop.Load() {
			return
		}
		if blk&yieldEvery == yieldEvery {
			runtime.Gosched()
		}
		if !published {
			w.starts = append(w.starts, blockStart{at: b.loaded - int(b.n), phase: uint8(ph), preds: preds})
		}
		c := sp.plan.phases[ph]
		comp := &d.comps[c]
		// The predictions are relative to the guess's start: read each
		// difference alone (never out of range) and add it here.
		var diff int32
		var err error
		b, diff, err = verifyBlock(r, b, d.dc[comp.td], d.ac[comp.ta], 0)
		r.setBits(b)
		if err == nil && r.overrun() {
			err = errOverrun
		}
		if err != nil {
			if published {
				sp.clean = blk
				return
			}
			// A wrong guess: start a new run at the next byte.
			if runs++; runs > maxRuns || r.fake > 0 {
				return
			}
			r = &reader{data: data, pos: r.pos, loaded: r.loaded}
			b = r.bits()
			w.starts, preds, ph, blk = w.starts[:0], [maxComps]int32{}, 0, -1
			continue
		}
		preds[c] += diff
		switch {
		case blk == sp.wlen-1:
			sp.min, sp.max = preds, preds
			published = true
			sp.win <- w
		case published:
			for i := range preds {
				sp.min[i] = min(sp.min[i], preds[i])
				sp.max[i] = max(sp.max[i], preds[i])
			}
		}
		if ph++; ph == len(sp.plan.phases) {
			ph = 0
		}
	}
}

// errOverrun ends a guess that read past the data.
var errOverrun = FormatError("read past the data")

// await waits for the guess's window; nil means there is none.
func (sp *speculation) await() *window { return <-sp.win }

// cleanFrom waits for the guess to end and reports whether, in step from
// its recorded block start j, it read the remaining blocks cleanly with
// the first goroutine's DC predictions preds at that point: every block
// without error, nothing past the data, and every prediction within ±2047
// (checked on the range of the predictions after the recorded blocks,
// which may refuse a sound file, never accept an unsound one).
func (sp *speculation) cleanFrom(w *window, j, remaining int, preds [maxComps]int32) bool {
	<-sp.done
	end := j + remaining // blocks j..end-1 of the guess are the rest of the scan
	if sp.clean < end {
		return false
	}
	base := w.starts[j].preds
	in := func(rel [maxComps]int32) bool {
		for c := range rel {
			if v := preds[c] + rel[c] - base[c]; v < -2047 || v > 2047 {
				return false
			}
		}
		return true
	}
	// The predictions after block i are those before block i+1.
	for i := j; i < end && i+1 < len(w.starts); i++ {
		if !in(w.starts[i+1].preds) {
			return false
		}
	}
	if end > len(w.starts)-1 {
		return in(sp.min) && in(sp.max)
	}
	return true
}
