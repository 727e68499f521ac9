package alex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors for the conditions callers branch on. An *Error from ALEX
// matches one or more of them with errors.Is; so do errors from the client
// itself where the condition is the same.
var (
	// ErrUnauthorized: ALEX refused the bearer token (401), even after one
	// forced token refresh.
	ErrUnauthorized = errors.New("alex: unauthorized")
	// ErrForbidden: ALEX refused the call (403): a missing role, a search form
	// ALEX does not allow, or a facility not linked to the app.
	ErrForbidden = errors.New("alex: forbidden")
	// ErrFacilityNotFound: the mt-facilityid is unknown to ALEX or not linked
	// to this app (403 "Practice Facility not found"). It also matches
	// ErrForbidden.
	ErrFacilityNotFound = errors.New("alex: practice facility not found")
	// ErrNotFound: the resource or route does not exist (404), or a search
	// that must find exactly one thing found none.
	ErrNotFound = errors.New("alex: not found")
	// ErrValidation: ALEX rejected the request's content (400 or 422), or the
	// client refused to send it (invalid NHI, missing facility...). The
	// request can be fixed and sent again.
	ErrValidation = errors.New("alex: validation failed")
	// ErrRateLimited: ALEX or its gateway throttled the call (429) and the
	// retry budget ran out. Error.RetryAfter says when to try again.
	ErrRateLimited = errors.New("alex: rate limited")
	// ErrFacilityUnavailable: ALEX cannot reach the practice's on-premises
	// server (503 "Cannot establish connection to the facility"). Temporary;
	// nothing was stored.
	ErrFacilityUnavailable = errors.New("alex: facility unavailable")
	// ErrOutcomeUnknown: a write was sent but no reply was read (timeout,
	// reset, cancellation). ALEX may or may not have stored it; the client
	// did not resend. Reconcile (for Media, search by identifier) before
	// sending again.
	ErrOutcomeUnknown = errors.New("alex: outcome unknown")
)

// Issue is one entry of an OperationOutcome, or ALEX's non-FHIR error message.
// Diagnostics is ALEX's text verbatim: it may name patient data, so log Code
// rather than Diagnostics.
type Issue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
	Details     string `json:"details,omitempty"`
}

// Error is an error reply from ALEX (any status >= 400 after retries), or a
// call that failed without a reply. It matches the sentinel errors with
// errors.Is according to Status and the issues.
//
// Error() never includes the token, the query string's values, resource ids
// in the path or patient identifiers found in ALEX's text.
type Error struct {
	Status        int           // HTTP status; 0 when no reply was read
	Method        string        // HTTP method
	URL           string        // request URL with ids and query values redacted
	CorrelationID string        // mt-correlationid sent with the call
	Issues        []Issue       // parsed OperationOutcome or {statusCode,message} body
	RetryAfter    time.Duration // from the Retry-After header, 0 if absent
	Body          []byte        // the reply body, capped at maxErrorBody bytes
	Attempts      int           // attempts made, retries included
	Err           error         // the underlying cause when no reply was read
}

// maxErrorBody caps how much of an error reply is read and kept.
const maxErrorBody = 64 << 10

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "alex: %s %s", e.Method, e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	for i, is := range e.Issues {
		if i == 2 {
			fmt.Fprintf(&b, " (+%d more)", len(e.Issues)-2)
			break
		}
		b.WriteString("; ")
		if is.Code != "" {
			b.WriteString(is.Code)
			b.WriteString(": ")
		}
		b.WriteString(scrub(firstNonEmpty(is.Diagnostics, is.Details)))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " [correlation %s]", e.CorrelationID)
	}
	return b.String()
}

// Unwrap returns the underlying cause (a transport or context error), if any.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether the error matches a sentinel.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrFacilityNotFound:
		return e.Status == http.StatusForbidden && e.mentions("facility not found")
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrValidation:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrFacilityUnavailable:
		return e.Status == http.StatusServiceUnavailable && e.mentions("cannot establish connection to the facility")
	}
	return false
}

func (e *Error) mentions(s string) bool {
	for _, is := range e.Issues {
		if strings.Contains(strings.ToLower(is.Diagnostics+" "+is.Details), s) {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// scrub removes what looks like a patient identifier (an NHI, a 32-hex ALEX
// id, a long digit run) from text ALEX wrote, and caps its length, so an error
// string is safe to log.
func scrub(s string) string {
	s = phiPattern.ReplaceAllString(s, "[redacted]")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

var phiPattern = regexp.MustCompile(`\b(?:[A-HJ-NP-Z]{3}[0-9]{4}|[A-HJ-NP-Z]{3}[0-9]{2}[A-HJ-NP-Z]{2}|[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}|[0-9]{6,})\b`)

// outcomeBody is a lax reading of an error body: an OperationOutcome, or
// ALEX's non-FHIR {"statusCode":404,"message":"Resource not found"}. Field
// types are loose on purpose: samply's strict enums refuse unknown codes.
type outcomeBody struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     *struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
	StatusCode json.Number `json:"statusCode"`
	Message    string      `json:"message"`
	// Azure AD / OAuth shape, seen from gateways.
	ErrorCode        any    `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// parseIssues reads an error body in any of the shapes ALEX is known to use.
// It never fails: an unreadable body gives no issues.
func parseIssues(body []byte) []Issue {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		if len(body) > 0 {
			return []Issue{{Severity: "error", Code: "unknown", Diagnostics: string(truncate(body, 200))}}
		}
		return nil
	}
	var ob outcomeBody
	if err := json.Unmarshal(body, &ob); err != nil {
		return nil
	}
	var out []Issue
	for _, is := range ob.Issue {
		i := Issue{Severity: is.Severity, Code: is.Code, Diagnostics: is.Diagnostics}
		if is.Details != nil {
			i.Details = is.Details.Text
		}
		if i.Code == "" && i.Diagnostics == "" && i.Details == "" {
			continue // an empty issue says nothing
		}
		out = append(out, i)
	}
	if len(out) == 0 && ob.Message != "" {
		out = append(out, Issue{Severity: "error", Code: "http-" + ob.StatusCode.String(), Diagnostics: ob.Message})
	}
	if len(out) == 0 && ob.ErrorDescription != "" {
		out = append(out, Issue{Severity: "error", Code: fmt.Sprint(ob.ErrorCode), Diagnostics: ob.ErrorDescription})
	}
	return out
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// errorFromResponse reads (at most maxErrorBody of) resp's body, closes it,
// and returns the *Error describing it. It is the one place that decides the
// shape of an error reply.
func errorFromResponse(resp *http.Response, method, redactedURL, correlationID string, attempts int) *Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	return &Error{
		Status:        resp.StatusCode,
		Method:        method,
		URL:           redactedURL,
		CorrelationID: correlationID,
		Issues:        parseIssues(body),
		RetryAfter:    parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body:          body,
		Attempts:      attempts,
	}
}

// parseRetryAfter reads a Retry-After header in either form the HTTP spec
// allows: delay-seconds or an HTTP-date. It returns 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		if s > 24*3600 {
			s = 24 * 3600
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// TokenErrorKind says why a token could not be obtained.
type TokenErrorKind string

// Token error kinds. The first four are OAuth2 error codes from Azure AD.
const (
	TokenInvalidClient      TokenErrorKind = "invalid_client"      // wrong client secret (or id)
	TokenInvalidScope       TokenErrorKind = "invalid_scope"       // scope is not api://<guid>/.default for this app
	TokenUnauthorizedClient TokenErrorKind = "unauthorized_client" // app unknown in the tenant, or grant not allowed
	TokenInvalidRequest     TokenErrorKind = "invalid_request"     // malformed request (tenant, parameters)
	TokenNetwork            TokenErrorKind = "network"             // the token endpoint could not be reached
	TokenOther              TokenErrorKind = "other"               // any other reply from the token endpoint
)

// TokenError reports a failure to obtain an access token. It matches
// ErrUnauthorized with errors.Is. It never contains the client secret.
type TokenError struct {
	Kind        TokenErrorKind
	Status      int    // HTTP status from the token endpoint; 0 for network errors
	Code        string // the OAuth2 "error" field, e.g. "invalid_client"
	Description string // Azure AD's error_description (AADSTS code and text)
	Err         error  // the cause
}

func (e *TokenError) Error() string {
	s := "alex: token request failed: " + string(e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if d := e.Description; d != "" {
		if i := strings.IndexAny(d, "\r\n"); i >= 0 {
			d = d[:i]
		}
		s += ": " + scrub(d)
	} else if e.Err != nil && e.Kind == TokenNetwork {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is makes a TokenError match ErrUnauthorized.
func (e *TokenError) Is(target error) bool { return target == ErrUnauthorized }

// Summary returns ALEX's first issue as text safe to show or log (scrubbed
// of patient identifiers and capped), or "" if ALEX gave none.
func (e *Error) Summary() string {
	for _, is := range e.Issues {
		if t := firstNonEmpty(is.Diagnostics, is.Details); t != "" {
			return scrub(t)
		}
	}
	return ""
}
