package clinicalimages_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"log/slog"
	"testing"
)

func jpegOrPNG(w io.Writer, img image.Image) error { return png.Encode(w, img) }

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func crc(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func mustPEM(t testing.TB, pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
