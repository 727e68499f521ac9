package alextest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValidNHI(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		// Published examples from NHI validator libraries (HISO 10046).
		"ZAC5361": true, "WLD9413": true, "ZBN77VL": true, "ZSC21TN": true, "ZVB97XQ": true,
		"ZZZ0044": false, "ZZZ00AA": false,
		// Format errors.
		"ZZZ001": false, "ZZZ00166": false, "IZZ0016": false, "ZOZ0016": false,
		"zzz0016": false, "ZZZ0A16": false, "ZZZ001A": false, "ZZZ00A1": false, "": false,
		// One character off.
		"ZZZ0017": false, "ZBN77VM": false,
	}
	for nhi, want := range cases {
		assert.Equal(t, want, validNHI(nhi), nhi)
	}
	for _, p := range DefaultPatients() {
		assert.True(t, validNHI(p.NHI), "default patient NHI %s must pass the check", p.NHI)
	}
}
