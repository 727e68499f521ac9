// Package session holds the state of a capture session and the temporary
// bytes of its images while a GP reviews and commits them.
//
// # Records
//
// A [Session] is one GP capturing photos for one patient: it is started from
// a verified launch context ([Launch]), lists its [Image] records and knows
// whether a phone is paired. An Image points at its bytes in a [BlobStore] by
// a [BlobKey] that this package makes from random ids (never from user input)
// and moves through the states uploaded → committing → committed (with the
// FHIR Media id) or failed (with a reason), and from failed back to
// committing on a retry.
//
// # Storage
//
// Two small interfaces carry the state: [Store] (sessions, with one atomic
// read-modify-write, [Store.Update]) and [BlobStore] (image bytes as streams).
// The memory implementations in session/memory are the embedded default;
// session/redisstore, session/fsblob and session/s3blob are for production.
// session/storetest is the conformance suite every implementation passes.
//
// Every error a caller may branch on wraps one of the sentinels (test with
// errors.Is). A backend that cannot be reached or fails (Redis or S3 down,
// a disk I/O error) gives an error wrapping [ErrUnavailable], with the
// backend's own error kept in the chain: that, and only that, is an outage
// worth retrying. An error wrapping none of the sentinels nor the caller's
// context error is unexpected: treat it as a bug, not as an outage.
//
// # The flow
//
// A [Manager] runs the whole flow on top of a Store and a BlobStore: start a
// session, add images from the desktop or the phone, set clinical metadata,
// claim an image for commit (exactly one caller wins), mark it committed or
// failed, remove images, end sessions; issue and claim QR handoff codes,
// authenticate phone tokens and revoke the phone; and sweep away what the
// retention rules say must go. Every Manager method is safe for concurrent
// use, from one process or many sharing the same stores.
//
// # Expiry
//
// A session expires after [DefaultIdleTimeout] without activity and in any
// case [DefaultMaxLifetime] after it started (both configurable). Reading an
// expired session returns [ErrExpired] while the store still holds the
// record (its grace period, one hour by default), and [ErrNotFound] once the
// store has discarded it. Callers that only need "gone or not" test for both.
//
// # Handoff
//
// [Manager.IssueHandoff] returns a single-use code of 128 random bits (plus
// the session id, never patient data) for the QR code. [Manager.ClaimHandoff]
// exchanges it once for a phone token bound to that session, which can only
// add images ([Manager.AddPhoneImage]) and see a [PhoneView] that holds no
// patient details. Only SHA-256 hashes of codes and tokens are stored. Failed
// claims are counted per session and per client address by a [Limiter].
//
// # Retention
//
// Image bytes are deleted after a successful commit, when their session ends
// or expires, and in any case after the retention window (one hour by
// default) by [Manager.Sweep], which decides from the shared stores alone, so
// every instance may run it at the same time. It needs no S3 lifecycle rules.
package session
