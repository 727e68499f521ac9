package clinicalimages

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	gosync "sync"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/sync"
)

// commitTimeout bounds one image's commit. The commit runs detached from the
// caller's context: a desktop that disconnects mid-commit must not turn a
// send into an unknown outcome.
const commitTimeout = 3 * time.Minute

// Outcome is what happened to one image in a Commit. An image that is not
// committed has a Code (the same is kept on the image, session.Image.FailCode,
// when it failed) and a Message for the GP.
type Outcome struct {
	ImageID string        `json:"image"`
	State   session.State `json:"state"`             // committed, failed or committing (someone else holds it)
	MediaID string        `json:"mediaId,omitempty"` // ALEX Media id when committed
	Code    FailureCode   `json:"code,omitempty"`    // why it is not committed
	Message string        `json:"message,omitempty"` // plain language for the GP, no patient data
	// Reconciled: the Media was found in ALEX by its identifier after an
	// earlier attempt's outcome was unknown; it was not sent again.
	Reconciled bool `json:"reconciled,omitempty"`
}

// CommitResult lists every image's outcome, in the order asked.
type CommitResult struct {
	Images []Outcome `json:"images"`
}

// Committed counts the images that are now in the patient's record.
func (r CommitResult) Committed() int {
	n := 0
	for _, o := range r.Images {
		if o.State == session.StateCommitted {
			n++
		}
	}
	return n
}

// Commit sends images of the session to ALEX, each as one Media, in parallel
// up to Limits.CommitParallelism. With no ids it commits every image not yet
// committed. Each image is claimed atomically first: an image another caller
// is committing comes back as committing with CodeAlreadyCommitting, one
// already in the record as committed. A second Commit retries only what did
// not succeed. Before any resend of an image whose earlier attempt had an
// unknown outcome, ALEX is searched for the image's identifier, so nothing
// lands twice.
func (s *Service) Commit(ctx context.Context, sessionID string, imageIDs []string, opts ...CommitOption) (CommitResult, error) {
	var co commitOptions
	for _, o := range opts {
		o(&co)
	}
	sess, err := s.sessions.Touch(ctx, sessionID)
	if err != nil {
		return CommitResult{}, storage(err)
	}
	if len(imageIDs) == 0 {
		for _, img := range sess.Images {
			if img.State != session.StateCommitted {
				imageIDs = append(imageIDs, img.ID)
			}
		}
	}
	res := CommitResult{Images: make([]Outcome, len(imageIDs))}
	sem := make(chan struct{}, s.limits.CommitParallelism)
	var wg gosync.WaitGroup
	for i, id := range imageIDs {
		if sess.Image(id) == nil {
			res.Images[i] = Outcome{ImageID: id, Code: CodeNotFound, Message: "There is no such photo in this session."}
			continue
		}
		if slices.Index(imageIDs, id) < i {
			res.Images[i] = Outcome{ImageID: id, Code: CodeDuplicate, Message: CodeDuplicate.Message()}
			continue
		}
		if s.inboxScan && !co.confirmResend && FailureCode(sess.Image(id).FailCode) == CodeOutcomeUnknown {
			// An Inbox Scan cannot be looked up in ALEX: a resend needs the
			// GP's word that it is not in the Inbox already.
			res.Images[i] = Outcome{ImageID: id, State: session.StateFailed, Code: CodeNeedsCheck, Message: CodeNeedsCheck.Message()}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			defer cancel()
			res.Images[i] = s.commitOne(cctx, sessionID, id)
		}()
	}
	wg.Wait()
	if m := s.metrics.Commit; m != nil {
		for _, o := range res.Images {
			m(o.State, o.Code)
		}
	}
	return res, nil
}

func (s *Service) commitOne(ctx context.Context, sessionID, imageID string) Outcome {
	out := Outcome{ImageID: imageID}
	claim, err := s.sessions.ClaimCommit(ctx, sessionID, imageID)
	switch {
	case errors.Is(err, session.ErrAlreadyCommitted):
		out.State = session.StateCommitted
		if sess, err := s.sessions.Get(ctx, sessionID); err == nil && sess.Image(imageID) != nil {
			out.MediaID = sess.Image(imageID).MediaID
		}
		return out
	case errors.Is(err, session.ErrAlreadyCommitting):
		out.State, out.Code, out.Message = session.StateCommitting, CodeAlreadyCommitting, CodeAlreadyCommitting.Message()
		return out
	case err != nil:
		out.Code, out.Message = describe(storage(err))
		return out
	}
	return s.send(ctx, claim)
}

// send commits a claimed image: reconcile if an earlier attempt may have
// landed, build, validate, POST, and record the outcome.
func (s *Service) send(ctx context.Context, claim session.Claim) Outcome {
	img, sess := claim.Image, claim.Session
	s.publish(ctx, sess.ID, sync.ImageCommitting, img.ID, nil)
	s.record(ctx, sess, AuditRecord{Event: "commit.attempted", Image: img.ID, Detail: fmt.Sprintf("attempt=%d", img.Attempts)})
	actx := alex.WithCorrelationID(alex.WithFacilityID(ctx, sess.Facility), newCorrelationID(img.ID, img.Attempts))
	if s.inboxScan {
		return s.sendDocument(ctx, actx, claim)
	}

	// Any earlier attempt may have reached ALEX without our hearing back.
	if img.Attempts > 1 {
		if id, found, err := s.reconcile(actx, sess, img); err != nil {
			s.log.WarnContext(ctx, "commit: could not search ALEX for an earlier attempt", "session", sess.ID, "image", img.ID, "code", string(CodeOf(err)))
			return s.fail(ctx, claim, CodeReconcileFailed, CodeReconcileFailed.Message())
		} else if found {
			return s.committed(ctx, claim, id, true)
		}
	}

	m, err := s.buildMedia(sess, img)
	if err != nil {
		return s.failErr(ctx, claim, err)
	}
	content := alex.Content{Size: img.Size, Open: func(ctx context.Context) (io.ReadCloser, error) { return s.sessions.OpenImage(ctx, img) }}
	for attempt := 1; ; attempt++ {
		cr, err := s.alex.CreateMedia(actx, m, content)
		if err == nil {
			return s.committed(ctx, claim, cr.ID, false)
		}
		if !errors.Is(err, alex.ErrOutcomeUnknown) || attempt > 1 {
			return s.failErr(ctx, claim, err)
		}
		// Sent, unanswered: look before sending again.
		id, found, rerr := s.reconcile(actx, sess, img)
		if rerr != nil {
			return s.fail(ctx, claim, CodeOutcomeUnknown, "Medtech did not answer and could not be checked; the photo will be checked before it is sent again.")
		}
		if found {
			return s.committed(ctx, claim, id, true)
		}
		s.log.InfoContext(ctx, "commit: outcome unknown, not in ALEX, resending once", "session", sess.ID, "image", img.ID)
	}
}

func (s *Service) reconcile(ctx context.Context, sess *session.Session, img session.Image) (mediaID string, found bool, err error) {
	m, err := s.alex.FindMediaByIdentifier(ctx, sess.NHI, s.idSystem, img.ID)
	if errors.Is(err, alex.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if m.Id == nil {
		return "", false, errors.New("reconcile: Media without id")
	}
	// Never the wrong patient: the Media we made names our patient.
	if m.Subject == nil || m.Subject.Reference == nil || !refersTo(*m.Subject.Reference, "Patient", sess.PatientID) {
		return "", false, errors.New("reconcile: a Media with our identifier names another patient")
	}
	return *m.Id, true, nil
}

func refersTo(ref, typ, id string) bool {
	want := typ + "/" + id
	return ref == want || (len(ref) > len(want) && ref[len(ref)-len(want)-1:] == "/"+want)
}

func (s *Service) buildMedia(sess *session.Session, img session.Image) (*fhir.Media, error) {
	sha1, _ := hex.DecodeString(img.SHA1)
	in := media.Input{
		Image: media.ImageFacts{ID: img.ID, ContentType: img.ContentType, Size: img.Size, SHA1: sha1,
			Width: img.Width, Height: img.Height, Created: img.CreatedAt},
		Patient:   media.Patient{ID: sess.PatientID, NHI: sess.NHI},
		Operator:  sess.Practitioner,
		Facility:  sess.Facility,
		Encounter: sess.Encounter,
		Metadata:  metadataOf(img.Clinical),
	}
	in.Consent = s.consent(sess, img)
	m, err := s.builder.Build(in)
	if err != nil {
		return nil, err
	}
	if err := s.builder.Validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Service) committed(ctx context.Context, claim session.Claim, mediaID string, reconciled bool) Outcome {
	if _, err := s.sessions.MarkCommitted(ctx, claim, mediaID); err != nil && !errors.Is(err, session.ErrAlreadyCommitted) {
		// The Media is in ALEX; only our record failed. Recovery will
		// reconcile it (it stays committing past the lease).
		s.log.WarnContext(ctx, "commit: landed but not recorded", "session", claim.Session.ID, "image", claim.Image.ID, "error", err)
	}
	s.publish(ctx, claim.Session.ID, sync.ImageCommitted, claim.Image.ID, map[string]any{"mediaId": mediaID})
	rec := AuditRecord{Event: "image.committed", Image: claim.Image.ID, MediaID: mediaID, SHA256: claim.Image.SHA256}
	if reconciled {
		rec.Detail = "reconciled: found in ALEX by identifier, not resent"
	}
	s.record(ctx, claim.Session, rec)
	return Outcome{ImageID: claim.Image.ID, State: session.StateCommitted, MediaID: mediaID, Reconciled: reconciled}
}

// failErr records a failed commit for the error that ended it.
func (s *Service) failErr(ctx context.Context, claim session.Claim, err error) Outcome {
	code, msg := describe(storage(err))
	return s.fail(ctx, claim, code, msg)
}

// fail records a failed commit: code for programs, msg for the GP, kept
// apart in the session record.
func (s *Service) fail(ctx context.Context, claim session.Claim, code FailureCode, msg string) Outcome {
	if _, err := s.sessions.MarkFailed(ctx, claim, string(code), msg); err != nil {
		s.log.WarnContext(ctx, "commit: could not record failure", "session", claim.Session.ID, "image", claim.Image.ID, "error", err)
	}
	s.publish(ctx, claim.Session.ID, sync.ImageFailed, claim.Image.ID, map[string]any{"code": code})
	s.record(ctx, claim.Session, AuditRecord{Event: "image.failed", Image: claim.Image.ID, Outcome: session.AuditFailed, Reason: string(code)})
	return Outcome{ImageID: claim.Image.ID, State: session.StateFailed, Code: code, Message: msg}
}

// CommitOption adjusts one Commit.
type CommitOption func(*commitOptions)

type commitOptions struct{ confirmResend bool }

// ConfirmResend lets Commit resend Inbox Scan documents whose previous
// attempt had an unknown outcome: the GP has checked the Inbox. (Media need
// no confirmation: they are reconciled by search.)
func ConfirmResend() CommitOption { return func(o *commitOptions) { o.confirmResend = true } }

// sendDocument commits a claimed image as an Inbox Scan DocumentReference:
// its JPEG unchanged inside a TIFF (or, with DocumentPDF or for a JPEG a
// TIFF cannot carry unchanged, a PDF page with the photo and its caption),
// authored by the launching practitioner.
func (s *Service) sendDocument(ctx, actx context.Context, claim session.Claim) Outcome {
	var doc bytes.Buffer
	d, err := s.buildDocument(ctx, claim, s.inboxFmt, &doc)
	if errors.Is(err, media.ErrJPEGNotWrappable) {
		doc.Reset()
		d, err = s.buildDocument(ctx, claim, media.DocumentPDF, &doc)
	}
	if err != nil {
		var se storageError
		if errors.As(err, &se) {
			code, why := describe(se.err)
			return s.fail(ctx, claim, code, "The photo's bytes could not be read. "+why)
		}
		return s.failErr(ctx, claim, err)
	}
	cr, err := s.alex.CreateDocumentReference(actx, d, alex.BytesContent(doc.Bytes()))
	switch {
	case err == nil:
		return s.committed(ctx, claim, cr.ID, false)
	case errors.Is(err, alex.ErrOutcomeUnknown):
		return s.fail(ctx, claim, CodeOutcomeUnknown, "Medtech did not answer. Check the patient's Inbox; send again only if the photo is not there.")
	}
	return s.failErr(ctx, claim, err)
}

// storageError is a blob store's failure to open an image's bytes, apart
// from the document builder's own errors.
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

// buildDocument writes claim's image into w as an Inbox Scan document in
// format f. The document's title is the one the desktop showed
// (Service.Title): the GP's words with the site, side and view.
func (s *Service) buildDocument(ctx context.Context, claim session.Claim, f media.DocumentFormat, w *bytes.Buffer) (*fhir.DocumentReference, error) {
	img, sess := claim.Image, claim.Session
	rc, err := s.sessions.OpenImage(ctx, img)
	if err != nil {
		return nil, storageError{storage(err)}
	}
	defer rc.Close()
	return s.docBuilder.BuildDocument(w, media.DocumentInput{
		ID: img.ID, Patient: media.Patient{ID: sess.PatientID, NHI: sess.NHI}, Author: sess.Practitioner,
		Facility: sess.Facility, Encounter: sess.Encounter, Title: s.Title(img), Date: img.CreatedAt, Format: f,
		Pages:   []media.DocumentPage{{JPEG: rc, Size: img.Size, Created: img.CreatedAt, Metadata: metadataOf(img.Clinical)}},
		Consent: s.consent(sess, img),
	})
}

// consent is the image's consent for media. Who recorded it is the session's
// launching practitioner: only that GP's desktop can record consent in the
// session. When is the time UpdateImage stored from the Service's clock; a
// record from before the Service set it, holding a time that cannot be
// (before the session, in the future), gets the time its description was
// last saved instead. A method media does not know is left out.
func (s *Service) consent(sess *session.Session, img session.Image) *media.Consent {
	if !img.Consent.Given {
		return nil
	}
	at := img.Consent.RecordedAt
	if !trustedConsentTime(sess, at, s.now()) {
		at = img.UpdatedAt
	}
	method := media.ConsentMethod(img.Consent.Method)
	if !method.Valid() {
		method = ""
	}
	return &media.Consent{Purposes: []media.ConsentPurpose{media.ConsentRecord}, Method: method,
		RecordedBy: sess.Practitioner, RecordedAt: at}
}

// newCorrelationID is the mt-correlationid of one commit attempt: a GUID,
// as ALEX documents it, derived from the image, the attempt and a fresh
// request id (alex.CorrelationGUID), so it is the value the client sends
// and logs.
func newCorrelationID(imageID string, attempt int) string {
	return alex.CorrelationGUID(fmt.Sprintf("%s-%d-%s", imageID[:min(12, len(imageID))], attempt, newRequestID()))
}

// Recover finds images left in committing longer than Limits.StuckCommit
// (a process died mid-commit), reconciles each with ALEX, and records it as
// committed or sends it; it also announces the expiry of sessions whose
// bytes remain. It is safe to run on every instance at once. It needs a
// BlobStore that can list (all of this module's can).
func (s *Service) Recover(ctx context.Context) (recovered int, err error) {
	lister, ok := s.blobs.(session.BlobLister)
	if !ok {
		return 0, nil
	}
	seen := map[string]bool{}
	err = lister.List(ctx, func(bi session.BlobInfo) error {
		sid, _, err := bi.Key.Parts()
		if err == nil {
			seen[sid] = true
		}
		return nil
	})
	if err != nil {
		return 0, storage(err)
	}
	for sid := range seen {
		sess, err := s.sessions.Get(ctx, sid)
		if errors.Is(err, session.ErrExpired) {
			s.publish(ctx, sid, sync.SessionExpired, "", map[string]any{"reason": "expired"})
			// The store no longer hands back an expired record, so this
			// one alone has no practitioner.
			s.record(ctx, nil, AuditRecord{Event: "session.expired", Session: sid})
			continue
		}
		if err != nil {
			continue
		}
		for _, img := range sess.Images {
			if img.State != session.StateCommitting || s.now().Sub(img.CommitStarted) < s.limits.StuckCommit {
				continue
			}
			claim, err := s.sessions.ClaimCommit(ctx, sid, img.ID)
			if err != nil {
				continue // not yet abandoned, or taken by another instance
			}
			if s.inboxScan {
				// No way to look an Inbox Scan up: leave it to the GP.
				s.fail(ctx, claim, CodeOutcomeUnknown, "The server stopped while sending. Check the patient's Inbox before sending again.")
				recovered++
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, commitTimeout)
			o := s.send(cctx, claim)
			cancel()
			s.log.InfoContext(ctx, "recovered a stuck commit", "session", sid, "image", img.ID, "state", string(o.State))
			recovered++
		}
	}
	return recovered, nil
}

// Run does the background work until ctx ends: every interval it recovers
// stuck commits, announces expired sessions and sweeps retained bytes, and
// every PhonePresence.Check it announces lapsed phones gone
// ([Service.CheckPhones]). Run it on every instance; all of it is safe to
// run concurrently.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Minute
	}
	// Phone presence needs seconds, not the sweep's minutes.
	phones := make(chan struct{})
	go func() {
		defer close(phones)
		s.watchPhones(ctx)
	}()
	defer func() { <-phones }()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Recover(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "recover failed", "error", err)
		}
		if _, err := s.sessions.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
