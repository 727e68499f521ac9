package clinicalimages

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/sync"
)

// EditImage rotates, crops and redacts an image on the server (desktop
// only) and returns the image as stored. The edit applies to the image's
// current bytes (after any earlier edit), through compress.Normalizer.Edit:
// rectangles are in the pixels of the current picture turned clockwise by
// e.Rotate, before any crop. Without a redaction the edit is lossless
// where JPEG allows (coefficients moved, not decoded); a redaction, or a
// crop off the block grid, costs one re-encode within the byte budget, and
// no pixel of a redacted rectangle survives anywhere in the result.
//
// The result becomes the image's bytes: what the desktop previews and
// what [Service.Commit] sends, and nothing else is sent. The captured photo
// is kept (once: intermediate edits are deleted when replaced) until the
// image is committed or removed, or its session ends or is swept, so that
// [Service.ResetImage] can go back to it; then it is deleted with the rest.
//
// Refused like [Service.UpdateImage] while the image is being committed
// or once it is (CodeAlreadyCommitting, CodeAlreadyCommitted); an edit
// that does not fit the picture fails with compress.ErrInvalidEdit
// (CodeInvalidEdit) and changes nothing; two edits racing on one image
// leave one of them, the other failing with session.ErrConflict. Each
// edit publishes image.updated and is audited as image.edited with the new
// bytes' SHA-256 and what was done ("rotate=90 crop=WxH redactions=N
// lossless=true"), never a coordinate or any content.
func (s *Service) EditImage(ctx context.Context, sessionID, imageID string, e compress.Edit) (session.Image, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return session.Image{}, storage(err)
	}
	cur := sess.Image(imageID)
	if cur == nil {
		return session.Image{}, fmt.Errorf("%w: image", session.ErrNotFound)
	}
	// Refuse before spending a decode on an image that cannot change.
	switch {
	case cur.State == session.StateCommitting:
		return session.Image{}, session.ErrAlreadyCommitting
	case cur.State == session.StateCommitted:
		return session.Image{}, session.ErrAlreadyCommitted
	case cur.Purged:
		return session.Image{}, fmt.Errorf("%w: image bytes passed the retention window", session.ErrExpired)
	}
	rc, err := s.sessions.OpenImage(ctx, *cur)
	if err != nil {
		return session.Image{}, storage(err)
	}
	// The edited JPEG is within the byte budget (1 MB by default), so it is
	// kept in memory between compress and the blob store, as an upload's is.
	var out bytes.Buffer
	res, err := s.norm.Edit(ctx, rc, e, &out)
	_ = rc.Close()
	if err != nil {
		if errors.Is(err, compress.ErrInvalidEdit) {
			s.record(ctx, sess, AuditRecord{Event: "image.edited", Image: imageID, Outcome: session.AuditRefused,
				Reason: string(CodeInvalidEdit), Detail: editDetail(e, false)})
		}
		return session.Image{}, storage(err)
	}
	img, err := s.sessions.ReplaceImage(ctx, sessionID, imageID, cur.BlobKey, session.Upload{
		Body: &out, Size: int64(out.Len()), ContentType: "image/jpeg", Width: res.Width, Height: res.Height,
	}, res.Lossless)
	if err != nil {
		return session.Image{}, storage(err)
	}
	s.publish(ctx, sessionID, sync.ImageUpdated, imageID, nil)
	s.record(ctx, sess, AuditRecord{Event: "image.edited", Image: imageID, SHA256: img.SHA256, Detail: editDetail(e, res.Lossless)})
	return img, nil
}

// ResetImage points an edited image back at its captured photo and deletes
// the edited bytes (desktop only), and returns the image as stored: the
// bytes are exactly those captured, their SHA-256 the upload's. An image
// never edited is returned unchanged, nothing published or audited. The
// same states as [Service.EditImage] are refused. A reset publishes
// image.updated and is audited as image.reset with the restored SHA-256.
func (s *Service) ResetImage(ctx context.Context, sessionID, imageID string) (session.Image, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return session.Image{}, storage(err)
	}
	img, changed, err := s.sessions.RestoreOriginal(ctx, sessionID, imageID)
	if err != nil {
		return session.Image{}, storage(err)
	}
	if changed {
		s.publish(ctx, sessionID, sync.ImageUpdated, imageID, nil)
		s.record(ctx, sess, AuditRecord{Event: "image.reset", Image: imageID, SHA256: img.SHA256})
	}
	return img, nil
}

// editDetail says what an edit did, for the audit: the rotation, the
// crop's size (not where it is), how many rectangles were redacted and
// whether the result is lossless. No coordinate, no content.
func editDetail(e compress.Edit, lossless bool) string {
	crop := "none"
	if !e.Crop.Empty() {
		crop = fmt.Sprintf("%dx%d", e.Crop.Dx(), e.Crop.Dy())
	}
	return fmt.Sprintf("rotate=%d crop=%s redactions=%d lossless=%t", e.Rotate, crop, len(e.Redact), lossless)
}
