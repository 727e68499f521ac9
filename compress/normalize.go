package compress

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/image/webp"
	"golang.org/x/sync/semaphore"
)

// Result describes one normalised image. It holds no image content and no
// metadata values, so it is safe to log.
type Result struct {
	// Format is the sniffed input format.
	Format Format
	// Engine names the engine that decoded and encoded.
	Engine string
	// InBytes is the length of the input.
	InBytes int64
	// InWidth and InHeight are the stored input dimensions (before the
	// orientation was applied).
	InWidth, InHeight int
	// Orientation is the EXIF orientation (1..8) that was applied to the
	// pixels; 1 means none. Always 1 for HEIC, whose decoder applies the
	// container's rotation itself.
	Orientation int
	// OutWidth and OutHeight are the dimensions of the upright output.
	OutWidth, OutHeight int
	// OutBytes is the length of the JPEG written.
	OutBytes int64
	// Quality is the JPEG quality chosen by the budget search.
	Quality int
	// Stripped lists the metadata kinds present in the input. None of them
	// is in the output, which carries no EXIF, XMP, IPTC, ICC or comments.
	Stripped Metadata
	// ColourConverted reports that the input carried a non-sRGB ICC profile
	// (Display P3, Adobe RGB...) and its pixels were converted to sRGB.
	ColourConverted bool
	// Passthrough reports that the input was a JPEG already meeting every
	// output rule and its compressed image data was kept bit for bit: the
	// output is the input's coding segments and scan under a fresh JFIF
	// header, with every metadata segment and anything after EOI dropped
	// (see [WithPassthrough]). Quality is then the IJG quality its
	// quantisation tables are closest to, OutWidth and OutHeight the
	// input's. False when the image was decoded and encoded again.
	Passthrough bool
}

// Normalizer turns untrusted uploaded images into upright, metadata-free,
// sRGB JPEGs whose long edge is at most MaxLongEdge and whose size is within
// the byte budget. It is safe for concurrent use. The memory of all its
// calls at once is bounded by the decode budget ([WithDecodeBudget]), the
// CPU they use by [WithMaxConcurrent].
type Normalizer struct {
	cfg   config
	bufs  sync.Pool          // *bytes.Buffer for inputs and encoded candidates
	warm  chan *bytes.Buffer // a few of them kept across collections; see getBuf
	sem   chan struct{}      // one token per image being decoded or encoded
	mem   *semaphore.Weighted
	inUse atomic.Int64 // bytes of mem taken, for DecodeBudget
	rc    reclaimer    // collects what finished images freed; see acquire
}

// New returns a Normalizer with the defaults (see the Default constants) as
// changed by opts, or the first option's error.
func New(opts ...Option) (*Normalizer, error) {
	c := defaultConfig()
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.engine == nil {
		c.engine = NewGoEngine(0)
	}
	if c.concurrent == 0 {
		c.concurrent = runtime.GOMAXPROCS(0)
	}
	return &Normalizer{cfg: c, sem: make(chan struct{}, c.concurrent), mem: semaphore.NewWeighted(c.decodeBudget),
		warm: make(chan *bytes.Buffer, 2*c.concurrent)}, nil
}

// Engine returns the engine in use.
func (n *Normalizer) Engine() Engine { return n.cfg.engine }

// Formats lists the input formats this Normalizer accepts, in sniffing
// order: those given to [WithFormats], else every format it can decode
// (HEIC only when a decoder is registered with [WithDecoder]). An upload
// page or an error message can name exactly these.
func (n *Normalizer) Formats() []Format {
	var fs []Format
	for _, f := range AllFormats() {
		if n.cfg.accepts(f) {
			fs = append(fs, f)
		}
	}
	return fs
}

// getBuf returns an empty buffer: one of the warm ones, else one from the
// pool, else a new one. A sync.Pool is emptied by every other collection,
// and a fresh megabyte costs its page faults again (about 2 ms for a phone
// photo's input on a virtual machine, more than reading it); the warm
// buffers, two per concurrency slot and at most warmMax each, outlive
// collections. The decode budget's reclaim empties both.
func (n *Normalizer) getBuf() *bytes.Buffer {
	select {
	case b := <-n.warm:
		b.Reset()
		return b
	default:
	}
	if b, ok := n.bufs.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

// warmMax is the largest buffer kept warm: a phone photo's input and
// output, or a 12 MP camera JPEG's input.
const warmMax = 8 << 20

func (n *Normalizer) putBuf(b *bytes.Buffer) {
	if b.Cap() <= warmMax {
		select {
		case n.warm <- b:
			return
		default:
		}
	}
	if b.Cap() <= 64<<20 {
		n.bufs.Put(b)
	}
}

// Normalize reads one image from r and writes the normalised JPEG to w.
// It reads at most the byte limit plus one byte, checks the declared size
// against the pixel limits before decoding anything, and writes to w only
// once the whole output is ready (never a partial image on error). Neither
// r nor w is closed.
//
// Errors for bad input are [*Error] values wrapping [ErrUnsupportedFormat],
// [ErrTooLarge], [ErrTooManyPixels], [ErrCorrupt] or [ErrBudget]; a read or
// write failure is returned wrapped; a cancelled ctx returns ctx.Err()
// (wrapped). On error the Result holds what was learned before the failure
// (the format and declared size, when known) and nothing was written to w.
// For the same input and options the output bytes are the same.
func (n *Normalizer) Normalize(ctx context.Context, r io.Reader, w io.Writer) (Result, error) {
	o, err := n.start(ctx, r, true)
	if err != nil {
		return o.res, err
	}
	defer o.Release()
	if _, err := o.Check(ctx); err != nil {
		return o.res, err
	}
	if _, err := w.Write(o.data); err != nil {
		return o.res, fmtErr("compress: write output: %w", err)
	}
	return o.res, nil
}

// Start is [Normalizer.Normalize] for a caller that stores the output
// while its last check runs. For an input that takes the lossless
// passthrough (see the package documentation), the complete decode that
// proves its coded data sound (a few milliseconds for a phone photo) runs
// on a goroutine of its own, and Start returns as soon as the rebuilt file
// is ready; every other input is normalised in full before Start returns,
// exactly as by Normalize. Its errors are Normalize's. The check keeps to
// one core, leaving the others to the caller's storing (on two cores,
// checking on both made the Service's phone upload slower, not faster).
//
// The caller may store [Output.Bytes] meanwhile, but must call
// [Output.Check] before it treats them as the image (before listing,
// sending or showing them): when the check fails, Check normalises the
// input the normal way and reports that the bytes were replaced, and the
// stored copy must be discarded. [Output.Release] hands the buffers back
// for the next image once the bytes are no longer needed.
func (n *Normalizer) Start(ctx context.Context, r io.Reader) (*Output, error) {
	o, err := n.start(ctx, r, false)
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Output is one image from [Normalizer.Start]: its bytes and [Result], and
// the check of a passed-through JPEG that may still be running.
type Output struct {
	n    *Normalizer
	res  Result
	data []byte
	// For a passthrough: done is closed when the check ends, with ok its
	// verdict; src (in the pooled buffer in) stays for the normal path
	// until Check has the verdict.
	done  chan struct{}
	ok    bool
	src   Source
	in    *bytes.Buffer
	out   *bytes.Buffer // pooled, holding data; returned by Release
	check sync.Mutex    // serialises Check and Release
}

// Bytes returns the normalised JPEG. It is only final once
// [Output.Check] has returned (a failed check replaces it), and valid until
// [Output.Release].
func (o *Output) Bytes() []byte { return o.data }

// Release returns the Output's buffers to the Normalizer for reuse, once
// any check has finished; Bytes must not be used afterwards. Not calling it
// only leaves them to the garbage collector.
func (o *Output) Release() {
	o.check.Lock()
	defer o.check.Unlock()
	if o.done != nil {
		<-o.done
		o.done = nil
	}
	o.release()
	if o.out != nil {
		o.n.putBuf(o.out)
		o.out, o.data = nil, nil
	}
}

// Result describes the image; like [Output.Bytes], it is final once
// [Output.Check] has returned.
func (o *Output) Result() Result { return o.res }

// Check waits for the check of a passed-through JPEG to finish (it returns
// at once for any other input). When the check fails, the input is
// normalised the normal way: replaced is then true, and [Output.Bytes] and
// [Output.Result] describe the new output (Result.Passthrough false). An
// error is the normal path's ([ErrCorrupt] for an input that does not
// decode) or ctx's. Check may be called more than once; later calls return
// the first's answer, with replaced false.
func (o *Output) Check(ctx context.Context) (replaced bool, err error) {
	o.check.Lock()
	defer o.check.Unlock()
	if o.done == nil {
		return false, nil
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return false, fmtErr("compress: waiting for the passthrough check: %w", ctx.Err())
	}
	o.done = nil
	defer o.release()
	if o.ok {
		o.n.logResult(ctx, o.res)
		return false, nil
	}
	res := o.res
	res.Passthrough, res.Quality = false, 0
	out, err := o.n.normal(ctx, o.src, &res)
	o.res = res
	if err != nil {
		return false, err
	}
	o.n.putBuf(o.out)
	o.out, o.data = out, out.Bytes()
	o.n.logResult(ctx, o.res)
	return true, nil
}

// release returns the input's buffer to the pool.
func (o *Output) release() {
	if o.in != nil {
		o.n.putBuf(o.in)
		o.in, o.src = nil, Source{}
	}
}

// start reads and normalises one image; for a passthrough it leaves the
// check running. On error the returned Output (never nil) holds the
// Result learned so far. twoCores lets the check use a second core when a
// concurrency slot is free: for a caller that only waits for it
// (Normalize), not for one that stores the bytes meanwhile (Start), whose
// storing would then wait for a core.
func (n *Normalizer) start(ctx context.Context, r io.Reader, twoCores bool) (*Output, error) {
	o := &Output{n: n}
	in := n.getBuf()
	src, info, err := n.read(ctx, r, in)
	if err != nil {
		n.putBuf(in)
		return o, err
	}
	o.res = Result{
		Format:      src.Format,
		Engine:      n.cfg.engine.Name(),
		InBytes:     int64(len(src.Data)),
		InWidth:     src.Width,
		InHeight:    src.Height,
		Orientation: src.Orientation,
		Stripped:    info.meta,
	}
	if len(src.ICC) > 0 && parseICC(src.ICC) != nil {
		o.res.ColourConverted = true
	}
	if n.passthroughCandidate(src, info) {
		kept, q, verify, err := n.passthrough(ctx, src, twoCores)
		if err != nil {
			n.putBuf(in)
			return o, err
		}
		if verify != nil {
			o.res.Passthrough = true
			o.res.OutWidth, o.res.OutHeight = src.Width, src.Height
			o.res.Quality = q
			o.res.OutBytes = int64(kept.Len())
			o.out, o.data, o.src, o.in = kept, kept.Bytes(), src, in
			o.done = make(chan struct{})
			go func() {
				defer close(o.done)
				o.ok = verify()
			}()
			return o, nil
		}
	}
	defer n.putBuf(in)
	out, err := n.normal(ctx, src, &o.res)
	if err != nil {
		return o, err
	}
	o.out, o.data = out, out.Bytes()
	n.logResult(ctx, o.res)
	return o, nil
}

// normal decodes src and encodes it within the budget, filling res's
// output fields, into a pooled buffer that is the caller's.
func (n *Normalizer) normal(ctx context.Context, src Source, res *Result) (*bytes.Buffer, error) {
	cost, err := n.checkBudget(src)
	if err != nil {
		return nil, err
	}
	release, err := n.slot(ctx, cost)
	if err != nil {
		return nil, err
	}
	out := n.getBuf()
	q, w2, h2, err := n.decodeAndFit(ctx, src, out)
	release()
	if err != nil {
		n.putBuf(out)
		return nil, err
	}
	res.OutWidth, res.OutHeight = w2, h2
	res.Quality = q
	res.OutBytes = int64(out.Len())
	return out, nil
}

// slot takes a concurrency slot and then cost bytes of the decode budget,
// waiting for each until ctx ends; release gives both back.
func (n *Normalizer) slot(ctx context.Context, cost int64) (release func(), err error) {
	select {
	case n.sem <- struct{}{}:
	default:
		select {
		case n.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, fmtErr("compress: waiting to decode: %w", ctx.Err())
		}
	}
	free, err := n.acquire(ctx, cost)
	if err != nil {
		<-n.sem
		return nil, fmtErr("compress: waiting for decode memory: %w", err)
	}
	return func() { free(); <-n.sem }, nil
}

// logResult writes the debug line for one image, when a logger is set.
func (n *Normalizer) logResult(ctx context.Context, res Result) {
	if l := n.cfg.logger; l != nil {
		l.LogAttrs(ctx, slog.LevelDebug, "compress: normalised",
			slog.String("format", string(res.Format)), slog.String("engine", res.Engine),
			slog.Int64("in_bytes", res.InBytes), slog.Int("in_w", res.InWidth), slog.Int("in_h", res.InHeight),
			slog.Int("orientation", res.Orientation), slog.Int("out_w", res.OutWidth), slog.Int("out_h", res.OutHeight),
			slog.Int64("out_bytes", res.OutBytes), slog.Int("quality", res.Quality), slog.String("stripped", res.Stripped.String()),
			slog.Bool("passthrough", res.Passthrough))
	}
}

// decodeAndFit decodes src and leaves the JPEG that fits the byte budget in
// out; every picture is closed when it returns.
func (n *Normalizer) decodeAndFit(ctx context.Context, src Source, out *bytes.Buffer) (q, w, h int, err error) {
	pic, err := n.cfg.engine.Decode(ctx, src, n.cfg.longEdge)
	if err != nil {
		return 0, 0, 0, n.fail(ctx, "decode", src, err)
	}
	defer func() { _ = pic.Close() }()
	q, pic, err = n.fit(ctx, pic, out)
	if err != nil {
		return 0, 0, 0, n.fail(ctx, "encode", src, err)
	}
	w, h = pic.Size()
	return q, w, h, nil
}

// fail classifies an engine error: typed errors and the context's error
// pass through, anything else is reported as corrupt data.
func (n *Normalizer) fail(ctx context.Context, op string, src Source, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmtErr("compress: %w", err)
	}
	return &Error{Kind: ErrCorrupt, Op: op, Format: src.Format, Width: src.Width, Height: src.Height, Err: err}
}

// recorder keeps a copy of everything read through it.
type recorder struct {
	r   io.Reader
	buf *bytes.Buffer
}

func (c *recorder) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.buf.Write(p[:k])
	return k, err
}

// read sniffs and header-checks the input while reading it into buf.
func (n *Normalizer) read(ctx context.Context, r io.Reader, buf *bytes.Buffer) (Source, sourceInfo, error) {
	var src Source
	if size := sizeHint(r); size > 0 {
		// Known length (a file, a bytes.Reader): one allocation instead of
		// a doubling series. bytes.Buffer.ReadFrom wants MinRead bytes
		// free before each read, the last (which finds EOF) included.
		buf.Grow(int(min(size, n.cfg.maxInput)) + bytes.MinRead + 1)
	}
	lr := &io.LimitedReader{R: r, N: n.cfg.maxInput + 1}
	rec := &recorder{r: lr, buf: buf}
	var head [sniffLen]byte
	k, err := io.ReadFull(rec, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return src, sourceInfo{}, fmtErr("compress: read input: %w", err)
	}
	if k == 0 {
		return src, sourceInfo{}, &Error{Kind: ErrCorrupt, Op: "read", Err: errors.New("empty input")}
	}
	src.Format = Sniff(head[:k])
	if src.Format == "" || !n.cfg.accepts(src.Format) {
		e := &Error{Kind: ErrUnsupportedFormat, Op: "sniff", Format: src.Format}
		if src.Format != "" && !n.cfg.canDecode(src.Format) {
			// Recognised, but nobody registered a decoder (HEIC without
			// compress/heic): the message says what to add.
			e.Err = notEnabled(src.Format)
		}
		return src, sourceInfo{}, e
	}
	src.Decoder = n.cfg.decoders[src.Format]
	// Read just the header (through the recorder, so nothing is lost) and
	// check the declared size before reading or decoding the rest.
	if src.Format != HEIC {
		cfg, err := decodeConfig(src.Format, io.MultiReader(bytes.NewReader(head[:k]), rec))
		if err != nil {
			return src, sourceInfo{}, &Error{Kind: ErrCorrupt, Op: "header", Format: src.Format, Err: err}
		}
		src.Width, src.Height = cfg.Width, cfg.Height
		if err := n.checkPixels(src); err != nil {
			return src, sourceInfo{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return src, sourceInfo{}, fmtErr("compress: %w", err)
	}
	if _, err := buf.ReadFrom(lr); err != nil {
		return src, sourceInfo{}, fmtErr("compress: read input: %w", err)
	}
	if int64(buf.Len()) > n.cfg.maxInput {
		return src, sourceInfo{}, &Error{Kind: ErrTooLarge, Op: "read", Format: src.Format, Width: src.Width, Height: src.Height, Limit: n.cfg.maxInput, Actual: int64(buf.Len())}
	}
	src.Data = buf.Bytes()
	info := scanMeta(src.Format, src.Data)
	if src.Format == HEIC {
		src.Width, src.Height = info.width, info.height
		if src.Width <= 0 || src.Height <= 0 {
			return src, info, &Error{Kind: ErrCorrupt, Op: "header", Format: src.Format, Err: errors.New("no image size (ispe) in the HEIF meta box")}
		}
		if err := n.checkPixels(src); err != nil {
			return src, info, err
		}
		info.orientation = 1
	}
	src.Orientation = info.orientation
	src.ICC = info.icc
	src.YCbCr = info.ycbcr
	if src.Format == WebP {
		// VP8 (lossy WebP) codes BT.601 at limited range; x/image/webp
		// hands its planes over as they are. Lossless WebP decodes to RGB.
		src.YCbCr = YCbCrCoding{Limited: true}
	}
	return src, info, nil
}

// sizeHint returns the remaining length of r when r knows it cheaply, else 0.
func sizeHint(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

func (n *Normalizer) checkPixels(src Source) error {
	if src.Width <= 0 || src.Height <= 0 {
		return &Error{Kind: ErrCorrupt, Op: "header", Format: src.Format, Err: errors.New("zero image size")}
	}
	px := int64(src.Width) * int64(src.Height)
	if src.Width > n.cfg.maxDim || src.Height > n.cfg.maxDim {
		return &Error{Kind: ErrTooManyPixels, Op: "limits", Format: src.Format, Width: src.Width, Height: src.Height, Limit: int64(n.cfg.maxDim), Actual: int64(max(src.Width, src.Height))}
	}
	if px > n.cfg.maxPixels {
		return &Error{Kind: ErrTooManyPixels, Op: "limits", Format: src.Format, Width: src.Width, Height: src.Height, Limit: n.cfg.maxPixels, Actual: px}
	}
	return nil
}

func decodeConfig(f Format, r io.Reader) (image.Config, error) {
	switch f {
	case JPEG:
		return jpeg.DecodeConfig(r)
	case PNG:
		return png.DecodeConfig(r)
	case GIF:
		return gif.DecodeConfig(r)
	case WebP:
		return webp.DecodeConfig(r)
	}
	return image.Config{}, errors.New("no header decoder")
}

// limitBuffer stores at most limit bytes and counts the rest, so a
// candidate over budget costs no memory beyond the budget.
type limitBuffer struct {
	buf   *bytes.Buffer
	limit int64
	n     int64
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	if room := b.limit - int64(b.buf.Len()); room > 0 {
		b.buf.Write(p[:min(int64(len(p)), room)])
	}
	b.n += int64(len(p))
	return len(p), nil
}

func (b *limitBuffer) WriteByte(c byte) error {
	_, err := b.Write([]byte{c})
	return err
}

func (b *limitBuffer) Flush() error { return nil }

// fit finds the highest quality in [minQ, maxQ] whose JPEG fits the budget,
// scaling the picture down when even minQ does not fit. It leaves the chosen
// JPEG in out and returns the picture that produced it (which the caller
// must not close separately if it differs: fit closes what it replaces).
func (n *Normalizer) fit(ctx context.Context, pic Picture, out *bytes.Buffer) (int, Picture, error) {
	c := n.cfg
	cand := n.getBuf()
	defer n.putBuf(cand)
	encode := func(p Picture, q int) (int64, error) {
		cand.Reset()
		lb := &limitBuffer{buf: cand, limit: c.budget}
		if err := p.EncodeJPEG(lb, q); err != nil {
			return 0, err
		}
		return lb.n, nil
	}
	keep := func() { out.Reset(); out.Write(cand.Bytes()) }
	for attempt := 0; attempt < 8; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, pic, err
		}
		size, err := encode(pic, c.maxQ)
		if err != nil {
			return 0, pic, err
		}
		if size <= c.budget {
			keep()
			return c.maxQ, pic, nil
		}
		// Search (c.minQ .. c.maxQ) for the highest quality that fits:
		// lo always fits (once checked), hi never does.
		lo, hi := c.minQ, c.maxQ
		loSize, err := encode(pic, lo)
		if err != nil {
			return 0, pic, err
		}
		if loSize <= c.budget {
			keep()
			for hi-lo > 1 {
				if err := ctx.Err(); err != nil {
					return 0, pic, err
				}
				mid := (lo + hi) / 2
				s, err := encode(pic, mid)
				if err != nil {
					return 0, pic, err
				}
				if s <= c.budget {
					lo = mid
					keep()
				} else {
					hi = mid
				}
			}
			return lo, pic, nil
		}
		// Even the floor is too big: shrink by the square root of the
		// overshoot, with a margin, and search again.
		w, h := pic.Size()
		long := max(w, h)
		next := int(float64(long) * math.Sqrt(float64(c.budget)/float64(loSize)) * 0.95)
		next = min(next, long-1)
		if next < 16 {
			break
		}
		smaller, err := pic.Shrink(ctx, next)
		if err != nil {
			return 0, pic, err
		}
		_ = pic.Close()
		pic = smaller
	}
	w, h := pic.Size()
	return 0, pic, &Error{Kind: ErrBudget, Op: "encode", Width: w, Height: h, Limit: c.budget}
}
