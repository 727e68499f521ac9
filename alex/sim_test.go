package alex_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

func simClient(t testing.TB, srv *alextest.Server, opts ...alex.Option) *alex.Client {
	t.Helper()
	id, secret, scope := srv.Credentials()
	all := append([]alex.Option{
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithFacility(srv.Facility()),
		alex.WithRetryPolicy(alex.RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond, MaxTotalWait: 10 * time.Second}),
	}, opts...)
	c, err := alex.New(srv.BaseURL(), all...)
	require.NoError(t, err)
	return c
}

func ptr[T any](v T) *T { return &v }

func newMedia(patientID, practitionerID, imageID string) *fhir.Media {
	return &fhir.Media{
		Status:     fhir.EventStatusCompleted,
		Identifier: []fhir.Identifier{{System: ptr("https://clinicpro.co.nz/ns/image-id"), Value: ptr(imageID)}},
		Type:       &fhir.CodeableConcept{Coding: []fhir.Coding{{System: ptr("http://terminology.hl7.org/CodeSystem/media-type"), Code: ptr("image")}}},
		Subject:    &fhir.Reference{Reference: ptr("Patient/" + patientID)},
		Operator:   &fhir.Reference{Reference: ptr("Practitioner/" + practitionerID)},
		Content:    fhir.Attachment{ContentType: ptr("image/jpeg"), Title: ptr("Left forearm, close-up")},
	}
}

func TestSimCreateMediaRoundTrip(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	c := simClient(t, srv)
	p := srv.Patients()[0]
	img := make([]byte, 2<<20)
	_, _ = rand.Read(img)

	cr, err := c.CreateMedia(t.Context(), newMedia(p.ID, srv.Practitioners()[0].ID, "img-round-trip"), alex.BytesContent(img))
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{32}$`, cr.ID)
	assert.Equal(t, cr.ID, cr.VersionID)
	assert.Equal(t, `W/"`+cr.ID+`"`, cr.ETag)

	got, ok := srv.MediaData(cr.ID)
	require.True(t, ok)
	assert.True(t, bytes.Equal(img, got), "ALEX stored the exact bytes")
	facility, _ := srv.MediaFacility(cr.ID)
	assert.Equal(t, srv.Facility(), facility)

	found, err := c.FindMediaByIdentifier(t.Context(), p.NHI, "https://clinicpro.co.nz/ns/image-id", "img-round-trip")
	require.NoError(t, err)
	assert.Equal(t, cr.ID, *found.Id)

	reqs := srv.Requests()
	post := reqs[0]
	assert.Equal(t, http.MethodPost, post.Method)
	assert.Equal(t, cr.CorrelationID, post.CorrelationID)
	assert.Equal(t, srv.Facility(), post.Facility)
}

func TestSimLostReplyIsOutcomeUnknownThenReconciled(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	c := simClient(t, srv)
	p := srv.Patients()[0]
	srv.DropNext(1) // ALEX stores the Media, then the connection drops

	m := newMedia(p.ID, srv.Practitioners()[0].ID, "img-dropped")
	_, err := c.CreateMedia(t.Context(), m, alex.BytesContent([]byte("jpeg bytes")))
	require.ErrorIs(t, err, alex.ErrOutcomeUnknown)
	require.Len(t, srv.Media(), 1, "stored once, and not resent")

	// Reconcile before any resend: it is there.
	found, err := c.FindMediaByIdentifier(t.Context(), p.NHI, "", "img-dropped")
	require.NoError(t, err)
	assert.Equal(t, *srv.Media()[0].Id, *found.Id)
}

func TestSimFaults(t *testing.T) {
	t.Parallel()
	t.Run("facility unavailable then back", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		srv.FailNext(2, alextest.Fault{Status: 503, RetryAfter: "0", Body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"Cannot establish connection to the facility. Please try again later."}]}`})
		p := srv.Patients()[0]
		_, err := c.CreateMedia(t.Context(), newMedia(p.ID, srv.Practitioners()[0].ID, "img-503"), alex.BytesContent([]byte("x")))
		require.NoError(t, err, "the POST was retried: ALEX's 503 proves nothing was stored")
		assert.Len(t, srv.Media(), 1)
	})
	t.Run("facility down stays down", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		srv.SetFacilityUnavailable(srv.Facility(), true)
		_, err := c.FindPatientByNHI(t.Context(), srv.Patients()[0].NHI)
		require.ErrorIs(t, err, alex.ErrFacilityUnavailable)
	})
	t.Run("unknown facility", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		_, err := c.FindPatientByNHI(alex.WithFacilityID(t.Context(), "F12345-A"), srv.Patients()[0].NHI)
		require.ErrorIs(t, err, alex.ErrFacilityNotFound)
		require.ErrorIs(t, err, alex.ErrForbidden)
	})
	t.Run("missing role", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t, alextest.WithRoles("patient.nhisearch.read"))
		c := simClient(t, srv)
		p := srv.Patients()[0]
		_, err := c.CreateMedia(t.Context(), newMedia(p.ID, "x", "img-role"), alex.BytesContent([]byte("x")))
		require.ErrorIs(t, err, alex.ErrForbidden)
		require.NotErrorIs(t, err, alex.ErrFacilityNotFound)
	})
	t.Run("tokens expire early", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		_, err := c.FindPatientByNHI(t.Context(), srv.Patients()[0].NHI)
		require.NoError(t, err)
		srv.ExpireTokens()
		_, err = c.FindPatientByNHI(t.Context(), srv.Patients()[0].NHI)
		require.NoError(t, err, "one forced refresh recovers")
		assert.Equal(t, 2, srv.TokenRequests())
	})
	t.Run("rate limited with Retry-After", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		srv.FailNext(1, alextest.Fault{Status: 429, RetryAfter: "1"})
		start := time.Now()
		_, err := c.FindPatientByNHI(t.Context(), srv.Patients()[0].NHI)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	})
	t.Run("encounter is a non-FHIR 404", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		_, err := alex.Read[fhir.Encounter](t.Context(), simClient(t, srv), "e1")
		require.ErrorIs(t, err, alex.ErrNotFound)
		var ae *alex.Error
		require.ErrorAs(t, err, &ae)
		require.NotEmpty(t, ae.Issues)
		assert.Equal(t, "Resource not found", ae.Issues[0].Diagnostics)
	})
	t.Run("media search by patient is forbidden, by NHI works", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		_, err := alex.SearchAll[fhir.Media](t.Context(), c, map[string][]string{"patient": {srv.Patients()[0].ID}})
		require.ErrorIs(t, err, alex.ErrForbidden)
		for _, err := range c.SearchMediaByNHI(t.Context(), srv.Patients()[0].NHI) {
			require.NoError(t, err)
		}
	})
}

func TestSimLaunchContext(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	c := simClient(t, srv)
	p := srv.Patients()[0]
	lc, sig := srv.IssueLaunch(p.ID, srv.Facility(), "prov-1")
	l, err := c.LaunchContext(t.Context(), lc, sig)
	require.NoError(t, err)
	assert.Equal(t, p.ID, l.PatientID)
	assert.Equal(t, srv.Facility(), l.FacilityCode)
	assert.Equal(t, "prov-1", l.ProviderID)
	assert.False(t, l.Created.IsZero())

	lc, sig = srv.IssueLaunch("", srv.Facility(), "prov-1")
	_, err = c.LaunchContext(t.Context(), lc, sig)
	require.ErrorIs(t, err, alex.ErrNoPatient)

	_, err = c.LaunchContext(t.Context(), lc, sig+"x")
	require.Error(t, err)
	require.NotErrorIs(t, err, alex.ErrNoPatient)
}

func TestSimPatientsAndPaging(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t, alextest.WithPageSize(1))
	c := simClient(t, srv)
	n := 0
	for p, err := range c.Practitioners(t.Context()) {
		require.NoError(t, err)
		require.NotNil(t, p.Id)
		n++
	}
	assert.Equal(t, len(srv.Practitioners()), n, "every page followed")
	for _, want := range srv.Patients() {
		got, err := c.FindPatientByNHI(t.Context(), want.NHI)
		require.NoError(t, err)
		assert.Equal(t, want.ID, *got.Id)
		read, err := c.ReadPatient(t.Context(), want.ID)
		require.NoError(t, err)
		assert.Equal(t, want.ID, *read.Id)
	}
}

func TestSimConcurrentCommitsShareOneToken(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	srv.SetLatency(20 * time.Millisecond)
	c := simClient(t, srv)
	p := srv.Patients()[0]
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			_, err := c.CreateMedia(t.Context(), newMedia(p.ID, "x", fmt.Sprintf("img-%d", i)), alex.BytesContent([]byte("x")))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, srv.Media(), 50)
	assert.Equal(t, 1, srv.TokenRequests())
}
