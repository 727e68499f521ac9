package alex

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// operations lists every public operation, so each runs the same failure
// paths (in the manner of go-github's testBadOptions/testNewRequestAndDoFailure).
var operations = map[string]func(ctx context.Context, c *Client) error{
	"ReadPatient": func(ctx context.Context, c *Client) error { _, err := c.ReadPatient(ctx, "p1"); return err },
	"FindPatientByNHI": func(ctx context.Context, c *Client) error {
		_, err := c.FindPatientByNHI(ctx, testNHI)
		return err
	},
	"CreateMedia": func(ctx context.Context, c *Client) error {
		_, err := c.CreateMedia(ctx, testMedia(), BytesContent([]byte("x")))
		return err
	},
	"CreateDocumentReference": func(ctx context.Context, c *Client) error {
		d := &fhir.DocumentReference{Content: []fhir.DocumentReferenceContent{{Attachment: fhir.Attachment{ContentType: ptr("application/pdf")}}}}
		_, err := c.CreateDocumentReference(ctx, d, BytesContent([]byte("%PDF")))
		return err
	},
	"SearchMediaByNHI": func(ctx context.Context, c *Client) error {
		for _, err := range c.SearchMediaByNHI(ctx, testNHI) {
			return err
		}
		return nil
	},
	"FindMediaByIdentifier": func(ctx context.Context, c *Client) error {
		_, err := c.FindMediaByIdentifier(ctx, testNHI, "", "img")
		return err
	},
	"Practitioners": func(ctx context.Context, c *Client) error {
		for _, err := range c.Practitioners(ctx) {
			return err
		}
		return nil
	},
	"Locations": func(ctx context.Context, c *Client) error {
		for _, err := range c.Locations(ctx) {
			return err
		}
		return nil
	},
	"Capabilities":  func(ctx context.Context, c *Client) error { _, err := c.Capabilities(ctx); return err },
	"LaunchContext": func(ctx context.Context, c *Client) error { _, err := c.LaunchContext(ctx, "c", "s"); return err },
	"Read":          func(ctx context.Context, c *Client) error { _, err := Read[fhir.Practitioner](ctx, c, "x"); return err },
	"Create":        func(ctx context.Context, c *Client) error { _, err := Create(ctx, c, &fhir.Practitioner{}); return err },
}

func TestEveryOperationFailurePaths(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		body   string
		want   error
	}{
		{403, outcome("forbidden", "Practice Facility not found"), ErrFacilityNotFound},
		{403, outcome("forbidden", "Authorization failed."), ErrForbidden},
		{404, `{"statusCode":404,"message":"Resource not found"}`, ErrNotFound},
		{400, outcome("business-rule", "bad"), ErrValidation},
		{500, `oops`, nil},
		{200, `{"resourceType":"OperationOutcome"}`, nil}, // a 2xx the client cannot use
	}
	for name, op := range operations {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				f := newFake(t)
				f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) })
				err := op(t.Context(), f.client(t))
				require.Error(t, err, "status %d", tc.status)
				var ae *Error
				require.ErrorAs(t, err, &ae, "status %d: %v", tc.status, err)
				assert.Equal(t, tc.status, ae.Status)
				assert.NotEmpty(t, ae.CorrelationID)
				if tc.want != nil {
					assert.ErrorIs(t, err, tc.want)
				}
				requireNoSecrets(t, err.Error())
			}
			// A cancelled context returns the context's error.
			f := newFake(t)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			err := op(ctx, f.client(t))
			require.True(t, errors.Is(err, context.Canceled), "%v", err)
		})
	}
}
