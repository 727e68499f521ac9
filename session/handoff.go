package session

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A handoff code and a phone token both read "<session id>.<secret>": the
// session id (random, no patient data) says which record to check, and the
// 128-bit secret is checked against the SHA-256 hash stored there. Only the
// hash is ever stored.

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func splitCredential(cred string) (sessionID, secret string, ok bool) {
	sessionID, secret, ok = strings.Cut(cred, ".")
	if !ok || !ValidID(sessionID) || !ValidID(secret) {
		return "", "", false
	}
	return sessionID, secret, true
}

func sameHash(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// maxDeviceLen caps the phone's self-description kept in the session.
const maxDeviceLen = 200

// IssueHandoff returns a new single-use handoff code for the session's QR
// code and when it stops working. Issuing a code replaces any earlier
// unclaimed one. The code carries the session id and 128 random bits, no
// patient data. Treat it as a secret: never log it.
func (m *Manager) IssueHandoff(ctx context.Context, sessionID string) (code string, expires time.Time, err error) {
	secret := NewID()
	_, err = m.store.Update(ctx, sessionID, func(s *Session) error {
		now := m.now()
		m.touch(s, now)
		expires = now.Add(m.handoffTTL)
		if expires.After(s.ExpiresAt) {
			expires = s.ExpiresAt // a code never outlives its session
		}
		s.Phone.HandoffHash = hashSecret(secret)
		s.Phone.HandoffExpires = expires
		return nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: issue handoff: %w", err)
	}
	m.log.DebugContext(ctx, "handoff issued", "session_ref", LogRef(sessionID))
	return sessionID + "." + secret, expires, nil
}

// PhoneView is all a paired phone may learn about its session: no patient
// details, no images but the count of its own uploads.
type PhoneView struct {
	SessionID string
	ExpiresAt time.Time
	Uploads   int
}

func phoneView(s *Session) PhoneView {
	return PhoneView{SessionID: s.ID, ExpiresAt: s.ExpiresAt, Uploads: s.Phone.Uploads}
}

// ClaimHandoff exchanges a handoff code, once, for a phone token bound to
// the code's session. device is the phone's own description (user agent),
// shown to the desktop; clientAddr is the caller's network address (the
// client IP as your trusted proxies report it; all callers passing the same
// value, or IPv6 addresses in the same /64, share one failure budget), used
// only for rate limiting and stored only as a hash.
//
// The right code, unused, unreplaced and unexpired, always pairs: the
// secret is checked (in constant time) before any failure budget is read, so
// no number of wrong guesses, from any address or at this session, can lock
// it out. A wrong, used, replaced or expired code returns ErrInvalidCode and
// is counted against the client address and the session id it names; once
// either budget is spent within the window, wrong claims return a
// *[RateLimitError] (errors.Is ErrRateLimited) instead. See [LimitScope] for
// why the budgets are brakes, not locks. A new claim replaces any phone
// paired before. The token expires with the session; treat it as a secret.
func (m *Manager) ClaimHandoff(ctx context.Context, code, device, clientAddr string) (token string, view PhoneView, err error) {
	sessionID, secret, ok := splitCredential(code)
	if !ok {
		return "", PhoneView{}, m.claimFailed(ctx, clientAddr, "")
	}
	if len(device) > maxDeviceLen {
		device = device[:maxDeviceLen]
	}
	tokenSecret := NewID()
	s, err := m.store.Update(ctx, sessionID, func(s *Session) error {
		now := m.now()
		if !sameHash(s.Phone.HandoffHash, hashSecret(secret)) || !now.Before(s.Phone.HandoffExpires) {
			return ErrInvalidCode
		}
		s.Phone = Phone{
			State: PhonePaired, Device: device, PairedAt: now,
			TokenHash: hashSecret(tokenSecret), Uploads: 0,
		}
		m.touch(s, now)
		return nil
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalidCode), errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
		// Do not tell a guesser whether the session exists.
		return "", PhoneView{}, m.claimFailed(ctx, clientAddr, sessionID)
	default:
		return "", PhoneView{}, fmt.Errorf("session: claim handoff: %w", err)
	}
	m.log.InfoContext(ctx, "phone paired", "session_ref", LogRef(sessionID))
	return sessionID + "." + tokenSecret, phoneView(s), nil
}

// claimFailed counts a failed claim against the client address and, when
// the code was well formed, against the session id it named, and returns
// the error for the caller: ErrInvalidCode, a *RateLimitError when a budget
// is spent, or the limiter's own error. An address already over its budget
// is not counted against the session as well, so a scanner past its brake
// creates no new counters.
func (m *Manager) claimFailed(ctx context.Context, clientAddr, sessionID string) error {
	n, err := m.limiter.Fail(ctx, limiterKey(LimitAddress, addressBucket(clientAddr)), m.claimWindow)
	if err != nil {
		return fmt.Errorf("session: claim handoff: %w", err)
	}
	if n > m.addressLimit {
		m.log.DebugContext(ctx, "handoff claim refused", "limit", string(LimitAddress))
		return &RateLimitError{Scope: LimitAddress, RetryAfter: m.claimWindow}
	}
	if sessionID == "" {
		m.log.DebugContext(ctx, "handoff claim refused", "reason", "malformed")
		return ErrInvalidCode
	}
	ref := LogRef(sessionID)
	n, err = m.limiter.Fail(ctx, limiterKey(LimitSession, sessionID), m.claimWindow)
	if err != nil {
		return fmt.Errorf("session: claim handoff: %w", err)
	}
	if n > m.sessionLimit {
		if n == m.sessionLimit+1 {
			// Once per window: someone is guessing at this session's code.
			// The right code still pairs.
			m.log.WarnContext(ctx, "handoff claims: failure budget for one session spent", "session_ref", ref, "limit", string(LimitSession))
		}
		return &RateLimitError{Scope: LimitSession, RetryAfter: m.claimWindow}
	}
	m.log.InfoContext(ctx, "handoff claim refused", "session_ref", ref)
	return ErrInvalidCode
}

func checkToken(s *Session, tokenHash string) error {
	switch {
	case s.Phone.State == PhoneRevoked && sameHash(s.Phone.TokenHash, tokenHash):
		return ErrRevoked
	case s.Phone.State != PhonePaired || !sameHash(s.Phone.TokenHash, tokenHash):
		return ErrInvalidToken
	}
	return nil
}

// AuthenticatePhone checks a phone token and returns the phone's view of its
// session. Errors: ErrInvalidToken (malformed or not the paired phone's),
// ErrRevoked, ErrExpired or ErrNotFound (the session is gone).
func (m *Manager) AuthenticatePhone(ctx context.Context, token string) (PhoneView, error) {
	s, err := m.PhoneSession(ctx, token)
	if err != nil {
		return PhoneView{}, err
	}
	return phoneView(s), nil
}

// PhoneSession is AuthenticatePhone for the server: it checks token the
// same way and returns the whole session (with the patient's details,
// which never go to the phone), saving a caller that needs both a second
// read.
func (m *Manager) PhoneSession(ctx context.Context, token string) (*Session, error) {
	sessionID, secret, ok := splitCredential(token)
	if !ok {
		return nil, ErrInvalidToken
	}
	s, err := m.store.Get(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("session: authenticate phone: %w", err)
	}
	if err := checkToken(s, hashSecret(secret)); err != nil {
		return nil, err
	}
	return s, nil
}

// AddPhoneImage adds an image from the phone holding token: the only thing a
// phone may do. The token is checked before the bytes are stored and again,
// atomically, when the image is listed, so a phone revoked meanwhile adds
// nothing. The returned Image is for the server (to announce it to the
// desktop); it holds no patient details.
func (m *Manager) AddPhoneImage(ctx context.Context, token string, u Upload) (Image, error) {
	s, err := m.PhoneSession(ctx, token)
	if err != nil {
		return Image{}, err
	}
	sessionID, secret, _ := splitCredential(token)
	return m.addImage(ctx, sessionID, u, SourcePhone, hashSecret(secret), s)
}

// RevokePhone cuts the paired phone off and withdraws any unclaimed handoff
// code. Its token then returns ErrRevoked. Revoking when no phone is paired
// is not an error.
func (m *Manager) RevokePhone(ctx context.Context, sessionID string) error {
	_, err := m.store.Update(ctx, sessionID, func(s *Session) error {
		s.Phone.HandoffHash, s.Phone.HandoffExpires = "", time.Time{}
		if s.Phone.State == PhonePaired {
			s.Phone.State = PhoneRevoked
		}
		m.touch(s, m.now())
		return nil
	})
	if err != nil {
		return fmt.Errorf("session: revoke phone: %w", err)
	}
	m.log.InfoContext(ctx, "phone revoked", "session_ref", LogRef(sessionID))
	return nil
}
