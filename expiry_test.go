package clinicalimages_test

import (
	"context"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/sync"
)

type auditLog struct {
	mu   gosync.Mutex
	recs []ci.AuditRecord
}

func (a *auditLog) Audit(_ context.Context, r ci.AuditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
}

func (a *auditLog) events() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.recs {
		out = append(out, r.Event)
	}
	return out
}

func TestExpiryIsAnnouncedAndBytesGo(t *testing.T) {
	t.Parallel()
	var mu gosync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	hub, err := sync.NewHub(sync.WithClock(clock))
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	audit := &auditLog{}
	store, err := memory.NewStore(memory.WithClock(clock))
	require.NoError(t, err)
	w := newWorldWith(t, store, ci.WithClock(clock), ci.WithEvents(hub), ci.WithAudit(audit))
	desktop, sid := w.launch()
	st, _ := w.call("POST", "/images", desktop, photo(t, 400, 300, 4))
	require.Equal(t, 201, st)
	require.Equal(t, 1, w.blobCount())

	mu.Lock()
	now = now.Add(11 * time.Minute) // past the 10-minute inactivity expiry
	mu.Unlock()
	st, body := w.call("GET", "/session", desktop, nil)
	assert.Equal(t, 410, st)
	assert.Equal(t, "session_expired", errCode(body))

	_, err = w.svc.Recover(t.Context())
	require.NoError(t, err)
	evs, err := hub.Since(t.Context(), sid, 0, 100)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, sync.SessionExpired, evs[len(evs)-1].Type)

	_, err = w.svc.Sessions().Sweep(t.Context())
	require.NoError(t, err)
	assert.Zero(t, w.blobCount(), "an expired session's bytes are gone")
	assert.Equal(t, []string{"session.started", "image.uploaded", "session.expired"}, audit.events())
	for _, r := range audit.recs {
		assert.Equal(t, sid, r.Session)
	}
}
