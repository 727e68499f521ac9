// Package alextest is an in-process simulator of Medtech's ALEX FHIR API for
// tests: an Azure-AD-shaped token endpoint, ALEX's FHIR endpoints with the
// rules ALEX is known to apply, Evolution's vendor-forms launch endpoint,
// fault injection and request recording. Any client of ALEX, ours or another
// team's, can run its tests against it with nothing but net/http.
//
// Start one per test with NewTestServer (or NewServer and Close), point the
// client at TokenURL, BaseURL and Credentials, and send mt-facilityid:
// Facility(). Everything the simulator knows comes from the ALEX facts the
// SDK keeps (alex-facts.md); where ALEX's behaviour is unknown, the choice
// made here is documented below and errs on the strict side, so that a client
// that passes here does not lean on leniency ALEX may not have.
//
// # Token endpoint
//
// POST TokenURL() with a form body (application/x-www-form-urlencoded):
// grant_type=client_credentials (the only grant), client_id, client_secret
// (or HTTP Basic authentication) and scope, which must equal the configured
// api://<GUID>/.default. Success is Azure AD's
// {"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":...}
// with no refresh token. The access token is JWT-shaped (base64url
// header.payload.signature); its payload has aud, iss, iat, nbf, exp, appid,
// tid and roles[]. It is signed with HMAC-SHA256 under a key private to the
// server: clients must treat it as opaque. Errors have Azure AD's JSON shape
// ({"error","error_description":"AADSTS...","error_codes":[...],"timestamp",
// "trace_id","correlation_id","error_uri"}):
//
//	wrong secret                401 invalid_client          (AADSTS7000215)
//	unknown client id           400 unauthorized_client     (AADSTS700016)
//	wrong or missing scope      400 invalid_scope           (AADSTS70011)
//	another grant type          400 unsupported_grant_type  (AADSTS70003)
//	missing field, not a form   400 invalid_request         (AADSTS900144)
//
// # FHIR API
//
// Requests go to BaseURL() (/FHIR; /fhir is accepted too). Location headers,
// fullUrls and paging links come back with a lowercase /fhir, as ALEX writes
// them. Checks run in this order:
//
//  1. Unknown route (including GET /Encounter, PUT, DELETE) -> 404 with the
//     gateway's non-FHIR body {"statusCode":404,"message":"Resource not found"}.
//  2. Missing, forged, expired or ExpireTokens-ed bearer token -> 401 with
//     {"statusCode":401,"message":"Unauthorized. Access token is missing or invalid."}
//     and WWW-Authenticate: Bearer.
//  3. mt-facilityid missing or not linked (WithFacilities) -> 403
//     OperationOutcome forbidden "Practice Facility not found". GET /metadata
//     needs no facility.
//  4. Token without the endpoint's role -> 403 OperationOutcome forbidden
//     "Authorization failed.".
//  5. Facility made unavailable (SetFacilityUnavailable) -> 503
//     OperationOutcome exception "Cannot establish connection to the facility.
//     Please try again later.".
//
// Endpoints and the role each needs:
//
//	GET  /metadata                               (token only, no facility)  CapabilityStatement
//	GET  /Location                               practice.location.read   searchset: the facility's Location (hpi-facility-id identifier, PMS version extension)
//	GET  /Patient?identifier=<nhi-system>|<NHI>  patient.nhisearch.read   searchset (every patient with the NHI: 0, 1, or more if WithPatients gave duplicates; ids are 32 hex)
//	GET  /Patient/{id}                           patient.nhisearch.read
//	GET  /Practitioner, /Practitioner/{id}       practitioner.read
//	POST /Media                                  patient.media.write      201
//	GET  /Media?patient.identifier=<nhi-system>|<NHI>  patient.media.read searchset, data included
//	GET  /Media/{id}                             patient.media.read       data included
//	POST /DocumentReference                      Patient.documentreference.scaninbox.write  201 (Inbox Scan)
//	GET  /DocumentReference..., GET /Task...      403 "Authorization failed."
//
// Any other search form (GET /Patient with no filter or another parameter,
// GET /Media?patient= or ?subject=, an identifier without the NHI system) is
// refused with 403 "Authorization failed.", as ALEX refuses disallowed search
// forms. Searchsets page: _count sets the page size (default
// DefaultPageSize), and a "next" link (absolute, lowercase /fhir, carrying
// _count and _offset) leads to the following page.
//
// POST bodies must be Content-Type application/fhir+json (else 415) and
// are read as a stream: base64 content is decoded as it arrives, so a 10 MB
// image costs about 10 MB, not three copies. POST /Media needs, in this order:
// identifier[].value (else 400 business-rule "The mandatory Identifier.value
// with the reference number is missing", ALEX's text); status; subject
// referencing a known Patient, relative (Patient/<id>) or absolute
// (https://host/fhir/Patient/<id>); content.contentType image/jpeg, image/png
// or application/pdf; content.data valid base64. Each failure is a 400
// OperationOutcome (messages other than the identifier one are the
// simulator's own). Success is 201 with the whole resource echoed, data
// included, id 32 hex, meta.versionId = id, meta.lastUpdated in UTC
// (+00:00), Location <root>/fhir/Media/<id>/_history/<id> and ETag W/"<id>".
// Prefer: return=minimal is ignored (whether ALEX honours it is unknown).
// A Media is filed at the facility of the request and only found there.
//
// POST /DocumentReference (Inbox Scan) needs identifier[].value, status
// current, type LOINC 72170-4, subject referencing a known Patient, an author
// referencing a Practitioner, and content[].attachment with contentType
// application/pdf or image/tiff (JPEG and PNG are refused) and base64 data
// under 8 MB decoded. Each failure is a 400 OperationOutcome as for Media.
// An image/tiff attachment must be a TIFF a baseline reader opens: byte-order
// mark and magic 42 (BigTIFF is refused), an IFD chain without loops, and on
// every page ImageWidth, ImageLength, PhotometricInterpretation and strips
// inside the file. With JPEG compression (7, TIFF Technical Note 2, as
// libtiff and ClinicPro's production path write it) each strip must be a
// complete JPEG stream, SOI to EOI, with the page's size and sample count in
// its frame header; old-style JPEG (6) is refused. Otherwise the refusal is
// 400 invalid "Attachment is not a valid TIFF: <what is wrong>" (the text is
// the simulator's; ALEX's is unknown). A PDF attachment's bytes are not
// inspected. Success is 201 as for Media.
//
// # Earlier Media
//
// SeedMedia stores Media for a patient as if they had been POSTed earlier
// (created time, SNOMED CT body site refined by laterality as the SDK's
// media package codes it, view, title, a small distinct JPEG unless Data is
// given, the facility they are filed at, and optionally a subject naming
// another patient, to test that a client drops what is not its patient's).
// SeedEarlierMedia, or the WithEarlierMedia option at NewServer, stores
// DefaultEarlierMedia for every known patient: five photos over the past
// months, not in date order. Seeded and POSTed Media are searched alike
// (GET /Media?patient.identifier=<nhi-system>|<NHI>, paged, data inline)
// and read by id; ?patient= and ?subject= stay refused with 403.
//
// # Launch endpoint
//
// GET URL()+"/vendorforms/api/getlaunchcontextstring/{context}/{signature}",
// with both segments URL-encoded, a bearer token with
// patient.launchformincontext.read and no facility header, returns
// {"patientId":"<id>"|null,"facilityCode":"...","providerId":"...","createdTime":"<RFC 3339 UTC>"}
// for a launch made by IssueLaunch. A signature that does not match its
// context gets 403 forbidden (an OperationOutcome); a context issued before
// Reset gets 404 not-found.
//
// # Faults and inspection
//
// FailNext, SetLatency, SetReplyLatency, DropNext, DropNextCreate,
// ExpireTokens, SetFacilityUnavailable and SetEgressBlocked (the egress IP is
// not allow-listed: the token works, ALEX never answers) act on the FHIR and
// launch endpoints; FailTokenNext and SetRoles on the token endpoint. Two
// faults leave a POST's outcome unknown to the client: a drop (acted on and
// stored, then the connection closes with no reply; DropNext takes the next
// request of any kind, DropNextCreate only the next create of one resource
// type) and SetReplyLatency with a client timeout (stored, reply too late);
// SetLatency delays before acting, so a client that gives up stores nothing.
// A FailNext fault applies before authentication, as a gateway failure
// would, and nothing is stored.
// Requests records every FHIR and launch request (headers included, body
// size but not the body); TokenRequests counts token requests; Media,
// MediaData, DocumentReferences and DocumentReferenceData show what was
// stored; Reset clears faults, recordings and stored resources between
// subtests.
//
// The simulator holds stored images in memory and keeps no goroutine of its
// own beyond the httptest server's; Close stops everything.
package alextest
