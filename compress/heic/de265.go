//go:build (linux || darwin) && (amd64 || arm64) && !nodynamic

package heic

import (
	"fmt"
	"image"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libde265 is the HEVC decoder libheif itself uses (libheif1 depends on
// libde265-0), loaded beside it so that the pictures parseHEIF understands
// are decoded without libheif in between: on all of the machine's cores (a
// single picture coded with wavefronts, as x265 writes by default, on
// libde265's worker threads; a grid's tiles, as iPhones write, one decoder
// per core) and copied once, straight from libde265's planes into the
// picture Decode returns (libheif copies them into its own image first, and
// starts libde265 with one worker thread). The pixels are the same: the
// same decoder, fed the same NAL units, with the same rotation applied.
type libde265 struct {
	newDecoder         func() uintptr
	freeDecoder        func(ctx uintptr) int32
	startWorkerThreads func(ctx uintptr, n int32) int32
	pushNAL            func(ctx uintptr, data *byte, length int32, pts int64, user uintptr) int32
	flushData          func(ctx uintptr) int32
	decode             func(ctx uintptr, more *int32) int32
	peekNextPicture    func(ctx uintptr) uintptr
	releaseNextPicture func(ctx uintptr)
	isOK               func(err int32) int32
	imageWidth         func(img uintptr, channel int32) int32
	imageHeight        func(img uintptr, channel int32) int32
	chromaFormat       func(img uintptr) int32
	bitsPerPixel       func(img uintptr, channel int32) int32
	imagePlane         func(img uintptr, channel int32, stride *int32) *byte
}

const de265Chroma420 = 1

// de265LibraryNames are libde265's names, tried in order after libheif has
// loaded (so its dependency is usually in the process already).
func de265LibraryNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libde265.0.dylib", "libde265.dylib", "/opt/homebrew/lib/libde265.0.dylib", "/usr/local/lib/libde265.0.dylib"}
	}
	return []string{"libde265.so.0", "libde265.so"}
}

// openDe265 loads libde265, or returns nil when it cannot (libheif then
// decodes everything).
func openDe265() (d *libde265) {
	var handle uintptr
	for _, name := range de265LibraryNames() {
		if h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			handle = h
			break
		}
	}
	if handle == 0 {
		return nil
	}
	defer func() {
		if recover() != nil { // a missing symbol: too old or not libde265
			_ = purego.Dlclose(handle)
			d = nil
		}
	}()
	d = &libde265{}
	reg := func(fptr any, name string) { purego.RegisterLibFunc(fptr, handle, name) }
	reg(&d.newDecoder, "de265_new_decoder")
	reg(&d.freeDecoder, "de265_free_decoder")
	reg(&d.startWorkerThreads, "de265_start_worker_threads")
	reg(&d.pushNAL, "de265_push_NAL")
	reg(&d.flushData, "de265_flush_data")
	reg(&d.decode, "de265_decode")
	reg(&d.peekNextPicture, "de265_peek_next_picture")
	reg(&d.releaseNextPicture, "de265_release_next_picture")
	reg(&d.isOK, "de265_isOK")
	reg(&d.imageWidth, "de265_get_image_width")
	reg(&d.imageHeight, "de265_get_image_height")
	reg(&d.chromaFormat, "de265_get_chroma_format")
	reg(&d.bitsPerPixel, "de265_get_bits_per_pixel")
	reg(&d.imagePlane, "de265_get_image_plane")
	return d
}

// maxThreads bounds the threads one decode uses (libde265's wavefront
// workers, or tiles decoded at once): past a handful, a 12 MP photo gains
// nothing and a busy server only gets more contention.
const maxThreads = 8

// decodePicture decodes pic into an upright 4:2:0 picture, or returns
// errUnsupported (wrapped) for a picture libheif must handle (not 8-bit
// 4:2:0) and another error when libde265 fails; the caller then hands the
// file to libheif, which reports what is wrong with it.
func (d *libde265) decodePicture(pic *heifPicture) (*image.YCbCr, error) {
	return d.decodeThreads(pic, min(runtime.GOMAXPROCS(0), maxThreads))
}

// decodeThreads is decodePicture on up to threads threads.
func (d *libde265) decodeThreads(pic *heifPicture, threads int) (*image.YCbCr, error) {
	w, h := pic.width, pic.height
	if pic.rotation%2 == 1 {
		w, h = h, w
	}
	out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	if len(pic.tiles) == 1 {
		// One picture: libde265's worker threads decode its wavefront
		// rows in parallel (with no wavefronts it says so and decodes on
		// one of them).
		return out, d.decodeTile(pic, 0, out, threads)
	}
	// A grid: each worker decodes whole tiles on a decoder of its own, in
	// the calling goroutine's thread (no libde265 threads), and writes
	// them into out, each to its own rectangle.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int, len(pic.tiles))
	)
	for i := range pic.tiles {
		next <- i
	}
	close(next)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for range min(threads, len(pic.tiles)) {
		wg.Go(func() {
			// A panic (none is known) in a goroutine of its own would end
			// the process: it fails this decode instead, and the caller
			// hands the file to libheif.
			defer func() {
				if r := recover(); r != nil {
					fail(fmt.Errorf("%w: placing a tile: %v", ErrDecode, r))
				}
			}()
			for i := range next {
				if err := d.decodeTile(pic, i, out, 0); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// decodeTile decodes tile i of pic with a decoder of its own (workers
// libde265 threads) and copies it into its place in out, rotated.
func (d *libde265) decodeTile(pic *heifPicture, i int, out *image.YCbCr, workers int) error {
	ctx := d.newDecoder()
	if ctx == 0 {
		return fmt.Errorf("%w: libde265: out of memory", ErrDecode)
	}
	defer d.freeDecoder(ctx)
	if workers > 1 {
		// Fails only when threads cannot start; the decode then runs in
		// this thread, which is still correct.
		d.startWorkerThreads(ctx, int32(workers))
	}
	for _, nal := range pic.tiles[i] {
		if err := d.pushNAL(ctx, &nal[0], int32(len(nal)), 0, 0); d.isOK(err) == 0 {
			return fmt.Errorf("%w: libde265 push: error %d", ErrDecode, err)
		}
	}
	if err := d.flushData(ctx); d.isOK(err) == 0 {
		return fmt.Errorf("%w: libde265 flush: error %d", ErrDecode, err)
	}
	for {
		var more int32
		if err := d.decode(ctx, &more); err != 0 {
			// libheif stops at anything but DE265_OK too.
			return fmt.Errorf("%w: libde265 decode: error %d", ErrDecode, err)
		}
		if img := d.peekNextPicture(ctx); img != 0 {
			err := d.place(img, pic, i, out)
			d.releaseNextPicture(ctx)
			return err
		}
		if more == 0 {
			return fmt.Errorf("%w: libde265 decoded no picture", ErrDecode)
		}
	}
}

// place copies libde265's picture img, tile i of pic, into out: cropped to
// the grid's size at the right and bottom edges, and rotated by
// pic.rotation quarter turns anticlockwise.
func (d *libde265) place(img uintptr, pic *heifPicture, i int, out *image.YCbCr) error {
	if f, bits := d.chromaFormat(img), d.bitsPerPixel(img, 0); f != de265Chroma420 || bits != 8 {
		return fmt.Errorf("%w: HEVC picture of chroma format %d, %d bits", errUnsupported, f, bits)
	}
	tw, th := int(d.imageWidth(img, 0)), int(d.imageHeight(img, 0))
	if tw != pic.tileWidth || th != pic.tileHeight ||
		int(d.imageWidth(img, 1)) != (tw+1)/2 || int(d.imageHeight(img, 1)) != (th+1)/2 {
		return fmt.Errorf("%w: libde265 picture of %dx%d for a tile of %dx%d", ErrDecode, tw, th, pic.tileWidth, pic.tileHeight)
	}
	x0, y0 := i%pic.cols*tw, i/pic.cols*th
	// Grid tiles have even sizes in practice (iPhones: 512), so a tile's
	// chroma starts at x0/2, y0/2; an odd tile size inside a grid would
	// misplace chroma, so such a grid is left to libheif.
	if pic.cols > 1 && tw%2 != 0 || pic.rows > 1 && th%2 != 0 {
		return fmt.Errorf("%w: grid tiles of odd size %dx%d", errUnsupported, tw, th)
	}
	type plane struct {
		dst          []byte
		stride       int
		x0, y0, w, h int // the part of the tile inside the picture
		fullW, fullH int // the picture's plane size before rotation
	}
	cw, ch := (pic.width+1)/2, (pic.height+1)/2
	planes := [3]plane{
		{out.Y, out.YStride, x0, y0, min(tw, pic.width-x0), min(th, pic.height-y0), pic.width, pic.height},
		{out.Cb, out.CStride, x0 / 2, y0 / 2, 0, 0, cw, ch},
		{out.Cr, out.CStride, x0 / 2, y0 / 2, 0, 0, cw, ch},
	}
	for c := range planes {
		p := &planes[c]
		if c > 0 {
			p.w, p.h = min((tw+1)/2, cw-p.x0), min((th+1)/2, ch-p.y0)
		}
		var stride int32
		src := d.imagePlane(img, int32(c), &stride)
		if src == nil || int(stride) < p.w {
			return fmt.Errorf("%w: libde265: no plane %d", ErrDecode, c)
		}
		s := unsafe.Slice(src, int(stride)*(p.h-1)+p.w)
		blit(p.dst, p.stride, s, int(stride), p.x0, p.y0, p.w, p.h, p.fullW, p.fullH, pic.rotation)
	}
	return nil
}

// blit copies the w x h block src (rows stride apart) whose top-left corner
// is at (x0, y0) in a plane of fullW x fullH into dst (rows dstStride
// apart), which holds that plane turned rot quarter turns anticlockwise.
func blit(dst []byte, dstStride int, src []byte, stride, x0, y0, w, h, fullW, fullH, rot int) {
	switch rot {
	case 0:
		for y := range h {
			copy(dst[(y0+y)*dstStride+x0:][:w], src[y*stride:])
		}
	case 2: // (x, y) -> (fullW-1-x, fullH-1-y)
		for y := range h {
			d := dst[(fullH-1-y0-y)*dstStride:]
			s := src[y*stride:][:w]
			for x, v := range s {
				d[fullW-1-x0-x] = v
			}
		}
	default:
		// A quarter turn: source columns become destination rows. Blocks
		// of rows keep the source lines in cache while each column is
		// read down.
		const block = 64
		for by := 0; by < h; by += block {
			bh := min(block, h-by)
			for x := range w {
				var d []byte
				if rot == 1 { // (x, y) -> (y, fullW-1-x)
					d = dst[(fullW-1-x0-x)*dstStride+y0+by:][:bh]
				} else { // (x, y) -> (fullH-1-y, x)
					d = dst[(x0+x)*dstStride:]
				}
				for j := range bh {
					v := src[(by+j)*stride+x]
					if rot == 1 {
						d[j] = v
					} else {
						d[fullH-1-y0-by-j] = v
					}
				}
			}
		}
	}
}
