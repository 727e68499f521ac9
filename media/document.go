package media

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Inbox Scan DocumentReference constants.
const (
	// PhotographicImageLOINC is the LOINC code ALEX's Inbox Scan profile
	// requires as DocumentReference.type: 72170-4 "Photographic image".
	PhotographicImageLOINC = "72170-4"
	// MaxDocumentPages bounds the photos wrapped into one document.
	MaxDocumentPages = 20
)

// documentContentTypes are what ALEX's Inbox Scan accepts; JPEG and PNG
// are refused.
var documentContentTypes = []string{"application/pdf", "image/tiff"}

// DocumentPage is one JPEG photo to put on its own page of the document.
type DocumentPage struct {
	// JPEG is read to EOF and not closed; its bytes are embedded in the
	// PDF or TIFF unchanged.
	JPEG io.Reader
	// Size is the JPEG's length in bytes, if known (0 if not). A TIFF
	// streams a page of known size straight through; a page of unknown size
	// is held in memory until its end, because each TIFF page's directory,
	// written before the JPEG, records its length. A Size that does not
	// match the bytes read is an error matching [ErrNotJPEG]. The PDF does
	// not need it.
	Size int64
	// Orientation is the JPEG's EXIF orientation (1-8; 0 means 1, upright).
	// Images normalised by the compress package are upright already. The
	// PDF draws the photo upright; the TIFF records it in its Orientation
	// tag, which viewers may or may not honour.
	Orientation int
	// Created is when the photo was taken; zero leaves the date out of the
	// caption.
	Created time.Time
	// Metadata describes the photo; it is printed as the page's caption
	// (title, site and side, view, date, note) in a PDF, and written as the
	// page's ImageDescription in a TIFF.
	Metadata Metadata
}

// DocumentInput is everything [Builder.BuildDocument] turns into one Inbox
// Scan DocumentReference.
type DocumentInput struct {
	// ID is the document's stable id, written as identifier.value; the same
	// on every attempt to send it.
	ID string
	// Patient is the subject.
	Patient Patient
	// Author is the ALEX Practitioner id of the author: the launching GP,
	// whose Inbox the document is filed in (and whose referrals can then
	// pick it). Required: Medtech documents author as optional, but its
	// examples show an Inbox Scan without one rejected.
	Author string
	// Format is the wrapping: [DocumentPDF] (the zero value) or
	// [DocumentTIFF]. See [DocumentFormat] for which to choose.
	Format DocumentFormat
	// Facility is the HPI facility id the document is sent under; checked,
	// not written (see [Input.Facility]).
	Facility string
	// Encounter is an optional ALEX Encounter id.
	Encounter string
	// Title overrides the generated attachment title.
	Title string
	// Date is the document's date; zero means now by the builder's clock.
	Date time.Time
	// Pages are the photos, one per page, in order; 1 to [MaxDocumentPages].
	Pages []DocumentPage
	// Consent covers every photo in the document; optional unless
	// [WithConsentRequired] is given. DocumentReference has no note, so it
	// is written as the description: the text of a Media consent note (see
	// [Consent]) followed by who recorded it and when.
	Consent *Consent
}

// BuildDocument wraps the pages' JPEGs into a PDF or a TIFF (in.Format),
// written to w, and returns the Inbox Scan DocumentReference for it:
// identifier, status current, type LOINC 72170-4, subject, date, author
// (Practitioner), and one attachment (application/pdf or image/tiff, size
// and SHA-1 of the file, title, creation) whose data is [DataPlaceholder],
// to be streamed from the file's bytes with [Encode]. Either way the JPEG
// bytes are embedded unchanged; memory does not grow with them (a TIFF page
// without a Size holds its JPEG, see [DocumentPage]).
//
// ALEX shows an Inbox Scan inline and offers it in referral attachment
// pickers, which it does not do for a JPEG Media; it accepts only PDF or
// TIFF, under 8 MB. Medtech's Inbox Scan examples use absolute subject
// references: build with [WithReferenceBase] set to the ALEX base URL.
//
// Input problems are reported as a *[ValidationError] before anything is
// written. If the finished file breaks a rule (it is over the size limit),
// it has been written to w and BuildDocument returns a *[ValidationError];
// the caller discards what w holds, as after any error. An error reading a
// page or writing to w is returned wrapped; [ErrNotJPEG] marks a page that
// is not a JPEG, [ErrJPEGNotWrappable] a JPEG a TIFF cannot carry unchanged
// (a progressive one, say: build it as a PDF).
func (b *Builder) BuildDocument(w io.Writer, in DocumentInput) (*fhir.DocumentReference, error) {
	var ps problems
	b.checkDocumentInput(&ps, in)
	if err := ps.err("DocumentReference"); err != nil {
		return nil, err
	}

	date := in.Date
	if date.IsZero() {
		date = b.cfg.now()
	}
	title := cleanText(in.Title)
	if title == "" {
		title = b.documentTitle(in, date)
	}
	h := sha1.New()
	var n int64
	var err error
	switch in.Format {
	case DocumentTIFF:
		pages := make([]tiffPage, len(in.Pages))
		for i, pg := range in.Pages {
			var created time.Time
			if !pg.Created.IsZero() {
				created = pg.Created.In(b.cfg.loc)
			}
			pages[i] = tiffPage{jpeg: pg.JPEG, size: pg.Size, orientation: pg.Orientation, created: created,
				description: strings.Join(b.caption(pg, i+1, len(in.Pages)), "\n")}
		}
		n, err = writeTIFF(io.MultiWriter(w, h), pages, b.cfg.maxSize)
		if errors.Is(err, errTIFFTooBig) {
			ps.add("DocumentReference.content[0].attachment.size", "the document would be larger than "+strconv.FormatInt(b.cfg.maxSize, 10)+" bytes")
			return nil, ps.err("DocumentReference")
		}
		if err != nil {
			return nil, fmt.Errorf("media: writing TIFF: %w", err)
		}
	default:
		pages := make([]pdfPage, len(in.Pages))
		for i, pg := range in.Pages {
			pages[i] = pdfPage{jpeg: pg.JPEG, orientation: pg.Orientation, caption: b.caption(pg, i+1, len(in.Pages))}
		}
		n, err = writePDF(io.MultiWriter(w, h), pages, pdfInfo{title: title, created: date.In(b.cfg.loc)})
		if err != nil {
			return nil, fmt.Errorf("media: writing PDF: %w", err)
		}
	}

	when := b.dateTime(date)
	d := &fhir.DocumentReference{
		Identifier: []fhir.Identifier{{System: optString(b.cfg.idSystem), Value: ptr(in.ID)}},
		Status:     fhir.DocumentReferenceStatusCurrent,
		Type: &fhir.CodeableConcept{
			Coding: []fhir.Coding{{System: ptr(LOINCSystem), Code: ptr(PhotographicImageLOINC), Display: ptr("Photographic image")}},
		},
		Subject: b.patientReference(in.Patient),
		Date:    ptr(when),
		Author:  []fhir.Reference{*b.ref("Practitioner", in.Author)},
		Content: []fhir.DocumentReferenceContent{{Attachment: fhir.Attachment{
			ContentType: ptr(in.Format.ContentType()),
			Data:        ptr(DataPlaceholder),
			Title:       ptr(title),
			Creation:    ptr(when),
			Hash:        ptr(base64.StdEncoding.EncodeToString(h.Sum(nil))),
		}}},
	}
	if n <= maxInt32 {
		d.Content[0].Attachment.Size = ptr(int(n))
	}
	if in.Encounter != "" {
		d.Context = &fhir.DocumentReferenceContext{Encounter: []fhir.Reference{*b.ref("Encounter", in.Encounter)}}
	}
	if c := in.Consent; c != nil {
		d.Description = ptr(consentText(c) + " Recorded by " + *b.ref("Practitioner", c.RecordedBy).Reference +
			" at " + b.dateTime(c.RecordedAt) + ".")
	}
	b.validateDocument(&ps, d)
	if err := ps.err("DocumentReference"); err != nil {
		return nil, err
	}
	return d, nil
}

func (b *Builder) checkDocumentInput(ps *problems, in DocumentInput) {
	if in.Facility == "" {
		ps.add("Input.Facility", "facility is required (the HPI facility id the document is sent under)")
	} else if !hpiFacilityRE.MatchString(in.Facility) {
		ps.add("Input.Facility", "facility is not an HPI facility id such as F2N060-E")
	}
	// Check the fields the resource will carry before any PDF is written.
	probe := &fhir.DocumentReference{
		Identifier: []fhir.Identifier{{System: optString(b.cfg.idSystem), Value: ptr(in.ID)}},
		Subject:    b.patientReference(in.Patient),
		Author:     []fhir.Reference{*b.ref("Practitioner", in.Author)},
	}
	checkIdentifiers(ps, "DocumentReference.identifier", probe.Identifier)
	b.checkSubject(ps, "DocumentReference.subject", probe.Subject)
	checkReference(ps, "DocumentReference.author[0]", &probe.Author[0], "Practitioner", true)
	if in.Encounter != "" {
		checkReference(ps, "DocumentReference.context.encounter[0]", b.ref("Encounter", in.Encounter), "Encounter", true)
	}
	b.checkConsent(ps, in.Consent)
	if c := in.Consent; c != nil && c.RecordedBy != "" {
		checkReference(ps, "Input.Consent.RecordedBy", b.ref("Practitioner", c.RecordedBy), "Practitioner", true)
	}
	if utf8.RuneCountInString(cleanText(in.Title)) > MaxTitleLength {
		ps.add("DocumentReference.content[0].attachment.title", "title is longer than "+strconv.Itoa(MaxTitleLength)+" characters")
	}
	if !in.Format.valid() {
		ps.add("Input.Format", "format must be DocumentPDF or DocumentTIFF")
	}
	switch n := len(in.Pages); {
	case n == 0:
		ps.add("Input.Pages", "at least one page is required")
	case n > MaxDocumentPages:
		ps.add("Input.Pages", "more than "+strconv.Itoa(MaxDocumentPages)+" pages")
	}
	for i, pg := range in.Pages {
		f := "Input.Pages[" + strconv.Itoa(i) + "]"
		if pg.JPEG == nil {
			ps.add(f+".JPEG", "image reader is required")
		}
		if pg.Size < 0 {
			ps.add(f+".Size", "size must not be negative")
		}
		if pg.Orientation < 0 || pg.Orientation > 8 {
			ps.add(f+".Orientation", "EXIF orientation must be 1 to 8 (or 0 for upright)")
		}
		checkMetadata(pg.Metadata, func(fld metadataField, msg string) { ps.add(f+"."+inputFieldOf[fld], msg) })
	}
}

// documentTitle names the document for the Inbox list: the photo's own
// title for one page, else the count and date. Sensitive sites are never
// named (see [Builder.Title]).
func (b *Builder) documentTitle(in DocumentInput, date time.Time) string {
	if len(in.Pages) == 1 {
		created := in.Pages[0].Created
		if created.IsZero() {
			created = date
		}
		return b.title(in.Pages[0].Metadata, created)
	}
	return "Clinical photos (" + strconv.Itoa(len(in.Pages)) + "), " + date.In(b.cfg.loc).Format("2 Jan 2006 15:04")
}

// caption is the text printed under a photo: the GP's title, the site with
// its side, the view and the time taken, the note, and the page number.
// Unlike the Inbox title, a sensitive site is named: the page shows the
// photo itself, so the caption reveals nothing more.
func (b *Builder) caption(pg DocumentPage, page, pages int) []string {
	const width = 95 // characters of 10 pt Helvetica across a portrait A4 text line
	var lines []string
	if t := cleanText(pg.Metadata.Title); t != "" {
		lines = append(lines, wrap(t, width)...)
	}
	var parts []string
	if site, ok := LookupBodySite(pg.Metadata.BodySite); ok {
		lat, _ := LookupLaterality(pg.Metadata.Laterality)
		parts = append(parts, lateralName(site, lat))
	}
	if v, ok := LookupView(pg.Metadata.View); ok {
		parts = append(parts, strings.ToLower(v.Name))
	}
	if !pg.Created.IsZero() {
		parts = append(parts, "taken "+pg.Created.In(b.cfg.loc).Format("2 Jan 2006 15:04"))
	}
	if len(parts) > 0 {
		lines = append(lines, wrap(strings.Join(parts, ", "), width)...)
	}
	if n := cleanText(pg.Metadata.Note); n != "" {
		lines = append(lines, wrap(n, width)...)
	}
	if len(lines) > maxCaption-1 {
		lines = append(lines[:maxCaption-2], truncate(lines[maxCaption-2], width-1)+"…")
	}
	return append(lines, "Photo "+strconv.Itoa(page)+" of "+strconv.Itoa(pages))
}

// ValidateDocument checks an Inbox Scan DocumentReference against FHIR
// R4's rules and ALEX's: status current, an identifier as for Media, type
// LOINC 72170-4, a Patient subject, a date with time and offset, a
// Practitioner author, and exactly one attachment of application/pdf or
// image/tiff within the size limit, with data, hash and title as for
// Media. It returns nil or a *[ValidationError] matching [ErrInvalid].
func (b *Builder) ValidateDocument(d *fhir.DocumentReference) error {
	var ps problems
	if d == nil {
		ps.add("DocumentReference", "resource is missing")
		return ps.err("DocumentReference")
	}
	b.validateDocument(&ps, d)
	return ps.err("DocumentReference")
}

func (b *Builder) validateDocument(ps *problems, d *fhir.DocumentReference) {
	if d.Status != fhir.DocumentReferenceStatusCurrent {
		ps.add("DocumentReference.status", "status must be current")
	}
	checkIdentifiers(ps, "DocumentReference.identifier", d.Identifier)
	if !hasCoding(d.Type, LOINCSystem, PhotographicImageLOINC) {
		ps.add("DocumentReference.type", "type must be LOINC 72170-4 (Photographic image)")
	}
	b.checkSubject(ps, "DocumentReference.subject", d.Subject)
	checkDateTime(ps, "DocumentReference.date", d.Date, true)
	if len(d.Author) == 0 {
		ps.add("DocumentReference.author", "an author (Practitioner) is required")
	}
	for i := range d.Author {
		checkReference(ps, "DocumentReference.author["+strconv.Itoa(i)+"]", &d.Author[i], "Practitioner", true)
	}
	if len(d.Content) != 1 {
		ps.add("DocumentReference.content", "exactly one content is required")
	} else {
		b.checkAttachment(ps, "DocumentReference.content[0].attachment", &d.Content[0].Attachment, documentContentTypes)
	}
	if d.Context != nil {
		for i := range d.Context.Encounter {
			checkReference(ps, "DocumentReference.context.encounter["+strconv.Itoa(i)+"]", &d.Context.Encounter[i], "Encounter", true)
		}
	}
}
