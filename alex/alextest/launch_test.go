package alextest_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func launchPath(context, signature string) string {
	return "/vendorforms/api/getlaunchcontextstring/" + url.PathEscape(context) + "/" + url.PathEscape(signature)
}

func TestLaunchContext(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 12, 9, 30, 0, 0, time.UTC)
	srv := alextest.NewTestServer(t, alextest.WithClock(func() time.Time { return created }))
	tok := token(t, srv)
	pid := srv.Patients()[0].ID

	ctx, sig := srv.IssueLaunch(pid, alextest.LocalFacility, "prov-42")
	assert.True(t, strings.Contains(ctx, "/"), "context needs URL-encoding: %q", ctx)
	assert.Contains(t, sig, "=")

	r := do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"})
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, map[string]any{
		"patientId": pid, "facilityCode": alextest.LocalFacility, "providerId": "prov-42",
		"createdTime": "2026-01-12T09:30:00Z",
	}, r.json(t))
	reqs := srv.Requests()
	require.Len(t, reqs, 1, "launch requests are recorded")

	t.Run("no patient open", func(t *testing.T) {
		t.Parallel()
		ctx, sig := srv.IssueLaunch("", "", "prov-1")
		r := do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"})
		require.Equal(t, 200, r.status)
		m := r.json(t)
		assert.Contains(t, m, "patientId")
		assert.Nil(t, m["patientId"])
		assert.Equal(t, alextest.DefaultFacility, m["facilityCode"])
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		ctx, sig := srv.IssueLaunch(pid, "", "prov-1")
		other, otherSig := srv.IssueLaunch(pid, "", "prov-2")
		cases := []struct {
			name   string
			path   string
			tok    string
			status int
			code   string
		}{
			{"no token", launchPath(ctx, sig), "", 401, ""},
			{"signature of another context", launchPath(ctx, otherSig), tok, 403, "forbidden"},
			{"context of another signature", launchPath(other, sig), tok, 403, "forbidden"},
			{"signature not base64", launchPath(ctx, "***"), tok, 403, "forbidden"},
			{"segments not URL-encoded", "/vendorforms/api/getlaunchcontextstring/" + ctx + "/" + sig, tok, 0, ""},
			{"under /FHIR", "/FHIR" + launchPath(ctx, sig), tok, 404, ""},
			{"one segment", "/vendorforms/api/getlaunchcontextstring/" + url.PathEscape(ctx), tok, 404, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := do(t, srv, call{path: tc.path, tok: tc.tok, facility: "-"})
				if tc.status == 0 {
					assert.NotEqual(t, 200, r.status, "an unencoded context must not work")
					return
				}
				require.Equal(t, tc.status, r.status, string(r.body))
				if tc.code != "" {
					code, _ := r.outcome(t)
					assert.Equal(t, tc.code, code)
				}
			})
		}
	})

	t.Run("role", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t, alextest.WithRoles(alextest.RoleMediaWrite))
		ctx, sig := srv.IssueLaunch(pid, "", "p")
		r := do(t, srv, call{path: launchPath(ctx, sig), tok: token(t, srv), facility: "-"})
		require.Equal(t, 403, r.status)
		_, diag := r.outcome(t)
		assert.Equal(t, "Authorization failed.", diag)
	})

	t.Run("facility down and faults", func(t *testing.T) {
		t.Parallel()
		srv := alextest.NewTestServer(t)
		tok := token(t, srv)
		ctx, sig := srv.IssueLaunch(pid, alextest.LocalFacility, "p")
		srv.SetFacilityUnavailable(alextest.LocalFacility, true)
		assert.Equal(t, 503, do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"}).status)
		srv.SetFacilityUnavailable(alextest.LocalFacility, false)
		srv.FailNext(1, alextest.Fault{Status: 429, RetryAfter: "1", Path: "/vendorforms"})
		assert.Equal(t, 429, do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"}).status)
		assert.Equal(t, 200, do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"}).status)
	})
}
