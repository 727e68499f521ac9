package compress_test

import (
	"testing"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

func TestGoEngineContract(t *testing.T) {
	t.Parallel()
	enginetest.Run(t, compress.NewGoEngine(0))
}
