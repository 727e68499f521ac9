package alex

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidNHI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		nhi  string
		want bool
	}{
		{"ZZZ0016", true}, {"WLD9413", true}, {"ZAC5361", true}, // old format
		{"ZBN77VL", true}, {"ZSC21TN", true}, {"ZVB97XQ", true}, // new format
		{"ZZZ0044", false}, // checksum 0
		{"ZZZ00AA", false}, // wrong check letter
		{"ZZZ0017", false}, // wrong check digit
		{"ZBN77VM", false},
		{"ZIZ0016", false}, // I is never used
		{"ZOZ0016", false}, // nor O
		{"ZZ00016", false}, {"ZZZA016", false}, {"ZZZ001", false}, {"ZZZ00166", false},
		{"ZZZ00V1", false},                                         // letter in sixth place needs a letter check
		{"ZZZ0A16", false}, {"ZZZ001A", false}, {"IZZ0016", false}, // letters where digits go, and I
		{"", false}, {"zzz0016", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, ValidNHI(tc.nhi), tc.nhi)
	}
}

func TestNormalizeNHI(t *testing.T) {
	t.Parallel()
	n, err := NormalizeNHI(" zbn77vl ")
	require.NoError(t, err)
	assert.Equal(t, "ZBN77VL", n)

	_, err = NormalizeNHI("ZZZ0017")
	require.ErrorIs(t, err, ErrValidation)
	assert.NotContains(t, err.Error(), "ZZZ0017", "an error must not repeat a patient identifier")
}
