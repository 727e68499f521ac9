package media

import (
	"crypto/sha1"
	"encoding/base64"
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
	// MaxDocumentPages bounds the photos wrapped into one PDF.
	MaxDocumentPages = 20
)

// documentContentTypes are what ALEX's Inbox Scan accepts; JPEG and PNG
// are refused.
var documentContentTypes = []string{"application/pdf", "image/tiff"}

// DocumentPage is one JPEG photo to put on its own PDF page.
type DocumentPage struct {
	// JPEG is read to EOF and not closed; its bytes are embedded in the
	// PDF unchanged.
	JPEG io.Reader
	// Orientation is the JPEG's EXIF orientation (1-8; 0 means 1, upright).
	// Images normalised by the compress package are upright already.
	Orientation int
	// Created is when the photo was taken; zero leaves the date out of the
	// caption.
	Created time.Time
	// Metadata describes the photo; it is printed as the page's caption
	// (title, site and side, view, date, note).
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
	// Author is the ALEX Practitioner id of the author; ALEX rejects an
	// Inbox Scan without one.
	Author string
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

// BuildDocument wraps the pages' JPEGs into a PDF, written to w, and
// returns the Inbox Scan DocumentReference for it: identifier, status
// current, type LOINC 72170-4, subject, date, author, and one attachment
// (application/pdf, size and SHA-1 of the PDF, title, creation) whose data
// is [DataPlaceholder], to be streamed from the PDF bytes with [Encode].
//
// ALEX shows an Inbox Scan inline and offers it in referral attachment
// pickers, which it does not do for a JPEG Media; it accepts only PDF or
// TIFF, under 8 MB. Medtech's Inbox Scan examples use absolute subject
// references: build with [WithReferenceBase] set to the ALEX base URL.
//
// Input problems are reported as a *[ValidationError] before anything is
// written. If the finished PDF breaks a rule (it is over the size limit),
// the PDF has been written to w and BuildDocument returns a
// *[ValidationError]; the caller discards what w holds. An error reading a
// page or writing to w is returned wrapped; [ErrNotJPEG] marks a page that
// is not a JPEG.
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
	pages := make([]pdfPage, len(in.Pages))
	for i, pg := range in.Pages {
		pages[i] = pdfPage{jpeg: pg.JPEG, orientation: pg.Orientation, caption: b.caption(pg, i+1, len(in.Pages))}
	}
	h := sha1.New()
	n, err := writePDF(io.MultiWriter(w, h), pages, pdfInfo{title: title, created: date.In(b.cfg.loc)})
	if err != nil {
		return nil, fmt.Errorf("media: writing PDF: %w", err)
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
			ContentType: ptr("application/pdf"),
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
		if pg.Orientation < 0 || pg.Orientation > 8 {
			ps.add(f+".Orientation", "EXIF orientation must be 1 to 8 (or 0 for upright)")
		}
		md := pg.Metadata
		if _, ok := LookupBodySite(md.BodySite); md.BodySite != "" && !ok {
			ps.add(f+".Metadata.BodySite", "body site code is not in the body-site value set")
		}
		if _, ok := LookupLaterality(md.Laterality); md.Laterality != "" && !ok {
			ps.add(f+".Metadata.Laterality", "laterality code is not in the laterality value set")
		}
		if _, ok := LookupView(md.View); md.View != "" && !ok {
			ps.add(f+".Metadata.View", "view code is not in the view value set")
		}
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
