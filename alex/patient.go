package alex

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// ErrAmbiguous reports that a lookup expected to find one resource found
// several.
var ErrAmbiguous = errors.New("alex: more than one match")

// ReadPatient returns the patient with the given ALEX id (32 hex characters).
func (c *Client) ReadPatient(ctx context.Context, id string) (*fhir.Patient, error) {
	return Read[fhir.Patient](ctx, c, id)
}

// FindPatientByNHI returns the one patient with the given NHI, searched in the
// form ALEX accepts (identifier=<NHI system>|<NHI>). The NHI is checked
// (format and check character) before any call. No match matches
// ErrNotFound; more than one matches ErrAmbiguous.
func (c *Client) FindPatientByNHI(ctx context.Context, nhi string) (*fhir.Patient, error) {
	n, err := NormalizeNHI(nhi)
	if err != nil {
		return nil, err
	}
	found, err := SearchAll[fhir.Patient](ctx, c, url.Values{"identifier": {NHISystem + "|" + n}})
	if err != nil {
		return nil, err
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: no patient with that NHI", ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %d patients with that NHI", ErrAmbiguous, len(found))
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
