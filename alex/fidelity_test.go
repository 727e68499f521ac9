package alex_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// TestSimAmbiguousNHIIsRefused: ALEX returns two Patients for one NHI (a
// duplicate registration); the client refuses to choose, with an error
// callers branch on and that names neither the NHI nor the patients.
func TestSimAmbiguousNHIIsRefused(t *testing.T) {
	t.Parallel()
	const nhi = "ZZZ0032"
	a := alextest.Patient{ID: "3c2b1a0f9e8d7c6b5a49382716050403", NHI: nhi, Family: "Twin", Given: "One"}
	b := alextest.Patient{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", NHI: nhi, Family: "Twin", Given: "Two"}
	single := alextest.Patient{ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", NHI: "ZZZ0016", Family: "Only"}
	// A page size of one puts the two matches on two pages: the client must
	// read them all, not stop at the first.
	srv := alextest.NewTestServer(t, alextest.WithPatients(a, b, single), alextest.WithPageSize(1))
	c := simClient(t, srv)

	p, err := c.FindPatientByNHI(t.Context(), "zzz0016")
	require.NoError(t, err)
	assert.Equal(t, single.ID, *p.Id)

	srv.Reset()
	p, err = c.FindPatientByNHI(t.Context(), nhi)
	assert.Nil(t, p)
	require.ErrorIs(t, err, alex.ErrAmbiguousPatient)
	require.ErrorIs(t, err, alex.ErrAmbiguous)
	assert.NotErrorIs(t, err, alex.ErrNotFound)
	var ae *alex.AmbiguousError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 2, ae.Matches)
	assert.Equal(t, "Patient", ae.Resource)
	for _, secret := range []string{nhi, a.ID, b.ID, "Twin"} {
		assert.NotContains(t, err.Error(), secret)
	}

	reqs := srv.Requests()
	require.Len(t, reqs, 2, "both pages read")
	assert.Equal(t, reqs[0].CorrelationID, reqs[1].CorrelationID, "one correlation id for the whole search")
	assert.Equal(t, reqs[0].CorrelationID, ae.CorrelationID)
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestSimEveryRequestCarriesAGUID runs a whole flow (launch, patient lookup,
// practitioners, locations, metadata, a Media commit retried after a 429,
// reconciliation, an Inbox Scan) with and without caller-supplied correlation
// ids, and checks that every request ALEX recorded carried a GUID.
func TestSimEveryRequestCarriesAGUID(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	c := simClient(t, srv)
	p, prac := srv.Patients()[0], srv.Practitioners()[0]

	flow := func(ctxID string) {
		ctx := t.Context()
		if ctxID != "" {
			ctx = alex.WithCorrelationID(ctx, ctxID)
		}
		lc, sig := srv.IssueLaunch(p.ID, srv.Facility(), prac.ID)
		_, err := c.LaunchContext(ctx, lc, sig)
		require.NoError(t, err)
		_, err = c.FindPatientByNHI(ctx, p.NHI)
		require.NoError(t, err)
		for _, err := range c.Practitioners(ctx) {
			require.NoError(t, err)
		}
		for _, err := range c.Locations(ctx) {
			require.NoError(t, err)
		}
		_, err = c.Capabilities(ctx)
		require.NoError(t, err)
		srv.FailNext(1, alextest.Fault{Status: 429, Path: "/FHIR/Media"}) // retried: nothing was stored
		imageID := fmt.Sprintf("img-%s-%d", ctxID, len(srv.Requests()))
		_, err = c.CreateMedia(ctx, newMedia(p.ID, prac.ID, imageID), alex.BytesContent([]byte("\xff\xd8\xff\xd9")))
		require.NoError(t, err)
		_, err = c.FindMediaByIdentifier(ctx, p.NHI, "", imageID)
		require.NoError(t, err)
		_, err = c.CreateDocumentReference(ctx, newDocumentReference(srv, p.ID, prac.ID, "doc-"+imageID, "application/pdf"),
			alex.BytesContent([]byte("%PDF-1.4\n%%EOF\n")))
		require.NoError(t, err)
	}
	flow("")
	flow("img_01HZX3K9F2Q7-1-0a1b2c") // the root package's form, not a GUID
	flow("1B4E28BA-2FA1-11D2-883F-0016D3CCA427")

	reqs := srv.Requests()
	require.Len(t, reqs, 3*9, "nine requests a flow: launch, patient, practitioners, locations, metadata, Media twice, Media search, DocumentReference")
	for i, r := range reqs {
		assert.Regexp(t, guidRE, r.CorrelationID, "request %d: %s %s", i, r.Method, r.Path)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		seen[r.CorrelationID] = true
	}
	assert.True(t, seen[alex.CorrelationGUID("img_01HZX3K9F2Q7-1-0a1b2c")])
	assert.True(t, seen["1b4e28ba-2fa1-11d2-883f-0016d3cca427"])
}

func newDocumentReference(srv *alextest.Server, patientID, practitionerID, id, contentType string) *fhir.DocumentReference {
	return &fhir.DocumentReference{
		Identifier: []fhir.Identifier{{System: ptr("https://clinicpro.co.nz/ns/image-id"), Value: ptr(id)}},
		Status:     fhir.DocumentReferenceStatusCurrent,
		Type:       &fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptr("http://loinc.org"), Code: ptr("72170-4")}}},
		Subject:    &fhir.Reference{Reference: ptr(srv.BaseURL() + "/Patient/" + patientID)},
		Author:     []fhir.Reference{{Reference: ptr("Practitioner/" + practitionerID)}},
		Content:    []fhir.DocumentReferenceContent{{Attachment: fhir.Attachment{ContentType: ptr(contentType), Title: ptr("Photo")}}},
	}
}
