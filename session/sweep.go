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
//   - no image of its session holds it (as its current bytes or, for an
//     edited image, its captured original) and it is older than the orphan
//     grace (removed images, replaced edits, and uploads whose session
//     update failed);
//   - it is older than the retention window, counted from the image's
//     upload for an image's bytes (an edit does not extend it), whatever
//     its state. The image
//     stays listed, marked Purged (and failed with PurgedReason unless a
//     commit is in flight); ClaimCommit refuses it with ErrExpired.
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
		why, img := m.sweepable(l.s, b, now)
		if why == keep {
			rep.BlobsKept++
			return nil
		}
		if err := m.blobs.Delete(ctx, b.Key); err != nil {
			return err
		}
		rep.BlobsDeleted++
		m.log.DebugContext(ctx, "swept image bytes", "session", sid, "blob", iid)
		if why == retained && img != nil {
			return m.markPurged(ctx, sid, img.ID)
		}
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

type sweepReason int

const (
	keep     sweepReason = iota
	gone                 // session gone or expired, image removed or committed
	retained             // retention window passed for a listed image
)

// sweepable decides the fate of blob b of session s, and returns the image
// holding it (as its current bytes or its captured original), if any. An
// image's bytes are as old as the image: an edit made later does not extend
// the retention window of the photo it was made from.
func (m *Manager) sweepable(s *Session, b BlobInfo, now time.Time) (sweepReason, *Image) {
	if s == nil {
		// The session was found gone or expired: its bytes must go. A
		// session is created before any upload, so this is never a race.
		return gone, nil
	}
	born := b.ModTime
	img := s.ImageOfBlob(b.Key)
	if img != nil && !img.CreatedAt.IsZero() && img.CreatedAt.Before(born) {
		born = img.CreatedAt
	}
	age := now.Sub(born)
	switch {
	case img == nil && age >= m.orphanGrace, img != nil && img.State == StateCommitted:
		return gone, img
	case age >= m.retention:
		return retained, img
	}
	return keep, img
}

// markPurged records on an image that its bytes passed the retention
// window, so the desktop can say so and ClaimCommit refuses it.
func (m *Manager) markPurged(ctx context.Context, sessionID, imageID string) error {
	_, err := m.store.Update(ctx, sessionID, func(s *Session) error {
		img := s.Image(imageID)
		if img == nil || img.Purged {
			return errSkip
		}
		img.Purged = true
		img.Original = nil // its bytes are as old as the image's: swept too
		if img.State == StateUploaded || img.State == StateFailed {
			img.State, img.FailCode, img.FailReason = StateFailed, PurgedCode, PurgedReason
		}
		img.Version++
		img.UpdatedAt = m.now()
		return nil
	})
	if err == nil || errors.Is(err, errSkip) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired) {
		return nil
	}
	return err
}

var errSkip = errors.New("nothing to do")

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
