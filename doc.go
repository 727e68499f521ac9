// Package clinicalimages gets clinical photos from a GP's camera into the
// patient's record in Medtech Evolution, through Medtech's ALEX FHIR R4 API.
//
// # The flow
//
// A GP launches the widget from Evolution for the patient on screen. Photos
// are captured on the desktop or, through a QR code, on the GP's phone. Each
// photo is normalised (orientation fixed, location and camera metadata
// stripped, resized and re-encoded under a byte budget; a JPEG that already
// meets the rules, as the phone page sends, keeps its coded data bit for
// bit), kept briefly in a
// blob store, listed in a capture session (10-minute inactivity expiry, kept
// across restarts) and announced to the desktop in real time. The GP adds body
// site, laterality, view and a title and commits: each photo becomes one FHIR
// R4 Media (or, with [WithInboxScan], an Inbox Scan DocumentReference with
// the JPEG inside a TIFF) POSTed to ALEX, authenticated with OAuth2 client
// credentials from Azure AD. Before committing the GP may rotate, crop and
// redact a photo on the server ([Service.EditImage]; the captured photo is
// kept until commit for [Service.ResetImage]) and compare it with the
// patient's earlier photos from ALEX ([Service.History]).
//
// Uploads are idempotent: an upload that carries a key
// ([Uploader.IdempotencyKey], the HTTP Idempotency-Key header) returns the
// image already made for that key and those bytes, on any instance sharing
// the store, so a retry after a lost reply never makes a second photo. The
// phone's heartbeats and its "done" tell the desktop, within the lapse
// window ([WithPhonePresence]), when the phone has gone.
//
//	phone/desktop --upload--> AcceptUpload --compress--> BlobStore.Put
//	                               |               Store.AddImage --> Publisher.Publish
//	desktop <--SSE / poll-- sync handler <--Subscribe----------------------'
//	desktop --commit--> Commit --BlobStore.Open--> media.Build --> alex.Client.CreateMedia
//
// # The Service
//
// [Service] runs that flow and [Service.Handler] serves it over HTTP (the
// README has the endpoint table). Build it with [New] from an alex.Client and,
// for more than one process, a shared session store, blob store, event hub and
// secret ([WithStore], [WithBlobStore], [WithEvents], [WithSecret]); every
// other part has an embedded default. The session store also keeps what
// guards a launch (single-use launch records, live-session caps, launch rate
// counters), so those guards hold across instances. HEIC photos are refused unless the
// caller turns their decoder on with [WithCompressOptions] and
// compress/heic's Option, so that importers who do not need HEIC link no
// WebAssembly runtime. Run [Service.Run] in the background on every instance:
// it reconciles commits a dead process left behind, announces expired
// sessions and sweeps image bytes past retention.
//
// The files that run the flow (service.go, launch.go, launch_guard.go,
// commit.go, edit.go, history.go, presence.go, audit.go, failure.go) import
// no net/http and speak in [FailureCode]s; http.go, http_history.go,
// launch_http.go and http_errors.go are the transport, the one place that maps codes to HTTP
// statuses (a store outage, [session.ErrUnavailable], is 503 with Retry-After
// on every endpoint). [Service.Handler] builds the handler from
// [HTTPOptions] and leaves the Service unchanged.
//
// # What the record says
//
// Evolution shows a photo's title and none of its coded fields, so the title
// carries the body site, side and view whatever the GP typed ("Lesion — left
// forearm, close-up"; only the GP's words are ever shortened to fit).
// [Service.Title] computes it with the builder Commit uses, and the HTTP API
// returns it as each image's "title" on PATCH and in the session, byte for
// byte what ALEX receives. [Service.UpdateImage] refuses, as field errors,
// everything Commit would refuse in a description (media.CheckMetadata: the
// same limits from one place), and stores titles and notes as plain text:
// bidirectional controls, zero-width and other invisible format characters
// and control characters are removed (media.PlainText) before anything is
// stored, shown or sent. Consent's method (verbal or written) comes from the
// desktop and is written in the Media's consent note; who recorded consent
// and when never come from the request (a request that sends them is
// refused) but from the session's launching practitioner and the Service's
// clock.
//
// # Audit
//
// Every step goes to the [AuditSink] ([WithAudit]) as a session.AuditRecord
// with the time by the Service's clock, the launching practitioner, and an
// outcome (session.AuditOK, AuditRefused for a rejected upload or a refused
// description, AuditFailed for a failed commit). Records hold ids, hashes,
// codes and field names only; image.metadata says how consent stands
// ("consent=verbal", "consent=written", "consent=given", "consent=none").
// Only session.expired found by recovery lacks the practitioner: the store
// no longer hands back an expired record. session/pgaudit keeps the trail in
// PostgreSQL (append-only, shared by every instance); SlogAudit, the
// default, writes log lines.
//
// # Packages
//
//   - [github.com/clinicpro/clinicalimages/alex]: the ALEX API client (tokens,
//     headers, retries, typed errors, Media, Patient, launch context, and
//     generic FHIR read/search/create), with alex/alextest, an in-process ALEX
//     simulator for tests.
//   - [github.com/clinicpro/clinicalimages/compress]: decoding, orientation,
//     metadata stripping, resizing and JPEG encoding under a byte budget; one
//     pure-Go engine (its own JPEG decoder, which shrinks in the DCT domain,
//     and encoder); lossless edits of a stored JPEG; HEIC through the opt-in
//     compress/heic (the system libheif, else WebAssembly).
//   - [github.com/clinicpro/clinicalimages/media]: FHIR Media and
//     DocumentReference building, value sets and validation.
//   - [github.com/clinicpro/clinicalimages/session]: capture sessions, handoff
//     (QR) codes, blob stores, idempotency records and the audit record, with
//     memory, filesystem, Redis and S3 implementations; session/pgaudit, the
//     audit trail in PostgreSQL.
//   - [github.com/clinicpro/clinicalimages/sync]: real-time events to the
//     desktop (in-memory hub; Redis fan-out that outlives a Redis restart;
//     mirroring to Ably; Server-Sent Events).
//   - examples (its own module, so its dependencies never reach an importer):
//     examples/cli, the operator's command line; examples/server, the
//     reference server; examples/bench, the load generator, fault scenarios
//     and benchmark report.
//
// Imports run one way: the root package wires the others; alex, media,
// compress, session and sync import none of each other; an implementation
// imports only its parent (session/redisstore imports session) and a test kit
// only what it tests; shared code lives once in internal/. Nothing in the SDK
// imports examples/. internal/layout's test holds the code to this.
//
// # Where to start
//
// To run the whole flow, see [New]. To talk to ALEX alone, build an [github.com/clinicpro/clinicalimages/alex.Client]
// with alex.New. To test code that talks to ALEX without credentials, start
// an alextest.Server and point the client at it. The README's quick start runs
// the whole job against the built-in simulator with one command.
package clinicalimages
