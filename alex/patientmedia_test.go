package alex_test

import (
	"encoding/base64"
	"errors"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

func mediaIDs(ms []fhir.Media) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = *m.Id
	}
	return out
}

// seededNewestFirst returns the ids of the patient's DefaultEarlierMedia,
// newest first by their seeded created times.
func seededNewestFirst(t *testing.T, srv *alextest.Server, now time.Time, patientID string) []string {
	t.Helper()
	want := alextest.DefaultEarlierMedia(now)
	var ids []string // in seeding order, as stored
	for _, m := range srv.Media() {
		if *m.Subject.Reference == srv.URL()+"/fhir/Patient/"+patientID {
			ids = append(ids, *m.Id)
		}
	}
	require.Len(t, ids, len(want))
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return want[order[a]].Created.After(want[order[b]].Created) })
	out := make([]string, len(order))
	for i, o := range order {
		out[i] = ids[o]
	}
	return out
}

func TestPatientMediaNewestFirstWithData(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	srv := alextest.NewTestServer(t, alextest.WithEarlierMedia(), alextest.WithPageSize(2),
		alextest.WithClock(func() time.Time { return now }))
	c := simClient(t, srv)
	p := srv.Patients()[0]

	got, err := c.PatientMedia(t.Context(), p.NHI)
	require.NoError(t, err)
	assert.Equal(t, seededNewestFirst(t, srv, now, p.ID), mediaIDs(got), "newest first by createdDateTime")
	var prev time.Time
	for i, m := range got {
		at, ok := alex.MediaTime(&m)
		require.True(t, ok)
		if i > 0 {
			assert.False(t, at.After(prev), "entry %d is newer than the one before", i)
		}
		prev = at
		require.NotNil(t, m.Content.Data, "content kept")
		data, err := base64.StdEncoding.DecodeString(*m.Content.Data)
		require.NoError(t, err)
		want, _ := srv.MediaData(*m.Id)
		assert.Equal(t, want, data)
		assert.Contains(t, *m.Subject.Reference, "/Patient/"+p.ID)
	}

	// Three pages of two, in ALEX's form, under one correlation id.
	reqs := srv.Requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		q, err := url.ParseQuery(r.RawQuery)
		require.NoError(t, err)
		assert.Equal(t, alextest.NHISystem+"|"+p.NHI, q.Get("patient.identifier"), "page %d", i)
		assert.Empty(t, q.Get("patient"))
		assert.Empty(t, q.Get("subject"))
		assert.Equal(t, reqs[0].CorrelationID, r.CorrelationID)
	}
}

func TestPatientMediaBounds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	srv := alextest.NewTestServer(t, alextest.WithEarlierMedia(), alextest.WithPageSize(2),
		alextest.WithClock(func() time.Time { return now }))
	c := simClient(t, srv)
	p := srv.Patients()[0]
	all := seededNewestFirst(t, srv, now, p.ID)

	t.Run("limit keeps the newest", func(t *testing.T) {
		got, err := c.PatientMedia(t.Context(), p.NHI, alex.WithMediaLimit(2))
		require.NoError(t, err)
		assert.Equal(t, all[:2], mediaIDs(got))
	})
	t.Run("pages stop the search", func(t *testing.T) {
		before := len(srv.Requests())
		got, err := c.PatientMedia(t.Context(), p.NHI, alex.WithMediaPages(1))
		require.NoError(t, err)
		assert.Len(t, got, 2)
		assert.Len(t, srv.Requests(), before+1)
	})
	t.Run("bytes: older Media come without data", func(t *testing.T) {
		newest, _ := srv.MediaData(all[0])
		second, _ := srv.MediaData(all[1])
		got, err := c.PatientMedia(t.Context(), p.NHI, alex.WithMediaBytes(int64(len(newest)+len(second))))
		require.NoError(t, err)
		require.Len(t, got, len(all))
		var with []string
		for _, m := range got {
			if m.Content.Data != nil {
				with = append(with, *m.Id)
			}
		}
		// The bound is exactly the two newest: they come with data, and
		// every older one without.
		assert.Equal(t, all[:2], with)
	})
	t.Run("invalid options", func(t *testing.T) {
		before := len(srv.Requests())
		for _, o := range []alex.PatientMediaOption{alex.WithMediaLimit(0), alex.WithMediaPages(-1), alex.WithMediaBytes(0)} {
			_, err := c.PatientMedia(t.Context(), p.NHI, o)
			require.ErrorIs(t, err, alex.ErrValidation)
		}
		assert.Len(t, srv.Requests(), before, "no request made")
	})
}

func TestPatientMediaErrors(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t, alextest.WithEarlierMedia())
	p := srv.Patients()[0]

	t.Run("invalid NHI makes no request", func(t *testing.T) {
		c := simClient(t, srv)
		before := len(srv.Requests())
		_, err := c.PatientMedia(t.Context(), "ZZZ001X")
		require.ErrorIs(t, err, alex.ErrValidation)
		assert.Len(t, srv.Requests(), before)
	})
	t.Run("without patient.media.read: 403", func(t *testing.T) {
		var roles []string
		for _, r := range alextest.DefaultRoles() {
			if r != alextest.RoleMediaRead {
				roles = append(roles, r)
			}
		}
		srv := alextest.NewTestServer(t, alextest.WithRoles(roles...), alextest.WithEarlierMedia())
		c := simClient(t, srv)
		got, err := c.PatientMedia(t.Context(), p.NHI)
		require.ErrorIs(t, err, alex.ErrForbidden)
		var ae *alex.Error
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, 403, ae.Status)
		assert.Nil(t, got)
		assert.NotContains(t, err.Error(), p.NHI)
		assert.NotContains(t, err.Error(), p.ID)
	})
	t.Run("facility unavailable", func(t *testing.T) {
		srv := alextest.NewTestServer(t, alextest.WithEarlierMedia())
		srv.SetFacilityUnavailable(srv.Facility(), true)
		c := simClient(t, srv, alex.WithRetryPolicy(alex.RetryPolicy{Disabled: true}))
		_, err := c.PatientMedia(t.Context(), p.NHI)
		require.ErrorIs(t, err, alex.ErrFacilityUnavailable)
	})
	t.Run("no Media", func(t *testing.T) {
		srv := alextest.NewTestServer(t)
		c := simClient(t, srv)
		got, err := c.PatientMedia(t.Context(), p.NHI)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}

func TestMediaTime(t *testing.T) {
	t.Parallel()
	s := func(v string) *string { return &v }
	cases := []struct {
		name string
		m    fhir.Media
		want string // RFC 3339 in UTC, "" for none
	}{
		{"createdDateTime with offset", fhir.Media{CreatedDateTime: s("2026-01-12T10:00:00+13:00")}, "2026-01-11T21:00:00Z"},
		{"date only", fhir.Media{CreatedDateTime: s("2025-06-01")}, "2025-06-01T00:00:00Z"},
		{"year-month", fhir.Media{CreatedDateTime: s("2025-06")}, "2025-06-01T00:00:00Z"},
		{"period start", fhir.Media{CreatedPeriod: &fhir.Period{Start: s("2024-02-03T04:05:06Z")}}, "2024-02-03T04:05:06Z"},
		{"lastUpdated, ALEX's 7 digits", fhir.Media{Meta: &fhir.Meta{LastUpdated: s("2026-02-01T01:02:03.1234567+00:00")}}, "2026-02-01T01:02:03.1234567Z"},
		{"created wins over lastUpdated", fhir.Media{CreatedDateTime: s("2020-01-01"), Meta: &fhir.Meta{LastUpdated: s("2026-01-01T00:00:00Z")}}, "2020-01-01T00:00:00Z"},
		{"unreadable created falls back", fhir.Media{CreatedDateTime: s("last week"), Meta: &fhir.Meta{LastUpdated: s("2026-01-01T00:00:00Z")}}, "2026-01-01T00:00:00Z"},
		{"none", fhir.Media{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := alex.MediaTime(&tc.m)
			if tc.want == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			want, err := time.Parse(time.RFC3339Nano, tc.want)
			require.NoError(t, err)
			assert.True(t, want.Equal(got), "got %v", got)
		})
	}
}
