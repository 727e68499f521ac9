package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/compress"
)

// TestDecodeBudgetFromConfig: the decode memory budget every upload shares
// is DECODE_BUDGET_MB, else half of MEMORY_LIMIT_MB, else the SDK's
// default, and it reaches the normaliser (read back from /metrics); a
// budget at or above the memory limit is refused at start.
func TestDecodeBudgetFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want int64
	}{
		{"default", nil, compress.DefaultDecodeBudget},
		{"half the memory limit", map[string]string{"MEMORY_LIMIT_MB": "1024"}, 512 << 20},
		{"explicit", map[string]string{"MEMORY_LIMIT_MB": "1024", "DECODE_BUDGET_MB": "300"}, 300 << 20},
		{"explicit without a limit", map[string]string{"DECODE_BUDGET_MB": "2048"}, 2048 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := testSiteEnv(t, tc.env)
			status, body := getText(t, srv.URL+"/metrics")
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, float64(tc.want), metricValue(t, body, "clinicalimages_decode_budget_limit_bytes"))
		})
	}
	for _, env := range []map[string]string{
		{"MEMORY_LIMIT_MB": "512", "DECODE_BUDGET_MB": "512"},
		{"DECODE_BUDGET_MB": "-1"},
	} {
		_, err := parseConfig(nil, envOf(env), io.Discard)
		assert.ErrorContains(t, err, "DECODE_BUDGET_MB", "%v", env)
	}
}

// TestPhoneLapseFromConfig: PHONE_LAPSE sets how long a silent phone is
// still shown as connected (the SDK's default otherwise); one the phone
// page's 3-second heartbeat could not keep up with is refused at start.
func TestPhoneLapseFromConfig(t *testing.T) {
	t.Parallel()
	c, err := parseConfig(nil, envOf(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ci.DefaultPhoneLapse, c.PhoneLapse)
	c, err = parseConfig(nil, envOf(map[string]string{"PHONE_LAPSE": "30s"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, c.PhoneLapse)
	_, err = parseConfig(nil, envOf(map[string]string{"PHONE_LAPSE": "2s"}), io.Discard)
	assert.ErrorContains(t, err, "PHONE_LAPSE")
}
