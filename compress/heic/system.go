//go:build (linux || darwin) && (amd64 || arm64) && !nodynamic

package heic

import (
	"debug/elf"
	"errors"
	"fmt"
	"image"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libraryNames are the names tried, in order, with the platform's dlopen
// (so LD_LIBRARY_PATH / DYLD_LIBRARY_PATH and the loader's cache apply).
// The versioned name comes first: Debian's and Ubuntu's libheif1 (the
// runtime package that libvips and ImageMagick already pull in) ships only
// libheif.so.1; the unversioned libheif.so comes with libheif-dev.
func libraryNames() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libheif.1.dylib", "libheif.dylib", "/opt/homebrew/lib/libheif.1.dylib", "/usr/local/lib/libheif.1.dylib"}
	}
	return []string{"libheif.so.1", "libheif.so"}
}

// libheif constants (heif.h, stable since libheif 1.0).
const (
	heifColorspaceYCbCr = 0
	heifChroma420       = 1
	heifChannelY        = 0
	heifChannelCb       = 1
	heifChannelCr       = 2
)

// decodingOptions mirrors struct heif_decoding_options up to the fields
// used (version 2 added convert_hdr_to_8bit, libheif 1.7). The library
// allocates it, so a newer libheif's longer struct is fine.
type decodingOptions struct {
	version          uint8
	_                uint8      // ignore_transformations
	_                [4]uintptr // start/on/end_progress, progress_user_data
	convertHDRTo8bit uint8
}

// libheif is the system library with the functions Decode needs. The
// function values are set once when it is loaded and only read afterwards;
// libheif allows concurrent decodes with separate contexts.
type libheif struct {
	path    string
	version string

	getVersion             func() *byte
	contextAlloc           func() uintptr
	contextFree            func(uintptr)
	readFromMemory         func(ctx uintptr, data *byte, size uintptr, opts uintptr) uint64
	primaryImageHandle     func(ctx uintptr, handle *uintptr) uint64
	handleWidth            func(handle uintptr) int32
	handleHeight           func(handle uintptr) int32
	handleRelease          func(handle uintptr)
	decodingOptionsAlloc   func() *decodingOptions
	decodingOptionsFree    func(*decodingOptions)
	decodeImage            func(handle uintptr, img *uintptr, colorspace, chroma int32, opts *decodingOptions) uint64
	imageWidth             func(img uintptr, channel int32) int32
	imageHeight            func(img uintptr, channel int32) int32
	imageGetPlaneReadonly  func(img uintptr, channel int32, stride *int32) *byte
	imageRelease           func(img uintptr)
	imageBitsPerPixelRange func(img uintptr, channel int32) int32

	// de265 decodes the pictures parseHEIF understands without libheif
	// (see libde265); nil when libde265 did not load.
	de265 *libde265
}

// heifError is the first register of a returned struct heif_error {int
// code; int subcode; const char* message}: purego returns structs only on
// darwin, but on amd64 and arm64 a 16-byte struct comes back in two
// registers, the first holding code (low half) and subcode (high half).
// The message is not needed.
type heifError uint64

func (e heifError) err(step string) error {
	code, sub := int32(uint32(e)), int32(uint32(e>>32))
	if code == 0 {
		return nil
	}
	return fmt.Errorf("%w: libheif %s: error %d.%d", ErrDecode, step, code, sub)
}

// openSystem dlopens the first of libraryNames that loads and binds the
// functions Decode needs. It returns why not otherwise: not a dynamically
// linked executable (dlopen needs the dynamic loader), no library found, or
// a library too old (a missing symbol).
func openSystem() (lib *libheif, err error) {
	if runtime.GOOS == "linux" && !isDynamicBinary() {
		return nil, errors.New("the executable is statically linked, so it cannot dlopen libheif")
	}
	var handle uintptr
	var tried []string
	for _, name := range libraryNames() {
		h, derr := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if derr == nil {
			handle, lib = h, &libheif{path: name}
			break
		}
		tried = append(tried, name)
	}
	if lib == nil {
		return nil, fmt.Errorf("no system libheif (tried %s)", strings.Join(tried, ", "))
	}
	defer func() {
		// RegisterLibFunc panics on a missing symbol.
		if r := recover(); r != nil {
			_ = purego.Dlclose(handle)
			lib, err = nil, fmt.Errorf("system libheif %s unusable: %v", lib.path, r)
		}
	}()
	reg := func(fptr any, name string) { purego.RegisterLibFunc(fptr, handle, name) }
	reg(&lib.getVersion, "heif_get_version")
	reg(&lib.contextAlloc, "heif_context_alloc")
	reg(&lib.contextFree, "heif_context_free")
	reg(&lib.readFromMemory, "heif_context_read_from_memory_without_copy")
	reg(&lib.primaryImageHandle, "heif_context_get_primary_image_handle")
	reg(&lib.handleWidth, "heif_image_handle_get_width")
	reg(&lib.handleHeight, "heif_image_handle_get_height")
	reg(&lib.handleRelease, "heif_image_handle_release")
	reg(&lib.decodingOptionsAlloc, "heif_decoding_options_alloc")
	reg(&lib.decodingOptionsFree, "heif_decoding_options_free")
	reg(&lib.decodeImage, "heif_decode_image")
	reg(&lib.imageWidth, "heif_image_get_width")
	reg(&lib.imageHeight, "heif_image_get_height")
	reg(&lib.imageGetPlaneReadonly, "heif_image_get_plane_readonly")
	reg(&lib.imageRelease, "heif_image_release")
	reg(&lib.imageBitsPerPixelRange, "heif_image_get_bits_per_pixel_range")
	lib.version = cString(lib.getVersion())
	lib.de265 = openDe265()
	return lib, nil
}

func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for ptr := unsafe.Pointer(p); *(*byte)(ptr) != 0 && len(b) < 64; ptr = unsafe.Add(ptr, 1) {
		b = append(b, *(*byte)(ptr))
	}
	return string(b)
}

// isDynamicBinary reports whether the running executable has a dynamic
// symbol table, that is, was started by the dynamic loader; dlopen in a
// static executable would crash.
func isDynamicBinary() bool {
	exe, err := os.Executable()
	if err != nil {
		return false
	}
	f, err := elf.Open(exe)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	_, err = f.DynamicSymbols()
	return err == nil
}

// decode decodes the primary image of data as 8-bit YCbCr 4:2:0, upright
// (libheif applies irot/imir), copies its planes into Go memory and frees
// every libheif object before returning, so nothing outlives the call.
// Higher bit depths are converted to 8 bits by libheif; 4:4:4, 4:2:2 and
// monochrome pictures are converted to 4:2:0 (the JPEG written is 4:2:0).
func (l *libheif) decode(data []byte) (image.Image, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrDecode)
	}
	if l.de265 != nil {
		// The fast path; on any failure libheif decodes the file from the
		// start, so what it cannot decode fails with libheif's error.
		if pic, err := parseHEIF(data); err == nil {
			if img, err := l.de265.decodePicture(pic); err == nil {
				return img, nil
			}
		}
	}
	return l.decodeLibheif(data)
}

// decodeLibheif decodes data with libheif alone.
func (l *libheif) decodeLibheif(data []byte) (image.Image, error) {
	ctx := l.contextAlloc()
	if ctx == 0 {
		return nil, fmt.Errorf("%w: libheif: out of memory", ErrDecode)
	}
	defer l.contextFree(ctx)
	if err := heifError(l.readFromMemory(ctx, &data[0], uintptr(len(data)), 0)).err("read"); err != nil {
		return nil, err
	}
	var handle uintptr
	if err := heifError(l.primaryImageHandle(ctx, &handle)).err("primary image"); err != nil {
		return nil, err
	}
	defer l.handleRelease(handle)
	if w, h := l.handleWidth(handle), l.handleHeight(handle); w <= 0 || h <= 0 {
		return nil, fmt.Errorf("%w: libheif: image of %dx%d", ErrDecode, w, h)
	}
	opts := l.decodingOptionsAlloc()
	if opts == nil {
		return nil, fmt.Errorf("%w: libheif: out of memory", ErrDecode)
	}
	defer l.decodingOptionsFree(opts)
	if opts.version >= 2 {
		opts.convertHDRTo8bit = 1
	}
	var img uintptr
	err := heifError(l.decodeImage(handle, &img, heifColorspaceYCbCr, heifChroma420, opts)).err("decode")
	if img != 0 {
		defer l.imageRelease(img)
	}
	runtime.KeepAlive(data)
	if err != nil {
		return nil, err
	}
	if bits := l.imageBitsPerPixelRange(img, heifChannelY); bits != 8 {
		return nil, fmt.Errorf("%w: libheif returned %d-bit planes", ErrDecode, bits)
	}
	// The decoded size (after rotation and any crop) is the picture's.
	w, h := int(l.imageWidth(img, heifChannelY)), int(l.imageHeight(img, heifChannelY))
	cw, ch := int(l.imageWidth(img, heifChannelCb)), int(l.imageHeight(img, heifChannelCb))
	if w <= 0 || h <= 0 || cw != (w+1)/2 || ch != (h+1)/2 {
		return nil, fmt.Errorf("%w: libheif returned planes of %dx%d and %dx%d", ErrDecode, w, h, cw, ch)
	}
	out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	copyPlane := func(dst []byte, dstStride int, channel int32, pw, ph int) error {
		var stride int32
		p := l.imageGetPlaneReadonly(img, channel, &stride)
		if p == nil || int(stride) < pw {
			return fmt.Errorf("%w: libheif: no plane %d", ErrDecode, channel)
		}
		src := unsafe.Slice(p, int(stride)*(ph-1)+pw)
		for y := range ph {
			copy(dst[y*dstStride:y*dstStride+pw], src[y*int(stride):])
		}
		return nil
	}
	if err := copyPlane(out.Y, out.YStride, heifChannelY, w, h); err != nil {
		return nil, err
	}
	if err := copyPlane(out.Cb, out.CStride, heifChannelCb, cw, ch); err != nil {
		return nil, err
	}
	if err := copyPlane(out.Cr, out.CStride, heifChannelCr, cw, ch); err != nil {
		return nil, err
	}
	return out, nil
}
