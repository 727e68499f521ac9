//go:build vips && cgo

package vips

/*
#cgo pkg-config: vips
#include <stdlib.h>
#include <vips/vips.h>

static int ci_init(void) {
	if (VIPS_INIT("clinicalimages")) return -1;
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_cache_set_max_files(0);
	return 0;
}

// Loaders, one per sniffed format; fail on truncation or corruption.
static int ci_load(int fmt, void *buf, size_t len, int shrink, VipsImage **out) {
	switch (fmt) {
	case 0: return vips_jpegload_buffer(buf, len, out, "shrink", shrink, "fail_on", VIPS_FAIL_ON_TRUNCATED, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
	case 1: return vips_pngload_buffer(buf, len, out, "fail_on", VIPS_FAIL_ON_TRUNCATED, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
	case 2: return vips_gifload_buffer(buf, len, out, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
	case 3: return vips_webpload_buffer(buf, len, out, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
	case 4: return vips_heifload_buffer(buf, len, out, "fail_on", VIPS_FAIL_ON_TRUNCATED, NULL);
	}
	vips_error("clinicalimages", "unknown format");
	return -1;
}

static int ci_resize(VipsImage *in, VipsImage **out, double scale) {
	return vips_resize(in, out, scale, "kernel", VIPS_KERNEL_LANCZOS3, NULL);
}

static int ci_icc_to_srgb(VipsImage *in, VipsImage **out) {
	return vips_icc_transform(in, out, "srgb", "embedded", TRUE, "intent", VIPS_INTENT_RELATIVE, "depth", 8, NULL);
}

static int ci_colourspace(VipsImage *in, VipsImage **out, VipsInterpretation space) {
	return vips_colourspace(in, out, space, NULL);
}

static int ci_cast_uchar(VipsImage *in, VipsImage **out) {
	return vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL);
}

static int ci_flatten_white(VipsImage *in, VipsImage **out) {
	double white[3] = {255, 255, 255};
	VipsArrayDouble *bg = vips_array_double_new(white, in->Bands - 1 >= 3 ? 3 : 1);
	int r = vips_flatten(in, out, "background", bg, NULL);
	vips_area_unref(VIPS_AREA(bg));
	return r;
}

static int ci_rot(VipsImage *in, VipsImage **out, VipsAngle a) { return vips_rot(in, out, a, NULL); }
static int ci_flip(VipsImage *in, VipsImage **out, VipsDirection d) { return vips_flip(in, out, d, NULL); }

static int ci_jpegsave(VipsImage *in, void **buf, size_t *len, int q) {
	return vips_jpegsave_buffer(in, buf, len, "Q", q, "strip", TRUE, "interlace", FALSE, "optimize_coding", FALSE, NULL);
}

static int ci_bands(VipsImage *in) { return in->Bands; }
static int ci_hasalpha(VipsImage *in) { return vips_image_hasalpha(in); }
static VipsInterpretation ci_interp(VipsImage *in) { return vips_image_guess_interpretation(in); }
static int ci_has_icc(VipsImage *in) { return vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0; }
static void ci_unref(VipsImage *in) { g_object_unref(in); }
static int ci_width(VipsImage *in) { return in->Xsize; }
static int ci_height(VipsImage *in) { return in->Ysize; }
static void ci_remove_icc(VipsImage *in) { vips_image_remove(in, VIPS_META_ICC_NAME); }
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"unsafe"

	"github.com/clinicpro/clinicalimages/compress"
)

// initOnce guards libvips' process-wide initialisation, which must happen
// exactly once per process.
var initOnce = sync.OnceValue(func() error {
	if C.ci_init() != 0 {
		return fmt.Errorf("vips: init: %s", lastError())
	}
	return nil
})

// Engine is the libvips [compress.Engine]. It is safe for concurrent use.
type Engine struct{}

var _ compress.Engine = (*Engine)(nil)

// New initialises libvips (once per process) and returns the engine.
func New() (*Engine, error) {
	if err := initOnce(); err != nil {
		return nil, err
	}
	return &Engine{}, nil
}

// Name returns "vips".
func (*Engine) Name() string { return "vips" }

// lastError returns and clears libvips' error buffer. The buffer is
// process-wide, so under concurrency a message may come from another call;
// it is only ever used as the detail of an error, never to decide.
func lastError() string {
	s := C.GoString(C.vips_error_buffer())
	C.vips_error_clear()
	if s == "" {
		return "unknown libvips error"
	}
	return s
}

// image owns one VipsImage reference.
type image struct{ p *C.VipsImage }

func (im *image) close() {
	if im != nil && im.p != nil {
		C.ci_unref(im.p)
		im.p = nil
	}
}

// step replaces cur by the result of op, releasing cur.
func step(cur *image, what string, op func(in *C.VipsImage, out **C.VipsImage) C.int) error {
	var out *C.VipsImage
	if op(cur.p, &out) != 0 {
		return fmt.Errorf("vips: %s: %s", what, lastError())
	}
	C.ci_unref(cur.p)
	cur.p = out
	return nil
}

func formatCode(f compress.Format) (C.int, bool) {
	switch f {
	case compress.JPEG:
		return 0, true
	case compress.PNG:
		return 1, true
	case compress.GIF:
		return 2, true
	case compress.WebP:
		return 3, true
	case compress.HEIC:
		return 4, true
	}
	return 0, false
}

// jpegShrink picks the largest DCT-domain shrink (8, 4, 2) whose result still
// reaches 95% of the limit.
func jpegShrink(long, limit int) int {
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

// Decode implements [compress.Engine].
func (e *Engine) Decode(ctx context.Context, src compress.Source, longEdge int) (compress.Picture, error) {
	code, ok := formatCode(src.Format)
	if !ok || len(src.Data) == 0 {
		return nil, errors.New("vips: unsupported format")
	}
	shrink := 1
	if src.Format == compress.JPEG {
		shrink = jpegShrink(max(src.Width, src.Height), longEdge)
	}
	// libvips loads lazily and keeps the buffer until the pipeline is
	// copied to memory below, so it gets C memory (cgo forbids C holding Go
	// pointers after a call returns). Freed after cur, deferred first.
	buf := C.CBytes(src.Data)
	defer C.free(buf)
	cur := &image{}
	defer cur.close()
	if C.ci_load(code, buf, C.size_t(len(src.Data)), C.int(shrink), &cur.p) != 0 {
		return nil, fmt.Errorf("vips: load: %s", lastError())
	}
	if long := max(int(C.ci_width(cur.p)), int(C.ci_height(cur.p))); long > longEdge {
		scale := float64(longEdge) / float64(long)
		if err := step(cur, "resize", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_resize(in, out, C.double(scale)) }); err != nil {
			return nil, err
		}
	}
	if err := toSRGB8(cur, len(src.ICC) > 0); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := materialise(cur); err != nil { // decode, resize and convert now
		return nil, err
	}
	// The rotation stays lazy: it is cheap next to the encode it feeds, and
	// copying the rotated picture again costs more than re-running it for
	// the rare extra encodes of the budget search.
	if err := orient(cur, src.Orientation); err != nil {
		return nil, err
	}
	p := &picture{im: image{cur.p}}
	cur.p = nil
	return p, nil
}

// toSRGB8 converts to 8-bit sRGB (or 8-bit grey), through the embedded ICC
// profile when there is one, and flattens alpha onto white.
func toSRGB8(cur *image, icc bool) error {
	if icc && C.ci_has_icc(cur.p) != 0 {
		if err := step(cur, "icc", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_icc_to_srgb(in, out) }); err != nil {
			// An unusable profile: fall back to treating the pixels as sRGB,
			// as the pure-Go engine does.
			C.ci_remove_icc(cur.p)
		}
	}
	if C.ci_hasalpha(cur.p) != 0 {
		if err := step(cur, "flatten", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_flatten_white(in, out) }); err != nil {
			return err
		}
	}
	switch C.ci_interp(cur.p) {
	case C.VIPS_INTERPRETATION_sRGB, C.VIPS_INTERPRETATION_B_W:
	case C.VIPS_INTERPRETATION_GREY16:
		if err := step(cur, "colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ci_colourspace(in, out, C.VIPS_INTERPRETATION_B_W)
		}); err != nil {
			return err
		}
	default:
		if err := step(cur, "colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ci_colourspace(in, out, C.VIPS_INTERPRETATION_sRGB)
		}); err != nil {
			return err
		}
	}
	return step(cur, "cast", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_cast_uchar(in, out) })
}

func materialise(cur *image) error {
	return step(cur, "decode", func(in *C.VipsImage, out **C.VipsImage) C.int {
		*out = C.vips_image_copy_memory(in)
		if *out == nil {
			return -1
		}
		return 0
	})
}

// orient applies EXIF orientation o as rotations and flips.
func orient(cur *image, o int) error {
	rot := func(a C.VipsAngle) error {
		return step(cur, "rotate", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_rot(in, out, a) })
	}
	flipH := func() error {
		return step(cur, "flip", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ci_flip(in, out, C.VIPS_DIRECTION_HORIZONTAL)
		})
	}
	switch o {
	case 2:
		return flipH()
	case 3:
		return rot(C.VIPS_ANGLE_D180)
	case 4:
		return step(cur, "flip", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.ci_flip(in, out, C.VIPS_DIRECTION_VERTICAL)
		})
	case 5:
		if err := rot(C.VIPS_ANGLE_D90); err != nil {
			return err
		}
		return flipH()
	case 6:
		return rot(C.VIPS_ANGLE_D90)
	case 7:
		if err := rot(C.VIPS_ANGLE_D270); err != nil {
			return err
		}
		return flipH()
	case 8:
		return rot(C.VIPS_ANGLE_D270)
	}
	return nil
}

// picture is a decoded image in libvips memory.
type picture struct{ im image }

var _ compress.Picture = (*picture)(nil)

func (p *picture) Size() (int, int) {
	if p.im.p == nil {
		return 0, 0
	}
	return int(C.ci_width(p.im.p)), int(C.ci_height(p.im.p))
}

func (p *picture) EncodeJPEG(w io.Writer, quality int) error {
	if p.im.p == nil {
		return errors.New("vips: picture is closed")
	}
	var buf unsafe.Pointer
	var n C.size_t
	if C.ci_jpegsave(p.im.p, &buf, &n, C.int(quality)) != 0 {
		return fmt.Errorf("vips: jpegsave: %s", lastError())
	}
	defer C.g_free(C.gpointer(buf))
	_, err := w.Write(unsafe.Slice((*byte)(buf), int(n)))
	return err
}

func (p *picture) Shrink(ctx context.Context, longEdge int) (compress.Picture, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, h := p.Size()
	scale := float64(longEdge) / float64(max(w, h))
	if scale >= 1 {
		return nil, errors.New("vips: Shrink must make the picture smaller")
	}
	// Round so the long edge lands on longEdge despite libvips' rounding.
	scale = math.Min(scale, (float64(longEdge)+0.49)/float64(max(w, h)))
	var out *C.VipsImage
	if C.ci_resize(p.im.p, &out, C.double(scale)) != 0 {
		return nil, fmt.Errorf("vips: resize: %s", lastError())
	}
	q := &image{out}
	if err := materialise(q); err != nil {
		q.close()
		return nil, err
	}
	return &picture{im: *q}, nil
}

func (p *picture) Close() error {
	p.im.close()
	return nil
}
