package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

var _ session.Idempotency = (*Store)(nil)

// uploadKey names one idempotency record.
type uploadKey struct{ session, key string }

// live returns the record under k if it has not expired, discarding it
// otherwise. Callers hold s.mu.
func (s *Store) liveUpload(k uploadKey, now time.Time) (session.UploadRecord, bool) {
	rec, ok := s.uploads[k]
	if ok && !now.Before(rec.Expires) {
		delete(s.uploads, k)
		return session.UploadRecord{}, false
	}
	return rec, ok
}

// purgeUploads discards expired records. Callers hold s.mu.
func (s *Store) purgeUploads(now time.Time) {
	for k, rec := range s.uploads {
		if !now.Before(rec.Expires) {
			delete(s.uploads, k)
		}
	}
}

// ClaimUpload implements session.Idempotency.
func (s *Store) ClaimUpload(ctx context.Context, sessionID, key string, rec session.UploadRecord) (session.UploadRecord, bool, error) {
	if err := ctx.Err(); err != nil {
		return session.UploadRecord{}, false, fmt.Errorf("memory: claim upload: %w", err)
	}
	if rec.Token == "" || rec.ImageID != "" {
		return session.UploadRecord{}, false, fmt.Errorf("memory: claim upload: a claim needs a token and no image id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	k := uploadKey{sessionID, key}
	if cur, ok := s.liveUpload(k, now); ok && (cur.Done() || now.Before(cur.Lease)) {
		return cur, false, nil
	}
	if !now.Before(rec.Expires) {
		return session.UploadRecord{}, false, fmt.Errorf("memory: claim upload: the record would expire at once")
	}
	if s.uploads == nil {
		s.uploads = map[uploadKey]session.UploadRecord{}
	}
	s.uploads[k] = rec
	return rec, true, nil
}

// CompleteUpload implements session.Idempotency.
func (s *Store) CompleteUpload(ctx context.Context, sessionID, key, token, imageID string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: complete upload: %w", err)
	}
	if imageID == "" {
		return fmt.Errorf("memory: complete upload: empty image id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := uploadKey{sessionID, key}
	cur, ok := s.liveUpload(k, s.cfg.now())
	if !ok || cur.Done() || cur.Token != token {
		return fmt.Errorf("memory: complete upload: %w", session.ErrUploadClaimLost)
	}
	cur.ImageID, cur.Lease = imageID, time.Time{}
	s.uploads[k] = cur
	return nil
}

// ReleaseUpload implements session.Idempotency.
func (s *Store) ReleaseUpload(ctx context.Context, sessionID, key, token string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: release upload: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := uploadKey{sessionID, key}
	if cur, ok := s.liveUpload(k, s.cfg.now()); ok && !cur.Done() && cur.Token == token {
		delete(s.uploads, k)
	}
	return nil
}

// LookupUpload implements session.Idempotency.
func (s *Store) LookupUpload(ctx context.Context, sessionID, key string) (session.UploadRecord, error) {
	if err := ctx.Err(); err != nil {
		return session.UploadRecord{}, fmt.Errorf("memory: lookup upload: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.liveUpload(uploadKey{sessionID, key}, s.cfg.now())
	if !ok {
		return session.UploadRecord{}, fmt.Errorf("%w: upload record", session.ErrNotFound)
	}
	return cur, nil
}
