package jpegdec

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// agree checks that Verify accepts data exactly when ReadCoefficients
// does, with the same error, and that an accepted file decodes.
func agree(t *testing.T, data []byte, what string) {
	t.Helper()
	verr := Verify(data)
	_, cerr := ReadCoefficients(data)
	if cerr == nil {
		require.NoError(t, verr, "%s: ReadCoefficients accepts it", what)
		require.NoError(t, verify(data, 0), "%s: concurrent", what)
		_, derr := Decode(data, Options{Scale: 8})
		require.NoError(t, derr, "%s: Verify accepted what Decode refuses", what)
		return
	}
	require.Error(t, verr, "%s: ReadCoefficients refuses it (%v)", what, cerr)
	require.Equal(t, cerr.Error(), verr.Error(), what)
	// The concurrent check, made to split however small the data.
	cverr := verify(data, 0)
	require.Error(t, cverr, "%s: concurrent", what)
	require.Equal(t, verr.Error(), cverr.Error(), "%s: concurrent", what)
}

// TestVerifyAgreesWithReadCoefficients damages every test file (cut short,
// a byte changed at a stride through the entropy-coded data, a restart
// marker renumbered) and checks Verify's verdict against ReadCoefficients'.
func TestVerifyAgreesWithReadCoefficients(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob("testdata/*.jpg")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	refused := 0
	for _, name := range names {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		agree(t, data, name)
		sos := bytes.Index(data, []byte{0xFF, 0xDA})
		for cut := max(sos, 0); cut < len(data); cut += 97 {
			agree(t, data[:cut], name+" cut")
		}
		for i := max(sos, 0) + 20; i < len(data)-2; i += 61 {
			for _, v := range []byte{0x00, 0x5A, 0xFF} {
				bad := bytes.Clone(data)
				bad[i] = v
				agree(t, bad, name+" damaged")
				if Verify(bad) != nil {
					refused++
				}
			}
		}
	}
	require.Positive(t, refused, "some damage must be refused")
}

// greyDC is a 16x8 grey baseline JPEG of two blocks with the DC
// differences whose category-11 magnitude bits are a and b (1024..2047 code
// themselves, 0..1023 code bits-2047) and no AC coefficient.
func greyDC(a, b uint16) []byte {
	seg := func(m byte, body ...byte) []byte {
		return append([]byte{0xFF, m, byte((len(body) + 2) >> 8), byte(len(body) + 2)}, body...)
	}
	var d []byte
	d = append(d, 0xFF, 0xD8)
	d = append(d, seg(0xDB, append([]byte{0x00}, bytes.Repeat([]byte{1}, 64)...)...)...)
	d = append(d, seg(0xC0, 8, 0, 8, 0, 16, 1, 1, 0x11, 0)...)
	// DC table 0: one code of length 1 ('0') for category 11; AC table 0:
	// one code of length 1 ('0') for EOB.
	counts := append([]byte{1}, make([]byte, 15)...)
	d = append(d, seg(0xC4, append(append([]byte{0x00}, counts...), 11)...)...)
	d = append(d, seg(0xC4, append(append([]byte{0x10}, counts...), 0x00)...)...)
	d = append(d, seg(0xDA, 1, 1, 0x00, 0, 63, 0)...)
	// Per block: '0' (category 11), 11 magnitude bits, '0' (EOB): 13
	// bits; two blocks and 1-bit padding make 32 bits.
	var bits uint64
	for _, v := range []uint16{a, b} {
		bits = bits<<13 | uint64(v&0x7FF)<<1
	}
	bits = bits<<6 | 0x3F
	for i := 3; i >= 0; i-- {
		b := byte(bits >> (8 * i))
		d = append(d, b)
		if b == 0xFF {
			d = append(d, 0x00)
		}
	}
	return append(d, 0xFF, 0xD9)
}

// TestVerifyRefusesOutOfRange: DC values beyond the baseline range decode
// as pixels but are refused, as by ReadCoefficients; within it they pass.
func TestVerifyRefusesOutOfRange(t *testing.T) {
	t.Parallel()
	// 1024 + 1024 = 2048: one past the range.
	over := greyDC(1024, 1024)
	_, err := Decode(over, Options{Scale: 1})
	require.NoError(t, err, "the file decodes as pixels")
	require.ErrorIs(t, Verify(over), ErrUnsupported)
	agree(t, over, "DC 2048")
	// 2047 (the edge) then 2047 - 1024 = 1023: accepted.
	edge := greyDC(2047, 1023)
	require.NoError(t, Verify(edge))
	agree(t, edge, "DC at the edge")
}

func FuzzVerify(f *testing.F) {
	for _, name := range []string{"s420-rst1.jpg", "gray-rst.jpg", "s411.jpg", "rgb.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<16 {
			return
		}
		agree(t, data, "fuzz input")
	})
}
