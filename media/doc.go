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
// Laterality is written as a SNOMED CT post-coordinated expression in the
// bodySite coding, for example "14975008:272741003=7771000" (forearm, with
// laterality left), which R4 allows for the SNOMED CT system; see
// bodySite in [Builder.Build] for why not an extension. Both validators the
// tests run accept it, and the text ("Left forearm") travels beside it.
//
// # What Medtech shows
//
// Evolution does not show bodySite, laterality or view, and lists an Inbox
// item by its title, so [Builder.Title] writes them into a bounded human
// title ("Left forearm, close-up, 25 Nov 2026 10:42") unless the GP gave
// one. Titles never name a sensitive site.
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
// or more JPEGs into a PDF, one upright photo per A4 page with a caption,
// and builds the DocumentReference (LOINC 72170-4) for it.
//
// # Concurrency
//
// A [Builder] is immutable and safe for concurrent use. The value-set
// functions return fresh copies. Nothing in the package logs, holds global
// state or starts goroutines.
package media
