package media

import (
	"encoding/base64"
	"mime"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clinicpro/clinicalimages/internal/fhirjson"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// DataPlaceholder is what [Builder.Build] puts in content.data: a marker
// that [Encode] (and the alex client) replace with the image's base64,
// streamed from a reader, when the resource is written. It is not base64,
// so a Media holding it can never be mistaken for one carrying real data.
const DataPlaceholder = fhirjson.DataPlaceholder

// ImageFacts are the facts about one stored image that land in the Media.
type ImageFacts struct {
	// ID is the image's stable id, written as identifier.value. It must be
	// the same on every attempt to send the image, so that a commit whose
	// reply was lost can be reconciled by searching for it. At most
	// [MaxIdentifierLength] characters of A-Z, a-z, 0-9, '.', '-' and '_'
	// (a UUID or ULID fits).
	ID string
	// ContentType is the image's MIME type, for example "image/jpeg";
	// case and parameters are normalised away.
	ContentType string
	// Size is the image's length in bytes.
	Size int64
	// SHA1 is the SHA-1 digest of the image bytes (20 bytes); R4 puts its
	// base64 in content.hash. Optional, but recommended.
	SHA1 []byte
	// Width and Height are the pixel dimensions as displayed (after any
	// orientation correction); zero omits them.
	Width, Height int
	// Created is when the photo was taken; the zero time means "now" by
	// the builder's clock.
	Created time.Time
}

// Patient identifies the subject in ALEX.
type Patient struct {
	// ID is the ALEX Patient id (32 hex characters in ALEX).
	ID string
	// NHI is the patient's National Health Index number when known. It is
	// written as subject.identifier so the receiver can cross-check the
	// reference against the patient it expects.
	NHI string
}

// Metadata is what the GP says about a photo.
type Metadata struct {
	// BodySite is a SNOMED CT code from [BodySites]; empty if not given.
	BodySite string
	// Laterality is a SNOMED CT code from [Lateralities]; empty if not
	// given. It needs a BodySite.
	Laterality string
	// View is a code from [Views]; empty if not given.
	View string
	// Title is the GP's own title; [Builder.Title] follows it with the
	// site, side and view. At most [MaxTitleLength] characters once made
	// plain (see [PlainText]; white space is folded to single spaces).
	Title string
	// Note is free text written as a Media note, made plain (see
	// [PlainText]; line breaks are kept) and trimmed; at most
	// [MaxNoteLength] characters.
	Note string
}

// ConsentMethod is how the patient gave consent.
type ConsentMethod string

// Consent methods.
const (
	ConsentVerbal  ConsentMethod = "verbal"  // said so, recorded by the GP
	ConsentWritten ConsentMethod = "written" // signed a form
)

// Valid reports whether m is one of the consent methods.
func (m ConsentMethod) Valid() bool { return m == ConsentVerbal || m == ConsentWritten }

// ConsentPurpose is a use of the photo the patient agreed to.
type ConsentPurpose string

// Consent purposes.
const (
	ConsentRecord      ConsentPurpose = "record"      // kept in the clinical record
	ConsentTeaching    ConsentPurpose = "teaching"    // shown to clinicians in training
	ConsentPublication ConsentPurpose = "publication" // published, de-identified
)

// Consent records what the patient agreed to, who recorded it and when.
//
// R4 Media has no consent element, and the samply types cannot carry a
// contained Consent resource, so the builder writes consent as a Media
// note (an Annotation) whose author is the practitioner who recorded it,
// whose time is when, and whose text states the method when known and each
// purpose as agreed or not agreed, for example "Consent (verbal): clinical
// record: yes; teaching: no; publication: no." An Annotation with
// authorReference and time is valid R4 and survives any server that keeps
// notes; an extension would need a published definition that ALEX and
// validators know.
type Consent struct {
	// Purposes lists what the patient agreed to. ConsentRecord must be
	// among them: a photo may not go into the record otherwise.
	Purposes []ConsentPurpose
	// Method is how consent was given ([ConsentVerbal] or
	// [ConsentWritten]); empty when not stated.
	Method ConsentMethod
	// RecordedBy is the ALEX Practitioner id of whoever recorded consent.
	RecordedBy string
	// RecordedAt is when consent was recorded.
	RecordedAt time.Time
}

// Has reports whether the patient agreed to purpose p.
func (c *Consent) Has(p ConsentPurpose) bool {
	if c == nil {
		return false
	}
	for _, q := range c.Purposes {
		if q == p {
			return true
		}
	}
	return false
}

// Input is everything [Builder.Build] turns into one Media.
type Input struct {
	// Image holds the facts about the stored image.
	Image ImageFacts
	// Patient is the subject.
	Patient Patient
	// Operator is the ALEX Practitioner id of the GP who took or committed
	// the photo.
	Operator string
	// Facility is the HPI facility id (for example "F2N060-E") the Media
	// will be sent under in ALEX's mt-facilityid header. R4 Media has no
	// element for it, so it is checked, not written: a photo must never be
	// built for a launch context without one.
	Facility string
	// Encounter is an optional ALEX Encounter id.
	Encounter string
	// Metadata is the GP's clinical description.
	Metadata Metadata
	// Consent is optional unless [WithConsentRequired] is given.
	Consent *Consent
}

// Builder turns images and their metadata into FHIR resources that ALEX
// accepts. It is immutable and safe for concurrent use.
type Builder struct {
	cfg config
}

// New returns a Builder configured by opts, or the first option's error.
func New(opts ...Option) (*Builder, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg}, nil
}

// Build is [New] followed by [Builder.Build], for one-off use.
func Build(in Input, opts ...Option) (*fhir.Media, error) {
	b, err := New(opts...)
	if err != nil {
		return nil, err
	}
	return b.Build(in)
}

// Build returns the Media for in, with [DataPlaceholder] as content.data,
// ready for [Encode] or the alex client to stream the image into. The
// result has passed [Builder.Validate]; on any problem Build returns nil
// and a *[ValidationError] (matching [ErrInvalid]) listing every problem in
// the input and the resource at once.
func (b *Builder) Build(in Input) (*fhir.Media, error) {
	var ps problems
	b.checkInput(&ps, in)

	created := in.Image.Created
	if created.IsZero() {
		created = b.cfg.now()
	}
	when := b.dateTime(created)

	m := &fhir.Media{
		Status: fhir.EventStatusCompleted,
		Identifier: []fhir.Identifier{{
			System: optString(b.cfg.idSystem),
			Value:  ptr(in.Image.ID),
		}},
		Type: &fhir.CodeableConcept{Coding: []fhir.Coding{{
			System:  ptr(MediaTypeSystem),
			Code:    ptr("image"),
			Display: ptr("Image"),
		}}},
		Subject:         b.patientReference(in.Patient),
		Operator:        b.ref("Practitioner", in.Operator),
		CreatedDateTime: ptr(when),
		Content: fhir.Attachment{
			ContentType: ptr(normalContentType(in.Image.ContentType)),
			Data:        ptr(DataPlaceholder),
			Title:       ptr(b.title(in.Metadata, created)),
			Creation:    ptr(when),
		},
	}
	if in.Encounter != "" {
		m.Encounter = b.ref("Encounter", in.Encounter)
	}
	if in.Image.Size > 0 && in.Image.Size <= maxInt32 {
		m.Content.Size = ptr(int(in.Image.Size))
	}
	if len(in.Image.SHA1) > 0 {
		m.Content.Hash = ptr(base64.StdEncoding.EncodeToString(in.Image.SHA1))
	}
	if in.Image.Width > 0 {
		m.Width = ptr(in.Image.Width)
	}
	if in.Image.Height > 0 {
		m.Height = ptr(in.Image.Height)
	}
	if site, ok := LookupBodySite(in.Metadata.BodySite); ok {
		lat, _ := LookupLaterality(in.Metadata.Laterality)
		m.BodySite = bodySiteConcept(site, lat)
	}
	if v, ok := LookupView(in.Metadata.View); ok {
		m.View = &fhir.CodeableConcept{
			Coding: []fhir.Coding{{System: ptr(ViewSystem), Code: ptr(v.Code), Display: ptr(v.Name)}},
			Text:   ptr(v.Name),
		}
	}
	// An over-long note is reported by checkInput; it is left out here so
	// that it is not reported twice.
	if note := cleanNote(in.Metadata.Note); note != "" && utf8.RuneCountInString(note) <= MaxNoteLength {
		m.Note = append(m.Note, fhir.Annotation{
			AuthorReference: b.ref("Practitioner", in.Operator),
			Time:            ptr(when),
			Text:            note,
		})
	}
	if c := in.Consent; c != nil {
		m.Note = append(m.Note, fhir.Annotation{
			AuthorReference: b.ref("Practitioner", c.RecordedBy),
			Time:            ptr(b.dateTime(c.RecordedAt)),
			Text:            consentText(c),
		})
	}

	b.validateMedia(&ps, m)
	if err := ps.err("Media"); err != nil {
		return nil, err
	}
	return m, nil
}

const maxInt32 = 1<<31 - 1

// normalContentType lower-cases a MIME type and drops its parameters
// ("Image/JPEG; q=1" becomes "image/jpeg"); what does not parse is kept
// for Validate to report.
func normalContentType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

// checkInput finds problems that the resource alone cannot show: input
// that is dropped, coded away or not written at all.
func (b *Builder) checkInput(ps *problems, in Input) {
	if in.Facility == "" {
		ps.add("Input.Facility", "facility is required (the HPI facility id the Media is sent under)")
	} else if !hpiFacilityRE.MatchString(in.Facility) {
		ps.add("Input.Facility", "facility is not an HPI facility id such as F2N060-E")
	}
	// Missing sizes, patients and operators show in the resource and are
	// reported by validateMedia; only what the resource cannot show is
	// checked here.
	if in.Image.Size > maxInt32 {
		ps.add("Media.content.size", "image size does not fit FHIR's unsignedInt")
	}
	if in.Image.Width < 0 || in.Image.Height < 0 {
		ps.add("Media.width", "image dimensions must not be negative")
	}
	checkMetadata(in.Metadata, func(f metadataField, msg string) { ps.add(mediaFieldOf[f], msg) })
	b.checkConsent(ps, in.Consent)
}

// checkConsent checks a consent record, and its presence when required.
func (b *Builder) checkConsent(ps *problems, c *Consent) {
	switch {
	case c == nil && b.cfg.requireConsent:
		ps.add("Input.Consent", "consent is required")
	case c != nil:
		if !c.Has(ConsentRecord) {
			ps.add("Input.Consent.Purposes", "consent must include the clinical record")
		}
		for _, p := range c.Purposes {
			switch p {
			case ConsentRecord, ConsentTeaching, ConsentPublication:
			default:
				ps.add("Input.Consent.Purposes", "unknown consent purpose")
			}
		}
		if c.Method != "" && !c.Method.Valid() {
			ps.add("Input.Consent.Method", consentMethodMessage)
		}
		if c.RecordedBy == "" {
			ps.add("Input.Consent.RecordedBy", "who recorded consent is required")
		}
		if c.RecordedAt.IsZero() {
			ps.add("Input.Consent.RecordedAt", "when consent was recorded is required")
		}
	}
}

var hpiFacilityRE = regexp.MustCompile(`^F[0-9A-Z]{5}-[0-9A-Z]$`)

// dateTime renders t as a FHIR dateTime in the practice's zone, to the
// second, with its offset ("2026-11-25T10:42:00+13:00").
func (b *Builder) dateTime(t time.Time) string {
	return t.In(b.cfg.loc).Truncate(time.Second).Format("2006-01-02T15:04:05-07:00")
}

// ref returns a reference to the resource of type kind with id, relative
// or under the configured base.
func (b *Builder) ref(kind, id string) *fhir.Reference {
	r := kind + "/" + id
	if b.cfg.refBase != "" {
		r = b.cfg.refBase + "/" + r
	}
	return &fhir.Reference{Reference: &r}
}

func (b *Builder) patientReference(p Patient) *fhir.Reference {
	r := b.ref("Patient", p.ID)
	if p.NHI != "" {
		r.Identifier = &fhir.Identifier{System: ptr(NHISystem), Value: ptr(strings.ToUpper(p.NHI))}
	}
	return r
}

// bodySiteConcept codes a site, refined by a laterality when one is given,
// as a SNOMED CT expression (the package documentation says why).
func bodySiteConcept(site BodySite, lat Laterality) *fhir.CodeableConcept {
	code, text, display := site.Code, site.Name, site.Display
	if lat.Code != "" {
		code = site.Code + ":" + LateralityAttribute + "=" + lat.Code
		text = lateralName(site, lat)
		display = text
	}
	return &fhir.CodeableConcept{
		Coding: []fhir.Coding{{System: ptr(SNOMEDSystem), Code: ptr(code), Display: ptr(display)}},
		Text:   ptr(text),
	}
}

// lateralName is the site's name with its side: "Left forearm",
// "Forearm (bilateral)", "Nose (midline)".
func lateralName(site BodySite, lat Laterality) string {
	switch lat.Code {
	case "":
		return site.Name
	case LateralityLeft, LateralityRight:
		return lat.Name + " " + lowerFirst(site.Name)
	default:
		return site.Name + " (" + strings.ToLower(lat.Name) + ")"
	}
}

// parseBodySiteCode splits a bodySite code into its concept and optional
// laterality refinement.
func parseBodySiteCode(code string) (site, lat string, ok bool) {
	site, refinement, found := strings.Cut(code, ":")
	if !found {
		return site, "", isSCTID(site)
	}
	attr, lat, found := strings.Cut(refinement, "=")
	if !found || attr != LateralityAttribute || !isSCTID(site) || !isSCTID(lat) {
		return "", "", false
	}
	return site, lat, true
}

// isSCTID reports whether s is a well-formed SNOMED CT concept id: 6 to 18
// digits, no leading zero, a concept partition ("00" or "10") and a valid
// Verhoeff check digit. This catches a mistyped code without a terminology
// server.
func isSCTID(s string) bool {
	if len(s) < 6 || len(s) > 18 || s[0] == '0' {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	if p := s[len(s)-3 : len(s)-1]; p != "00" && p != "10" {
		return false
	}
	return verhoeffValid(s)
}

// Verhoeff's dihedral-group tables.
var (
	verhoeffD = [10][10]uint8{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
		{3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8},
		{5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2},
		{7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
		{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	verhoeffP = [8][10]uint8{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
		{1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
		{8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0},
		{4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5},
		{7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
)

// verhoeffValid reports whether the decimal string s (check digit last)
// passes Verhoeff's check.
func verhoeffValid(s string) bool {
	var c uint8
	for i := 0; i < len(s); i++ {
		digit := s[len(s)-1-i] - '0'
		c = verhoeffD[c][verhoeffP[i%8][digit]]
	}
	return c == 0
}

func consentText(c *Consent) string {
	yn := func(p ConsentPurpose) string {
		if c.Has(p) {
			return "yes"
		}
		return "no"
	}
	head := "Consent"
	if c.Method.Valid() {
		head += " (" + string(c.Method) + ")"
	}
	return head + ": clinical record: " + yn(ConsentRecord) +
		"; teaching: " + yn(ConsentTeaching) +
		"; publication: " + yn(ConsentPublication) + "."
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func ptr[T any](v T) *T { return &v }

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
