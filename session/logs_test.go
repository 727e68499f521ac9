package session_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// TestLogsCarryNoSecrets runs the whole flow with a debug logger and checks
// that no patient identifier, code, token or image byte reaches the log,
// nor any error string.
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk, st, blobs := clockedStores(t)
	m, err := session.New(st, blobs, session.WithLogger(logger), session.WithClock(clk.Now), session.WithRetention(time.Minute))
	require.NoError(t, err)
	ctx := t.Context()

	const nhi, patient, body = "ZZZ0016", "patient-4f1c9", "SECRET-IMAGE-BYTES"
	var errs []error
	keep := func(err error) { errs = append(errs, err) }
	s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: patient, NHI: nhi, Practitioner: "d"})
	require.NoError(t, err)
	code, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	_, _, err = m.ClaimHandoff(ctx, s.ID+"."+session.NewID(), "ua", "192.0.2.1")
	keep(err)
	token, _, err := m.ClaimHandoff(ctx, code, "ua", "192.0.2.1")
	require.NoError(t, err)
	img, err := m.AddPhoneImage(ctx, token, session.Upload{Body: strings.NewReader(body), ContentType: "image/jpeg"})
	require.NoError(t, err)
	_, err = m.AddPhoneImage(ctx, token+"x", session.Upload{Body: strings.NewReader(body), ContentType: "image/jpeg"})
	keep(err)
	c, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	_, err = m.ClaimCommit(ctx, s.ID, img.ID)
	keep(err)
	_, err = m.MarkFailed(ctx, c, "alex_busy", "ALEX 503")
	require.NoError(t, err)
	require.NoError(t, m.RevokePhone(ctx, s.ID))
	_, err = m.AuthenticatePhone(ctx, token)
	keep(err)
	clk.Advance(2 * time.Minute)
	_, err = m.Touch(ctx, s.ID)
	require.NoError(t, err)
	_, err = m.Sweep(ctx)
	require.NoError(t, err)
	require.NoError(t, m.End(ctx, s.ID))
	_, err = m.Get(ctx, s.ID)
	keep(err)

	require.NotEmpty(t, logs.String(), "the flow logs at debug level")
	secrets := []string{nhi, patient, body, code, token, code[len(s.ID)+1:], token[len(s.ID)+1:], "192.0.2.1"}
	for _, secret := range secrets {
		assert.NotContains(t, logs.String(), secret)
		for _, err := range errs {
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
		}
	}
}

// FuzzAuthenticatePhone: no string but the paired phone's token is ever
// accepted, and none panics.
func FuzzAuthenticatePhone(f *testing.F) {
	st, err := memory.NewStore()
	require.NoError(f, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(f, err)
	m, err := session.New(st, blobs)
	require.NoError(f, err)
	ctx := f.Context()
	s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(f, err)
	code, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(f, err)
	token, _, err := m.ClaimHandoff(ctx, code, "ua", "192.0.2.1")
	require.NoError(f, err)
	for _, seed := range []string{token, code, s.ID, s.ID + ".", "." + token, token + ".", strings.ToUpper(token), token[:len(token)-1] + "a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, candidate string) {
		_, err := m.AuthenticatePhone(context.Background(), candidate)
		if err == nil {
			require.Equal(t, token, candidate)
		}
	})
}

// clockedStores is a memory Store and BlobStore on one test clock, which
// the test moves.
func clockedStores(t *testing.T) (*storetest.Clock, *memory.Store, *memory.BlobStore) {
	t.Helper()
	clk := storetest.NewClock(time.Now())
	st, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	return clk, st, blobs
}
