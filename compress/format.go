package compress

import (
	"bytes"
	"encoding/binary"
)

// Format is an image container format recognised from its leading bytes.
type Format string

// The formats [Sniff] recognises. Normalize decodes JPEG, PNG, GIF and WebP
// itself and HEIC only with a decoder registered by [WithDecoder] (package
// compress/heic has one). Anything else is refused with
// [ErrUnsupportedFormat].
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
	HEIC Format = "heic"
)

// AllFormats lists every format [Sniff] recognises, in sniffing order. HEIC
// among them is decoded only with a decoder from [WithDecoder].
func AllFormats() []Format { return []Format{JPEG, PNG, GIF, WebP, HEIC} }

// sniffLen is how many leading bytes Sniff needs to decide.
const sniffLen = 64

// Sniff identifies the format of an image from its first bytes (at least
// 32 are needed for HEIC). It never trusts a file name or declared content
// type. It returns "" when the bytes are not an accepted format: SVG, HTML,
// AVIF and everything else.
func Sniff(head []byte) Format {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return JPEG
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return GIF
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return WebP
	case isHEIF(head):
		return HEIC
	}
	return ""
}

// isHEIF reports whether head starts with an ISO-BMFF ftyp box naming an
// HEVC-coded HEIF brand. AVIF (AV1-coded) is refused: no decoder here.
func isHEIF(head []byte) bool {
	if len(head) < 16 || string(head[4:8]) != "ftyp" {
		return false
	}
	size := int(binary.BigEndian.Uint32(head[0:4]))
	if size < 16 || size > len(head) {
		size = len(head)
	}
	hevc, av1 := false, false
	// major brand at 8, minor version at 12, compatible brands from 16.
	check := func(b string) {
		switch b {
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs":
			hevc = true
		case "avif", "avis":
			av1 = true
		}
	}
	check(string(head[8:12]))
	for i := 16; i+4 <= size; i += 4 {
		check(string(head[i : i+4]))
	}
	if hevc {
		return true
	}
	// "mif1" alone is generic HEIF; without an AV1 brand assume HEVC.
	if av1 {
		return false
	}
	return string(head[8:12]) == "mif1" || string(head[8:12]) == "msf1"
}
