package media

import (
	"encoding/base64"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Validate is [New] followed by [Builder.Validate], for one-off use.
func Validate(m *fhir.Media, opts ...Option) error {
	b, err := New(opts...)
	if err != nil {
		return err
	}
	return b.Validate(m)
}

// Validate checks m against FHIR R4's rules and ALEX's before it is sent,
// and returns nil or a *[ValidationError] (matching [ErrInvalid]) listing
// every problem at once. It checks what the samply types let through
// silently: status completed; an identifier whose value is present, at
// most [MaxIdentifierLength] characters of [A-Za-z0-9.-_]; type image;
// subject a Patient reference (with a well-formed NHI if one is given);
// operator a Practitioner reference; encounter, if any, an Encounter
// reference; createdDateTime a dateTime with time and offset; content with
// an accepted contentType, a size within the limit, data that is
// [DataPlaceholder] or base64 of exactly size bytes, a hash that is the
// base64 of a 20-byte SHA-1, and a title of at most [MaxTitleLength]
// characters on one line without control or format characters (see
// [PlainText]); positive width and height; bodySite and view codes from
// this package's value sets; non-empty notes of at most [MaxNoteLength]
// characters without control characters other than "\n" or format
// characters.
func (b *Builder) Validate(m *fhir.Media) error {
	var ps problems
	if m == nil {
		ps.add("Media", "resource is missing")
		return ps.err("Media")
	}
	b.validateMedia(&ps, m)
	return ps.err("Media")
}

// CheckMetadata reports what [Builder.Build] (and [Builder.BuildDocument]'s
// pages) would refuse in md, by the same rules and limits, so that a form
// can refuse it when the GP types it rather than when the photo is sent:
// codes outside the value sets, a laterality without a body site, a title
// longer than [MaxTitleLength] or a note longer than [MaxNoteLength]
// characters, each counted once made plain (see [PlainText]). It returns
// nil or a *[ValidationError] (matching [ErrInvalid], Resource "Metadata")
// whose problems name the Go field: "Metadata.BodySite",
// "Metadata.Laterality", "Metadata.View", "Metadata.Title",
// "Metadata.Note".
//
// A left or right side on a site that is not [BodySite.Paired] is allowed
// ("left scalp", "right side of the back"): Paired says where a side is
// expected, not where one is possible.
func CheckMetadata(md Metadata) error {
	var ps problems
	checkMetadata(md, func(f metadataField, msg string) { ps.add(inputFieldOf[f], msg) })
	return ps.err("Metadata")
}

// metadataField names a field of [Metadata] for checkMetadata's callers,
// which report it under their own path.
type metadataField int

const (
	fieldBodySite metadataField = iota
	fieldLaterality
	fieldView
	fieldTitle
	fieldNote
)

var (
	// inputFieldOf names the fields for CheckMetadata.
	inputFieldOf = [...]string{fieldBodySite: "Metadata.BodySite", fieldLaterality: "Metadata.Laterality",
		fieldView: "Metadata.View", fieldTitle: "Metadata.Title", fieldNote: "Metadata.Note"}
	// mediaFieldOf names them where Build reports them: the Media
	// element each lands in.
	mediaFieldOf = [...]string{fieldBodySite: "Media.bodySite", fieldLaterality: "Media.bodySite",
		fieldView: "Media.view", fieldTitle: "Media.content.title", fieldNote: "Media.note[0].text"}
)

const consentMethodMessage = "consent method must be verbal or written"

// checkMetadata is the one check of [Metadata], shared by Build and
// CheckMetadata.
func checkMetadata(md Metadata, add func(f metadataField, msg string)) {
	if md.BodySite != "" {
		if _, ok := LookupBodySite(md.BodySite); !ok {
			add(fieldBodySite, "body site code is not in the body-site value set")
		}
	}
	if md.Laterality != "" {
		if _, ok := LookupLaterality(md.Laterality); !ok {
			add(fieldLaterality, "laterality code is not in the laterality value set")
		} else if md.BodySite == "" {
			add(fieldLaterality, "laterality needs a body site")
		}
	}
	if md.View != "" {
		if _, ok := LookupView(md.View); !ok {
			add(fieldView, "view code is not in the view value set")
		}
	}
	if utf8.RuneCountInString(cleanText(md.Title)) > MaxTitleLength {
		add(fieldTitle, "title is longer than "+strconv.Itoa(MaxTitleLength)+" characters")
	}
	if utf8.RuneCountInString(cleanNote(md.Note)) > MaxNoteLength {
		add(fieldNote, "note is longer than "+strconv.Itoa(MaxNoteLength)+" characters")
	}
}

func (b *Builder) validateMedia(ps *problems, m *fhir.Media) {
	if m.Status != fhir.EventStatusCompleted {
		ps.add("Media.status", "status must be completed")
	}
	checkIdentifiers(ps, "Media.identifier", m.Identifier)
	if !hasCoding(m.Type, MediaTypeSystem, "image") {
		ps.add("Media.type", "type must be image from the media-type code system")
	}
	b.checkSubject(ps, "Media.subject", m.Subject)
	checkReference(ps, "Media.operator", m.Operator, "Practitioner", true)
	checkReference(ps, "Media.encounter", m.Encounter, "Encounter", false)
	checkDateTime(ps, "Media.createdDateTime", m.CreatedDateTime, true)
	if m.CreatedPeriod != nil {
		ps.add("Media.createdPeriod", "use createdDateTime, not createdPeriod")
	}
	b.checkAttachment(ps, "Media.content", &m.Content, b.cfg.contentTypes)
	if m.Width != nil && *m.Width <= 0 {
		ps.add("Media.width", "width must be positive")
	}
	if m.Height != nil && *m.Height <= 0 {
		ps.add("Media.height", "height must be positive")
	}
	if m.BodySite != nil {
		checkBodySite(ps, m.BodySite)
	}
	if m.View != nil {
		if c := singleCoding(m.View); c == nil || deref(c.System) != ViewSystem {
			ps.add("Media.view", "view must have one coding from "+ViewSystem)
		} else if _, ok := LookupView(deref(c.Code)); !ok {
			ps.add("Media.view", "view code is not in the view value set")
		}
	}
	for i, n := range m.Note {
		field := "Media.note[" + strconv.Itoa(i) + "]"
		checkNote(ps, field, n)
	}
}

func checkIdentifiers(ps *problems, field string, ids []fhir.Identifier) {
	if len(ids) == 0 {
		ps.add(field, "an identifier with the image's reference number is required")
		return
	}
	for i, id := range ids {
		f := field + "[" + strconv.Itoa(i) + "]"
		v := deref(id.Value)
		switch {
		case v == "":
			ps.add(f+".value", "identifier value is required")
		case utf8.RuneCountInString(v) > MaxIdentifierLength:
			ps.add(f+".value", "identifier value is longer than "+strconv.Itoa(MaxIdentifierLength)+" characters")
		case !identifierRE.MatchString(v):
			ps.add(f+".value", "identifier value may hold only letters, digits, '.', '-' and '_'")
		}
		if id.System != nil && !absoluteURI(*id.System) {
			ps.add(f+".system", "identifier system must be an absolute URI")
		}
	}
}

var (
	identifierRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	fhirIDRE     = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)
	// NHI: three letters without I or O, then either four digits (the
	// original format) or two digits and two letters (the 2025 format).
	nhiRE = regexp.MustCompile(`^[A-HJ-NP-Z]{3}(\d{4}|\d{2}[A-HJ-NP-Z]{2})$`)
	// FHIR R4 dateTime with a time: seconds required, offset required here
	// so the clinical day is unambiguous.
	dateTimeRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$`)
)

// checkReference checks a reference to a resource of type kind, relative
// ("Patient/abc") or absolute ("https://host/fhir/Patient/abc").
func checkReference(ps *problems, field string, r *fhir.Reference, kind string, required bool) {
	if r == nil || r.Reference == nil {
		if required {
			ps.add(field, "a reference to the "+kind+" is required")
		}
		return
	}
	ref := *r.Reference
	if i := strings.LastIndex(ref, "/"+kind+"/"); i > 0 {
		if !absoluteURI(ref[:i]) {
			ps.add(field, "reference must be "+kind+"/<id> or an absolute URL ending so")
			return
		}
		ref = ref[i+1:]
	}
	id, ok := strings.CutPrefix(ref, kind+"/")
	if !ok || !fhirIDRE.MatchString(id) {
		ps.add(field, "reference must be "+kind+"/<id> with a FHIR id")
	}
	if r.Type != nil && *r.Type != kind {
		ps.add(field+".type", "reference type must be "+kind)
	}
}

// checkSubject checks a Patient reference and its optional NHI identifier.
func (b *Builder) checkSubject(ps *problems, field string, r *fhir.Reference) {
	checkReference(ps, field, r, "Patient", true)
	if r == nil || r.Identifier == nil {
		return
	}
	if deref(r.Identifier.System) != NHISystem {
		ps.add(field+".identifier.system", "patient identifier must use the NHI system")
	}
	if !nhiRE.MatchString(deref(r.Identifier.Value)) {
		ps.add(field+".identifier.value", "NHI must be three letters (not I or O) and four characters")
	}
}

func checkDateTime(ps *problems, field string, v *string, required bool) {
	if v == nil {
		if required {
			ps.add(field, "date and time are required")
		}
		return
	}
	if !dateTimeRE.MatchString(*v) {
		ps.add(field, "must be a FHIR dateTime with seconds and a time zone offset")
	}
}

func (b *Builder) checkAttachment(ps *problems, field string, a *fhir.Attachment, types []string) {
	ct := deref(a.ContentType)
	switch {
	case ct == "":
		ps.add(field+".contentType", "content type is required")
	case !slices.Contains(types, ct):
		ps.add(field+".contentType", "content type is not accepted (accepted: "+strings.Join(types, ", ")+")")
	}
	size := -1
	switch {
	case a.Size == nil:
		ps.add(field+".size", "size is required")
	case *a.Size <= 0:
		ps.add(field+".size", "size must be positive")
	case int64(*a.Size) > b.cfg.maxSize:
		ps.add(field+".size", "size is over the limit of "+strconv.FormatInt(b.cfg.maxSize, 10)+" bytes")
	default:
		size = *a.Size
	}
	switch {
	case a.Data == nil:
		ps.add(field+".data", "data is required (ALEX takes content inline)")
	case *a.Data == DataPlaceholder:
	default:
		n, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(*a.Data)))
		switch {
		case err != nil || len(*a.Data)%4 != 0:
			ps.add(field+".data", "data is not valid base64")
		case size >= 0 && n != int64(size):
			ps.add(field+".data", "data length does not match size")
		}
	}
	if a.Url != nil {
		ps.add(field+".url", "url is not supported; ALEX takes content inline")
	}
	if a.Hash != nil {
		if d, err := base64.StdEncoding.DecodeString(*a.Hash); err != nil || len(d) != 20 {
			ps.add(field+".hash", "hash must be the base64 of a 20-byte SHA-1")
		}
	}
	switch t := deref(a.Title); {
	case strings.TrimSpace(t) == "":
		ps.add(field+".title", "title is required (Medtech's Inbox lists the item by it)")
	case utf8.RuneCountInString(t) > MaxTitleLength:
		ps.add(field+".title", "title is longer than "+strconv.Itoa(MaxTitleLength)+" characters")
	case t != cleanText(t):
		ps.add(field+".title", "title has control or invisible formatting characters, line breaks or stray white space")
	}
	checkDateTime(ps, field+".creation", a.Creation, false)
}

func checkBodySite(ps *problems, cc *fhir.CodeableConcept) {
	c := singleCoding(cc)
	if c == nil || deref(c.System) != SNOMEDSystem {
		ps.add("Media.bodySite", "body site must have one SNOMED CT coding")
		return
	}
	site, lat, ok := parseBodySiteCode(deref(c.Code))
	if !ok {
		ps.add("Media.bodySite", "body site code must be a SNOMED CT concept, optionally refined by laterality")
		return
	}
	if _, ok := LookupBodySite(site); !ok {
		ps.add("Media.bodySite", "body site code is not in the body-site value set")
	}
	if lat != "" {
		if _, ok := LookupLaterality(lat); !ok {
			ps.add("Media.bodySite", "laterality code is not in the laterality value set")
		}
	}
}

func checkNote(ps *problems, field string, n fhir.Annotation) {
	switch {
	case strings.TrimSpace(n.Text) == "":
		ps.add(field+".text", "note text is empty")
	case utf8.RuneCountInString(n.Text) > MaxNoteLength:
		ps.add(field+".text", "note is longer than "+strconv.Itoa(MaxNoteLength)+" characters")
	case n.Text != PlainText(n.Text):
		ps.add(field+".text", "note has control or invisible formatting characters")
	}
	if n.AuthorReference != nil {
		checkReference(ps, field+".authorReference", n.AuthorReference, "Practitioner", false)
	}
	checkDateTime(ps, field+".time", n.Time, false)
}

func hasCoding(cc *fhir.CodeableConcept, system, code string) bool {
	if cc == nil {
		return false
	}
	for _, c := range cc.Coding {
		if deref(c.System) == system && deref(c.Code) == code {
			return true
		}
	}
	return false
}

func singleCoding(cc *fhir.CodeableConcept) *fhir.Coding {
	if cc == nil || len(cc.Coding) != 1 {
		return nil
	}
	return &cc.Coding[0]
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
