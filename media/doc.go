// Package media turns one stored clinical photo and the GP's description
// of it into the FHIR R4 resource Medtech's ALEX API stores, checks it
// against FHIR's and ALEX's rules before anything is sent, and writes it
// as JSON with the image streamed in.
//
// # Media
//
// [Builder.Build] makes a Media from an [Input]: the image's facts (stable
// id, content type, size, SHA-1, pixel size, capture time), the patient
// (ALEX id, NHI when known), the operator, the facility, an optional
// encounter, the clinical [Metadata] and an optional [Consent]. The Media
// carries an identifier (configurable system; the image's stable id, the
// same on every retry, so a commit whose reply was lost can be
// reconciled), status completed, type image, subject, operator,
// createdDateTime in the practice's time zone (Pacific/Auckland by
// default, so a photo lands on the right clinical day), content
// (contentType, size, hash as R4 defines it: the base64 of the SHA-1,
// title, creation), width, height, bodySite, view and notes. content.data
// holds [DataPlaceholder]; [Encode], or the alex client, streams the image
// in when the resource is written.
//
// # Value sets
//
// The body sites ([BodySites], over a hundred SNOMED CT body structures a
// GP photographs, grouped by region, intimate sites flagged Sensitive),
// lateralities ([Lateralities]: SNOMED CT left 7771000, right 24028007,
// bilateral 51440002, midline 399488007) and views ([Views]: overview,
// close-up, dermoscopic, before and after treatment and the other framings
// dermatology photography uses) are data in this package. [SearchBodySites]
// and [SearchViews] serve a picker as the GP types.
//
// # Laterality
//
// Laterality is written as a SNOMED CT post-coordinated expression in the
// single bodySite coding, for example "14975008:272741003=7771000"
// (14975008 |Forearm structure| refined by 272741003 |Laterality| =
// 7771000 |Left|), with "Left forearm" as the coding's display and the
// CodeableConcept's text. A site without laterality is the plain concept id.
// Why this form:
//
//   - R4's page on SNOMED CT (https://hl7.org/fhir/R4/snomedct.html) lists
//     concept ids and expressions in SNOMED CT Compositional Grammar, without
//     terms, as valid codes for http://snomed.info/sct, and the
//     Laterality attribute is how SNOMED CT itself qualifies a body
//     structure, so no extension and no profile is needed; FHIR.js and
//     @medplum/core, the two validators the tests run, accept it.
//   - The core bodySite extension (http://hl7.org/fhir/StructureDefinition/bodySite)
//     points at a BodyStructure resource, whose locationQualifier would
//     hold the side; ALEX has no BodyStructure endpoint, and the samply
//     Media type has no contained field to carry one inline.
//   - The laterality extensions backported from R5 are defined for
//     BodyStructure or Observation.bodySite only, so on Media.bodySite they
//     break their declared context; realm extensions (mCODE's laterality
//     qualifier) belong to a US implementation guide, not the core registry.
//   - Pre-coordinated lateral concepts ("Structure of left forearm") do not
//     exist for every site in the value set.
//
// Medtech does not show bodySite at all today; a receiver that cannot read
// expressions still has the text.
//
// # What Medtech shows
//
// Evolution shows only a Media's title, none of bodySite, laterality or
// view, and lists an Inbox item by its title, so [Builder.Title] always
// carries the body site, side and view: after the GP's own words ("Lesion —
// left forearm, close-up", only the GP's words shortened to fit) or with
// the date when none were typed ("Left forearm, close-up, 25 Nov 2026
// 10:42"). A sensitive site is never named, but its side is. [PlainText]
// removes invisible and control characters (bidirectional overrides,
// zero-width and other format characters) from every text written;
// [CheckMetadata] is the one check of a description, shared by Build and by
// callers that accept it earlier (the Service's PATCH).
//
// # Validation
//
// [Builder.Validate] and [Builder.ValidateDocument] apply ALEX's rules and
// FHIR's (required fields, identifier length and characters, accepted
// content types, the size limit, codes from the value sets, date formats,
// base64 and hash shapes) and return every problem at once as a
// *[ValidationError], each [Problem] naming its field; errors.Is(err,
// [ErrInvalid]) holds for all of them. Messages never quote patient data.
//
// # Inbox Scan documents
//
// ALEX shows a JPEG Media only as an external link, while an Inbox Scan
// DocumentReference shows inline and appears in referral attachment
// pickers, but accepts only PDF or TIFF. [Builder.BuildDocument] wraps one
// or more JPEGs and builds the DocumentReference (LOINC 72170-4) for them.
// With Format = [DocumentTIFF] the JPEGs are embedded unchanged in a TIFF
// (JPEG compression, one page each), as ClinicPro's production path sends
// them: no second lossy generation; with [DocumentPDF] (the zero value) each
// goes on an A4 page with a caption. Author, the launching GP's
// Practitioner, is required: it files the document in that GP's Inbox.
//
// # Concurrency
//
// A [Builder] is immutable and safe for concurrent use. The value-set
// functions return fresh copies. Nothing in the package logs, holds global
// state or starts goroutines.
package media
