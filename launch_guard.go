package clinicalimages

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

// What guards a launch besides its signature: freshness read in the
// practice's zone, single use across instances, claim shapes, and caps on
// live sessions. The HTTP side (rate limits, content type, origin) is in
// http_launch.go.

var (
	// ErrLaunchReplayed: the Evolution launch pair or the launch token (its
	// jti) was already used to start a session. Each is good for one
	// session only; the GP opens the widget again from Evolution.
	ErrLaunchReplayed = fmt.Errorf("%w: launch already used", ErrUnauthenticated)
	// ErrTooManySessions: the practitioner or the facility already holds the
	// maximum number of live sessions ([Limits.MaxSessionsPerPractitioner],
	// [Limits.MaxSessionsPerFacility]). Ending one (or letting it expire)
	// frees a place.
	ErrTooManySessions = errors.New("clinicalimages: too many live sessions")
	// ErrUnsupportedContentType: the request body is not in the type the
	// endpoint takes (POST /launch takes application/json only).
	ErrUnsupportedContentType = errors.New("clinicalimages: unsupported content type")
)

// Launch defaults.
const (
	// DefaultLaunchMaxAge is how old an Evolution launch may be (from its
	// createdTime) when it is verified; see [WithLaunchMaxAge].
	DefaultLaunchMaxAge = 10 * time.Minute
	// launchClockSkew is how far in the future a createdTime may be (the
	// practice's clock against ours) before the launch is refused.
	launchClockSkew = 2 * time.Minute
	// maxLaunchMaxAge bounds WithLaunchMaxAge: a launch URL is for now.
	maxLaunchMaxAge = 24 * time.Hour
)

// WithLaunchMaxAge sets how old an Evolution launch may be when it is
// verified (default [DefaultLaunchMaxAge], at most 24 hours). A launch whose
// createdTime is missing or unreadable is refused whatever this says, as is
// one more than two minutes in the future. Relax it only if a practice's
// clock is known to be off; each launch pair stays single-use for as long as
// it is accepted.
func WithLaunchMaxAge(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 || d > maxLaunchMaxAge {
			return fmt.Errorf("clinicalimages: launch max age must be between 0 (default) and %s", maxLaunchMaxAge)
		}
		o.launchMaxAge = d
		return nil
	}
}

// WithLaunchZone sets the time zone in which an Evolution createdTime
// written without an offset is read: the practice's (default
// Pacific/Auckland). A createdTime with an offset or Z is read as written.
// The default comes from the host's tz database, or time/tzdata when the
// program imports it, and failing both from New Zealand's current rule built
// into the SDK (right for every time since 2007), so the SDK embeds no tz
// database (about 450 KB) and still reads NZ times right on a bare image.
func WithLaunchZone(loc *time.Location) Option {
	return func(o *options) error {
		if loc == nil {
			return errors.New("clinicalimages: nil launch zone")
		}
		o.launchZone = loc
		return nil
	}
}

// aucklandTZ is New Zealand's rule since 2007 (NZST +12, NZDT +13 from the
// last Sunday of September 02:00 to the first Sunday of April 03:00), as
// the POSIX TZ string of the tz database's Pacific/Auckland.
const aucklandTZ = "NZST-12NZDT,M9.5.0,M4.1.0/3"

// defaultLaunchZone is Pacific/Auckland: from the system's or the
// importer's tz database when there is one (time/tzdata), else built from
// aucklandTZ, which is right for every time since 2007, so the SDK neither
// embeds the whole tz database (450 KB) nor depends on the host having one.
func defaultLaunchZone() *time.Location {
	if loc, err := time.LoadLocation("Pacific/Auckland"); err == nil {
		return loc
	}
	loc, err := time.LoadLocationFromTZData("Pacific/Auckland", posixTZif(aucklandTZ, "NZST", 12*3600))
	if err != nil { // cannot happen: the data is fixed and tested
		return time.FixedZone("NZST", 12*3600)
	}
	return loc
}

// posixTZif builds a minimal TZif version 2 file: one standard type from
// 1970 and the POSIX rule tz for every time after, which is how Go's time
// package extends a zone past its last transition.
func posixTZif(tz, abbr string, offset int32) []byte {
	var b []byte
	u32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	header := func(timecnt uint32) {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		u32(0)                     // isutcnt
		u32(0)                     // isstdcnt
		u32(0)                     // leapcnt
		u32(timecnt)               // timecnt
		u32(1)                     // typecnt
		u32(uint32(len(abbr) + 1)) // charcnt
	}
	ttinfo := func() {
		u32(uint32(offset))
		b = append(b, 0, 0) // isdst, abbreviation index
		b = append(b, abbr...)
		b = append(b, 0)
	}
	header(1) // version 1 block, 32-bit transition times
	u32(0)
	b = append(b, 0)
	ttinfo()
	header(1) // version 2 block, 64-bit transition times
	b = binary.BigEndian.AppendUint64(b, 0)
	b = append(b, 0)
	ttinfo()
	b = append(b, '\n')
	b = append(b, tz...)
	return append(b, '\n')
}

// createdLayouts are the forms of Evolution's createdTime: with an offset
// (read as written) or without (read in the practice's zone).
var createdLayouts = []struct {
	layout string
	zoned  bool
}{
	{time.RFC3339Nano, true},
	{"2006-01-02T15:04:05.9999999", false},
	{"2006-01-02T15:04:05", false},
	{"2006-01-02 15:04:05.9999999", false},
	{"2006-01-02 15:04:05", false},
}

// launchCreated reads a createdTime; ok is false when there is none or it
// cannot be read.
func launchCreated(raw string, zone *time.Location) (time.Time, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 64 {
		return time.Time{}, false
	}
	for _, l := range createdLayouts {
		var t time.Time
		var err error
		if l.zoned {
			t, err = time.Parse(l.layout, raw)
		} else {
			t, err = time.ParseInLocation(l.layout, raw, zone)
		}
		if err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// checkFresh refuses a launch with no readable createdTime, one older than
// the max age, and one from the future beyond the clock skew allowed.
func (s *Service) checkFresh(ctx context.Context, raw string) error {
	created, ok := launchCreated(raw, s.launchZone)
	if !ok {
		s.log.InfoContext(ctx, "launch refused", "source", "evolution", "reason", "no readable createdTime")
		return fmt.Errorf("%w: launch context has no readable createdTime", ErrUnauthenticated)
	}
	age := s.now().Sub(created)
	switch {
	case age > s.launchAge:
		s.log.InfoContext(ctx, "launch refused", "source", "evolution", "reason", "too old", "age", age.Round(time.Second).String())
		return fmt.Errorf("%w: launch context is too old", ErrUnauthenticated)
	case age < -launchClockSkew:
		s.log.InfoContext(ctx, "launch refused", "source", "evolution", "reason", "from the future", "age", age.Round(time.Second).String())
		return fmt.Errorf("%w: launch context is from the future", ErrUnauthenticated)
	}
	return nil
}

// useOnce records a launch's single-use key; a second use within ttl is
// ErrLaunchReplayed, a store outage ErrStorageUnavailable.
func (s *Service) useOnce(ctx context.Context, kind, value string, ttl time.Duration) error {
	first, err := s.once.FirstUse(ctx, "launch:"+kind+":"+digest(value), ttl)
	if err != nil {
		return storage(fmt.Errorf("clinicalimages: launch single use: %w", err))
	}
	if !first {
		s.log.InfoContext(ctx, "launch refused", "source", kind, "reason", "replayed")
		return ErrLaunchReplayed
	}
	return nil
}

// digest names a launch value in a store without holding it in clear.
func digest(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// validFHIRID reports whether v is a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func validFHIRID(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validFacilityID reports whether v looks like an HPI facility id (F2N060-E):
// letters, digits and hyphens, 1 to 16 of them, starting with a letter or
// digit. It is deliberately loose about the exact layout, so that another
// ALEX region's facility ids pass.
func validFacilityID(v string) bool {
	if len(v) == 0 || len(v) > 16 || v[0] == '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validClaims checks the shapes of a launch token's claims: ids in their
// formats, and no control character anywhere (the NHI is normalised
// separately).
func validClaims(c *launchClaims) bool {
	if !validFacilityID(c.Facility) || !validFHIRID(c.Patient) || !validFHIRID(c.Practitioner) {
		return false
	}
	if c.Encounter != "" && !validFHIRID(c.Encounter) {
		return false
	}
	return c.ID != "" && len(c.ID) <= 256 && !strings.ContainsFunc(c.ID, isControl)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Live sessions are capped per practitioner (within a facility) and per
// facility through the store's session.Roster: each session joins two
// groups with its inactivity expiry. A member whose expiry has passed stops
// counting; before each join the Service re-reads such members' sessions and
// re-joins those still alive with their current expiry (their activity moved
// it on) or removes those gone, so the count is of sessions alive now, across
// every instance sharing the store. EndSession removes a session at once.

func practitionerGroup(facility, practitioner string) string {
	return "sessions:practitioner:" + digest(facility, practitioner)
}

func facilityGroup(facility string) string { return "sessions:facility:" + digest(facility) }

// admit lists a new session in its practitioner's and facility's groups, or
// returns ErrTooManySessions and lists it in neither.
func (s *Service) admit(ctx context.Context, sess *session.Session) error {
	groups := []rosterGroup{
		{practitionerGroup(sess.Facility, sess.Practitioner), s.limits.MaxSessionsPerPractitioner, "practitioner"},
		{facilityGroup(sess.Facility), s.limits.MaxSessionsPerFacility, "facility"},
	}
	for i, g := range groups {
		if err := s.revalidate(ctx, g.name, g.limit); err != nil {
			s.leave(ctx, sess.ID, groups[:i])
			return err
		}
		joined, err := s.roster.Join(ctx, g.name, sess.ID, sess.ExpiresAt, g.limit)
		if err == nil && !joined {
			s.log.InfoContext(ctx, "launch refused", "reason", "too many live sessions", "per", g.what, "limit", g.limit)
			err = fmt.Errorf("%w for one %s (%d)", ErrTooManySessions, g.what, g.limit)
		}
		if err != nil {
			s.leave(ctx, sess.ID, groups[:i])
			return storage(err)
		}
	}
	return nil
}

// rosterGroup is one group a session joins, with its cap.
type rosterGroup struct {
	name  string
	limit int
	what  string // "practitioner" or "facility", for logs and errors
}

func (s *Service) leave(ctx context.Context, id string, groups []rosterGroup) {
	for _, g := range groups {
		if err := s.roster.Leave(context.WithoutCancel(ctx), g.name, id); err != nil {
			s.log.WarnContext(ctx, "session roster leave failed", "session", id, "error", err)
		}
	}
}

// revalidate re-joins the group's lapsed members whose sessions are alive
// (with their current expiry) and removes the others.
func (s *Service) revalidate(ctx context.Context, group string, limit int) error {
	lapsed, err := s.roster.Lapsed(ctx, group)
	if err != nil {
		return storage(err)
	}
	for _, id := range lapsed {
		sess, err := s.store.Get(ctx, id)
		switch {
		case err == nil && sess.ExpiresAt.After(s.now()):
			_, err = s.roster.Join(ctx, group, id, sess.ExpiresAt, limit)
		case err == nil, errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrInvalidID):
			err = s.roster.Leave(ctx, group, id)
		}
		if err != nil {
			return storage(err)
		}
	}
	return nil
}

// dismiss removes an ended session from its groups; a failure is logged:
// the member lapses with the session's expiry anyway.
func (s *Service) dismiss(ctx context.Context, sess *session.Session) {
	for _, g := range []string{practitionerGroup(sess.Facility, sess.Practitioner), facilityGroup(sess.Facility)} {
		if err := s.roster.Leave(context.WithoutCancel(ctx), g, sess.ID); err != nil {
			s.log.WarnContext(ctx, "session roster leave failed", "session", sess.ID, "error", err)
		}
	}
}
