package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/alex"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of unsorted", ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(3, 9, 1), 100, 9 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, percentile(tc.in, tc.p))
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestParseLatency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		lo, hi time.Duration
		bad    bool
	}{
		{"range", "1s-3s", time.Second, 3 * time.Second, false},
		{"single", "250ms", 250 * time.Millisecond, 250 * time.Millisecond, false},
		{"zero", "0s-0s", 0, 0, false},
		{"reversed", "3s-1s", 0, 0, true},
		{"garbage", "fast", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lo, hi, err := parseLatency(tc.in)
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.lo, lo)
			assert.Equal(t, tc.hi, hi)
		})
	}
}

func TestTestPatientsHaveValidDistinctNHIs(t *testing.T) {
	t.Parallel()
	ps := testPatients(150)
	require.Len(t, ps, 150)
	seen := map[string]bool{}
	for _, p := range ps {
		assert.True(t, alex.ValidNHI(p.NHI), p.NHI)
		assert.False(t, seen[p.NHI], "duplicate %s", p.NHI)
		seen[p.NHI] = true
	}
}

func TestCheckMedia(t *testing.T) {
	t.Parallel()
	media := func(img, subject string) fhir.Media {
		return fhir.Media{Identifier: []fhir.Identifier{{Value: &img}}, Subject: &fhir.Reference{Reference: &subject}}
	}
	images := map[string]string{"img-a": "p1", "img-b": "p2"}
	tests := []struct {
		name string
		in   []fhir.Media
		want mediaCheck
		ok   bool
	}{
		{"one each", []fhir.Media{media("img-a", "Patient/p1"), media("img-b", "https://x/fhir/Patient/p2")}, mediaCheck{media: 2, exactlyOnce: 2}, true},
		{"missing", []fhir.Media{media("img-a", "Patient/p1")}, mediaCheck{media: 1, exactlyOnce: 1, missing: 1}, false},
		{"duplicate", []fhir.Media{media("img-a", "Patient/p1"), media("img-a", "Patient/p1"), media("img-b", "Patient/p2")}, mediaCheck{media: 3, exactlyOnce: 1, duplicated: 1}, false},
		{"wrong patient", []fhir.Media{media("img-a", "Patient/p2"), media("img-b", "Patient/p2")}, mediaCheck{media: 2, exactlyOnce: 2, wrongPatient: 1}, false},
		{"stray", []fhir.Media{media("img-a", "Patient/p1"), media("img-b", "Patient/p2"), media("img-z", "Patient/p1")}, mediaCheck{media: 3, exactlyOnce: 2, stray: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := checkMedia(tc.in, images)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.ok, got.ok(len(images)))
		})
	}
}
