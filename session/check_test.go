package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// TestAddImageWaitsForCheck: an Upload's Check runs once the bytes are
// stored and before the image is listed; its error deletes the bytes,
// lists nothing and is returned.
func TestAddImageWaitsForCheck(t *testing.T) {
	t.Parallel()
	m, stored := managerCountingBlobs(t)
	s, err := m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	listed := func() int {
		got, err := m.Get(t.Context(), s.ID)
		require.NoError(t, err)
		return len(got.Images)
	}

	refused := errors.New("the bytes do not decode")
	calls := 0
	_, err = m.AddImage(t.Context(), s.ID, session.Upload{Body: strings.NewReader("jpeg"), Size: 4, ContentType: "image/jpeg",
		Check: func(context.Context) error {
			calls++
			assert.Equal(t, 1, stored(), "checked once stored")
			assert.Equal(t, 0, listed(), "checked before listed")
			return refused
		}})
	require.ErrorIs(t, err, refused)
	assert.Equal(t, 1, calls)
	assert.Equal(t, 0, stored(), "the refused bytes are deleted")
	assert.Equal(t, 0, listed())

	img, err := m.AddImage(t.Context(), s.ID, session.Upload{Body: strings.NewReader("jpeg"), Size: 4, ContentType: "image/jpeg",
		Check: func(context.Context) error { return nil }})
	require.NoError(t, err)
	assert.Equal(t, 1, stored())
	assert.Equal(t, 1, listed())
	assert.Equal(t, int64(4), img.Size)
}
