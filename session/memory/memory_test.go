package memory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// newStore is the memory Store on now, for the conformance suites.
func newStore(t *testing.T, now func() time.Time) session.Store {
	st, err := memory.NewStore(memory.WithClock(now))
	require.NoError(t, err)
	return st
}

// newBlobStore is a memory BlobStore, for the conformance suites.
func newBlobStore(t *testing.T) session.BlobStore {
	b, err := memory.NewBlobStore()
	require.NoError(t, err)
	return b
}

func TestStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.TestStore(t, newStore)
}

func TestBlobStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.TestBlobStore(t, newBlobStore, storetest.WithLargeSize(8<<20), storetest.WithoutMemoryBound())
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  memory.Option
	}{
		{"NilClock", memory.WithClock(nil)},
		{"ZeroGrace", memory.WithGrace(0)},
		{"NegativeGrace", memory.WithGrace(-time.Second)},
		{"NilOption", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := memory.NewStore(tc.opt)
			require.Error(t, err)
			_, err = memory.NewBlobStore(tc.opt)
			require.Error(t, err)
		})
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	storetest.TestBlobSweep(t, newBlobStore)
}

func TestLaunchRecordsConformance(t *testing.T) {
	t.Parallel()
	t.Run("SingleUse", func(t *testing.T) { t.Parallel(); storetest.TestSingleUse(t, newStore) })
	t.Run("Roster", func(t *testing.T) { t.Parallel(); storetest.TestRoster(t, newStore) })
}
