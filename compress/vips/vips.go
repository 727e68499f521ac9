//go:build vips && cgo

package vips

/*
#cgo pkg-config: vips libjpeg
#cgo LDFLAGS: -Wl,--as-needed
#define _GNU_SOURCE // pthread_rwlockattr_setkind_np
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <vips/vips.h>

// libvips is not linked but opened with dlopen in the background: loading
// it and the hundred libraries it needs costs about 20 ms, which would
// otherwise be spent before main. Every libvips function used below goes
// through a pointer that ci_init sets (the defines after the list make the
// calls read as usual), so the binary has no reference to libvips and the
// linker, with --as-needed, records no dependency on it. GLib and GObject
// are linked as usual (about a millisecond).
#define CI_FUNCS(X) X(vips_version) X(vips_init) X(vips_guess_prefix) X(vips_cache_set_max) \
	X(vips_cache_set_max_mem) X(vips_cache_set_max_files) X(vips_error) X(vips_error_buffer) \
	X(vips_error_clear) X(vips_jpegload_buffer) X(vips_pngload_buffer) X(vips_gifload_buffer) \
	X(vips_webpload_buffer) X(vips_heifload_buffer) X(vips_image_new_from_memory) \
	X(vips_image_set_blob_copy) X(vips_resize) X(vips_icc_transform) X(vips_colourspace) \
	X(vips_cast) X(vips_array_double_new) X(vips_area_unref) X(vips_flatten) X(vips_rot) \
	X(vips_flip) X(vips_jpegsave_buffer) X(vips_image_hasalpha) \
	X(vips_image_guess_interpretation) X(vips_image_get_typeof) X(vips_image_remove) \
	X(vips_image_copy_memory)
#define CI_DECL(f) static __typeof__(f) *ci_p_##f;
CI_FUNCS(CI_DECL)
#define vips_version ci_p_vips_version
#define vips_init ci_p_vips_init
#define vips_guess_prefix ci_p_vips_guess_prefix
#define vips_cache_set_max ci_p_vips_cache_set_max
#define vips_cache_set_max_mem ci_p_vips_cache_set_max_mem
#define vips_cache_set_max_files ci_p_vips_cache_set_max_files
#define vips_error ci_p_vips_error
#define vips_error_buffer ci_p_vips_error_buffer
#define vips_error_clear ci_p_vips_error_clear
#define vips_jpegload_buffer ci_p_vips_jpegload_buffer
#define vips_pngload_buffer ci_p_vips_pngload_buffer
#define vips_gifload_buffer ci_p_vips_gifload_buffer
#define vips_webpload_buffer ci_p_vips_webpload_buffer
#define vips_heifload_buffer ci_p_vips_heifload_buffer
#define vips_image_new_from_memory ci_p_vips_image_new_from_memory
#define vips_image_set_blob_copy ci_p_vips_image_set_blob_copy
#define vips_resize ci_p_vips_resize
#define vips_icc_transform ci_p_vips_icc_transform
#define vips_colourspace ci_p_vips_colourspace
#define vips_cast ci_p_vips_cast
#define vips_array_double_new ci_p_vips_array_double_new
#define vips_area_unref ci_p_vips_area_unref
#define vips_flatten ci_p_vips_flatten
#define vips_rot ci_p_vips_rot
#define vips_flip ci_p_vips_flip
#define vips_jpegsave_buffer ci_p_vips_jpegsave_buffer
#define vips_image_hasalpha ci_p_vips_image_hasalpha
#define vips_image_guess_interpretation ci_p_vips_image_guess_interpretation
#define vips_image_get_typeof ci_p_vips_image_get_typeof
#define vips_image_remove ci_p_vips_image_remove
#define vips_image_copy_memory ci_p_vips_image_copy_memory

// ci_env orders the one environment write of vips_init (vips_guess_prefix
// sets $VIPSHOME with setenv when it is unset) against this package's
// libjpeg calls, which read the environment (JPEGMEM, JSIMD_*) while a
// decompressor or compressor is created and started: they hold it for
// reading until that write is done (ci_env_set), and not at all after.
// Writers are preferred, so a stream of decodes cannot hold off the init.
static pthread_rwlock_t ci_env;
static pthread_once_t ci_env_once = PTHREAD_ONCE_INIT;
static int ci_env_set;

static void ci_env_init(void) {
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
#ifdef __GLIBC__
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	pthread_rwlock_init(&ci_env, &a);
	pthread_rwlockattr_destroy(&a);
}

// ci_env_rdlock takes ci_env for reading if the write may be to come, and
// returns whether it did.
static int ci_env_rdlock(void) {
	if (__atomic_load_n(&ci_env_set, __ATOMIC_ACQUIRE)) return 0;
	pthread_once(&ci_env_once, ci_env_init);
	pthread_rwlock_rdlock(&ci_env);
	return 1;
}

// ci_init opens libvips, looks up its functions and initialises it. It
// returns 0, -1 with the reason in msg (256 bytes), or -2 with the reason
// in libvips' error buffer.
static int ci_init(char *msg) {
	void *h = dlopen("libvips.so.42", RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		snprintf(msg, 256, "%s", dlerror());
		return -1;
	}
#define CI_SYM(f) if ((ci_p_##f = (__typeof__(ci_p_##f)) dlsym(h, #f)) == NULL) { snprintf(msg, 256, "libvips has no %s", #f); return -1; }
	CI_FUNCS(CI_SYM)
	pthread_once(&ci_env_once, ci_env_init);
	pthread_rwlock_wrlock(&ci_env);
	(void) vips_guess_prefix("clinicalimages", "VIPSHOME");
	__atomic_store_n(&ci_env_set, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&ci_env);
	if (VIPS_INIT("clinicalimages")) return -2;
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_cache_set_max_files(0);
	return 0;
}

static const char *ci_error_buffer(void) { return vips_error_buffer(); }
static void ci_error_clear(void) { vips_error_clear(); }
static VipsImage *ci_copy_memory(VipsImage *in) { return vips_image_copy_memory(in); }

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
	volatile int locked = 0;

	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = ci_jerr_exit;
	jerr.pub.emit_message = ci_jerr_emit;
	jerr.msg = msg;
	locked = ci_env_rdlock();
	jpeg_create_decompress(&cinfo);
	if (setjmp(jerr.jmp)) {
		if (locked) pthread_rwlock_unlock(&ci_env);
		jpeg_destroy_decompress(&cinfo);
		free(out);
		free(prof);
		return -1;
	}
	jpeg_mem_src(&cinfo, (const unsigned char *) buf, len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
	jpeg_read_header(&cinfo, TRUE);
	if (cinfo.out_color_space != JCS_RGB && cinfo.out_color_space != JCS_GRAYSCALE) {
		if (locked) pthread_rwlock_unlock(&ci_env);
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
	if (locked) pthread_rwlock_unlock(&ci_env);
	locked = 0;
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

// The JPEG encoder for pictures in memory: libjpeg itself, with the
// settings jpegsave uses here (jpeg_set_defaults, jpeg_set_quality with
// baseline tables, 4:4:4 from quality 90, no JFIF header since the picture
// is stripped, fixed Huffman tables), so the coefficients are the same.
// ci_jpeg_strip encodes one horizontal strip of the upright picture, rows
// [y0, y1), as a JPEG of its own, rotating as it goes; the caller joins
// the strips with restart markers.
typedef struct {
	struct jpeg_destination_mgr pub;
	unsigned char *buf;
	size_t cap;
} ci_dest;

static void ci_dest_init(j_compress_ptr c) {
	ci_dest *d = (ci_dest *) c->dest;
	d->pub.next_output_byte = d->buf;
	d->pub.free_in_buffer = d->cap;
}

static boolean ci_dest_empty(j_compress_ptr c) {
	ci_dest *d = (ci_dest *) c->dest;
	unsigned char *nb = realloc(d->buf, d->cap * 2);
	if (nb == NULL) ERREXIT(c, JERR_OUT_OF_MEMORY);
	d->buf = nb;
	d->pub.next_output_byte = nb + d->cap;
	d->pub.free_in_buffer = d->cap;
	d->cap *= 2;
	return TRUE;
}

static void ci_dest_term(j_compress_ptr c) { (void) c; }

static void ci_jerr_quiet(j_common_ptr c, int level) { (void) c; (void) level; }

// CI_ROWS is how many rows ci_rows makes at once: for a rotation, each
// source row then gives CI_ROWS * bands contiguous bytes (three cache
// lines of RGB), not a fraction of one.
#define CI_ROWS 64

// ci_rows fills rows[0..n) with output rows y..y+n of src (sw x sh, bands
// 1 or 3, packed rows) seen in EXIF orientation o (1..8), pointing into
// src where a row is a source row as it is (orientations 1 and 4) and
// copying into scratch otherwise.
static void ci_rows(const unsigned char *src, int sw, int sh, int bands, int o, int y, int n,
		unsigned char *scratch, JSAMPROW *rows) {
	size_t sstride = (size_t) sw * bands;
	int transposed = o >= 5;
	int ow = transposed ? sh : sw;
	size_t ostride = (size_t) ow * bands;
	if (!transposed) {
		for (int i = 0; i < n; i++) {
			int sy = (o == 3 || o == 4) ? sh - 1 - (y + i) : y + i;
			const unsigned char *s = src + (size_t) sy * sstride;
			if (o == 1 || o == 4) {
				rows[i] = (JSAMPROW) s;
				continue;
			}
			unsigned char *d = scratch + i * ostride;
			rows[i] = d;
			const unsigned char *p = s + (size_t) (sw - 1) * bands;
			if (bands == 3)
				for (int x = 0; x < sw; x++, p -= 3, d += 3) { d[0] = p[0]; d[1] = p[1]; d[2] = p[2]; }
			else
				for (int x = 0; x < sw; x++) d[x] = s[sw - 1 - x];
		}
		return;
	}
	// Output row y is source column y (5, 6) or sw-1-y (7, 8); output
	// column x is source row x (5, 8) or sh-1-x (6, 7). The copy goes in
	// blocks of 16 source rows, whose n pixels (the same columns in each)
	// stay in L1 while the block's 16 output columns are written to each of
	// the n rows; the next block's source bytes are prefetched meanwhile, as
	// reading down the source is otherwise one cache miss after another.
	int c0 = (o == 5 || o == 6) ? y : sw - 1 - y, cstep = (o == 5 || o == 6) ? 1 : -1;
	int cmin = cstep > 0 ? c0 : c0 - (n - 1);
	size_t span = (size_t) n * bands;
	int rowdown = o == 5 || o == 8;
	for (int i = 0; i < n; i++) rows[i] = scratch + i * ostride;
	for (int xb = 0; xb < ow; xb += 16) {
		int xe = xb + 16 < ow ? xb + 16 : ow;
		const unsigned char *rp[16];
		for (int x = xb; x < xe; x++) rp[x - xb] = src + (size_t) (rowdown ? x : sh - 1 - x) * sstride + (size_t) c0 * bands;
		for (int x = xe; x < xe + 16 && x < ow; x++) {
			const unsigned char *p = src + (size_t) (rowdown ? x : sh - 1 - x) * sstride + (size_t) cmin * bands;
			for (size_t k = 0; k < span; k += 64) __builtin_prefetch(p + k);
			__builtin_prefetch(p + span - 1);
		}
		int m = xe - xb;
		for (int i = 0; i < n; i++) {
			unsigned char *d = scratch + i * ostride + (size_t) xb * bands;
			ptrdiff_t off = (ptrdiff_t) i * cstep * bands;
			if (bands == 3)
				for (int k = 0; k < m; k++, d += 3) {
					const unsigned char *p = rp[k] + off;
					d[0] = p[0]; d[1] = p[1]; d[2] = p[2];
				}
			else
				for (int k = 0; k < m; k++) d[k] = rp[k][off];
		}
	}
}

// ci_jpeg_strip writes output rows [y0, y1) of src as a baseline JPEG
// with the given restart interval (0 for none) into a malloc'd buffer. It
// returns 0, or -1 with the reason in msg (JMSG_LENGTH_MAX bytes).
static int ci_jpeg_strip(const unsigned char *src, int sw, int sh, int bands, int o, int y0, int y1,
		int q, unsigned int restart, unsigned char **out, size_t *outlen, char *msg) {
	struct jpeg_compress_struct cinfo;
	ci_jerr jerr;
	ci_dest dest;
	ci_dest *volatile dp = &dest; // read after longjmp through memory
	unsigned char *volatile scratch = NULL;
	volatile int locked = 0;
	int ow = o >= 5 ? sh : sw;

	dest.cap = (size_t) ow * (y1 - y0) * bands / 4 + 4096;
	dest.buf = malloc(dest.cap);
	if (dest.buf == NULL) {
		snprintf(msg, JMSG_LENGTH_MAX, "out of memory");
		return -1;
	}
	cinfo.err = jpeg_std_error(&jerr.pub);
	jerr.pub.error_exit = ci_jerr_exit;
	jerr.pub.emit_message = ci_jerr_quiet;
	jerr.msg = msg;
	locked = ci_env_rdlock();
	jpeg_create_compress(&cinfo);
	if (setjmp(jerr.jmp)) {
		if (locked) pthread_rwlock_unlock(&ci_env);
		jpeg_destroy_compress(&cinfo);
		free(dp->buf);
		free(scratch);
		return -1;
	}
	dest.pub.init_destination = ci_dest_init;
	dest.pub.empty_output_buffer = ci_dest_empty;
	dest.pub.term_destination = ci_dest_term;
	cinfo.dest = &dest.pub;
	cinfo.image_width = ow;
	cinfo.image_height = y1 - y0;
	cinfo.input_components = bands;
	cinfo.in_color_space = bands == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_set_defaults(&cinfo);
	cinfo.optimize_coding = FALSE;
	cinfo.restart_interval = restart;
	jpeg_set_quality(&cinfo, q, TRUE);
	if (q >= 90)
		for (int i = 0; i < bands; i++) cinfo.comp_info[i].h_samp_factor = cinfo.comp_info[i].v_samp_factor = 1;
	cinfo.write_JFIF_header = FALSE;
	jpeg_start_compress(&cinfo, TRUE);
	if (locked) pthread_rwlock_unlock(&ci_env);
	locked = 0;
	if (o != 1 && o != 4) {
		scratch = malloc((size_t) CI_ROWS * ow * bands);
		if (scratch == NULL) ERREXIT(&cinfo, JERR_OUT_OF_MEMORY);
	}
	JSAMPROW rows[CI_ROWS];
	for (int y = y0; y < y1; ) {
		int n = y1 - y < CI_ROWS ? y1 - y : CI_ROWS;
		ci_rows(src, sw, sh, bands, o, y, n, scratch, rows);
		jpeg_write_scanlines(&cinfo, rows, n);
		y += n;
	}
	jpeg_finish_compress(&cinfo);
	*out = dest.buf;
	*outlen = dest.cap - dest.pub.free_in_buffer;
	jpeg_destroy_compress(&cinfo);
	free(scratch);
	return 0;
}

// ci_pixels returns the packed 8-bit pixels of an image in memory with 1
// or 3 bands, or NULL for any other image.
static const unsigned char *ci_pixels(VipsImage *in) {
	if (in->BandFmt != VIPS_FORMAT_UCHAR || in->Coding != VIPS_CODING_NONE || (in->Bands != 1 && in->Bands != 3)) return NULL;
	if (in->dtype != VIPS_IMAGE_SETBUF && in->dtype != VIPS_IMAGE_SETBUF_FOREIGN) return NULL;
	return (const unsigned char *) in->data;
}

static int ci_bands(VipsImage *in) { return in->Bands; }
static int ci_is_uchar(VipsImage *in) { return in->BandFmt == VIPS_FORMAT_UCHAR; }
static int ci_hasalpha(VipsImage *in) { return vips_image_hasalpha(in); }
static VipsInterpretation ci_interp(VipsImage *in) { return vips_image_guess_interpretation(in); }
static int ci_has_icc(VipsImage *in) { return vips_image_get_typeof(in, VIPS_META_ICC_NAME) != 0; }
static void ci_unref(VipsImage *in) { g_object_unref(in); }
static void ci_ref(VipsImage *in) { g_object_ref(in); }
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
	"github.com/clinicpro/clinicalimages/compress/internal/jpegenc"
)

// libvips' process-wide initialisation must happen exactly once per
// process. It costs about 40 ms of CPU: opening libvips and the hundred
// libraries it needs, then loading its optional modules and theirs (heif,
// jxl, magick, openslide, poppler). It starts, in the background, with the
// first Decode that will need libvips, so that it overlaps that Decode's
// JPEG decode when there is one; a JPEG that libjpeg decodes straight to
// the picture (no resize beyond the DCT scaling, no ICC conversion, not
// CMYK) needs no libvips at all, and a process that only sees such JPEGs
// never opens it.
var (
	initStart sync.Once
	initDone  = make(chan struct{})
	initErr   error // written before initDone is closed
)

func startInit() {
	initStart.Do(func() {
		go func() {
			defer close(initDone)
			var msg [256]C.char
			switch C.ci_init(&msg[0]) {
			case -1:
				initErr = fmt.Errorf("vips: init: %s", C.GoString(&msg[0]))
			case -2:
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

// New returns the engine. libvips' one-time initialisation starts with the
// first Decode that needs libvips, which waits for it; an initialisation
// failure is returned by that Decode, and by New once known.
func New() (*Engine, error) {
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
	s := C.GoString(C.ci_error_buffer())
	C.ci_error_clear()
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
	shrink := 1
	if src.Format == compress.JPEG {
		shrink = compress.DCTScale(max(src.Width, src.Height), longEdge)
	}
	if src.Format != compress.JPEG || !libjpeg || len(src.ICC) > 0 || max(src.Width, src.Height)/shrink > longEdge {
		startInit() // libvips will be needed: open it while libjpeg decodes
	}
	// The rotation is left to EncodeJPEG, which reads the pixels rotated as
	// it encodes, so the rotated picture is never stored.
	o := src.Orientation
	if o < 1 || o > 8 {
		o = 1
	}
	cur := &image{}
	defer cur.close()
	if src.Format == compress.JPEG && libjpeg {
		r, err := decodeJPEG(src.Data, shrink)
		if err != nil {
			return nil, err
		}
		if r != nil {
			// Pixels that need neither a resize nor a colour conversion are
			// the picture as they are, without libvips or waiting for it.
			convert := len(src.ICC) > 0 && r.icc != nil
			if max(r.w, r.h) <= longEdge && !convert {
				C.free(unsafe.Pointer(r.icc))
				p := &picture{pix: r.pix, w: r.w, h: r.h, bands: r.bands, orient: o}
				if err := ctx.Err(); err != nil {
					p.Close()
					return nil, err
				}
				return p, nil
			}
			err := ready()
			if err == nil {
				if cur.p = C.ci_wrap(r.pix, C.int(r.w), C.int(r.h), C.int(r.bands), unsafe.Pointer(r.icc), C.size_t(r.iccLen)); cur.p == nil {
					err = fmt.Errorf("vips: load: %s", lastError())
				}
			} else {
				C.free(unsafe.Pointer(r.pix))
			}
			C.free(unsafe.Pointer(r.icc))
			if err != nil {
				return nil, err
			}
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
	p := newPicture(cur.p, o)
	cur.p = nil
	return p, nil
}

// rawJPEG is what libjpeg decoded: w x h pixels of 1 (grey) or 3 (RGB)
// bands, and the ICC profile, both malloc'd (icc may be nil).
type rawJPEG struct {
	pix, icc    *C.uchar
	iccLen      C.uint
	w, h, bands int
}

// decodeJPEG decodes data with libjpeg, without libvips. It returns nil
// for the colour spaces it does not handle (CMYK, YCCK), which libvips'
// own loader then reads.
func decodeJPEG(data []byte, shrink int) (*rawJPEG, error) {
	var (
		r           rawJPEG
		w, h, bands C.int
		msg         [C.JMSG_LENGTH_MAX]C.char
	)
	switch C.ci_jpeg_decode(unsafe.Pointer(&data[0]), C.size_t(len(data)), C.int(shrink),
		&r.pix, &w, &h, &bands, &r.icc, &r.iccLen, &msg[0]) {
	case 1:
		return nil, nil
	case -1:
		return nil, fmt.Errorf("vips: load: jpeg: %s", C.GoString(&msg[0]))
	}
	r.w, r.h, r.bands = int(w), int(h), int(bands)
	return &r, nil
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
		*out = C.ci_copy_memory(in)
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

// picture is a decoded image, stored as decoded: either in libvips memory
// (im) or, when it came straight from libjpeg and needed nothing from
// libvips, as libjpeg's malloc'd pixels (pix, with im empty). w, h and
// bands describe the stored pixels; orient is the EXIF orientation that
// makes them upright, applied by EncodeJPEG and Shrink.
type picture struct {
	im          image
	pix         *C.uchar
	w, h, bands int
	orient      int
}

func newPicture(im *C.VipsImage, orient int) *picture {
	return &picture{im: image{p: im}, w: int(C.ci_width(im)), h: int(C.ci_height(im)), bands: int(C.ci_bands(im)), orient: orient}
}

func (p *picture) closed() bool { return p.im.p == nil && p.pix == nil }

// vips makes sure the picture is in libvips memory, handing libjpeg's
// pixels over to libvips if need be.
func (p *picture) vips() error {
	if p.im.p != nil {
		return nil
	}
	if p.pix == nil {
		return errors.New("vips: picture is closed")
	}
	if err := ready(); err != nil {
		return err
	}
	pix := p.pix
	p.pix = nil // ci_wrap owns it now, and frees it on failure
	if p.im.p = C.ci_wrap(pix, C.int(p.w), C.int(p.h), C.int(p.bands), nil, 0); p.im.p == nil {
		return fmt.Errorf("vips: %s", lastError())
	}
	return nil
}

var _ compress.Picture = (*picture)(nil)

func (p *picture) Size() (int, int) {
	if p.closed() {
		return 0, 0
	}
	if p.orient >= 5 {
		return p.h, p.w
	}
	return p.w, p.h
}

// upright returns a new reference to the picture as a lazy pipeline that
// applies its orientation.
func (p *picture) upright() (*image, error) {
	if err := p.vips(); err != nil {
		return nil, err
	}
	C.ci_ref(p.im.p)
	cur := &image{p: p.im.p}
	if err := orient(cur, p.orient); err != nil {
		cur.close()
		return nil, err
	}
	return cur, nil
}

func (p *picture) EncodeJPEG(w io.Writer, quality int) error {
	if p.closed() {
		return errors.New("vips: picture is closed")
	}
	if quality < 1 || quality > 100 {
		return fmt.Errorf("vips: jpegsave: quality %d out of range 1..100", quality)
	}
	pix := p.pix
	if pix == nil {
		pix = C.ci_pixels(p.im.p)
	}
	if pix != nil {
		return p.encodeStrips(w, pix, quality)
	}
	return p.jpegsave(w, quality)
}

// jpegsave encodes with libvips' jpegsave, for pictures encodeStrips does
// not take (none that Decode makes; kept for safety and for the tests that
// compare the two).
func (p *picture) jpegsave(w io.Writer, quality int) error {
	up, err := p.upright()
	if err != nil {
		return err
	}
	defer up.close()
	var buf unsafe.Pointer
	var n C.size_t
	if C.ci_jpegsave(up.p, &buf, &n, C.int(quality)) != 0 {
		return fmt.Errorf("vips: jpegsave: %s", lastError())
	}
	defer C.g_free(C.gpointer(buf))
	_, err = w.Write(unsafe.Slice((*byte)(buf), int(n)))
	return err
}

// Strips is how many horizontal strips EncodeJPEG cuts a picture into at
// most. It is a constant, not the CPU count, so that every machine writes
// the same bytes.
const Strips = jpegenc.Strips

// encodeStrips encodes the upright picture in up to Strips horizontal
// strips at once, each a whole number of MCU rows, with libjpeg and
// jpegsave's settings, and joins them into one baseline JPEG: the first
// strip's headers with the full height in the frame header and a restart
// interval of one strip's MCUs, then each strip's entropy-coded data after
// a restart marker. Restarts reset only the DC predictions and the bit
// buffer, so a decoder sees the same blocks, and pixels, as from one
// unsplit encode.
func (p *picture) encodeStrips(w io.Writer, pix *C.uchar, quality int) error {
	sw, sh, bands := p.w, p.h, p.bands
	ow, oh := p.Size()
	mcu := 16 // 4:2:0
	if bands == 1 || quality >= 90 {
		mcu = 8 // grey or 4:4:4
	}
	lay := jpegenc.StripLayout((ow+mcu-1)/mcu, (oh+mcu-1)/mcu)
	strips, perStrip, interval := lay.Strips, lay.PerStrip, lay.Interval
	type part struct {
		buf *C.uchar
		n   C.size_t
		err error
	}
	parts := make([]part, strips)
	defer func() {
		for _, pt := range parts {
			C.free(unsafe.Pointer(pt.buf))
		}
	}()
	encode := func(i int) {
		y0, y1 := i*perStrip*mcu, min((i+1)*perStrip*mcu, oh)
		var msg [C.JMSG_LENGTH_MAX]C.char
		pt := &parts[i]
		if C.ci_jpeg_strip(pix, C.int(sw), C.int(sh), C.int(bands), C.int(p.orient), C.int(y0), C.int(y1),
			C.int(quality), C.uint(interval), &pt.buf, &pt.n, &msg[0]) != 0 {
			pt.err = fmt.Errorf("vips: jpeg encode: %s", C.GoString(&msg[0]))
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < strips; i++ {
		wg.Go(func() { encode(i) })
	}
	encode(0)
	wg.Wait()
	segs := make([][]byte, strips)
	var head []byte
	for i := range parts {
		if parts[i].err != nil {
			return parts[i].err
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(parts[i].buf)), int(parts[i].n))
		if strips == 1 {
			_, err := w.Write(b)
			return err
		}
		sof, sos, err := scanHeaders(b)
		if err != nil {
			return err
		}
		if i == 0 {
			head = append([]byte(nil), b[:sos]...)
			head[sof+5], head[sof+6] = byte(oh>>8), byte(oh)
		}
		segs[i] = b[sos : len(b)-2] // up to the EOI
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	for i, s := range segs {
		if i > 0 {
			if _, err := w.Write([]byte{0xFF, 0xD0 + byte((i-1)%8)}); err != nil {
				return err
			}
		}
		if _, err := w.Write(s); err != nil {
			return err
		}
	}
	_, err := w.Write([]byte{0xFF, 0xD9})
	return err
}

// scanHeaders returns the offset of the SOF0 marker in a JPEG that libjpeg
// wrote and the offset just past its SOS segment, where the entropy-coded
// data starts; it checks that the data ends with EOI.
func scanHeaders(b []byte) (sof, sos int, err error) {
	sof = -1
	for i := 2; i+4 <= len(b) && b[i] == 0xFF; {
		m, l := b[i+1], int(b[i+2])<<8|int(b[i+3])
		if i+2+l > len(b) {
			break
		}
		switch m {
		case 0xC0:
			if l >= 8 {
				sof = i
			}
		case 0xDA:
			if sof < 0 || len(b) < i+2+l+2 || b[len(b)-2] != 0xFF || b[len(b)-1] != 0xD9 {
				return 0, 0, errors.New("vips: jpeg encode: unexpected libjpeg output")
			}
			return sof, i + 2 + l, nil
		}
		i += 2 + l
	}
	return 0, 0, errors.New("vips: jpeg encode: unexpected libjpeg output")
}

func (p *picture) Shrink(ctx context.Context, longEdge int) (compress.Picture, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.closed() {
		return nil, errors.New("vips: picture is closed")
	}
	w, h := p.Size()
	scale := float64(longEdge) / float64(max(w, h))
	if scale >= 1 {
		return nil, errors.New("vips: Shrink must make the picture smaller")
	}
	// Round so the long edge lands on longEdge despite libvips' rounding.
	scale = math.Min(scale, (float64(longEdge)+0.49)/float64(max(w, h)))
	q, err := p.upright()
	if err != nil {
		return nil, err
	}
	if err := step(q, "resize", func(in *C.VipsImage, out **C.VipsImage) C.int { return C.ci_resize(in, out, C.double(scale)) }); err != nil {
		q.close()
		return nil, err
	}
	if err := materialise(q); err != nil {
		q.close()
		return nil, err
	}
	return newPicture(q.p, 1), nil
}

func (p *picture) Close() error {
	p.im.close()
	C.free(unsafe.Pointer(p.pix))
	p.pix = nil
	return nil
}
