package clinicalimages

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
)

// FailureCode is a stable, machine-readable reason why something did not
// happen: an image that did not reach the patient's record (Outcome.Code,
// and session.Image.FailCode once recorded), or a request the Service
// refused ([CodeOf] of its error). Programs branch on it; its text never
// changes and never holds patient data. [FailureCode.Message] is the
// plain-language sentence for the GP or the phone's user. The HTTP API sends
// the same codes in its error replies.
type FailureCode string

// Failure codes. The zero FailureCode means no failure.
const (
	// The photo itself.
	CodeTooLarge          FailureCode = "too_large"          // more bytes than the upload limit
	CodeTooManyPixels     FailureCode = "too_many_pixels"    // over the decoder's pixel limit
	CodeUnsupportedFormat FailureCode = "unsupported_format" // not a photo format we read
	CodeCorruptImage      FailureCode = "corrupt_image"      // damaged or truncated
	CodeCannotCompress    FailureCode = "cannot_compress"    // cannot meet the byte budget
	CodeTooManyImages     FailureCode = "too_many_images"    // the session is full

	// Who is asking.
	CodeUnauthenticated        FailureCode = "unauthenticated"          // no valid credential, token or launch
	CodePhoneRevoked           FailureCode = "phone_revoked"            // the desktop cut the phone off
	CodeForbidden              FailureCode = "forbidden"                // authenticated, not allowed
	CodeInvalidCode            FailureCode = "invalid_code"             // a used, replaced or expired handoff code
	CodeRateLimited            FailureCode = "rate_limited"             // too many failed handoff claims, or too many launches
	CodeLaunchReplayed         FailureCode = "launch_replayed"          // the launch pair or token was already used
	CodeTooManySessions        FailureCode = "too_many_sessions"        // the practitioner or facility holds its maximum of live sessions
	CodeUnsupportedContentType FailureCode = "unsupported_content_type" // the body is not in the type the endpoint takes

	// The session and its images.
	CodeSessionExpired     FailureCode = "session_expired"     // or its image's bytes passed retention
	CodeNotFound           FailureCode = "not_found"           // no such session or image
	CodeAlreadyCommitting  FailureCode = "already_committing"  // someone else is sending it
	CodeAlreadyCommitted   FailureCode = "already_committed"   // it is in the record
	CodeConflict           FailureCode = "conflict"            // a concurrent change won
	CodeDuplicate          FailureCode = "duplicate"           // listed twice in one Commit
	CodeInvalidMetadata    FailureCode = "invalid_metadata"    // codes outside the value sets, missing fields
	CodeInvalidEdit        FailureCode = "invalid_edit"        // a rotation, crop or redaction that does not fit the photo
	CodeInvalidRequest     FailureCode = "invalid_request"     // the request itself is malformed
	CodeStorageUnavailable FailureCode = "storage_unavailable" // Redis, S3 or disk down: retry

	// Idempotent uploads (the Idempotency-Key header).
	CodeUploadInProgress     FailureCode = "upload_in_progress"     // an upload with the same key is still being processed: retry
	CodeIdempotencyKeyReused FailureCode = "idempotency_key_reused" // the key was used for different bytes

	// ALEX.
	CodeNoPatient           FailureCode = "no_patient"           // launched with no patient open
	CodeFacilityUnavailable FailureCode = "facility_unavailable" // the practice's server is offline: retry
	CodeFacilityNotLinked   FailureCode = "facility_not_linked"  // the practice is not linked to the app
	CodeOutcomeUnknown      FailureCode = "outcome_unknown"      // sent, no answer: checked before any resend
	CodeNeedsCheck          FailureCode = "needs_check"          // an Inbox Scan with an unknown outcome: the GP checks the Inbox, then ConfirmResend
	CodeReconcileFailed     FailureCode = "reconcile_failed"     // ALEX could not be searched for an earlier attempt: retry
	CodeALEXBusy            FailureCode = "alex_busy"            // rate limited or a gateway error: retry
	CodeALEXUnauthorized    FailureCode = "alex_unauthorized"    // ALEX refused the app's credentials
	CodeALEXForbidden       FailureCode = "alex_forbidden"       // the app lacks a role
	CodeALEXRejected        FailureCode = "alex_rejected"        // ALEX refused the resource
	CodeALEXNotFound        FailureCode = "alex_not_found"       // ALEX has no such resource
	CodeALEXError           FailureCode = "alex_error"           // any other ALEX error

	// Anything else.
	CodeTimeout      FailureCode = "timeout"       // the caller's context ended
	CodeShuttingDown FailureCode = "shutting_down" // the Service was closed: retry against another instance
	CodeInternal     FailureCode = "internal"      // a bug or an error nobody named: not retried blindly
)

// CodeOf classifies an error returned by the Service (or by the packages it
// wires) by the sentinels and typed errors in its chain; it never looks at
// the text. It returns "" for nil and CodeInternal for an error nobody named.
// A backend outage (session.ErrUnavailable anywhere in the chain) is always
// CodeStorageUnavailable, whichever call met it.
func CodeOf(err error) FailureCode {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, compress.ErrInvalidEdit):
		return CodeInvalidEdit
	case errors.Is(err, compress.ErrTooLarge), errors.Is(err, session.ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, compress.ErrTooManyPixels):
		return CodeTooManyPixels
	case errors.Is(err, compress.ErrUnsupportedFormat):
		return CodeUnsupportedFormat
	case errors.Is(err, compress.ErrCorrupt):
		return CodeCorruptImage
	case errors.Is(err, compress.ErrBudget):
		return CodeCannotCompress
	case errors.Is(err, ErrLaunchReplayed):
		return CodeLaunchReplayed
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, session.ErrInvalidToken):
		return CodeUnauthenticated
	case errors.Is(err, session.ErrRevoked):
		return CodePhoneRevoked
	case errors.Is(err, ErrForbidden):
		return CodeForbidden
	case errors.Is(err, session.ErrInvalidCode):
		return CodeInvalidCode
	case errors.Is(err, session.ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrTooManySessions):
		return CodeTooManySessions
	case errors.Is(err, ErrUnsupportedContentType):
		return CodeUnsupportedContentType
	case errors.Is(err, session.ErrExpired):
		return CodeSessionExpired
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrInvalidID):
		return CodeNotFound
	case errors.Is(err, session.ErrAlreadyCommitting):
		return CodeAlreadyCommitting
	case errors.Is(err, session.ErrAlreadyCommitted):
		return CodeAlreadyCommitted
	case errors.Is(err, ErrTooManyImages):
		return CodeTooManyImages
	case errors.Is(err, session.ErrUploadInProgress):
		return CodeUploadInProgress
	case errors.Is(err, session.ErrKeyReused):
		return CodeIdempotencyKeyReused
	case errors.Is(err, session.ErrConflict):
		return CodeConflict
	case errors.Is(err, media.ErrInvalid):
		return CodeInvalidMetadata
	case errors.Is(err, ErrInvalidRequest):
		return CodeInvalidRequest
	case errors.Is(err, alex.ErrNoPatient):
		return CodeNoPatient
	case errors.Is(err, alex.ErrFacilityUnavailable):
		return CodeFacilityUnavailable
	case errors.Is(err, alex.ErrFacilityNotFound):
		return CodeFacilityNotLinked
	case errors.Is(err, alex.ErrOutcomeUnknown):
		return CodeOutcomeUnknown
	case errors.Is(err, alex.ErrRateLimited):
		return CodeALEXBusy
	case errors.Is(err, alex.ErrUnauthorized):
		return CodeALEXUnauthorized
	case errors.Is(err, alex.ErrForbidden):
		return CodeALEXForbidden
	case errors.Is(err, alex.ErrValidation):
		return CodeALEXRejected
	case errors.Is(err, alex.ErrNotFound):
		return CodeALEXNotFound
	case errors.Is(err, ErrStorageUnavailable), errors.Is(err, session.ErrUnavailable):
		return CodeStorageUnavailable
	case errors.Is(err, ErrClosed):
		return CodeShuttingDown
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	}
	var ae *alex.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case 502, 503, 504: // Medtech's gateway or ALEX, for a moment
			return CodeALEXBusy
		}
		return CodeALEXError
	}
	return CodeInternal
}

// Retryable reports whether the same request may succeed unchanged a little
// later (an outage or a busy service), as opposed to needing a change first.
func (c FailureCode) Retryable() bool {
	switch c {
	case CodeStorageUnavailable, CodeFacilityUnavailable, CodeALEXBusy, CodeReconcileFailed, CodeTimeout, CodeShuttingDown,
		CodeUploadInProgress:
		return true
	}
	return false
}

// Message is a plain-language sentence for the GP or the phone's user. It
// never holds tokens, codes or patient data.
func (c FailureCode) Message() string {
	switch c {
	case CodeTooLarge:
		return "The photo is too large to upload."
	case CodeTooManyPixels:
		return "The photo has too many pixels to process safely."
	case CodeUnsupportedFormat:
		return "That file is not a supported photo (JPEG, PNG, GIF, WebP or HEIC)."
	case CodeCorruptImage:
		return "The photo is damaged or incomplete; take or choose it again."
	case CodeCannotCompress:
		return "The photo could not be made small enough to send."
	case CodeTooManyImages:
		return "This session already holds the maximum number of photos."
	case CodeUnauthenticated:
		return "Please open the widget again from Medtech Evolution."
	case CodePhoneRevoked:
		return "This phone was disconnected from the session on the desktop."
	case CodeForbidden:
		return "You are not allowed to do that."
	case CodeInvalidCode:
		return "This QR code has already been used or has expired. Show a new one on the desktop."
	case CodeRateLimited:
		return "Too many attempts. Wait a few minutes and scan a new QR code."
	case CodeLaunchReplayed:
		return "This launch was already used. Open the widget again from Medtech Evolution."
	case CodeTooManySessions:
		return "Too many capture sessions are open. Close one, or wait for an idle one to end, then open the widget again."
	case CodeUnsupportedContentType:
		return "The request was not sent as JSON."
	case CodeSessionExpired:
		return "The capture session has ended. Open the widget again from Medtech Evolution."
	case CodeNotFound:
		return "Not found."
	case CodeAlreadyCommitting:
		return "This photo is already being sent."
	case CodeAlreadyCommitted:
		return "This photo is already in the patient's record."
	case CodeConflict:
		return "Someone else changed this at the same moment. Try again."
	case CodeDuplicate:
		return "This photo is listed twice."
	case CodeInvalidMetadata:
		return "Please check the photo's details."
	case CodeInvalidEdit:
		return "That edit does not fit the photo: turn it by a quarter, half or three-quarter turn, and keep the crop and every covered area inside the photo."
	case CodeInvalidRequest:
		return "The request was not understood."
	case CodeStorageUnavailable:
		return "Storage is unavailable for a moment. Nothing was lost; try again shortly."
	case CodeUploadInProgress:
		return "This photo is still being received. It will be checked again shortly."
	case CodeIdempotencyKeyReused:
		return "A different photo was already sent under this upload's key. Take the photo again."
	case CodeNoPatient:
		return "Open a patient in Medtech Evolution before launching the widget."
	case CodeFacilityUnavailable:
		return "Medtech cannot reach the practice's server right now. Try again in a few minutes."
	case CodeFacilityNotLinked:
		return "This practice is not yet linked to the app in Medtech. Contact support."
	case CodeOutcomeUnknown:
		return "Medtech did not answer; the photo will be checked before it is sent again."
	case CodeNeedsCheck:
		return "Medtech did not answer last time. Check the patient's Inbox; send again only if the photo is not there."
	case CodeReconcileFailed:
		return "Medtech could not be checked for an earlier attempt. Try again."
	case CodeALEXBusy:
		return "Medtech is busy. Try again shortly."
	case CodeALEXUnauthorized, CodeALEXForbidden:
		return "Medtech refused the app's access. Contact support."
	case CodeALEXRejected:
		return "Medtech refused the photo."
	case CodeTimeout:
		return "That took too long. Try again."
	case CodeShuttingDown:
		return "The server is restarting. Try again in a moment."
	}
	return "Something went wrong. Try again."
}

// describe is the code of err and a sentence for the GP: the code's Message,
// with the safe detail some errors carry (the fields to check, ALEX's
// summary of why it refused, what was wrong with a request).
func describe(err error) (FailureCode, string) {
	code := CodeOf(err)
	msg := code.Message()
	switch code {
	case CodeInvalidMetadata:
		var ve *media.ValidationError
		if errors.As(err, &ve) && len(ve.Problems) > 0 {
			// Field names and rule descriptions only: media never quotes
			// a value in a Problem.
			parts := make([]string, len(ve.Problems))
			for i, p := range ve.Problems {
				parts[i] = p.String()
			}
			msg = "Please check: " + strings.Join(parts, "; ") + "."
		}
	case CodeInvalidRequest:
		var re *requestError
		if errors.As(err, &re) {
			msg = "The request was not understood: " + re.detail + "."
		}
	case CodeRateLimited:
		var rl *RateLimitError
		if errors.As(err, &rl) && rl.Limit == "launch" {
			msg = "Too many launches from here. Wait a minute, then open the widget again from Medtech Evolution."
		}
	case CodeALEXRejected:
		var ae *alex.Error
		if errors.As(err, &ae) && ae.Summary() != "" {
			msg = "Medtech refused the photo: " + ae.Summary()
		}
	}
	return code, msg
}

// requestError is an ErrInvalidRequest with a safe detail (written here,
// never copied from input) that the GP may be shown.
type requestError struct{ detail string }

func (e *requestError) Error() string { return ErrInvalidRequest.Error() + ": " + e.detail }
func (e *requestError) Unwrap() error { return ErrInvalidRequest }

// invalidRequest returns an ErrInvalidRequest saying what was wrong. detail
// must be fixed text: no input, token or patient data.
func invalidRequest(detail string) error { return &requestError{detail: detail} }

// RateLimitError is a request refused by a rate limit before it cost
// anything (for a launch: before any ALEX call). It wraps
// session.ErrRateLimited, so its code is CodeRateLimited; the HTTP API
// answers 429 with Retry-After.
type RateLimitError struct {
	Limit      string        // which limit: "launch"
	RetryAfter time.Duration // when the window that refused it closes at the latest
}

func (e *RateLimitError) Error() string {
	return "clinicalimages: " + e.Limit + " rate limit: " + session.ErrRateLimited.Error()
}

func (e *RateLimitError) Unwrap() error { return session.ErrRateLimited }
