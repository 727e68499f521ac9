package alextest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Codes the seeded Media use, as the SDK's media package writes them: body
// sites are SNOMED CT concepts, refined by a laterality as the
// post-coordinated expression <site>:272741003=<side>; views are coded in
// the SDK's own view system.
const (
	SNOMEDSystem        = "http://snomed.info/sct"
	LateralityAttribute = "272741003"
	ViewSystem          = "https://clinicpro.co.nz/fhir/CodeSystem/clinical-photo-view"
	MediaTypeSystem     = "http://terminology.hl7.org/CodeSystem/media-type"
	// SeedIdentifierSystem is the identifier system of seeded Media.
	SeedIdentifierSystem = "urn:alextest:seeded-media"

	SiteForearm = "14975008" // Forearm structure
	SiteBack    = "77568009" // Back structure, excluding buttocks
	SiteShin    = "78234002" // Shin structure
	SiteCheek   = "60819002" // Cheek structure
	SideLeft    = "7771000"  // Left
	SideRight   = "24028007" // Right
)

// siteNames and sideNames give the seeded Media their display texts.
var (
	siteNames = map[string]string{SiteForearm: "Forearm", SiteBack: "Back", SiteShin: "Shin", SiteCheek: "Cheek"}
	sideNames = map[string]string{SideLeft: "Left", SideRight: "Right", "51440002": "Bilateral", "399488007": "Midline"}
)

// SeedMedia describes a Media to store as if it had been created earlier
// (see [Server.SeedMedia]). Zero fields take the defaults given.
type SeedMedia struct {
	// Created is the createdDateTime, written with a New Zealand (+12:00)
	// offset as integrators send it; meta.lastUpdated is a minute later.
	// Required.
	Created time.Time
	// BodySite and Laterality are SNOMED CT codes ("" for none); a
	// laterality needs a body site.
	BodySite, Laterality string
	// View is a code of ViewSystem, e.g. "close-up" ("" for none).
	View string
	// Title is content.title (default: made from site, side and view).
	Title string
	// ContentType is content.contentType (default image/jpeg).
	ContentType string
	// Data is the content (default: a small JPEG, different for every
	// seeded Media, of Width x Height).
	Data []byte
	// Width and Height are the Media's width and height and the size of
	// the default JPEG (default 64 x 48).
	Width, Height int
	// Facility is where the Media is filed, and so found (default
	// Facility()).
	Facility string
	// Subject is written as subject.reference (default
	// <root>/fhir/Patient/<patient id>, absolute as in Medtech's sample).
	// Set it to another patient's reference to have the search for one
	// patient return a Media that names another, as a faulty server
	// could: a client must drop it.
	Subject string
}

// DefaultEarlierMedia returns the Media [Server.SeedEarlierMedia] stores
// for each patient, relative to now and deliberately not in date order:
// the left forearm 30 days ago (close-up) and 120 days ago (overview), the
// back 60 days ago, the right shin 200 days ago, and the right forearm 10
// days ago.
func DefaultEarlierMedia(now time.Time) []SeedMedia {
	day := 24 * time.Hour
	return []SeedMedia{
		{Created: now.Add(-60 * day), BodySite: SiteBack, View: "overview", Width: 64, Height: 48},
		{Created: now.Add(-30 * day), BodySite: SiteForearm, Laterality: SideLeft, View: "close-up", Width: 64, Height: 48},
		{Created: now.Add(-200 * day), BodySite: SiteShin, Laterality: SideRight, View: "close-up", Width: 48, Height: 64},
		{Created: now.Add(-120 * day), BodySite: SiteForearm, Laterality: SideLeft, View: "overview", Width: 64, Height: 48},
		{Created: now.Add(-10 * day), BodySite: SiteForearm, Laterality: SideRight, View: "close-up", Width: 64, Height: 48},
	}
}

// WithEarlierMedia makes NewServer seed [DefaultEarlierMedia] (relative to
// the server's clock) for every patient it knows, as SeedEarlierMedia
// does. Reset removes them like every stored resource.
func WithEarlierMedia() Option {
	return func(c *config) error {
		c.earlierMedia = true
		return nil
	}
}

// SeedEarlierMedia stores [DefaultEarlierMedia] (relative to the server's
// clock) for every patient the server knows, at Facility(), and returns
// the new ids by patient id. Each image is a distinct small JPEG.
func (s *Server) SeedEarlierMedia() map[string][]string {
	out := map[string][]string{}
	for _, p := range s.cfg.patients {
		ids, err := s.SeedMedia(p.ID, DefaultEarlierMedia(s.now())...)
		if err != nil {
			panic("alextest: SeedEarlierMedia: " + err.Error()) // the defaults are valid
		}
		out[p.ID] = ids
	}
	return out
}

// SeedMedia stores Media for the patient with the given ALEX id as if
// they had been POSTed earlier, and returns their ids in the order given.
// They are found by GET /Media?patient.identifier=<NHI system>|<NHI> and
// GET /Media/{id} at their facility, with their data inline, like created
// ones, and listed by Media and MediaData. An unknown patient, an unknown
// facility, a zero Created or a malformed code is an error and stores
// nothing.
func (s *Server) SeedMedia(patientID string, media ...SeedMedia) ([]string, error) {
	if _, ok := s.patientByID(patientID); !ok {
		return nil, fmt.Errorf("SeedMedia: unknown patient")
	}
	stored := make([]*storedMedia, 0, len(media))
	for i, sm := range media {
		st, err := s.seeded(patientID, i, sm)
		if err != nil {
			return nil, fmt.Errorf("SeedMedia: media %d: %w", i, err)
		}
		stored = append(stored, st)
	}
	ids := make([]string, len(stored))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range stored {
		s.media = append(s.media, st)
		s.mediaByID[*st.m.Id] = st
		ids[i] = *st.m.Id
	}
	return ids, nil
}

func (s *Server) seeded(patientID string, i int, sm SeedMedia) (*storedMedia, error) {
	if sm.Created.IsZero() {
		return nil, fmt.Errorf("a created time is required")
	}
	if sm.Facility == "" {
		sm.Facility = s.Facility()
	}
	if !slices.Contains(s.cfg.facilities, sm.Facility) {
		return nil, fmt.Errorf("facility is not linked")
	}
	if (sm.BodySite != "" && !digits(sm.BodySite)) || (sm.Laterality != "" && (!digits(sm.Laterality) || sm.BodySite == "")) {
		return nil, fmt.Errorf("body site and laterality must be SNOMED CT codes, a laterality with a body site")
	}
	if sm.Width <= 0 {
		sm.Width = 64
	}
	if sm.Height <= 0 {
		sm.Height = 48
	}
	if sm.ContentType == "" {
		sm.ContentType = "image/jpeg"
	}
	if sm.Data == nil {
		d, err := seedJPEG(sm.Width, sm.Height, fmt.Sprintf("%s/%d/%d", patientID, i, sm.Created.UnixNano()))
		if err != nil {
			return nil, err
		}
		sm.Data = d
	}
	if sm.Subject == "" {
		sm.Subject = s.fhirRoot() + "/Patient/" + patientID
	}
	if sm.Title == "" {
		sm.Title = seedTitle(sm)
	}
	id := newID()
	nz := time.FixedZone("NZST", 12*3600)
	created := sm.Created.In(nz).Format(time.RFC3339)
	lu := lastUpdated(sm.Created.Add(time.Minute))
	m := fhir.Media{
		Id:         &id,
		Meta:       &fhir.Meta{VersionId: &id, LastUpdated: &lu},
		Status:     fhir.EventStatusCompleted,
		Identifier: []fhir.Identifier{{System: ptrTo(SeedIdentifierSystem), Value: ptrTo("seed-" + id[:12])}},
		Type: &fhir.CodeableConcept{Coding: []fhir.Coding{{
			System: ptrTo(MediaTypeSystem), Code: ptrTo("image"), Display: ptrTo("Image"),
		}}},
		Subject:         &fhir.Reference{Reference: ptrTo(sm.Subject)},
		CreatedDateTime: &created,
		Width:           &sm.Width,
		Height:          &sm.Height,
		Content: fhir.Attachment{
			ContentType: &sm.ContentType,
			Title:       &sm.Title,
			Creation:    &created,
			Size:        ptrTo(len(sm.Data)),
		},
	}
	if len(s.cfg.practitioners) > 0 {
		m.Operator = &fhir.Reference{Reference: ptrTo("Practitioner/" + s.cfg.practitioners[0].ID)}
	}
	if sm.BodySite != "" {
		code, text := sm.BodySite, siteName(sm.BodySite)
		if sm.Laterality != "" {
			code += ":" + LateralityAttribute + "=" + sm.Laterality
			text = sideName(sm.Laterality) + " " + strings.ToLower(text)
		}
		m.BodySite = &fhir.CodeableConcept{
			Coding: []fhir.Coding{{System: ptrTo(SNOMEDSystem), Code: &code, Display: &text}},
			Text:   &text,
		}
	}
	if sm.View != "" {
		m.View = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptrTo(ViewSystem), Code: ptrTo(sm.View)}}}
	}
	pid := patientID
	return &storedMedia{m: m, data: sm.Data, facility: sm.Facility, patient: pid}, nil
}

func seedTitle(sm SeedMedia) string {
	parts := []string{"Photo"}
	if sm.BodySite != "" {
		site := siteName(sm.BodySite)
		if sm.Laterality != "" {
			site = sideName(sm.Laterality) + " " + strings.ToLower(site)
		}
		parts = []string{site}
	}
	if sm.View != "" {
		parts = append(parts, strings.ReplaceAll(sm.View, "-", " "))
	}
	return strings.Join(parts, ", ")
}

func siteName(code string) string {
	if n, ok := siteNames[code]; ok {
		return n
	}
	return "Body site " + code
}

func sideName(code string) string {
	if n, ok := sideNames[code]; ok {
		return n
	}
	return "Side " + code
}

// seedJPEG draws a small gradient whose colours depend on seed, so every
// seeded image differs.
func seedJPEG(w, h int, seed string) ([]byte, error) {
	sum := sha256.Sum256([]byte(seed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{
				R: sum[0] + uint8(x*255/max(w, 1)),
				G: sum[1] + uint8(y*255/max(h, 1)),
				B: sum[2],
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != "" && len(s) <= 18
}

func ptrTo[T any](v T) *T { return &v }
