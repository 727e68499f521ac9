package clinicalimages

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/clinicpro/clinicalimages/media"
)

// The HTTP side of failures: the one place that turns the Service's errors
// into statuses, headers and error bodies. The flow speaks FailureCodes
// (failure.go); this file alone knows what they mean in HTTP.

// APIError is the body of every error reply, under "error".
type APIError struct {
	Code      FailureCode     `json:"code"`      // stable, for programs
	Message   string          `json:"message"`   // plain language, no patient data
	RequestID string          `json:"requestId"` // the X-Request-ID of the reply
	Fields    []media.Problem `json:"fields,omitempty"`
}

// retryAfter is the Retry-After, in seconds, of replies whose code says
// "try again shortly".
const retryAfter = "5"

// retryAfterInProgress is the Retry-After, in seconds, of an upload whose
// idempotency key another request is still processing: that request has
// already waited up to session.UploadWait, so the first is nearly done.
const retryAfterInProgress = "2"

// fail answers a request with the error reply for err.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	_, msg := describe(err)
	if code != CodeOf(err) { // decided by the transport itself (a body over its limit)
		msg = code.Message()
	}
	rid, _ := r.Context().Value(requestIDKey).(string)
	body := APIError{Code: code, Message: msg, RequestID: rid}
	var ve *media.ValidationError
	if errors.As(err, &ve) {
		body.Fields = ve.Problems
	}
	if status >= 500 {
		a.cfg.Logger.WarnContext(r.Context(), "request failed", "path", r.URL.Path, "status", status, "code", string(code), "request", rid)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clinicalimages"`)
	}
	if code.Retryable() && status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	if code == CodeUploadInProgress {
		w.Header().Set("Retry-After", retryAfterInProgress)
	}
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((rl.RetryAfter+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// classify maps an error to its HTTP status and code. Every error is
// classified by [CodeOf], so a backend outage is 503 storage_unavailable
// wherever it surfaces; only a body over the transport's limit is decided
// here.
func classify(err error) (int, FailureCode) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	}
	code := CodeOf(err)
	return statusOf(code), code
}

// statusOf is the HTTP status of a reply failing with code.
func statusOf(code FailureCode) int {
	switch code {
	case CodeTooLarge, CodeTooManyPixels:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedFormat, CodeUnsupportedContentType:
		return http.StatusUnsupportedMediaType
	case CodeCorruptImage, CodeCannotCompress, CodeInvalidMetadata, CodeInvalidEdit, CodeNoPatient, CodeALEXRejected:
		return http.StatusUnprocessableEntity
	case CodeUnauthenticated, CodeLaunchReplayed:
		return http.StatusUnauthorized
	case CodePhoneRevoked, CodeForbidden:
		return http.StatusForbidden
	case CodeInvalidCode, CodeInvalidRequest, CodeDuplicate:
		return http.StatusBadRequest
	case CodeRateLimited, CodeTooManySessions:
		return http.StatusTooManyRequests
	case CodeSessionExpired:
		return http.StatusGone
	case CodeNotFound:
		return http.StatusNotFound
	case CodeAlreadyCommitting, CodeAlreadyCommitted, CodeTooManyImages, CodeConflict, CodeNeedsCheck:
		return http.StatusConflict
	case CodeUploadInProgress:
		// As draft-ietf-httpapi-idempotency-key-header says for a request
		// whose key is still being processed: 409, to be retried.
		return http.StatusConflict
	case CodeIdempotencyKeyReused:
		// As the draft says for a key reused with another payload: 422.
		// Sending the same request again cannot help.
		return http.StatusUnprocessableEntity
	case CodeFacilityUnavailable, CodeALEXBusy, CodeStorageUnavailable, CodeTimeout, CodeShuttingDown, CodeReconcileFailed:
		return http.StatusServiceUnavailable
	case CodeFacilityNotLinked, CodeOutcomeUnknown, CodeALEXUnauthorized, CodeALEXForbidden, CodeALEXNotFound, CodeALEXError:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}
