package session

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"
)

// LimitScope names the failure budget that refused a handoff claim.
//
// How claims are limited, and why no wrong guess can lock the right code
// out: a handoff code is "<session id>.<secret>" with a 128-bit secret, valid for
// DefaultHandoffTTL (5 minutes) and once. ClaimHandoff checks the secret
// (constant time, against the stored hash) before it consults any failure
// budget, so a correct code always pairs, whatever was guessed before it and
// from wherever. Only a claim that failed is counted and may be answered
// with ErrRateLimited instead of ErrInvalidCode:
//
//   - per client address (IPv6 grouped by /64, the block one subscriber or
//     host usually holds): a brake on one client scanning many codes;
//   - per target, the session id the code names: the same brake for guesses
//     at one session spread over many addresses, and an alarm (a Warn line)
//     when it trips.
//
// The budgets therefore bound load, not an attacker's chance: refusing the
// right code after wrong guesses would hand anyone who knows a session id
// (it is printed in the QR code) a way to stop pairing, and burning the code
// would do the same. The chance is bounded by the secret's entropy instead.
// At a million claims a second, far beyond what one store serves, a code's
// 5-minute life allows 3×10^8 ≈ 2^28 guesses against 2^128 secrets: a
// success probability of 2^-100 (about 10^-30) per code; a year of codes at
// that rate is 2^45 guesses, 2^-83. The default budgets (DefaultAddressLimit
// and DefaultSessionLimit wrong claims per DefaultClaimWindow) answer a
// scanner with 429s early; they are not what keeps it from succeeding.
type LimitScope string

// The failure budgets of [Manager.ClaimHandoff].
const (
	LimitAddress LimitScope = "address" // wrong claims from one client address (IPv6: its /64)
	LimitSession LimitScope = "session" // wrong claims naming one session id
)

// RateLimitError is the error ClaimHandoff returns when a wrong claim finds
// its budget spent. errors.Is(err, ErrRateLimited) reports true for it.
// RetryAfter is the budget's window: by then the window counting the
// failures has closed (windows are fixed, opened by the first failure). It
// carries no code, session id or address.
type RateLimitError struct {
	Scope      LimitScope
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v (per %s; retry after %v)", ErrRateLimited, e.Scope, e.RetryAfter)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// limiterKey names a Limiter counter without putting the client address or
// the session id in clear into a shared store.
func limiterKey(scope LimitScope, v string) string {
	sum := sha256.Sum256([]byte(v))
	return "claim:" + string(scope) + ":" + hex.EncodeToString(sum[:12])
}

// addressBucket is what the per-address budget counts: an IP address as
// itself (IPv4-mapped IPv6 as IPv4), an IPv6 address as its /64, since one
// host or subscriber usually holds a whole /64 and could otherwise rotate
// through 2^64 budgets. Anything that is not an IP address counts as given.
func addressBucket(clientAddr string) string {
	a, err := netip.ParseAddr(clientAddr)
	if err != nil {
		return clientAddr
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// LogRef is a short, non-reversible reference to a session for log lines on
// the pairing path, where the session id itself must not appear: it is the
// QR code's prefix. An operator correlates by computing LogRef of a session
// id they already hold; the reference cannot be turned back into the id
// (ids carry 128 random bits).
func LogRef(sessionID string) string {
	sum := sha256.Sum256([]byte("clinicalimages/session-log-ref:" + sessionID))
	return hex.EncodeToString(sum[:6])
}
