package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SweepReport counts what one Sweep removed.
type SweepReport struct {
	SessionsPurged int // expired sessions discarded (stores implementing Purger only)
	BlobsDeleted   int // image bytes deleted
	BlobsKept      int // image bytes still needed
}

// Sweep deletes image bytes that the retention rules say must go and asks
// the store to purge expired sessions. A blob is deleted when:
//   - its session has expired or is gone;
//   - its image has been committed;
//   - its session does not list it and it is older than the orphan grace
//     (removed images, and uploads whose session update failed);
//   - it is older than the retention window, whatever its state (the
//     image then stays listed but can no longer be committed: opening it
//     returns ErrNotFound).
//
// Every decision is made from the shared stores and every delete is
// idempotent, so Sweep is safe to run on every instance at once. It does
// not rely on S3 lifecycle rules. It needs a BlobStore that implements
// BlobLister (all of this module's do); with one that does not, only
// purging runs.
func (m *Manager) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	if p, ok := m.store.(Purger); ok {
		n, err := p.Purge(ctx)
		if err != nil {
			return rep, fmt.Errorf("session: sweep: %w", err)
		}
		rep.SessionsPurged = n
	}
	lister, ok := m.blobs.(BlobLister)
	if !ok {
		return rep, nil
	}
	type lookup struct {
		s   *Session // nil when gone or expired
		err error
	}
	sessions := map[string]lookup{}
	now := m.now()
	err := lister.List(ctx, func(b BlobInfo) error {
		sid, iid, err := b.Key.Parts()
		if err != nil {
			return nil // not ours; List never yields such keys from our stores
		}
		l, seen := sessions[sid]
		if !seen {
			s, err := m.store.Get(ctx, sid)
			switch {
			case err == nil:
				l = lookup{s: s}
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
			default:
				l = lookup{err: err}
			}
			sessions[sid] = l
		}
		if l.err != nil {
			return l.err
		}
		if !m.sweepable(l.s, iid, b, now) {
			rep.BlobsKept++
			return nil
		}
		if err := m.blobs.Delete(ctx, b.Key); err != nil {
			return err
		}
		rep.BlobsDeleted++
		m.log.DebugContext(ctx, "swept image bytes", "session", sid, "image", iid)
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("session: sweep: %w", err)
	}
	if rep.BlobsDeleted > 0 || rep.SessionsPurged > 0 {
		m.log.InfoContext(ctx, "sweep", "blobs_deleted", rep.BlobsDeleted, "sessions_purged", rep.SessionsPurged)
	}
	return rep, nil
}

func (m *Manager) sweepable(s *Session, imageID string, b BlobInfo, now time.Time) bool {
	age := now.Sub(b.ModTime)
	switch {
	case s == nil:
		// The session was found gone or expired: its bytes must go. A
		// session is created before any upload, so this is never a race.
		return true
	case age >= m.retention:
		return true
	}
	img := s.Image(imageID)
	if img == nil {
		return age >= m.orphanGrace
	}
	return img.State == StateCommitted
}

// RunSweeper calls Sweep every interval until ctx is done, and returns
// ctx's error. Sweep errors are logged and retried at the next tick. Run
// it in a goroutine of your own; cancel ctx to stop it.
func (m *Manager) RunSweeper(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("session: RunSweeper: interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
