package clinicalimages

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/sync"
)

// Phone presence: the desktop shows the paired phone as there or gone, and
// learns of a change from its event stream (phone.connected and
// phone.disconnected) within seconds, on whichever instance it watches.
//
// A phone is there from its claim while it keeps talking: every phone
// request (GET /phone, POST /phone/heartbeat, uploads) is a heartbeat that
// lists the session in the store's session.Roster until now plus the lapse
// window. Run looks for lapsed members every few seconds on every instance
// and announces each lapsed phone gone, once across the deployment (a
// session.SingleUse record keyed by the session and the moment its phone
// came). The phone's explicit "done" (POST /phone/done) announces it gone at
// once. A phone heard from again after it was announced gone is announced
// connected again, so a wrong "gone" (a phone frozen in the background) heals
// at its next request.

// rosterPhones is the session.Roster group of sessions whose phone is there.
const rosterPhones = "phone-presence"

// Defaults of [PhonePresence].
const (
	DefaultPhoneLapse     = 10 * time.Second
	DefaultPhoneCapturing = 2 * time.Minute
	maxPhoneCheck         = 2 * time.Second
)

// Reasons in the data of a phone.disconnected event ({"reason": ...}).
const (
	PhoneGoneFinished = "finished" // the phone said it was done (POST /phone/done)
	PhoneGoneLapsed   = "lapsed"   // the phone went quiet for longer than the lapse window
	PhoneGoneRevoked  = "revoked"  // the desktop disconnected it (DELETE /handoff)
)

// PhonePresence sets how the Service decides that a paired phone is gone.
// Zero fields take their defaults.
type PhonePresence struct {
	// Lapse is how long a phone may stay silent before it is announced
	// gone (default DefaultPhoneLapse). The phone page heartbeats well
	// within it (every 3 seconds for the default).
	Lapse time.Duration
	// Capturing is how long a phone that said it is opening its camera
	// (POST /phone/heartbeat {"capturing": true}) may stay silent: a
	// browser freezes a page behind the camera (default
	// DefaultPhoneCapturing).
	Capturing time.Duration
	// Check is how often Run looks for lapsed phones (default a quarter of
	// Lapse, at most 2 seconds).
	Check time.Duration
}

func (p PhonePresence) withDefaults() PhonePresence {
	if p.Lapse <= 0 {
		p.Lapse = DefaultPhoneLapse
	}
	if p.Capturing <= 0 {
		p.Capturing = DefaultPhoneCapturing
	}
	if p.Capturing < p.Lapse {
		p.Capturing = p.Lapse
	}
	if p.Check <= 0 {
		p.Check = min(p.Lapse/4, maxPhoneCheck)
	}
	return p
}

// WithPhonePresence sets the lapse window of phone presence (see
// [PhonePresence]).
func WithPhonePresence(p PhonePresence) Option {
	return func(o *options) error {
		if p.Lapse < 0 || p.Capturing < 0 || p.Check < 0 {
			return errors.New("clinicalimages: phone presence durations must not be negative")
		}
		o.phonePresence = p
		return nil
	}
}

// PhoneHeartbeat records that the phone holding token is there (POST
// /phone/heartbeat). capturing says the phone is about to open its camera:
// it then counts as there for PhonePresence.Capturing instead of Lapse.
// A phone announced gone is announced connected again. Errors as for
// [Service.AuthenticatePhone].
func (s *Service) PhoneHeartbeat(ctx context.Context, token string, capturing bool) error {
	view, err := s.sessions.AuthenticatePhone(ctx, token)
	if err != nil {
		return storage(err)
	}
	d := s.phones.Lapse
	if capturing {
		d = s.phones.Capturing
	}
	s.phoneSeen(ctx, view.SessionID, d)
	return nil
}

// PhoneDone records that the phone holding token has finished (POST
// /phone/done): the desktop is told at once (phone.disconnected with
// reason "finished") and the phone is audited as phone.finished. The
// token keeps working until the session ends or the desktop revokes it (a
// late upload still lands, and announces the phone again), but the phone
// page forgets it. Errors as for [Service.AuthenticatePhone].
func (s *Service) PhoneDone(ctx context.Context, token string) error {
	view, err := s.sessions.AuthenticatePhone(ctx, token)
	if err != nil {
		return storage(err)
	}
	if err := s.roster.Leave(context.WithoutCancel(ctx), rosterPhones, view.SessionID); err != nil {
		s.log.WarnContext(ctx, "phone presence: leave failed", "session", session.LogRef(view.SessionID), "error", err)
	}
	sess, err := s.sessions.Get(ctx, view.SessionID)
	if err != nil {
		return storage(err)
	}
	s.phoneGone(ctx, sess, PhoneGoneFinished)
	s.record(ctx, sess, AuditRecord{Event: "phone.finished"})
	return nil
}

// CheckPhones announces gone every phone whose lapse window has passed
// without a heartbeat, and returns how many this call announced. Run calls
// it every PhonePresence.Check; it is safe to run on every instance at
// once: each lapse is announced once.
func (s *Service) CheckPhones(ctx context.Context) (int, error) {
	lapsed, err := s.roster.Lapsed(ctx, rosterPhones)
	if err != nil {
		return 0, storage(err)
	}
	n := 0
	for _, sid := range lapsed {
		if err := s.roster.Leave(ctx, rosterPhones, sid); err != nil {
			return n, storage(err)
		}
		sess, err := s.sessions.Get(ctx, sid)
		if err != nil {
			continue // ended or expired: its desktop was told so
		}
		if s.phoneGone(ctx, sess, PhoneGoneLapsed) {
			s.record(ctx, sess, AuditRecord{Event: "phone.lapsed"})
			n++
		}
	}
	return n, nil
}

// phoneSeen lists the session's phone as there for d, and announces it if
// it was gone. Presence is a hint: failures are logged, not returned.
func (s *Service) phoneSeen(ctx context.Context, sessionID string, d time.Duration) {
	ctx = context.WithoutCancel(ctx)
	if _, err := s.roster.Join(ctx, rosterPhones, sessionID, s.now().Add(d), math.MaxInt32); err != nil {
		s.log.WarnContext(ctx, "phone presence: join failed", "session", session.LogRef(sessionID), "error", err)
		return
	}
	if s.presence == nil {
		return
	}
	p, err := s.presence.Presence(ctx, sessionID)
	if err != nil || p.Phone {
		return
	}
	s.publish(ctx, sessionID, sync.PhoneConnected, "", map[string]any{"reason": "resumed"})
}

// phoneGone announces the session's phone gone for reason, unless it is
// not there (already announced gone, or revoked) or another caller has
// announced this same presence gone. It reports whether it announced.
func (s *Service) phoneGone(ctx context.Context, sess *session.Session, reason string) bool {
	ctx = context.WithoutCancel(ctx)
	if sess.Phone.State != session.PhonePaired {
		return false
	}
	if s.presence != nil {
		p, err := s.presence.Presence(ctx, sess.ID)
		if err != nil {
			s.log.WarnContext(ctx, "phone presence: read failed", "session", session.LogRef(sess.ID), "error", err)
		} else if !p.Phone {
			return false
		} else {
			// One announcement per arrival of the phone, across instances.
			first, err := s.once.FirstUse(ctx, "phone-gone:"+digest(sess.ID, p.Since.UTC().Format(time.RFC3339Nano)), time.Hour)
			if err == nil && !first {
				return false
			}
		}
	}
	s.publish(ctx, sess.ID, sync.PhoneDisconnected, "", map[string]any{"reason": reason})
	return true
}

// watchPhones runs CheckPhones every PhonePresence.Check until ctx ends.
func (s *Service) watchPhones(ctx context.Context) {
	t := time.NewTicker(s.phones.Check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		if _, err := s.CheckPhones(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "phone presence check failed", "error", err)
		}
	}
}
