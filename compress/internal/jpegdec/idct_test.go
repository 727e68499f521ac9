package jpegdec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refIDCT evaluates the JPEG inverse DCT of the top-left n x n corner of an
// 8x8 block at n x n points straight from its definition (see idct.go).
func refIDCT(c []int32, n int) []float64 {
	out := make([]float64, n*n)
	cu := func(u int) float64 {
		if u == 0 {
			return 1 / math.Sqrt2
		}
		return 1
	}
	for y := range n {
		for x := range n {
			s := 0.0
			for v := range n {
				for u := range n {
					s += cu(u) * cu(v) * float64(c[v*n+u]) *
						math.Cos(float64(2*x+1)*float64(u)*math.Pi/float64(2*n)) *
						math.Cos(float64(2*y+1)*float64(v)*math.Pi/float64(2*n))
				}
			}
			out[y*n+x] = s/4 + 128
		}
	}
	return out
}

// TestIDCTsMatchDefinition: each fast transform agrees with the formula to
// within rounding, on random blocks, sparse ones and DC-only ones.
func TestIDCTsMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		n    int
		idct func([]int32, []byte, int)
	}{{8, idct8}, {4, idct4}, {2, idct2}, {1, idct1}} {
		for trial := range 300 {
			c := make([]int32, tc.n*tc.n)
			for i := range c {
				switch {
				case trial%3 == 0 && i > 0: // DC only
				case trial%3 == 1 && rng.IntN(4) != 0: // sparse
				default:
					c[i] = int32(rng.IntN(161) - 80)
				}
			}
			c[0] = int32(rng.IntN(801) - 400)
			dst := make([]byte, 3*tc.n*tc.n)
			tc.idct(c, dst, 3*tc.n)
			want := refIDCT(c, tc.n)
			for y := range tc.n {
				for x := range tc.n {
					w := math.Min(math.Max(want[y*tc.n+x], 0), 255)
					require.InDelta(t, w, float64(dst[y*3*tc.n+x]), 1.0, "n=%d trial %d at %d,%d", tc.n, trial, x, y)
				}
			}
		}
	}
}
