package session_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// TestClaimLogsLeadToNoQRCode runs the pairing path, wrong guesses past both
// budgets included, with a JSON logger at debug level: no line may carry the
// code, its secret or its prefix (the session id), which together or apart
// lead to a QR code. Lines that need correlation carry session.LogRef.
func TestClaimLogsLeadToNoQRCode(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk, st, blobs := clockedStores(t)
	// The session starts on a silent Manager: "session started" may carry
	// the id; only the pairing path is under test.
	quiet, err := session.New(st, blobs, session.WithClock(clk.Now))
	require.NoError(t, err)
	m, err := session.New(st, blobs, session.WithClock(clk.Now), session.WithLogger(logger), session.WithClaimLimits(2, 3, time.Minute))
	require.NoError(t, err)
	ctx := t.Context()
	s, err := quiet.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)

	code, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	var errs []error
	for i := range 6 {
		addr := "192.0.2.1"
		if i%2 == 1 {
			addr = "192.0.2.2"
		}
		_, _, err := m.ClaimHandoff(ctx, s.ID+"."+session.NewID(), "ua", addr)
		errs = append(errs, err)
	}
	_, _, err = m.ClaimHandoff(ctx, "not-a-code", "ua", "192.0.2.1")
	errs = append(errs, err)
	token, _, err := m.ClaimHandoff(ctx, code, "ua", "192.0.2.1")
	require.NoError(t, err)
	require.NoError(t, m.RevokePhone(ctx, s.ID))

	require.ErrorIs(t, errs[len(errs)-2], session.ErrRateLimited, "the flow tripped a budget")
	out := logs.String()
	require.NotEmpty(t, out)
	assert.Contains(t, out, session.LogRef(s.ID), "lines correlate by reference")
	for _, secret := range []string{code, s.ID, code[len(s.ID)+1:], token, token[len(s.ID)+1:], "192.0.2.1"} {
		assert.NotContains(t, out, secret)
		for _, err := range errs {
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
		}
	}
	levels := map[string]int{}
	for line := range strings.Lines(out) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		levels[rec["level"].(string)]++
	}
	assert.Positive(t, levels["WARN"], "a spent session budget is reported")
}

func TestLogRef(t *testing.T) {
	t.Parallel()
	id := session.NewID()
	assert.Equal(t, session.LogRef(id), session.LogRef(id), "stable, for correlation")
	assert.NotEqual(t, session.LogRef(id), session.LogRef(session.NewID()))
	assert.Len(t, session.LogRef(id), 12)
	assert.NotContains(t, id, session.LogRef(id))
}

func TestRateLimitError(t *testing.T) {
	t.Parallel()
	var err error = &session.RateLimitError{Scope: session.LimitSession, RetryAfter: 5 * time.Minute}
	require.ErrorIs(t, err, session.ErrRateLimited)
	assert.NotErrorIs(t, err, session.ErrInvalidCode)
	var rl *session.RateLimitError
	require.True(t, errors.As(err, &rl))
	assert.Equal(t, session.LimitSession, rl.Scope)
	assert.Contains(t, err.Error(), "session")
}
