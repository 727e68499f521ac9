package clinicalimages

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // image.DecodeConfig of earlier photos without width and height
	_ "image/png"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
)

// Comparing over time: the launched patient's earlier photos from ALEX,
// shown beside the one the GP is describing. The list is read from ALEX on
// every view (so a photo committed a minute ago is in it); thumbnails are
// made here and kept in the blob store under the session's own key prefix,
// like its uploads, so they go with the session.

// Thumbnail bounds.
const (
	// HistoryThumbnailEdge is the long edge, in pixels, of a history
	// thumbnail.
	HistoryThumbnailEdge = 320
	// historyThumbnailBytes is a thumbnail's JPEG byte budget.
	historyThumbnailBytes = 48 << 10
	// historyTitleRunes caps an item's title as shown.
	historyTitleRunes = 200
)

// HistoryItem is one earlier photo of the session's patient, as the desktop
// lists it. It is patient data: never log it. It carries no ALEX id: ID is
// opaque, made for this session (the same photo has another id in another
// session) and good only for [Service.HistoryThumbnail] in this session.
type HistoryItem struct {
	ID         string    `json:"id"`
	Title      string    `json:"title,omitempty"`      // content.title, as plain text
	BodySite   string    `json:"bodySite,omitempty"`   // SNOMED CT body structure
	Laterality string    `json:"laterality,omitempty"` // SNOMED CT side qualifier
	View       string    `json:"view,omitempty"`       // a code of media.Views
	Created    time.Time `json:"created,omitzero"`     // when taken (else when ALEX stored it)
	Width      int       `json:"width,omitempty"`      // of the photo in the record
	Height     int       `json:"height,omitempty"`
	// SameSite marks an item of the body site asked about (see
	// [HistoryQuery]); such items come first.
	SameSite bool `json:"sameSite,omitempty"`
}

// HistoryQuery says which body site the GP is comparing. All fields are
// optional.
type HistoryQuery struct {
	// Image is an image of this session: its body site and side are the
	// ones compared. An id the session does not list fails with
	// session.ErrNotFound.
	Image string
	// BodySite and Laterality (SNOMED CT codes) are compared when Image is
	// empty or has no body site yet.
	BodySite, Laterality string
}

// History returns the earlier photos ALEX holds of the session's patient at
// its facility, newest first, except that photos of the body site asked
// about come before the others (those on the same side first), each group
// newest first.
//
// Never another patient's: ALEX is searched by the session's own NHI (the
// only search ALEX allows, [alex.Client.PatientMedia]), and a Media whose
// subject is not the session's ALEX patient (another id, another NHI in
// its identifier, a reference to another server, or no reference) is
// dropped, whatever ALEX answered. Only JPEG and PNG photos whose content
// ALEX returned are listed; one whose bytes are not a readable image is
// left out.
//
// Each listed photo gets a thumbnail (JPEG, long edge
// [HistoryThumbnailEdge]) made here and stored in the blob store under the
// session's key prefix (reused by later views while it lasts); it is
// served only to this session by [Service.HistoryThumbnail]. Thumbnails are
// blobs no image of the session lists, so the sweeper deletes them once
// the session has ended or expired and, while it lives, after the orphan
// grace (session.WithOrphanGrace); a later view or thumbnail request makes
// them again.
//
// Every view is audited (history.viewed) with counts only. Errors: the
// session's (session.ErrNotFound, session.ErrExpired), ALEX's as
// *alex.Error (403 alex.ErrForbidden: the app lacks patient.media.read),
// and ErrStorageUnavailable when the blob store fails.
func (s *Service) History(ctx context.Context, sessionID string, q HistoryQuery) ([]HistoryItem, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return nil, storage(err)
	}
	site, side, err := historyFocus(sess, q)
	if err != nil {
		return nil, err
	}
	ms, err := s.alex.PatientMedia(alex.WithFacilityID(ctx, sess.Facility), sess.NHI)
	if err != nil {
		s.record(ctx, sess, AuditRecord{Event: "history.viewed", Outcome: session.AuditFailed, Reason: string(CodeOf(err))})
		return nil, err
	}
	norm := s.thumbs
	items := make([]HistoryItem, 0, len(ms))
	var made []string // blob ids of thumbnails made now
	var other, skipped int
	for i := range ms {
		m := &ms[i]
		if !s.ownMedia(m, sess) {
			other++
			continue
		}
		data, ok := photoData(m)
		if !ok {
			skipped++
			continue
		}
		it := historyItemOf(m, data)
		it.ID = s.historyID("item", sess.ID, *m.Id)
		key, err := s.thumbKey(sess.ID, it.ID)
		if err != nil {
			return nil, err
		}
		switch _, err := s.blobs.Stat(ctx, key); {
		case err == nil:
		case errors.Is(err, session.ErrNotFound):
			if _, err := s.makeThumbnail(ctx, norm, key, data); err != nil {
				if !errors.Is(err, errNotAPhoto) {
					return nil, err
				}
				skipped++
				continue
			}
			_, tid, _ := key.Parts()
			made = append(made, tid)
		default:
			return nil, storage(err)
		}
		items = append(items, it)
	}
	if err := s.noteThumbnails(ctx, sess.ID, made); err != nil {
		return nil, err
	}
	rankHistory(items, site, side)
	if other > 0 {
		s.log.WarnContext(ctx, "history: ALEX returned Media of another patient; dropped", "session", sess.ID, "dropped", other)
	}
	s.record(ctx, sess, AuditRecord{Event: "history.viewed",
		Detail: fmt.Sprintf("items=%d other_patient=%d skipped=%d same_site=%t", len(items), other, skipped, site != "")})
	return items, nil
}

// HistoryThumbnail returns the thumbnail of an item [Service.History]
// listed in this session, a JPEG (contentType "image/jpeg"); the caller
// closes the reader. An id History did not give this session, including
// one given to another session, fails with session.ErrNotFound: the session
// is part of the lookup. A thumbnail the sweeper has removed is made again
// from ALEX, under the same checks as History.
func (s *Service) HistoryThumbnail(ctx context.Context, sessionID, itemID string) (io.ReadCloser, string, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return nil, "", storage(err)
	}
	notFound := fmt.Errorf("%w: history item", session.ErrNotFound)
	if !session.ValidID(itemID) {
		return nil, "", notFound
	}
	key, err := s.thumbKey(sess.ID, itemID)
	if err != nil {
		return nil, "", err
	}
	rc, err := s.blobs.Open(ctx, key)
	switch {
	case err == nil:
		return rc, "image/jpeg", nil
	case !errors.Is(err, session.ErrNotFound):
		return nil, "", storage(err)
	}
	// Swept, or never made: find the photo again. Only this session's
	// patient's Media can match, as in History.
	ms, err := s.alex.PatientMedia(alex.WithFacilityID(ctx, sess.Facility), sess.NHI)
	if err != nil {
		return nil, "", err
	}
	for i := range ms {
		m := &ms[i]
		if !s.ownMedia(m, sess) || !hmac.Equal([]byte(s.historyID("item", sess.ID, *m.Id)), []byte(itemID)) {
			continue
		}
		data, ok := photoData(m)
		if !ok {
			return nil, "", notFound
		}
		b, err := s.makeThumbnail(ctx, s.thumbs, key, data)
		if errors.Is(err, errNotAPhoto) {
			return nil, "", notFound
		}
		if err != nil {
			return nil, "", err
		}
		_, tid, _ := key.Parts()
		if err := s.noteThumbnails(ctx, sess.ID, []string{tid}); err != nil {
			return nil, "", err
		}
		return io.NopCloser(bytes.NewReader(b)), "image/jpeg", nil
	}
	return nil, "", notFound
}

// dropHistory deletes the session's thumbnails now, as far as its index
// knows them (what it missed, the sweeper deletes once the session is
// gone). EndSession should call it.
func (s *Service) dropHistory(ctx context.Context, sessionID string) error {
	ik, err := s.indexKey(sessionID)
	if err != nil {
		return err
	}
	idx, err := s.readIndex(ctx, ik)
	if err != nil {
		return err
	}
	for _, tid := range idx.Thumbs {
		k, err := session.NewBlobKey(sessionID, tid)
		if err != nil {
			continue
		}
		if err := s.blobs.Delete(ctx, k); err != nil {
			return storage(err)
		}
	}
	return storage(s.blobs.Delete(ctx, ik))
}

// historyFocus is the body site and side the query compares.
func historyFocus(sess *session.Session, q HistoryQuery) (site, side string, err error) {
	if q.Image != "" {
		img := sess.Image(q.Image)
		if img == nil {
			return "", "", fmt.Errorf("%w: image", session.ErrNotFound)
		}
		if img.Clinical.BodySite != "" {
			return img.Clinical.BodySite, img.Clinical.Laterality, nil
		}
	}
	for _, c := range []string{q.BodySite, q.Laterality} {
		if len(c) > 18 || strings.Trim(c, "0123456789") != "" {
			return "", "", invalidRequest("bodySite and laterality must be SNOMED CT codes")
		}
	}
	if q.BodySite == "" {
		return "", "", nil
	}
	return q.BodySite, q.Laterality, nil
}

// rankHistory puts the items of site (on side first) before the others,
// keeping each group in its order (newest first).
func rankHistory(items []HistoryItem, site, side string) {
	if site == "" {
		return
	}
	rank := func(it HistoryItem) int {
		switch {
		case it.BodySite != site:
			return 0
		case side != "" && it.Laterality == side:
			return 2
		}
		return 1
	}
	for i := range items {
		items[i].SameSite = rank(items[i]) > 0
	}
	slices.SortStableFunc(items, func(a, b HistoryItem) int { return rank(b) - rank(a) })
}

// ownMedia reports whether m is a photo of the session's patient: its
// subject references the session's ALEX patient id (relatively, or
// absolutely on ALEX's host) and names no other NHI. ALEX's answer to a
// search by NHI is not taken on trust.
func (s *Service) ownMedia(m *fhir.Media, sess *session.Session) bool {
	if m.Id == nil || *m.Id == "" || m.Subject == nil || m.Subject.Reference == nil {
		return false
	}
	ref := *m.Subject.Reference
	if u, err := url.Parse(ref); err != nil {
		return false
	} else if u.IsAbs() {
		base, err := url.Parse(s.alex.BaseURL())
		if err != nil || !strings.EqualFold(u.Host, base.Host) {
			return false
		}
		ref = u.Path
	}
	segs := strings.Split(strings.Trim(ref, "/"), "/")
	if n := len(segs); n >= 4 && segs[n-2] == "_history" {
		segs = segs[:n-2]
	}
	n := len(segs)
	if n < 2 || segs[n-2] != "Patient" || segs[n-1] != sess.PatientID {
		return false
	}
	if id := m.Subject.Identifier; id != nil && id.Value != nil && id.System != nil && *id.System == s.alex.NHISystem() &&
		!strings.EqualFold(strings.TrimSpace(*id.Value), sess.NHI) {
		return false
	}
	return true
}

// photoData returns the decoded content of a JPEG or PNG Media, if ALEX
// returned it.
func photoData(m *fhir.Media) ([]byte, bool) {
	if m.Content.Data == nil || *m.Content.Data == "" || m.Content.ContentType == nil {
		return nil, false
	}
	ct, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(*m.Content.ContentType)), ";")
	if ct != "image/jpeg" && ct != "image/png" {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(*m.Content.Data)
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return b, true
}

// historyItemOf describes m (its id is set by the caller).
func historyItemOf(m *fhir.Media, data []byte) HistoryItem {
	var it HistoryItem
	if m.Content.Title != nil {
		t := media.PlainText(*m.Content.Title)
		if utf8.RuneCountInString(t) > historyTitleRunes {
			t = string([]rune(t)[:historyTitleRunes])
		}
		it.Title = t
	}
	if m.BodySite != nil {
		for _, c := range m.BodySite.Coding {
			if c.System == nil || *c.System != media.SNOMEDSystem || c.Code == nil {
				continue
			}
			site, rest, found := strings.Cut(*c.Code, ":")
			it.BodySite = strings.TrimSpace(site)
			if attr, lat, ok := strings.Cut(rest, "="); found && ok && strings.TrimSpace(attr) == media.LateralityAttribute {
				it.Laterality = strings.TrimSpace(lat)
			}
			break
		}
	}
	if m.View != nil {
		for _, c := range m.View.Coding {
			if c.System != nil && *c.System == media.ViewSystem && c.Code != nil {
				it.View = *c.Code
				break
			}
		}
	}
	if t, ok := alex.MediaTime(m); ok {
		it.Created = t
	}
	if m.Width != nil && m.Height != nil && *m.Width > 0 && *m.Height > 0 {
		it.Width, it.Height = *m.Width, *m.Height
	} else if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		it.Width, it.Height = cfg.Width, cfg.Height
	}
	return it
}

// errNotAPhoto: an earlier Media's bytes could not be made into a
// thumbnail (not an image, damaged, too large); the item is left out.
var errNotAPhoto = errors.New("clinicalimages: earlier photo is not a readable image")

// newThumbnailer returns the normaliser that makes history thumbnails,
// made once per Service: one thumbnail at a time within its own 64 MiB
// decode budget, so history views add a fixed bound to an instance's
// memory beside the upload budget.
func newThumbnailer() (*compress.Normalizer, error) {
	return compress.New(
		compress.WithMaxLongEdge(HistoryThumbnailEdge),
		compress.WithByteBudget(historyThumbnailBytes),
		compress.WithMaxInputBytes(32<<20),
		compress.WithFormats(compress.JPEG, compress.PNG),
		compress.WithMaxConcurrent(1),
		compress.WithDecodeBudget(64<<20),
	)
}

// makeThumbnail normalises data into a small JPEG and stores it under key,
// returning its bytes.
func (s *Service) makeThumbnail(ctx context.Context, norm *compress.Normalizer, key session.BlobKey, data []byte) ([]byte, error) {
	var out bytes.Buffer
	if _, err := norm.Normalize(ctx, bytes.NewReader(data), &out); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errNotAPhoto, err)
	}
	if _, err := s.blobs.Put(ctx, key, bytes.NewReader(out.Bytes()), int64(out.Len()), "image/jpeg"); err != nil {
		return nil, storage(err)
	}
	return out.Bytes(), nil
}

// historyIDs encodes ids as session.NewID does, so that they are valid
// blob key parts.
var historyIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// historyID derives an id of kind ("item", "thumb", "index") from parts
// under the Service's secret: the same on every instance sharing the secret
// (WithSecret), unguessable without it, and different per session.
func (s *Service) historyID(kind string, parts ...string) string {
	h := hmac.New(sha256.New, s.creds.key)
	h.Write([]byte("clinicalimages history " + kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return historyIDs.EncodeToString(h.Sum(nil)[:16])
}

// thumbKey is the blob key of an item's thumbnail: under the session, and
// never an id the client gave, so an image id cannot be read through it.
func (s *Service) thumbKey(sessionID, itemID string) (session.BlobKey, error) {
	k, err := session.NewBlobKey(sessionID, s.historyID("thumb", sessionID, itemID))
	if err != nil {
		return "", fmt.Errorf("%w: %w", session.ErrNotFound, err)
	}
	return k, nil
}

// indexKey is the blob key of the list of the session's thumbnails.
func (s *Service) indexKey(sessionID string) (session.BlobKey, error) {
	k, err := session.NewBlobKey(sessionID, s.historyID("index", sessionID))
	if err != nil {
		return "", fmt.Errorf("%w: %w", session.ErrNotFound, err)
	}
	return k, nil
}

// historyIndex lists the blob ids of a session's thumbnails, for
// dropHistory. It holds no patient data.
type historyIndex struct {
	Thumbs []string `json:"thumbs"`
}

func (s *Service) readIndex(ctx context.Context, key session.BlobKey) (historyIndex, error) {
	var idx historyIndex
	rc, err := s.blobs.Open(ctx, key)
	if errors.Is(err, session.ErrNotFound) {
		return idx, nil
	}
	if err != nil {
		return idx, storage(err)
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&idx); err != nil {
		if errors.Is(err, session.ErrUnavailable) {
			return idx, storage(err)
		}
		return historyIndex{}, nil // unreadable: start again
	}
	return idx, nil
}

// noteThumbnails adds thumbnail blob ids to the session's index. Two views
// at once may each miss the other's ids; the sweeper deletes what the
// index misses once the session is gone.
func (s *Service) noteThumbnails(ctx context.Context, sessionID string, tids []string) error {
	if len(tids) == 0 {
		return nil
	}
	ik, err := s.indexKey(sessionID)
	if err != nil {
		return err
	}
	idx, err := s.readIndex(ctx, ik)
	if err != nil {
		return err
	}
	for _, t := range tids {
		if !slices.Contains(idx.Thumbs, t) {
			idx.Thumbs = append(idx.Thumbs, t)
		}
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if _, err := s.blobs.Put(ctx, ik, bytes.NewReader(b), int64(len(b)), "application/json"); err != nil {
		return storage(err)
	}
	return nil
}
