package session

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Source says where an image was captured.
type Source string

// Image sources.
const (
	SourceDesktop Source = "desktop"
	SourcePhone   Source = "phone"
)

// State is where an image is on its way into the patient's record.
type State string

// Image states. The only transitions are uploaded → committing,
// failed → committing, committing → committed and committing → failed.
const (
	StateUploaded   State = "uploaded"
	StateCommitting State = "committing"
	StateCommitted  State = "committed"
	StateFailed     State = "failed"
)

// PurgedCode and PurgedReason are the FailCode and FailReason of an image
// whose bytes the sweeper deleted at the end of the retention window (the
// root package's CodeSessionExpired).
const (
	PurgedCode   = "session_expired"
	PurgedReason = "image bytes passed the retention window; capture it again"
)

// PhoneState says whether a phone is paired with a session.
type PhoneState string

// Phone states. The zero value means no phone has been paired.
const (
	PhoneNone    PhoneState = ""
	PhonePaired  PhoneState = "paired"
	PhoneRevoked PhoneState = "revoked"
)

// Launch is the verified launch context a session starts from. The caller
// has verified it (signature, expiry); this package only records it.
type Launch struct {
	Facility     string `json:"facility"`            // Medtech facility (practice location) id
	PatientID    string `json:"patientId"`           // ALEX Patient resource id
	NHI          string `json:"nhi"`                 // the patient's National Health Index number
	Practitioner string `json:"practitioner"`        // ALEX Practitioner id of the GP
	Encounter    string `json:"encounter,omitempty"` // optional ALEX Encounter id
}

// Clinical is the clinical description a GP gives an image before commit.
// Codes are SNOMED CT codes (or empty); the media package maps them to FHIR.
type Clinical struct {
	BodySite   string `json:"bodySite,omitempty"`
	Laterality string `json:"laterality,omitempty"`
	View       string `json:"view,omitempty"`
	Title      string `json:"title,omitempty"`
	Note       string `json:"note,omitempty"`
}

// Consent records the patient's consent to the photograph.
type Consent struct {
	Given      bool      `json:"given,omitempty"`
	Method     string    `json:"method,omitempty"`     // for example "verbal" or "written"
	RecordedBy string    `json:"recordedBy,omitempty"` // practitioner id
	RecordedAt time.Time `json:"recordedAt,omitzero"`
}

// Image is one captured photo in a session. Its bytes live in a BlobStore
// under BlobKey.
type Image struct {
	ID          string   `json:"id"`
	BlobKey     BlobKey  `json:"blobKey"`
	ContentType string   `json:"contentType"`
	Size        int64    `json:"size"`
	SHA1        string   `json:"sha1"`   // hex, as FHIR Attachment.hash wants (base64 of the raw bytes there)
	SHA256      string   `json:"sha256"` // hex
	Width       int      `json:"width,omitempty"`
	Height      int      `json:"height,omitempty"`
	Source      Source   `json:"source"`
	Clinical    Clinical `json:"clinical,omitzero"`
	Consent     Consent  `json:"consent,omitzero"`
	State       State    `json:"state"`
	MediaID     string   `json:"mediaId,omitempty"`    // set when committed
	FailCode    string   `json:"failCode,omitempty"`   // set when failed: a stable machine code (the root package's FailureCode); never PHI
	FailReason  string   `json:"failReason,omitempty"` // set when failed: plain language for the GP; never PHI
	Attempts    int      `json:"attempts,omitempty"`   // commit claims so far; identifies the current claim
	Purged      bool     `json:"purged,omitempty"`     // the sweeper deleted the bytes (retention window); cannot be committed
	Version     int64    `json:"version"`              // bumped on every change to the image

	// Edited reports that the bytes under BlobKey are an edit (rotation,
	// crop, redaction) of the captured photo, not the photo itself. It
	// stays true after commit: what was sent was the edit.
	Edited bool `json:"edited,omitempty"`
	// Lossless reports, for an edited image, that every edit since capture
	// moved the JPEG's coefficients without decoding them: no generation
	// was lost. False for an image never edited.
	Lossless bool `json:"lossless,omitempty"`
	// Original is the captured photo an edited image was made from, kept
	// (under a key of its own in the session) until the image is
	// committed, removed or its session ends, so the GP can go back to
	// it ([Manager.RestoreOriginal]). Nil when the image is not edited,
	// and once its bytes are gone.
	Original *Original `json:"original,omitempty"`

	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	CommitStarted time.Time `json:"commitStarted,omitzero"` // when the current claim was taken
}

// Original describes the captured bytes of an edited image.
type Original struct {
	BlobKey     BlobKey `json:"blobKey"`
	ContentType string  `json:"contentType"`
	Size        int64   `json:"size"`
	SHA1        string  `json:"sha1"`
	SHA256      string  `json:"sha256"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
}

// BlobKeys returns every blob the image holds: its current bytes and, for
// an edited image, the captured original.
func (img *Image) BlobKeys() []BlobKey {
	keys := []BlobKey{img.BlobKey}
	if img.Original != nil && img.Original.BlobKey != "" && img.Original.BlobKey != img.BlobKey {
		keys = append(keys, img.Original.BlobKey)
	}
	return keys
}

// UnmarshalJSON reads an Image, converting the failure of a record written
// before FailCode existed: such records held "code: message" in FailReason.
func (img *Image) UnmarshalJSON(b []byte) error {
	type plain Image // no methods: no recursion
	if err := json.Unmarshal(b, (*plain)(img)); err != nil {
		return err
	}
	if img.FailCode == "" {
		img.FailCode, img.FailReason = splitLegacyReason(img.FailReason)
	}
	return nil
}

// splitLegacyReason splits an old combined "code: message" failure reason.
// Only a leading lower-case code ([a-z0-9_]) counts; anything else is a
// message without a code.
func splitLegacyReason(reason string) (code, msg string) {
	c, m, ok := strings.Cut(reason, ": ")
	if !ok || c == "" || strings.TrimLeft(c, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		return "", reason
	}
	return c, m
}

// Phone is the phone paired with a session through a handoff code. It holds
// hashes only: the code and the token themselves are never stored.
type Phone struct {
	State          PhoneState `json:"state,omitempty"`
	Device         string     `json:"device,omitempty"` // the phone's own description, for the desktop to show
	PairedAt       time.Time  `json:"pairedAt,omitzero"`
	TokenHash      string     `json:"tokenHash,omitempty"`
	HandoffHash    string     `json:"handoffHash,omitempty"`   // hash of the one outstanding handoff code
	HandoffExpires time.Time  `json:"handoffExpires,omitzero"` // when that code stops working
	Uploads        int        `json:"uploads,omitempty"`       // images the phone has added
}

// Session is one capture session for one patient. Values returned by a
// Store or the Manager are snapshots: changing them changes nothing stored.
type Session struct {
	ID string `json:"id"`
	Launch

	CreatedAt    time.Time `json:"createdAt"`
	LastActivity time.Time `json:"lastActivity"`
	// ExpiresAt is the earlier of LastActivity plus the idle timeout and
	// CreatedAt plus the maximum lifetime. Stores read it to decide
	// ErrExpired and to set their own time-to-live.
	ExpiresAt time.Time `json:"expiresAt"`

	Phone  Phone   `json:"phone,omitzero"`
	Images []Image `json:"images,omitempty"`

	// Version is bumped by the Store on every successful Create or Update.
	Version int64 `json:"version"`
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Images = slices.Clone(s.Images)
	for i := range c.Images {
		if o := c.Images[i].Original; o != nil {
			oc := *o
			c.Images[i].Original = &oc
		}
	}
	return &c
}

// Image returns a pointer to the image with the given id inside s, or nil.
// The pointer aliases s, so changes made through it inside an Update
// function are stored.
func (s *Session) Image(id string) *Image {
	for i := range s.Images {
		if s.Images[i].ID == id {
			return &s.Images[i]
		}
	}
	return nil
}

// ImageOfBlob returns the image whose current bytes or captured original
// are stored under key, or nil. Like [Session.Image] the pointer aliases s.
func (s *Session) ImageOfBlob(key BlobKey) *Image {
	for i := range s.Images {
		img := &s.Images[i]
		if img.BlobKey == key || img.Original != nil && img.Original.BlobKey == key {
			return img
		}
	}
	return nil
}

// Expired reports whether s has expired at now.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt)
}
