package compress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegtran"
)

// ErrInvalidEdit: the [Edit] itself is wrong for the picture: a rotation
// other than 0, 90, 180 or 270, an empty crop or redaction, a rectangle
// not wholly inside the rotated picture, or too many redactions. Nothing
// was decoded or written. An HTTP layer maps it to 422.
var ErrInvalidEdit = errors.New("compress: invalid edit")

// MaxRedactions is how many rectangles one [Edit] may redact.
const MaxRedactions = 64

// Edit is what the GP asked for on one stored image. Every rectangle is in
// the pixels of the stored picture rotated clockwise by Rotate, before any
// crop: what the desktop shows once it has turned the picture, so Crop and
// Redact share one coordinate system whatever their order on screen.
type Edit struct {
	// Rotate turns the picture clockwise by 0, 90, 180 or 270 degrees.
	Rotate int
	// Crop keeps this rectangle of the rotated picture; the zero
	// rectangle keeps all of it.
	Crop image.Rectangle
	// Redact fills each rectangle of the rotated picture with black
	// (Y 0, Cb Cr 128) before anything is encoded. Parts outside Crop are
	// cropped away anyway.
	Redact []image.Rectangle
}

// EditResult describes an edited image. Like [Result] it holds no image
// content, so it is safe to log.
type EditResult struct {
	// Width and Height are the output's dimensions.
	Width, Height int
	// Region is the part of the rotated picture the output shows, in the
	// same pixels as [Edit.Crop]: the crop, less the edge a lossless
	// rotation trims. The output is Region scaled to Width x Height (the
	// same size unless the byte budget forced a smaller picture).
	Region image.Rectangle
	// Lossless reports that the DCT coefficients were moved, not decoded:
	// no generation was lost. False when the picture was decoded and
	// encoded once (a redaction, a crop off the block grid).
	Lossless bool
	// Quality is the JPEG quality of a re-encoded picture, 0 when lossless.
	Quality int
	// Bytes is the length of the JPEG written.
	Bytes int64
}

// Edit reads one stored image (a JPEG written by [Normalizer.Normalize]:
// baseline, upright, no metadata) from r, applies e and writes the edited
// JPEG to w, in one write, only when it is complete.
//
// Without a redaction the edit is lossless whenever JPEG allows, as
// jpegtran -rotate N -trim -crop: the quantised DCT coefficients are moved
// between blocks and within them (transposed, odd frequencies negated),
// never requantised, and coded again with optimal Huffman tables and the
// same quantisation tables. A rotation by 90 or 270 swaps the sampling
// factors. A rotation that flips an axis cannot move the partial MCU at
// that edge, so it is trimmed away: at most 15 pixels of one or two edges
// of a 4:2:0 picture (7 of a grey one), never more, which a clinical photo
// can lose (the alternative, a re-encode, would cost the whole picture a
// generation); [EditResult.Region] says what was kept. A crop is lossless
// when its top-left corner lies on the rotated picture's MCU grid (16 px
// for 4:2:0, counted from the kept area's corner) and its right and bottom
// edges lie on the grid too or at the picture's edge: nothing the GP
// cropped away stays in the file, not even as the padding of a partial MCU
// that a decoder would hide. A crop with any edge off the grid, and a
// lossless result over the byte budget, are re-encoded instead (the output
// then holds exactly the crop).
//
// With any redaction the picture is decoded at full size once, turned,
// cropped, each rectangle filled with black in the decoded planes, and
// encoded once by the Normalizer's encoder within its byte budget: one
// lossy generation from the stored image. The whole output is freshly
// encoded from those planes, so no coefficient of the original blocks
// survives anywhere in it; it carries no metadata segment at all.
//
// The input is read under the byte and pixel limits, the work waits for a
// concurrency slot and its share of the decode budget ([WithDecodeBudget])
// like a Normalize, and ctx is honoured while waiting and between stages.
// Errors are [*Error] values wrapping [ErrInvalidEdit] (the edit does not
// fit the picture), [ErrUnsupportedFormat] (not a baseline JPEG, or one
// carrying an EXIF orientation: normalise it first), [ErrCorrupt],
// [ErrTooLarge], [ErrTooManyPixels] or [ErrBudget]; a cancelled ctx
// returns its error, wrapped. On any error nothing was written to w. The
// same input and edit give the same bytes. Neither r nor w is closed.
func (n *Normalizer) Edit(ctx context.Context, r io.Reader, e Edit, w io.Writer) (EditResult, error) {
	in := n.getBuf()
	defer n.putBuf(in)
	src, _, err := n.read(ctx, r, in)
	if err != nil {
		return EditResult{}, err
	}
	fail := func(kind error, cause error) error {
		return &Error{Kind: kind, Op: "edit", Format: src.Format, Width: src.Width, Height: src.Height, Err: cause}
	}
	if src.Format != JPEG {
		return EditResult{}, fail(ErrUnsupportedFormat, errors.New("only a stored JPEG can be edited"))
	}
	if src.Orientation != 1 {
		return EditResult{}, fail(ErrUnsupportedFormat, errors.New("the JPEG carries an EXIF orientation: normalise it first"))
	}
	head, err := jpegdec.ProbeCoefficients(src.Data)
	if err != nil {
		if errors.Is(err, jpegdec.ErrUnsupported) {
			return EditResult{}, fail(ErrUnsupportedFormat, errors.New("not a baseline JPEG: normalise it first"))
		}
		return EditResult{}, fail(ErrCorrupt, err)
	}
	if head.Width != src.Width || head.Height != src.Height {
		return EditResult{}, fail(ErrCorrupt, errors.New("frame size differs from the header's"))
	}
	f := jpegtran.FrameOf(head)
	if err := checkEdit(e, f); err != nil {
		return EditResult{}, fail(ErrInvalidEdit, err)
	}
	out := n.getBuf()
	defer n.putBuf(out)
	var res EditResult
	done := false
	if len(e.Redact) == 0 {
		if plan, perr := jpegtran.NewPlan(f, e.Rotate, e.Crop); perr == nil && hidesNothing(plan, f.Grid(e.Rotate)) {
			res, done, err = n.editLossless(ctx, src, head, plan, out)
			if err != nil {
				return EditResult{}, err
			}
		}
	}
	if !done {
		res, err = n.editPixels(ctx, src, head, e, out)
		if err != nil {
			return EditResult{}, err
		}
	}
	res.Bytes = int64(out.Len())
	if _, err := w.Write(out.Bytes()); err != nil {
		return EditResult{}, fmtErr("compress: write output: %w", err)
	}
	if l := n.cfg.logger; l != nil {
		l.LogAttrs(ctx, slog.LevelDebug, "compress: edited",
			slog.Int("in_w", src.Width), slog.Int("in_h", src.Height), slog.Int("rotate", e.Rotate),
			slog.Bool("crop", e.Crop != image.Rectangle{}), slog.Int("redactions", len(e.Redact)),
			slog.Int("out_w", res.Width), slog.Int("out_h", res.Height), slog.Bool("lossless", res.Lossless),
			slog.Int("quality", res.Quality), slog.Int64("out_bytes", res.Bytes))
	}
	return res, nil
}

// checkEdit validates e against the picture f; its errors name the rule
// broken and the picture's size, never anything else.
func checkEdit(e Edit, f jpegtran.Frame) error {
	switch e.Rotate {
	case 0, 90, 180, 270:
	default:
		return fmt.Errorf("rotation %d is not 0, 90, 180 or 270", e.Rotate)
	}
	full := f.Rotated(e.Rotate)
	if e.Crop != (image.Rectangle{}) {
		if e.Crop.Empty() {
			return errors.New("empty crop")
		}
		if !e.Crop.In(full) {
			return fmt.Errorf("crop %v outside the %dx%d picture", e.Crop, full.Dx(), full.Dy())
		}
	}
	if len(e.Redact) > MaxRedactions {
		return fmt.Errorf("%d redactions, at most %d", len(e.Redact), MaxRedactions)
	}
	for i, r := range e.Redact {
		if r.Empty() {
			return fmt.Errorf("redaction %d is empty", i)
		}
		if !r.In(full) {
			return fmt.Errorf("redaction %d %v outside the %dx%d picture", i, r, full.Dx(), full.Dy())
		}
	}
	return nil
}

// editLossless makes plan on the coefficients. done is false when the
// edit must go through pixels after all (coefficients a baseline scan
// cannot carry once moved, an output over the byte budget).
func (n *Normalizer) editLossless(ctx context.Context, src Source, head *jpegdec.Coefficients, plan jpegtran.Plan, out *bytes.Buffer) (res EditResult, done bool, err error) {
	f := jpegtran.FrameOf(head)
	// The input, both coefficient sets, the file built and its copy in out.
	cost := int64(cap(src.Data)) + head.Bytes() + plan.OutputBytes(f) + 4*int64(len(src.Data)) + fixedOverhead
	if cost > n.cfg.decodeBudget {
		return res, false, n.overBudget(src, cost)
	}
	release, err := n.slot(ctx, cost)
	if err != nil {
		return res, false, err
	}
	defer release()
	coef, err := readCoefficients(src.Data)
	if err != nil {
		if errors.Is(err, jpegdec.ErrUnsupported) {
			return res, false, nil
		}
		return res, false, &Error{Kind: ErrCorrupt, Op: "edit", Format: src.Format, Width: src.Width, Height: src.Height, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return res, false, fmtErr("compress: %w", err)
	}
	moved, err := plan.Apply(coef)
	if err != nil {
		return res, false, nil
	}
	coef = nil
	out.Reset()
	if err := jpegtran.Write(out, moved); err != nil || int64(out.Len()) > n.cfg.budget {
		out.Reset()
		return res, false, nil
	}
	return EditResult{Width: moved.Width, Height: moved.Height, Region: plan.Region, Lossless: true}, true, nil
}

// hidesNothing reports whether a lossless plan's crop ends on the MCU grid
// (or at the kept picture's edge) on the right and at the bottom. Where it
// ends inside an MCU, jpegtran keeps that MCU's blocks whole: pixels the GP
// cropped away that a decoder hides but the file's data still holds, up to
// 15 of them, which may be just what the crop was meant to take out (a
// face, a name band). Such a crop is re-encoded instead.
func hidesNothing(p jpegtran.Plan, grid image.Point) bool {
	r, k := p.Region, p.Kept
	return ((r.Max.X-k.Min.X)%grid.X == 0 || r.Max.X == k.Max.X) &&
		((r.Max.Y-k.Min.Y)%grid.Y == 0 || r.Max.Y == k.Max.Y)
}

// readCoefficients runs jpegdec.ReadCoefficients, turning a panic (none is
// known) into an error.
func readCoefficients(d []byte) (c *jpegdec.Coefficients, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("jpeg coefficient reader panic: %v", r)
		}
	}()
	return jpegdec.ReadCoefficients(d)
}

// editPixels decodes src at full size, turns and crops it into
// full-resolution planes, fills the redactions and encodes the result
// within the byte budget.
func (n *Normalizer) editPixels(ctx context.Context, src Source, head *jpegdec.Coefficients, e Edit, out *bytes.Buffer) (EditResult, error) {
	workers := editWorkers(n)
	region := e.Crop
	full := jpegtran.FrameOf(head).Rotated(e.Rotate)
	if region == (image.Rectangle{}) {
		region = full
	}
	gray := len(head.Comps) == 1
	ow, oh := region.Dx(), region.Dy()
	// The input, the decoder's planes and coefficient bands, the output
	// planes, and the encode working set (as a Normalize counts it).
	lay, err := jpegdec.Probe(src.Data, jpegdec.Options{Scale: 1, Concurrent: workers > 1})
	if err != nil {
		return EditResult{}, &Error{Kind: ErrCorrupt, Op: "edit", Format: src.Format, Width: src.Width, Height: src.Height, Err: err}
	}
	c := costModel{workers: workers}
	c.add(int64(cap(src.Data)) + fixedOverhead + int64(lay.CoefBytes))
	for _, p := range lay.Planes {
		c.add(poolBytes(p.Stride, p.Rows))
	}
	ps := planeSet{yw: ow, yh: oh, cw: ow, ch: oh, gray: gray}
	planes := int64(3)
	if gray {
		planes = 1
	}
	c.add(planes * poolBytes(ow, oh))
	c.resize(ps, orientation(1), max(ow, oh), !gray, n.cfg.budget)
	if c.total > n.cfg.decodeBudget {
		return EditResult{}, n.overBudget(src, c.total)
	}
	release, err := n.slot(ctx, c.total)
	if err != nil {
		return EditResult{}, err
	}
	defer release()
	pp := n.planePool()
	y, cb, cr, _, err := decodeScaledJPEG(src, 1, workers, pp)
	if err != nil {
		return EditResult{}, n.fail(ctx, "edit", src, err)
	}
	defer func() {
		for _, p := range []plane{y, cb, cr} {
			pp.put(p)
		}
	}()
	if err := ctx.Err(); err != nil {
		return EditResult{}, fmtErr("compress: %w", err)
	}
	pic := &goPicture{gray: gray, full: !gray, workers: workers, pool: pp}
	defer func() { _ = pic.Close() }()
	hmax, vmax := 1, 1
	for _, k := range head.Comps {
		hmax, vmax = max(hmax, k.H), max(vmax, k.V)
	}
	turn := func(in plane, h, v int) plane {
		o := pp.get(ow, oh)
		turnPlane(in, o, src.Width, src.Height, e.Rotate, region.Min, h, v, hmax, vmax, workers)
		return o
	}
	pic.y = turn(y, hmax, vmax)
	if !gray {
		pic.cb = turn(cb, head.Comps[1].H, head.Comps[1].V)
		pic.cr = turn(cr, head.Comps[2].H, head.Comps[2].V)
	}
	for _, r := range e.Redact {
		r = r.Intersect(region).Sub(region.Min)
		fillRect(pic.y, r, 0)
		if !gray {
			fillRect(pic.cb, r, 128)
			fillRect(pic.cr, r, 128)
		}
	}
	if err := ctx.Err(); err != nil {
		return EditResult{}, fmtErr("compress: %w", err)
	}
	q, fitted, err := n.fit(ctx, pic, out)
	if fitted != Picture(pic) {
		defer func() { _ = fitted.Close() }()
	}
	if err != nil {
		return EditResult{}, n.fail(ctx, "encode", src, err)
	}
	w, h := fitted.Size()
	return EditResult{Width: w, Height: h, Region: region, Quality: q}, nil
}

// editWorkers is the engine's worker count for one image.
func editWorkers(n *Normalizer) int {
	if g, ok := n.cfg.engine.(*GoEngine); ok {
		return g.nworkers()
	}
	return (&GoEngine{}).nworkers()
}

// planePool returns the engine's plane pool, or nil (plain allocations)
// for another engine.
func (n *Normalizer) planePool() *planePool {
	if g, ok := n.cfg.engine.(*GoEngine); ok {
		return &g.pool
	}
	return nil
}

// turnPlane fills out (ow x oh, the region of the rotated picture whose
// corner is at org) from in, a component sampled h x v of hmax x vmax in
// a w x ht picture: nearest sample, as a JPEG decoder without fancy
// upsampling shows it.
func turnPlane(in, out plane, w, ht, rotate int, org image.Point, h, v, hmax, vmax, workers int) {
	parallelRows(out.h, workers, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			row := out.row(j)
			ry := org.Y + j
			for i := range row {
				rx := org.X + i
				var sx, sy int
				switch rotate {
				case 0:
					sx, sy = rx, ry
				case 90:
					sx, sy = ry, ht-1-rx
				case 180:
					sx, sy = w-1-rx, ht-1-ry
				default: // 270
					sx, sy = w-1-ry, rx
				}
				row[i] = in.pix[(sy*v/vmax)*in.stride+sx*h/hmax]
			}
		}
	})
}

// fillRect sets r (clipped to p) to c.
func fillRect(p plane, r image.Rectangle, c byte) {
	r = r.Intersect(image.Rect(0, 0, p.w, p.h))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := p.row(y)[r.Min.X:r.Max.X]
		for i := range row {
			row[i] = c
		}
	}
}
