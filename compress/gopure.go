package compress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"runtime"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegenc"
	"golang.org/x/image/webp"
)

// GoEngine is the pure-Go [Engine], the default: it builds with
// CGO_ENABLED=0. It decodes baseline JPEGs with its own decoder
// (compress/internal/jpegdec), at the reduced scale [DCTScale] allows, other
// JPEGs, PNG, GIF and WebP with the standard library and x/image/webp, and
// any other format with the [Source.Decoder] registered by [WithDecoder]
// (HEIC, through package compress/heic). It resizes with a
// separable Lanczos-3 filter in fixed point, working directly on the
// decoder's Y, Cb and Cr planes (no RGBA copy of a JPEG), in parallel across
// cores. Orientation is folded into the resize as flips plus a transpose of
// the small output. A GoEngine is safe for concurrent use.
type GoEngine struct {
	workers int
	lut     *[encodeLUTSize + 1]uint8
	pool    planePool
}

var _ Engine = (*GoEngine)(nil)

// NewGoEngine returns the pure-Go engine using up to workers goroutines per
// image (0 means GOMAXPROCS at each call).
func NewGoEngine(workers int) *GoEngine {
	return &GoEngine{workers: max(workers, 0), lut: srgbEncodeLUT()}
}

// Name returns "go".
func (e *GoEngine) Name() string { return "go" }

func (e *GoEngine) nworkers() int {
	if e.workers > 0 {
		return e.workers
	}
	return runtime.GOMAXPROCS(0)
}

// Decode implements [Engine].
func (e *GoEngine) Decode(ctx context.Context, src Source, longEdge int) (Picture, error) {
	workers := e.nworkers()
	pp := &e.pool
	y, cb, cr, gray, err := decodePlanes(src, longEdge, workers, pp)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		for _, p := range []plane{y, cb, cr} {
			pp.put(p)
		}
		return nil, err
	}
	o := orientation(src.Orientation)
	sw, sh := fitLongEdge(y.w, y.h, longEdge)
	ct := parseICC(src.ICC)
	p := &goPicture{gray: gray, workers: workers, pool: pp}
	// resize releases what it no longer needs: a pooled source plane (a
	// converted PNG) once it is resized, unless the result is the source.
	// With a transpose to do, the flips are done by it (for free), not by
	// the resize (where they would cost a copy when the size stays).
	rflipX, rflipY := o.flipX && !o.transpose, o.flipY && !o.transpose
	resize := func(in plane, w, h int) plane {
		out := resizePlane(in, w, h, rflipX, rflipY, workers, pp)
		if !samePixels(out, in) {
			pp.put(in)
		}
		return out
	}
	p.y = resize(y, sw, sh)
	if !gray {
		cw, ch := (sw+1)/2, (sh+1)/2
		if ct != nil { // convert at full chroma resolution
			cw, ch = sw, sh
			p.full = true
		}
		p.cb = resize(cb, cw, ch)
		p.cr = resize(cr, cw, ch)
	}
	if err := ctx.Err(); err != nil {
		_ = p.Close()
		return nil, err
	}
	if o.transpose {
		transpose := func(in plane) plane {
			out := transposePlane(in, o.flipX, o.flipY, workers, pp)
			pp.put(in)
			return out
		}
		p.y = transpose(p.y)
		if !gray {
			p.cb = transpose(p.cb)
			p.cr = transpose(p.cr)
		}
	}
	if ct != nil && !gray {
		convertColour(p.y, p.cb, p.cr, ct, e.lut, workers)
	}
	return p, nil
}

// DCTScale returns the largest JPEG DCT-domain reduction (8, 4 or 2, else
// 1) that turns a picture whose longer side is long into one whose longer
// side still reaches 95% of limit, the least an [Engine] may return. The
// pure-Go engine decodes JPEGs at this scale: a 4032 px photo and a 2048 px
// limit decode at 1/2, to 2016 px, with no resize after.
func DCTScale(long, limit int) int {
	if long <= limit {
		return 1
	}
	for _, s := range []int{8, 4, 2} {
		if float64((long+s-1)/s) >= 0.95*float64(limit) {
			return s
		}
	}
	return 1
}

// decodePlanes decodes src to Y, Cb and Cr planes (or one grey plane). A
// baseline JPEG is decoded by internal/jpegdec straight to planes, at the
// reduced scale DCTScale allows; everything else by the standard decoders
// at full scale.
func decodePlanes(src Source, longEdge, workers int, pp *planePool) (y, cb, cr plane, gray bool, err error) {
	if src.Format == JPEG {
		y, cb, cr, gray, err = decodeScaledJPEG(src, DCTScale(max(src.Width, src.Height), longEdge), workers, pp)
		if !errors.Is(err, jpegdec.ErrUnsupported) {
			return y, cb, cr, gray, err
		}
	}
	img, err := decodeImage(src)
	if err != nil {
		return plane{}, plane{}, plane{}, false, err
	}
	b := img.Bounds()
	if b.Empty() || int64(b.Dx())*int64(b.Dy()) > int64(max(src.Width, 1))*int64(max(src.Height, 1)) {
		return plane{}, plane{}, plane{}, false, fmt.Errorf("decoded size %dx%d exceeds the declared %dx%d", b.Dx(), b.Dy(), src.Width, src.Height)
	}
	// Read as JFIF from here on: VP8's limited range and a HEIF's nclx
	// matrix and range become full-range BT.601, in place.
	switch m := img.(type) {
	case *image.YCbCr:
		toJFIF(m, src.YCbCr, workers)
	case *image.NYCbCrA:
		toJFIF(&m.YCbCr, src.YCbCr, workers)
	}
	y, cb, cr, gray = toPlanes(img, workers, pp)
	return y, cb, cr, gray, nil
}

// decodeScaledJPEG decodes a JPEG at 1/scale (1, 2, 4 or 8) into pooled
// planes.
func decodeScaledJPEG(src Source, scale, workers int, pp *planePool) (y, cb, cr plane, gray bool, err error) {
	var got []plane // in allocation order, which is component order
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jpeg decoder panic: %v", r)
		}
		if err != nil {
			for _, p := range got {
				pp.put(p)
			}
		}
	}()
	img, err := jpegdec.Decode(src.Data, jpegdec.Options{Scale: scale, Concurrent: workers > 1, Alloc: func(w, h int) []byte {
		p := pp.get(w, h)
		got = append(got, p)
		return p.pix
	}})
	if err != nil {
		return plane{}, plane{}, plane{}, false, err
	}
	if img.Width != src.Width || img.Height != src.Height || len(got) != len(img.Planes) {
		return plane{}, plane{}, plane{}, false, fmt.Errorf("decoded size %dx%d differs from the declared %dx%d", img.Width, img.Height, src.Width, src.Height)
	}
	ps := make([]plane, len(got))
	for i, p := range img.Planes {
		ps[i] = plane{w: p.W, h: p.H, stride: p.Stride, pix: p.Pix, pooled: got[i].pooled}
	}
	if len(ps) == 1 {
		return ps[0], plane{}, plane{}, true, nil
	}
	return ps[0], ps[1], ps[2], false, nil
}

// decodeImage decodes with the registered decoder, else the built-in one
// for the sniffed format. A decoder panic (none is known; this is a last
// line of defence for hostile input) becomes an error.
func decodeImage(src Source) (img image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%s decoder panic: %v", src.Format, r)
		}
	}()
	r := bytes.NewReader(src.Data)
	if src.Decoder != nil {
		img, err := src.Decoder(r)
		if err == nil && img == nil {
			err = errors.New("decoder returned no image")
		}
		return img, err
	}
	switch src.Format {
	case JPEG:
		return jpeg.Decode(r)
	case PNG:
		return png.Decode(r)
	case GIF:
		return gif.Decode(r)
	case WebP:
		return webp.Decode(r)
	}
	return nil, fmt.Errorf("no %s decoder (compress.WithDecoder)", src.Format)
}

// toPlanes exposes img as Y, Cb, Cr planes, without copying when img is
// already planar (JPEG, lossy WebP, HEIC through libheif), converting and flattening any
// alpha onto white otherwise. gray reports a single Y plane.
func toPlanes(img image.Image, workers int, pp *planePool) (y, cb, cr plane, gray bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := img.(type) {
	case *image.YCbCr:
		if cw, ch, ok := chromaSize(w, h, m.SubsampleRatio); ok {
			y = plane{w: w, h: h, stride: m.YStride, pix: m.Y[m.YOffset(b.Min.X, b.Min.Y):]}
			co := m.COffset(b.Min.X, b.Min.Y)
			cb = plane{w: cw, h: ch, stride: m.CStride, pix: m.Cb[co:]}
			cr = plane{w: cw, h: ch, stride: m.CStride, pix: m.Cr[co:]}
			return y, cb, cr, false
		}
	case *image.Gray:
		return plane{w: w, h: h, stride: m.Stride, pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):]}, plane{}, plane{}, true
	case *image.NYCbCrA:
		if cw, ch, ok := chromaSize(w, h, m.SubsampleRatio); ok {
			return flattenNYCbCrA(m, w, h, cw, ch, workers, pp)
		}
	}
	if g, ok := img.(*image.Gray16); ok { // 16-bit grey PNG: keep the high byte
		y = pp.get(w, h)
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				px := g.Pix[g.PixOffset(b.Min.X, b.Min.Y+j):]
				row := y.row(j)
				for i := range row {
					row[i] = px[2*i]
				}
			}
		})
		return y, plane{}, plane{}, true
	}
	if isGray(img) {
		y = pp.get(w, h)
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				row := y.row(j)
				for i := range row {
					r, _, _, a := img.At(b.Min.X+i, b.Min.Y+j).RGBA()
					row[i] = uint8((r + 0xffff - a) >> 8)
				}
			}
		})
		return y, plane{}, plane{}, true
	}
	y, cb, cr = pp.get(w, h), pp.get(w, h), pp.get(w, h)
	put := func(j, i int, r, g, bb uint8) {
		yy, u, v := color.RGBToYCbCr(r, g, bb)
		y.pix[j*w+i], cb.pix[j*w+i], cr.pix[j*w+i] = yy, u, v
	}
	// rows64 converts a 16-bit-per-channel layout (8 bytes a pixel) whose
	// first row starts pix, through px, the colour model's own conversion.
	rows64 := func(pix []byte, stride int, px func(p []byte) (r, g, b, a uint32)) {
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				row := pix[j*stride:]
				for i := 0; i < w; i++ {
					r, g, bb := over16(px(row[8*i : 8*i+8]))
					put(j, i, r, g, bb)
				}
			}
		})
	}
	switch m := img.(type) {
	case *image.NRGBA:
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				px := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+j):]
				for i := 0; i < w; i++ {
					p := px[4*i : 4*i+4]
					a := uint32(p[3])
					if a == 255 {
						put(j, i, p[0], p[1], p[2])
						continue
					}
					put(j, i, overWhite8(p[0], a), overWhite8(p[1], a), overWhite8(p[2], a))
				}
			}
		})
	case *image.RGBA:
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				px := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+j):]
				for i := 0; i < w; i++ {
					p := px[4*i : 4*i+4]
					k := 255 - p[3] // premultiplied: add white times (1 - alpha)
					put(j, i, p[0]+k, p[1]+k, p[2]+k)
				}
			}
		})
	case *image.Paletted:
		var pal [256][3]uint8
		for k, c := range m.Palette {
			if k < 256 {
				r, g, bb, a := c.RGBA()
				pal[k] = [3]uint8{uint8((r + 0xffff - a) >> 8), uint8((g + 0xffff - a) >> 8), uint8((bb + 0xffff - a) >> 8)}
			}
		}
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				px := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+j):]
				for i := 0; i < w; i++ {
					c := pal[px[i]]
					put(j, i, c[0], c[1], c[2])
				}
			}
		})
	// The 16-bit and CMYK layouts are read directly: through img.At every
	// pixel would box a colour value on the heap, garbage as large as the
	// image again for a 16-bit PNG.
	case *image.RGBA64:
		rows64(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, func(p []byte) (r, g, b, a uint32) {
			return color.RGBA64{R: be16(p[0:]), G: be16(p[2:]), B: be16(p[4:]), A: be16(p[6:])}.RGBA()
		})
	case *image.NRGBA64:
		rows64(m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, func(p []byte) (r, g, b, a uint32) {
			return color.NRGBA64{R: be16(p[0:]), G: be16(p[2:]), B: be16(p[4:]), A: be16(p[6:])}.RGBA()
		})
	case *image.CMYK:
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				px := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+j):]
				for i := 0; i < w; i++ {
					p := px[4*i : 4*i+4]
					r, g, bb := over16(color.CMYK{C: p[0], M: p[1], Y: p[2], K: p[3]}.RGBA())
					put(j, i, r, g, bb)
				}
			}
		})
	default: // anything else, through the colour model
		parallelRows(h, workers, func(lo, hi int) {
			for j := lo; j < hi; j++ {
				for i := 0; i < w; i++ {
					r, g, bb, a := img.At(b.Min.X+i, b.Min.Y+j).RGBA()
					k := 0xffff - a
					put(j, i, uint8((r+k)>>8), uint8((g+k)>>8), uint8((bb+k)>>8))
				}
			}
		})
	}
	return y, cb, cr, false
}

func be16(p []byte) uint16 { return uint16(p[0])<<8 | uint16(p[1]) }

// over16 composites a premultiplied 16-bit colour over white, to 8 bits.
func over16(r, g, b, a uint32) (uint8, uint8, uint8) {
	k := 0xffff - a
	return uint8((r + k) >> 8), uint8((g + k) >> 8), uint8((b + k) >> 8)
}

func isGray(img image.Image) bool {
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		return true
	}
	return false
}

// overWhite8 composites a non-premultiplied 8-bit channel over white.
func overWhite8(c uint8, a uint32) uint8 {
	return uint8((uint32(c)*a + 255*(255-a) + 127) / 255)
}

func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int, bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return w, h, true
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h, true
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2, true
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2, true
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h, true
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2, true
	}
	return 0, 0, false
}

func flattenNYCbCrA(m *image.NYCbCrA, w, h, cw, ch int, workers int, pp *planePool) (y, cb, cr plane, gray bool) {
	b := m.Bounds()
	y, cb, cr = pp.get(w, h), pp.get(cw, ch), pp.get(cw, ch)
	sx, sy := (w+cw-1)/cw, (h+ch-1)/ch
	parallelRows(h, workers, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			for i := 0; i < w; i++ {
				a := uint32(m.A[m.AOffset(b.Min.X+i, b.Min.Y+j)])
				y.pix[j*w+i] = overWhite8(m.Y[m.YOffset(b.Min.X+i, b.Min.Y+j)], a)
			}
		}
	})
	parallelRows(ch, workers, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			for i := 0; i < cw; i++ {
				lx, ly := min(i*sx, w-1), min(j*sy, h-1)
				a := uint32(m.A[m.AOffset(b.Min.X+lx, b.Min.Y+ly)])
				co := m.COffset(b.Min.X+lx, b.Min.Y+ly)
				// White is (255, 128, 128) in YCbCr.
				cb.pix[j*cw+i] = uint8((uint32(m.Cb[co])*a + 128*(255-a) + 127) / 255)
				cr.pix[j*cw+i] = uint8((uint32(m.Cr[co])*a + 128*(255-a) + 127) / 255)
			}
		}
	})
	return y, cb, cr, false
}

// convertColour converts full-resolution Y, Cb, Cr planes in place from the
// profile's RGB space to sRGB.
func convertColour(y, cb, cr plane, ct *colourTransform, lut *[encodeLUTSize + 1]uint8, workers int) {
	m := ct.m
	enc := func(v float32) uint8 {
		if v <= 0 {
			return 0
		}
		if v >= 1 {
			return 255
		}
		return lut[int(v*encodeLUTSize+0.5)]
	}
	parallelRows(y.h, workers, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			yr, br, rr := y.row(j), cb.row(j), cr.row(j)
			for i := range yr {
				r8, g8, b8 := color.YCbCrToRGB(yr[i], br[i], rr[i])
				lr, lg, lb := ct.lin[0][r8], ct.lin[1][g8], ct.lin[2][b8]
				r := enc(m[0]*lr + m[1]*lg + m[2]*lb)
				g := enc(m[3]*lr + m[4]*lg + m[5]*lb)
				b := enc(m[6]*lr + m[7]*lg + m[8]*lb)
				yr[i], br[i], rr[i] = color.RGBToYCbCr(r, g, b)
			}
		}
	})
}

var _ Picture = (*goPicture)(nil)

// goPicture is the GoEngine's [Picture]: planes ready for jpegenc.
type goPicture struct {
	y, cb, cr plane
	gray      bool
	full      bool // chroma at full resolution (4:4:4), else 4:2:0
	workers   int
	pool      *planePool
}

func (p *goPicture) Size() (int, int) { return p.y.w, p.y.h }

func (p *goPicture) EncodeJPEG(w io.Writer, quality int) error {
	if p.y.pix == nil {
		return errors.New("compress: picture is closed")
	}
	jp := func(q plane) jpegenc.Plane { return jpegenc.Plane{W: q.w, H: q.h, Stride: q.stride, Pix: q.pix} }
	return jpegenc.Encode(w, jpegenc.Image{Y: jp(p.y), Cb: jp(p.cb), Cr: jp(p.cr), Gray: p.gray}, quality, p.workers)
}

func (p *goPicture) Shrink(ctx context.Context, longEdge int) (Picture, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nw, nh := fitLongEdge(p.y.w, p.y.h, longEdge)
	q := &goPicture{gray: p.gray, full: p.full, workers: p.workers, pool: p.pool}
	q.y = p.shrinkPlane(p.y, nw, nh)
	if !p.gray {
		cw, ch := (nw+1)/2, (nh+1)/2
		if p.full {
			cw, ch = nw, nh
		}
		q.cb = p.shrinkPlane(p.cb, cw, ch)
		q.cr = p.shrinkPlane(p.cr, cw, ch)
	}
	return q, nil
}

// shrinkPlane resizes one of p's planes into a plane q owns outright (a
// copy when the size does not change), so p and q can be closed in any order.
func (p *goPicture) shrinkPlane(in plane, w, h int) plane {
	out := resizePlane(in, w, h, false, false, p.workers, p.pool)
	if samePixels(out, in) {
		c := p.pool.get(w, h)
		for y := 0; y < h; y++ {
			copy(c.row(y), in.row(y))
		}
		return c
	}
	return out
}

// Close returns the picture's pooled planes; a second call does nothing.
func (p *goPicture) Close() error {
	p.pool.put(p.y)
	p.pool.put(p.cb)
	p.pool.put(p.cr)
	p.y, p.cb, p.cr = plane{}, plane{}, plane{}
	return nil
}
