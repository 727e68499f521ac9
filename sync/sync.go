// Package sync carries a capture session's events from wherever they happen
// (a phone's upload landing on any server instance) to the desktop watching
// the session, in real time and without loss across reconnects.
//
// It defines the [Event], the small [Publisher], [Subscriber] and [History]
// interfaces, an in-memory [Hub] (the embedded, single-process default), an
// [SSEHandler] that serves one session's events as Server-Sent Events with
// Last-Event-ID resumption, and a [PollHandler] for clients that cannot hold
// a stream. sync/redisnotify implements the same interfaces on Redis so that
// many instances behave as one hub; sync/ablynotify mirrors events to an Ably app; sync/notifytest
// is the conformance suite every implementation passes.
//
// The package is named sync as the design asks; code that also needs the
// standard library's sync imports one of them under another name.
//
// # Delivery rules
//
// Every session has its own sequence of event ids (1, 2, 3, ...) and a
// bounded history. Subscribe(ctx, session, after) first replays the retained
// events with an id greater than after, then streams new ones: replay and
// live delivery read the same history through one cursor, so there is no gap
// and no duplicate where one hands over to the other.
//
// A slow subscriber never blocks a publisher. Publishing appends to the
// history and wakes subscribers; a subscriber that has fallen so far behind
// that the events it has not yet taken were trimmed from the history (or
// that resumes from an id the history no longer holds) receives a single
// [Resync] event, must re-read the session, and then continues with newer
// events. Nothing is ever silently skipped.
//
// A subscription ends after delivering a [SessionExpired] event.
//
// History lives for the session plus a retention period after its last
// event (a short grace period after session.expired). A session's ids start
// again at 1 if its history is forgotten, so session ids must not be reused
// and the retention must outlast the session's inactivity expiry (the
// defaults do: an hour against ten minutes).
//
// # Wiring
//
// The root Service publishes an Event whenever a session changes, and mounts
// an [SSEHandler] (and a [PollHandler] for clients that cannot stream) behind
// its own authentication, telling them through a [SessionFunc] which session
// a request may watch. One process uses [NewHub]; several behind a load
// balancer use sync/redisnotify on a shared Redis. Events must stay free of
// clinical content: see [Event].
package sync

import (
	"context"
	"encoding/json"
	"time"
)

// Publisher records an event in its session's history and wakes the
// session's subscribers, on this instance and, for distributed
// implementations, on every other.
type Publisher interface {
	// Publish validates ev (see [Event.Validate]), assigns it the session's
	// next id and the publisher's time, stores it and returns it as stored.
	// It never waits for subscribers. Errors: ErrInvalidEvent (wrapped),
	// ErrClosed, the context's error, or a backend error.
	Publish(ctx context.Context, ev Event) (Event, error)
}

// Subscriber opens live feeds of one session's events.
type Subscriber interface {
	// Subscribe returns a subscription that delivers, in id order, every
	// retained event of session with an id greater than after (0: from the
	// start), then every later event as it is published, following the
	// package's delivery rules (replay, seam, Resync). It ends when ctx is
	// done, when the subscription or the subscriber is closed, after a
	// SessionExpired event, or on a backend error.
	Subscribe(ctx context.Context, session string, after uint64) (Subscription, error)
}

// Subscription is one live feed opened by a [Subscriber]. Its methods are
// safe for concurrent use.
type Subscription interface {
	// Events delivers the events. It is closed when the subscription ends.
	Events() <-chan Event
	// Err reports why Events was closed: nil after Close, the context's
	// error, ErrClosed when the subscriber was closed, ErrSessionExpired,
	// or a backend error. It returns nil while the subscription is open.
	Err() error
	// Close ends the subscription and waits until it has released
	// everything it held. It is idempotent and always returns nil.
	Close() error
}

// History answers "what happened after id N" without holding a stream, for
// the polling endpoint.
type History interface {
	// Since returns up to limit retained events of session with an id
	// greater than after, oldest first. When events after "after" were
	// trimmed, or after is beyond the newest id, it returns a single
	// [Resync] event instead (see the package's delivery rules). An unknown
	// or quiet session gives an empty slice.
	Since(ctx context.Context, session string, after uint64, limit int) ([]Event, error)
}

// Presence is what the desktop may know about the phone in a session.
type Presence struct {
	// Phone reports whether a phone is connected: the newest of the
	// session's phone.connected and phone.disconnected events is a connect.
	Phone bool `json:"phone"`
	// Since is when Phone last changed (zero if it never did).
	Since time.Time `json:"since,omitzero"`
	// Reason says why the phone is gone, when Phone is false and the
	// phone.disconnected event said ({"reason": ...} in its data, see
	// [PresenceReason]): the root Service sends "finished", "lapsed" or
	// "revoked".
	Reason string `json:"reason,omitempty"`
}

// PresenceReason returns the reason a phone.disconnected event gives in
// its data ({"reason": "finished"}), or "" when it gives none or one that
// is not a short lower-case token (at most 32 of a-z and _), so that
// presence never carries free text.
func PresenceReason(ev Event) string {
	if ev.Type != PhoneDisconnected || len(ev.Data) == 0 {
		return ""
	}
	var d struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(ev.Data, &d) != nil || d.Reason == "" || len(d.Reason) > 32 {
		return ""
	}
	for _, c := range d.Reason {
		if (c < 'a' || c > 'z') && c != '_' {
			return ""
		}
	}
	return d.Reason
}

// PresenceReader reports presence for a session. Hubs track it from the
// phone.connected and phone.disconnected events published to them, so the
// answer survives history trimming.
type PresenceReader interface {
	Presence(ctx context.Context, session string) (Presence, error)
}
