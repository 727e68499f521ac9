package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
)

// EventType names what happened in a capture session. The values are stable
// strings: they appear on the wire as the SSE "event:" field, in the JSON
// polling response and as the Ably message name.
type EventType string

// The event types a session produces. Resync is never published: a Subscriber
// synthesises it (see [Resync]).
const (
	ImageAdded        EventType = "image.added"        // a photo finished uploading and is listed in the session
	ImageUpdated      EventType = "image.updated"      // a photo's clinical metadata changed
	ImageRemoved      EventType = "image.removed"      // a photo was deleted from the session
	ImageCommitting   EventType = "image.committing"   // a photo is being sent to ALEX
	ImageCommitted    EventType = "image.committed"    // ALEX accepted the photo
	ImageFailed       EventType = "image.failed"       // sending a photo to ALEX failed
	PhoneConnected    EventType = "phone.connected"    // a phone joined the session through its handoff
	PhoneDisconnected EventType = "phone.disconnected" // the phone left or went quiet
	SessionExpired    EventType = "session.expired"    // the session ended; streams close after delivering it

	// Resync tells a subscriber that it missed events that can no longer be
	// replayed: it fell further behind than the history keeps, or asked to
	// resume from an id the history no longer holds (or never held, after the
	// history expired or a memory hub restarted). The client must re-read the
	// whole session (through the Service's API) and then carry on: a Resync
	// event's ID is the newest event id at the moment it was issued, every
	// later event has a larger id, and resuming from it (Last-Event-ID) is
	// correct.
	Resync EventType = "resync"
)

// Limits applied by [Event.Validate].
const (
	// MaxDataSize bounds Event.Data. It is deliberately small: events say
	// that something changed, the client reads what changed through the API.
	MaxDataSize = 4 << 10
	// MaxIDLength bounds Event.Session and Event.Image.
	MaxIDLength = 128
)

// Errors shared by every Publisher and Subscriber implementation.
var (
	// ErrInvalidEvent is returned (wrapped) by Publish for an event that
	// fails [Event.Validate].
	ErrInvalidEvent = errors.New("sync: invalid event")
	// ErrClosed is returned by Publish and Subscribe after the hub was
	// closed, and reported by Subscription.Err for subscriptions the
	// closing ended.
	ErrClosed = errors.New("sync: closed")
	// ErrSessionExpired is reported by Subscription.Err after the
	// subscription delivered a SessionExpired event and ended.
	ErrSessionExpired = errors.New("sync: session expired")
)

// Event is one thing that happened in a capture session, as seen by the
// desktop: a photo arrived, changed, was committed, the phone came or went.
//
// Events carry no clinical content. Data is a small JSON object (at most
// [MaxDataSize] bytes) for hints such as a thumbnail URL path, a state name
// or an error category. It must never hold image bytes, and never a patient
// identifier (name, NHI, date of birth, Medtech patient id) or any other
// health information: events travel to third-party real-time services (see
// sync/ablynotify), sit in Redis and in browser memory, and may be logged by
// proxies. The client reads anything sensitive through the authenticated API.
//
// Events are values; a published Event and its Data must not be modified.
type Event struct {
	// ID orders the events of one session: assigned by the Publisher,
	// starting at 1 and strictly increasing within the session. Callers of
	// Publish leave it zero.
	ID uint64 `json:"id"`
	// Session is the capture session's id (an opaque random token, never a
	// patient identifier).
	Session string `json:"session"`
	// Type is what happened.
	Type EventType `json:"type"`
	// Image is the id of the photo concerned, for image.* events.
	Image string `json:"image,omitempty"`
	// Time is when the Publisher accepted the event (its clock).
	Time time.Time `json:"time"`
	// Data is an optional small JSON value; see the type's documentation
	// for what it must never contain.
	Data json.RawMessage `json:"data,omitempty"`
}

// Validate reports whether e may be published: a session id and, when set,
// an image id of at most [MaxIDLength] printable characters; a known type
// other than Resync; Data empty or valid JSON of at most [MaxDataSize]
// bytes. The error wraps [ErrInvalidEvent] and quotes no field value.
func (e Event) Validate() error {
	if err := validID("session", e.Session, true); err != nil {
		return err
	}
	if err := validID("image", e.Image, false); err != nil {
		return err
	}
	if !e.Type.publishable() {
		return fmt.Errorf("%w: type is not one a publisher may send", ErrInvalidEvent)
	}
	if len(e.Data) > MaxDataSize {
		return fmt.Errorf("%w: data is %d bytes, more than %d", ErrInvalidEvent, len(e.Data), MaxDataSize)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return fmt.Errorf("%w: data is not valid JSON", ErrInvalidEvent)
	}
	return nil
}

func (t EventType) publishable() bool {
	switch t {
	case ImageAdded, ImageUpdated, ImageRemoved, ImageCommitting, ImageCommitted, ImageFailed,
		PhoneConnected, PhoneDisconnected, SessionExpired:
		return true
	}
	return false
}

// ValidSessionID reports whether s is usable as a session id: non-empty, at
// most [MaxIDLength] characters, printable, no spaces. Subscribers check it
// so that a session id can be embedded in keys, channel names and URLs.
func ValidSessionID(s string) bool { return validID("session", s, true) == nil }

func validID(field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%w: %s id is empty", ErrInvalidEvent, field)
		}
		return nil
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("%w: %s id is longer than %d bytes", ErrInvalidEvent, field, MaxIDLength)
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %s id has a space or non-printable character", ErrInvalidEvent, field)
		}
	}
	return nil
}

// Stamp returns e prepared for storage by a Publisher: with the given id and
// time, and Data copied so that the caller's later changes to its slice
// cannot reach stored history. Implementations call it after Validate.
func (e Event) Stamp(id uint64, now time.Time) Event {
	e.ID = id
	e.Time = now
	if len(e.Data) > 0 {
		e.Data = append(json.RawMessage(nil), e.Data...)
	} else {
		e.Data = nil
	}
	return e
}
