package alex

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// ErrAmbiguous reports that a lookup expected to find one resource found
// several.
var ErrAmbiguous = errors.New("alex: more than one match")

// ErrAmbiguousPatient reports that a patient search by NHI found more than
// one Patient. The client refuses to choose: a photo filed against the wrong
// one of two records is a clinical error. It also matches [ErrAmbiguous].
var ErrAmbiguousPatient = errors.New("alex: more than one patient has that NHI")

// AmbiguousError is a search that had to find one resource and found
// several. It matches [ErrAmbiguous], and [ErrAmbiguousPatient] when
// Resource is "Patient". It carries the count, never the search's value.
type AmbiguousError struct {
	Resource      string // FHIR resource type searched, e.g. "Patient"
	Matches       int    // how many were found (2 or more)
	CorrelationID string // mt-correlationid of the search's requests
}

func (e *AmbiguousError) Error() string {
	s := "alex: " + strconv.Itoa(e.Matches) + " " + e.Resource + " resources match; refusing to choose"
	if e.Resource == "Patient" {
		s = "alex: " + strconv.Itoa(e.Matches) + " patients have that NHI; refusing to choose"
	}
	if e.CorrelationID != "" {
		s += " [correlation " + e.CorrelationID + "]"
	}
	return s
}

// Is makes errors.Is match ErrAmbiguous, and ErrAmbiguousPatient for a
// Patient search.
func (e *AmbiguousError) Is(target error) bool {
	return target == ErrAmbiguous || (target == ErrAmbiguousPatient && e.Resource == "Patient")
}

// ReadPatient returns the patient with the given ALEX id (32 hex characters).
func (c *Client) ReadPatient(ctx context.Context, id string) (*fhir.Patient, error) {
	return Read[fhir.Patient](ctx, c, id)
}

// FindPatientByNHI returns the one patient with the given NHI, searched in the
// form ALEX accepts (identifier=<NHI system>|<NHI>; the system is
// [WithNHISystem]'s). The NHI is checked (format and check character, or
// [WithNHICheck]'s check) before any call. No match matches [ErrNotFound].
// More than one match is refused with an *[AmbiguousError] matching
// [ErrAmbiguousPatient] (and [ErrAmbiguous]); log its Matches, not the NHI.
// Every page of the search carries the same mt-correlationid.
func (c *Client) FindPatientByNHI(ctx context.Context, nhi string) (*fhir.Patient, error) {
	n, err := c.checkNHI(nhi)
	if err != nil {
		return nil, err
	}
	ctx, corr := withCorrelation(ctx)
	found, err := SearchAll[fhir.Patient](ctx, c, url.Values{"identifier": {c.nhiSystem + "|" + n}})
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no patient with that NHI", ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, &AmbiguousError{Resource: "Patient", Matches: len(found), CorrelationID: corr}
}

// Practitioners lists the practice's practitioners (GET /Practitioner).
func (c *Client) Practitioners(ctx context.Context) iter.Seq2[*fhir.Practitioner, error] {
	return Search[fhir.Practitioner](ctx, c, nil)
}

// Locations lists the practice's locations (GET /Location); each carries its
// HPI facility id under [HPIFacilitySystem].
func (c *Client) Locations(ctx context.Context) iter.Seq2[*fhir.Location, error] {
	return Search[fhir.Location](ctx, c, nil)
}

// Capabilities returns ALEX's CapabilityStatement (GET /metadata).
func (c *Client) Capabilities(ctx context.Context) (*fhir.CapabilityStatement, error) {
	rep, err := c.do(ctx, request{method: http.MethodGet, url: c.resolve("metadata")})
	if err != nil {
		return nil, err
	}
	return decodeResource[fhir.CapabilityStatement](rep, nil)
}
