package clinicalimages_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/session"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want ci.FailureCode
	}{
		{"Nil", nil, ""},
		{"StoreDown", fmt.Errorf("session: get: %w", fmt.Errorf("redisstore: %w", session.ErrUnavailable)), ci.CodeStorageUnavailable},
		{"StorageWrapped", fmt.Errorf("%w: x", ci.ErrStorageUnavailable), ci.CodeStorageUnavailable},
		{"TooMany", fmt.Errorf("session: add image: %w", session.ErrTooManyImages), ci.CodeTooManyImages},
		{"Expired", session.ErrExpired, ci.CodeSessionExpired},
		{"Committing", session.ErrAlreadyCommitting, ci.CodeAlreadyCommitting},
		{"Conflict", session.ErrConflict, ci.CodeConflict},
		{"Corrupt", compress.ErrCorrupt, ci.CodeCorruptImage},
		{"Facility", alex.ErrFacilityUnavailable, ci.CodeFacilityUnavailable},
		{"Unknown", alex.ErrOutcomeUnknown, ci.CodeOutcomeUnknown},
		{"Gateway", &alex.Error{Status: 502}, ci.CodeALEXBusy},
		{"Cancelled", context.Canceled, ci.CodeTimeout},
		{"Closed", ci.ErrClosed, ci.CodeShuttingDown},
		// The text never decides: an error that only says "unavailable" is a bug.
		{"TextOnly", errors.New("session: backing service unavailable"), ci.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, ci.CodeOf(tc.err))
			if tc.want != "" {
				assert.NotEmpty(t, tc.want.Message())
			}
		})
	}
}

// TestFailedImageKeepsCodeAndMessageApart: a failed commit records its
// code on the image apart from the message, through the Go API and HTTP.
func TestFailedImageKeepsCodeAndMessageApart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, sid := w.launch()
	w.call("POST", "/images", desktop, photo(t, 300, 200, 2))
	w.alex.FailNext(10, alextest.Fault{Status: 503, Path: "/FHIR/Media"})
	res, err := w.svc.Commit(t.Context(), sid, nil)
	require.NoError(t, err)
	require.Len(t, res.Images, 1)
	assert.Equal(t, ci.CodeALEXBusy, res.Images[0].Code)
	assert.Equal(t, ci.CodeALEXBusy.Message(), res.Images[0].Message)

	sess, err := w.svc.LookupSession(t.Context(), sid)
	require.NoError(t, err)
	img := sess.Images[0]
	assert.Equal(t, session.StateFailed, img.State)
	assert.Equal(t, string(ci.CodeALEXBusy), img.FailCode)
	assert.Equal(t, ci.CodeALEXBusy.Message(), img.FailReason)

	_, body := w.call("GET", "/session", desktop, nil)
	view := body["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "alex_busy", view["failCode"])
	assert.Equal(t, ci.CodeALEXBusy.Message(), view["failReason"])
}

// TestPurgedCodeIsAFailureCode: the sweeper, which cannot import the root
// package, marks purged images with the code the Service uses for them.
func TestPurgedCodeIsAFailureCode(t *testing.T) {
	assert.Equal(t, string(ci.CodeSessionExpired), session.PurgedCode)
}
