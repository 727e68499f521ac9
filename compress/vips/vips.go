//go:build vips && cgo

package vips

/*
#cgo pkg-config: vips libjpeg
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <vips/vips.h>

// ci_preinit does the one thing vips_init does that is unsafe while other
// threads run C code: vips_guess_prefix sets $VIPSHOME (only when it is
// unset) with setenv. Done here, synchronously, with the argv0 that
// ci_init passes, so that vips_init finds it set and writes nothing while a
// JPEG decode may be calling getenv on another thread.
static void ci_preinit(void) { (void) vips_guess_prefix("clinicalimages", "VIPSHOME"); }

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

// The JPEG decoder used before libvips is ready: libjpeg itself, with the
// settings libvips' jpegload uses (scale 1/shrink, default IDCT and
// upsampling), so the pixels are the same. Truncated data is an error, as
// with jpegload's fail_on=truncated; other warnings are not, unless there
// are 100 of them.
typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jmp;
	char *msg;
} ci_jerr;

static void ci_jerr_exit(j_common_ptr c) {
	ci_jerr *e = (ci_jerr *) c->err;
	(*c->err->format_message)(c, e->msg);
	longjmp(e->jmp, 1);
}

static void ci_jerr_emit(j_common_ptr c, int level) {
	if (level >= 0) return; // trace messages
	if (c->err->msg_code == JWRN_JPEG_EOF || ++c->err->num_warnings >= 100) ci_jerr_exit(c);
}

// ci_jpeg_decode decodes a JPEG at 1/shrink scale into malloc'd 8-bit
// pixels (3 bands RGB or 1 band grey) and its ICC profile (malloc'd, or
// NULL). It returns 0 on success, 1 for a colour space it leaves to
// libvips' loader (CMYK, YCCK), -1 on error with the reason in msg
// (JMSG_LENGTH_MAX bytes). It needs no libvips and may run during vips_init.
static int ci_jpeg_decode(const void *buf, size_t len, int shrink, unsigned char **pix,
		int *w, int *h, int *bands, unsigned char **icc, unsigned int *icclen, char *msg) {
	struct jpeg_decompress_struct cinfo;
	ci_jerr jerr;
	unsigned char *volatile out = NULL;
	JOCTET *volatile prof = NULL;
	unsigned int proflen = 0;

	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = ci_jerr_exit;
	jerr.pub.emit_message = ci_jerr_emit;
	jerr.msg = msg;
	jpeg_create_decompress(&cinfo);
	if (setjmp(jerr.jmp)) {
		jpeg_destroy_decompress(&cinfo);
		free(out);
		free(prof);
		return -1;
	}
	jpeg_mem_src(&cinfo, (const unsigned char *) buf, len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
	jpeg_read_header(&cinfo, TRUE);
	if (cinfo.out_color_space != JCS_RGB && cinfo.out_color_space != JCS_GRAYSCALE) {
		jpeg_destroy_decompress(&cinfo);
		return 1;
	}
	{
		JOCTET *p = NULL;
		if (jpeg_read_icc_profile(&cinfo, &p, &proflen)) prof = p;
	}
	cinfo.scale_num = 1;
	cinfo.scale_denom = shrink;
	jpeg_start_decompress(&cinfo);
	size_t stride = (size_t) cinfo.output_width * cinfo.output_components;
	out = malloc(stride * cinfo.output_height);
	if (out == NULL) {
		snprintf(msg, JMSG_LENGTH_MAX, "out of memory");
		jpeg_destroy_decompress(&cinfo);
		free(prof);
		return -1;
	}
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW rows[16];
		JDIMENSION n = cinfo.output_height - cinfo.output_scanline;
		if (n > 16) n = 16;
		for (JDIMENSION i = 0; i < n; i++) rows[i] = out + (cinfo.output_scanline + i) * stride;
		jpeg_read_scanlines(&cinfo, rows, n);
	}
	// Like jpegload: round the size down (libjpeg rounds up, and the extra
	// column and row are partly made up), and no jpeg_finish_decompress, it
	// only checks the tail.
	int ow = cinfo.image_width / shrink, oh = cinfo.image_height / shrink;
	size_t ostride = (size_t) ow * cinfo.output_components;
	if (ostride != stride)
		for (int y = 1; y < oh; y++) memmove(out + y * ostride, out + y * stride, ostride);
	*pix = out;
	*w = ow;
	*h = oh;
	*bands = cinfo.output_components;
	*icc = prof;
	*icclen = proflen;
	jpeg_destroy_decompress(&cinfo);
	return 0;
}

static void ci_free_pixels(VipsImage *im, void *pix) { free(pix); }

// ci_wrap makes a VipsImage of pixels from ci_jpeg_decode, which it frees
// when the image closes (and at once on failure).
static VipsImage *ci_wrap(unsigned char *pix, int w, int h, int bands, const void *icc, size_t icclen) {
	VipsImage *im = vips_image_new_from_memory(pix, (size_t) w * h * bands, w, h, bands, VIPS_FORMAT_UCHAR);
	if (im == NULL) {
		free(pix);
		return NULL;
	}
	g_signal_connect(im, "postclose", G_CALLBACK(ci_free_pixels), pix);
	im->Type = bands == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;
	if (icc != NULL) vips_image_set_blob_copy(im, VIPS_META_ICC_NAME, icc, icclen);
	return im;
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
static int ci_is_uchar(VipsImage *in) { return in->BandFmt == VIPS_FORMAT_UCHAR; }
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
	"runtime"
	"sync"
	"unsafe"

	"github.com/clinicpro/clinicalimages/compress"
)

// libvips' process-wide initialisation must happen exactly once per
// process. It runs in the background from the first New (or Decode), so
// that its cost, mostly loading libvips' optional modules and the
// libraries they pull in (heif, jxl, magick, openslide, poppler), overlaps
// the first JPEG decode, which libjpeg does without libvips.
var (
	initStart sync.Once
	initDone  = make(chan struct{})
	initErr   error // written before initDone is closed
)

func startInit() {
	initStart.Do(func() {
		C.ci_preinit()
		go func() {
			defer close(initDone)
			if C.ci_init() != 0 {
				initErr = fmt.Errorf("vips: init: %s", lastError())
			}
		}()
	})
}

// ready waits for libvips' initialisation and returns its error.
func ready() error {
	startInit()
	<-initDone
	return initErr
}

// Engine is the libvips [compress.Engine]. It is safe for concurrent use.
type Engine struct{}

var _ compress.Engine = (*Engine)(nil)

// New starts libvips' one-time initialisation in the background and
// returns the engine without waiting for it; Decode waits. An
// initialisation failure is returned by Decode, and by New once known.
func New() (*Engine, error) {
	startInit()
	select {
	case <-initDone:
		if initErr != nil {
			return nil, initErr
		}
	default:
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

// image owns one VipsImage reference. lazy reports that it is an
// unevaluated pipeline rather than pixels in memory.
type image struct {
	p    *C.VipsImage
	lazy bool
}

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
	cur.lazy = true
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

// Decode implements [compress.Engine].
func (e *Engine) Decode(ctx context.Context, src compress.Source, longEdge int) (compress.Picture, error) {
	return decode(ctx, src, longEdge, true)
}

// decode is Decode; libjpeg false leaves JPEGs to libvips' jpegload too
// (for the test that both give the same pixels).
func decode(ctx context.Context, src compress.Source, longEdge int, libjpeg bool) (compress.Picture, error) {
	code, ok := formatCode(src.Format)
	if !ok || len(src.Data) == 0 {
		return nil, errors.New("vips: unsupported format")
	}
	startInit()
	shrink := 1
	if src.Format == compress.JPEG {
		shrink = compress.DCTScale(max(src.Width, src.Height), longEdge)
	}
	cur := &image{}
	defer cur.close()
	if src.Format == compress.JPEG && libjpeg {
		if err := decodeJPEG(cur, src.Data, shrink); err != nil {
			return nil, err
		}
	}
	if err := ready(); err != nil {
		return nil, err
	}
	if cur.p == nil {
		// libvips loads lazily and reads the data until the pipeline is
		// copied to memory below, so the data stays pinned until then
		// (deferred before cur.close, so it runs after).
		var pin runtime.Pinner
		defer pin.Unpin()
		pin.Pin(&src.Data[0])
		buf := unsafe.Pointer(&src.Data[0])
		if C.ci_load(code, buf, C.size_t(len(src.Data)), C.int(shrink), &cur.p) != 0 {
			return nil, fmt.Errorf("vips: load: %s", lastError())
		}
		cur.lazy = true
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
	p := &picture{im: image{p: cur.p}}
	cur.p = nil
	return p, nil
}

// decodeJPEG decodes data with libjpeg, without waiting for libvips'
// initialisation, and leaves the pixels in cur as an in-memory image. It
// leaves cur empty for the colour spaces it does not handle (CMYK, YCCK),
// which libvips' own loader then reads.
func decodeJPEG(cur *image, data []byte, shrink int) error {
	var (
		pix         *C.uchar
		icc         *C.uchar
		w, h, bands C.int
		iccLen      C.uint
		msg         [C.JMSG_LENGTH_MAX]C.char
	)
	switch C.ci_jpeg_decode(unsafe.Pointer(&data[0]), C.size_t(len(data)), C.int(shrink),
		&pix, &w, &h, &bands, &icc, &iccLen, &msg[0]) {
	case 1:
		return nil
	case -1:
		return fmt.Errorf("vips: load: jpeg: %s", C.GoString(&msg[0]))
	}
	defer C.free(unsafe.Pointer(icc))
	if err := ready(); err != nil {
		C.free(unsafe.Pointer(pix))
		return err
	}
	if cur.p = C.ci_wrap(pix, w, h, bands, unsafe.Pointer(icc), C.size_t(iccLen)); cur.p == nil {
		return fmt.Errorf("vips: load: %s", lastError())
	}
	return nil
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
	if C.ci_is_uchar(cur.p) != 0 {
		return nil
	}
	return step(cur, "cast", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_cast_uchar(in, out) })
}

// materialise evaluates cur's pipeline into memory, unless it is there.
func materialise(cur *image) error {
	if !cur.lazy {
		return nil
	}
	err := step(cur, "decode", func(in *C.VipsImage, out **C.VipsImage) C.int {
		*out = C.vips_image_copy_memory(in)
		if *out == nil {
			return -1
		}
		return 0
	})
	cur.lazy = false
	return err
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
	q := &image{p: out, lazy: true}
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
