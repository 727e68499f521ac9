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
// A patient's earlier photos come from [Client.PatientMedia]: the Media
// search by NHI (the only form ALEX allows), all pages under one bound,
// newest first, with their content for thumbnails. It needs the
// patient.media.read role; without it ALEX answers 403 ([ErrForbidden]).
// ALEX's answer is not proof of whose photos they are: check each Media's
// subject before showing it.
//
// Beyond Media, the client offers patient lookup by NHI ([Client.FindPatientByNHI],
// which checks the NHI's format and check character first and refuses a
// search that finds more than one patient with an *[AmbiguousError] matching
// [ErrAmbiguousPatient]: a photo must never be filed against the wrong one of
// two records), Evolution's
// launch context ([Client.LaunchContext]), the Inbox Scan DocumentReference,
// and generic [Read], [Search] (Bundle paging as an iterator) and [Create] for
// any resource type of github.com/samply/golang-fhir-models, so other
// practice-management integrations can reuse it.
//
// # Correlation ids
//
// Every request carries mt-correlationid, which ALEX documents as a GUID and
// Medtech uses to trace a call. It is always a GUID in RFC 4122 string form,
// lower case, the same across a call's retries and across the pages of a
// search. A caller may set one per call with [WithCorrelationID]: a GUID is
// sent as it is; anything else is replaced, not refused, by its name-based
// (version 5) UUID, [CorrelationGUID], so a caller's own ids (an image id and
// attempt) still map to one stable GUID. *[Error] and *[AmbiguousError]
// report the GUID sent.
//
// # Configuration for other ALEX deployments
//
// What is New Zealand-specific is configuration with New Zealand's values as
// defaults, because Medtech also runs an Australian ALEX (same API, no
// facility ids, no NHIs):
//
//   - [WithNHISystem] (default [NHISystem],
//     https://standards.digital.health.nz/ns/nhi-id): the identifier system
//     patients and their Media are searched by; [Client.NHISystem] reports it.
//   - [WithNHICheck] (default [NormalizeNHI]): the format check and
//     normalisation of that identifier before any request.
//   - [WithFacilityHeader] (default [DefaultFacilityHeader], mt-facilityid):
//     the header the facility is sent in.
//   - [WithFacility], [WithFacilityID] and [WithFacilitySource]: where the
//     facility comes from. The context's WithFacilityID wins; otherwise a
//     FacilitySource decides per call (and may return "" to send no facility
//     header), or else the client's fixed WithFacility value is used.
//
// Nothing the client logs or puts in an error string contains a token, a
// secret or a patient identifier: URLs are reported with ids and query values
// redacted, and ALEX's diagnostics are scrubbed of NHI- and id-shaped text.
//
// Package alex/alextest is an in-process ALEX simulator for tests.
package alex
