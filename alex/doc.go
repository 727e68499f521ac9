// Package alex is a client for Medtech's ALEX FHIR R4 API, through which
// third-party apps read and write patient records in Medtech Evolution.
//
// A [Client] authenticates with OAuth2 client credentials from Azure AD (or
// any oauth2.TokenSource), caches one token per lifetime for all goroutines,
// sends the headers ALEX requires, retries what is safe to retry, and turns
// every error reply into an [*Error] that matches sentinel errors
// ([ErrUnauthorized], [ErrForbidden], [ErrFacilityNotFound], [ErrNotFound],
// [ErrValidation], [ErrRateLimited], [ErrFacilityUnavailable]). A write whose
// outcome is unknown matches [ErrOutcomeUnknown] and is never resent blindly.
//
// Images are streamed: [Client.CreateMedia] writes content.data as base64
// straight from an io.Reader and reads ALEX's reply (which echoes the whole
// image) without buffering it, so memory does not grow with the image.
//
// Beyond Media, the client offers patient lookup by NHI ([Client.FindPatientByNHI],
// which checks the NHI's format and check character first), Evolution's
// launch context ([Client.LaunchContext]), the Inbox Scan DocumentReference,
// and generic [Read], [Search] (Bundle paging as an iterator) and [Create] for
// any resource type of github.com/samply/golang-fhir-models, so other
// practice-management integrations can reuse it.
//
// Nothing the client logs or puts in an error string contains a token, a
// secret or a patient identifier: URLs are reported with ids and query values
// redacted, and ALEX's diagnostics are scrubbed of NHI- and id-shaped text.
//
// Package alex/alextest is an in-process ALEX simulator for tests.
package alex
