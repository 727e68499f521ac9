package jpegdec

import (
	"errors"
	"os"
	"testing"
)

// TestReadCoefficientsMatchesDecode: the coefficients read raw, dequantised
// and inverted with the decoder's own IDCT, give Decode's pixels exactly.
func TestReadCoefficientsMatchesDecode(t *testing.T) {
	for _, name := range []string{"s420", "s422", "s444", "s440", "s411", "gray", "gray-rst", "s420-rst1", "s422-rst-blocks", "s420-optimized"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("testdata/" + name + ".jpg")
			if err != nil {
				t.Fatal(err)
			}
			c, err := ReadCoefficients(data)
			if err != nil {
				t.Fatal(err)
			}
			img, err := Decode(data, Options{Scale: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range c.Comps {
				p := img.Planes[i]
				var coef [64]int32
				var px [64]byte
				for by := range k.BlocksH {
					for bx := range k.BlocksW {
						b := k.Block(bx, by)
						for z := range 64 {
							coef[z] = int32(b[z]) * int32(k.Quant[z])
						}
						idct8(coef[:], px[:], 8)
						for y := range 8 {
							for x := range 8 {
								px0, py0 := bx*8+x, by*8+y
								if px0 >= p.W || py0 >= p.H {
									continue
								}
								if got, want := px[y*8+x], p.Pix[py0*p.Stride+px0]; got != want {
									t.Fatalf("component %d pixel (%d,%d) = %d, Decode gave %d", i, px0, py0, got, want)
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestReadCoefficientsRefuses(t *testing.T) {
	data, err := os.ReadFile("testdata/s420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	var fe FormatError
	if _, err := ReadCoefficients(data[:len(data)-200]); !errors.As(err, &fe) {
		t.Errorf("truncated: err = %v, want a FormatError", err)
	}
	for _, name := range []string{"progressive", "arithmetic", "cmyk"} {
		d, err := os.ReadFile("testdata/" + name + ".jpg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCoefficients(d); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
	}
}
