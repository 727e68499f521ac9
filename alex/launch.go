package alex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNoPatient reports a launch made with no patient open in Evolution.
var ErrNoPatient = errors.New("alex: launched with no patient open")

// Launch is the context Evolution passed when it launched the app, as decoded
// by ALEX. PatientID is the ALEX id of the patient on screen, never empty in a
// Launch returned without error.
type Launch struct {
	PatientID    string
	FacilityCode string    // HPI facility id, the mt-facilityid for this launch
	ProviderID   string    // the practitioner who launched
	Created      time.Time // when Evolution made the launch; zero if ALEX sent none or an unreadable one
	CreatedRaw   string    // createdTime exactly as ALEX sent it
}

// launchBody is ALEX's reply; fields are read loosely (strings or numbers).
type launchBody struct {
	PatientID    json.RawMessage `json:"patientId"`
	FacilityCode json.RawMessage `json:"facilityCode"`
	ProviderID   json.RawMessage `json:"providerId"`
	CreatedTime  json.RawMessage `json:"createdTime"`
}

// LaunchContext decodes the {context} and {signature} that Evolution put in
// the app's launch URL (ALEX Vendor Forms), by calling
// GET <root>/vendorforms/api/getlaunchcontextstring/{context}/{signature}
// with the client's token. Both values are path-escaped. A launch with no
// patient open returns ErrNoPatient; a signature ALEX rejects comes back as
// an *Error (403 or 400).
//
// The facility header is sent when one is known (ctx or default) but is not
// required: the launch is how a multi-practice server learns the facility.
func (c *Client) LaunchContext(ctx context.Context, launchContext, signature string) (*Launch, error) {
	if launchContext == "" || signature == "" || len(launchContext) > 8192 || len(signature) > 8192 {
		return nil, fmt.Errorf("%w: launch context and signature are required", ErrValidation)
	}
	// Escaped like JavaScript's encodeURIComponent: the values are often
	// base64 and carry '/', '+' and '='.
	seg := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	u := *c.root
	u.Path = "/vendorforms/api/getlaunchcontextstring/" + launchContext + "/" + signature
	u.RawPath = "/vendorforms/api/getlaunchcontextstring/" + seg(launchContext) + "/" + seg(signature)
	r := request{method: http.MethodGet, url: &u, accept: "application/json", noFacility: true}
	if _, err := c.facilityFor(ctx); err == nil {
		r.noFacility = false
	}
	rep, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer rep.Body.Close()
	b, err := io.ReadAll(io.LimitReader(rep.Body, 1<<20))
	if err != nil {
		return nil, replyError(rep, fmt.Errorf("read launch context: %w", err))
	}
	l, err := parseLaunch(b)
	if err != nil {
		return nil, replyError(rep, err)
	}
	if l.PatientID == "" {
		return l, ErrNoPatient
	}
	return l, nil
}

// parseLaunch reads ALEX's launch-context reply: loose about types (strings
// or numbers), strict about a facility being present.
func parseLaunch(b []byte) (*Launch, error) {
	var lb launchBody
	if err := json.Unmarshal(b, &lb); err != nil {
		return nil, errors.New("launch context reply is not the expected JSON object")
	}
	l := &Launch{
		PatientID:    looseString(lb.PatientID),
		FacilityCode: looseString(lb.FacilityCode),
		ProviderID:   looseString(lb.ProviderID),
		CreatedRaw:   looseString(lb.CreatedTime),
	}
	l.Created = parseLooseTime(l.CreatedRaw)
	if l.FacilityCode == "" {
		return nil, errors.New("launch context has no facilityCode")
	}
	return l, nil
}

// looseString reads a JSON string or number; null and absent give "".
func looseString(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	var v string
	if json.Unmarshal(raw, &v) == nil {
		return strings.TrimSpace(v)
	}
	return s
}

func parseLooseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}
