package alextest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	id, secret, scope := srv.Credentials()
	good := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
			"client_secret": {secret}, "scope": {scope}}
	}
	cases := []struct {
		name   string
		edit   func(url.Values)
		status int
		error  string
		code   int
	}{
		{"wrong secret", func(v url.Values) { v.Set("client_secret", "nope") }, 401, "invalid_client", 7000215},
		{"missing secret", func(v url.Values) { v.Del("client_secret") }, 401, "invalid_client", 7000215},
		{"unknown client id", func(v url.Values) { v.Set("client_id", "00000000-0000-0000-0000-000000000000") }, 400, "unauthorized_client", 700016},
		{"wrong scope", func(v url.Values) { v.Set("scope", "api://bf7945a6-e812-4121-898a-76fea7c13f4d/.default") }, 400, "invalid_scope", 70011},
		{"missing scope", func(v url.Values) { v.Del("scope") }, 400, "invalid_scope", 70011},
		{"scope without .default", func(v url.Values) { v.Set("scope", strings.TrimSuffix(scope, "/.default")) }, 400, "invalid_scope", 70011},
		{"password grant", func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type", 70003},
		{"authorization code grant", func(v url.Values) { v.Set("grant_type", "authorization_code") }, 400, "unsupported_grant_type", 70003},
		{"missing grant", func(v url.Values) { v.Del("grant_type") }, 400, "invalid_request", 900144},
		{"missing client id", func(v url.Values) { v.Del("client_id") }, 400, "invalid_request", 900144},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			form := good()
			tc.edit(form)
			status, body := postForm(t, srv, form)
			require.Equal(t, tc.status, status, string(body))
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				Codes       []int  `json:"error_codes"`
				TraceID     string `json:"trace_id"`
				Correlation string `json:"correlation_id"`
				Timestamp   string `json:"timestamp"`
			}
			require.NoError(t, json.Unmarshal(body, &e))
			assert.Equal(t, tc.error, e.Error)
			assert.Equal(t, []int{tc.code}, e.Codes)
			assert.True(t, strings.HasPrefix(e.Description, "AADSTS"), e.Description)
			assert.NotEmpty(t, e.TraceID)
			assert.NotEmpty(t, e.Correlation)
			assert.NotEmpty(t, e.Timestamp)
			assert.NotContains(t, string(body), secret, "the secret must never be echoed")
		})
	}
}

func TestTokenSuccessShape(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 12, 10, 0, 0, 0, time.UTC)
	srv := alextest.NewTestServer(t, alextest.WithClock(func() time.Time { return now }),
		alextest.WithRoles("patient.media.write"))
	id, secret, scope := srv.Credentials()
	status, body := postForm(t, srv, url.Values{"grant_type": {"client_credentials"}, "client_id": {id},
		"client_secret": {secret}, "scope": {scope}})
	require.Equal(t, http.StatusOK, status)

	var raw map[string]any
	require.NoError(t, json.Unmarshal(body, &raw))
	assert.Equal(t, "Bearer", raw["token_type"])
	assert.EqualValues(t, 3599, raw["expires_in"])
	assert.EqualValues(t, 3599, raw["ext_expires_in"])
	assert.NotContains(t, raw, "refresh_token")

	parts := strings.Split(raw["access_token"].(string), ".")
	require.Len(t, parts, 3, "JWT-shaped: header.payload.signature")
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"typ":"JWT","alg":"HS256","kid":"alextest"}`, string(header))
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var claims struct {
		Aud   string   `json:"aud"`
		Exp   int64    `json:"exp"`
		Iat   int64    `json:"iat"`
		AppID string   `json:"appid"`
		Roles []string `json:"roles"`
	}
	require.NoError(t, json.Unmarshal(payload, &claims))
	assert.Equal(t, strings.TrimSuffix(scope, "/.default"), claims.Aud)
	assert.Equal(t, now.Unix(), claims.Iat)
	assert.Equal(t, now.Add(3599*time.Second).Unix(), claims.Exp)
	assert.Equal(t, id, claims.AppID)
	assert.Equal(t, []string{"patient.media.write"}, claims.Roles)
}

func TestTokenBasicAuth(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t, alextest.WithCredentials("my client", "s3cr&t+/=", "api://bf7945a6-e812-4121-898a-76fea7c13f4d/.default"))
	id, secret, scope := srv.Credentials()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.TokenURL(),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) // as x/oauth2 does
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	cases := []struct {
		name, method, url, contentType string
		status                         int
	}{
		{"GET", http.MethodGet, srv.TokenURL(), "", 400},
		{"JSON body", http.MethodPost, srv.TokenURL(), "application/json", 400},
		{"other tenant", http.MethodPost, srv.URL() + "/common/oauth2/v2.0/token", "application/x-www-form-urlencoded", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, tc.url, strings.NewReader("{}"))
			require.NoError(t, err)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
		})
	}
}

func TestFailTokenNext(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	srv.FailTokenNext(2, "temporarily_unavailable")
	srv.FailTokenNext(1, "invalid_client")
	id, secret, scope := srv.Credentials()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}, "scope": {scope}}
	want := []struct {
		status int
		err    string
	}{{503, "temporarily_unavailable"}, {503, "temporarily_unavailable"}, {401, "invalid_client"}, {200, ""}}
	for i, w := range want {
		status, body := postForm(t, srv, form)
		require.Equal(t, w.status, status, "request %d: %s", i, body)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(body, &e))
		assert.Equal(t, w.err, e.Error, "request %d", i)
	}
	assert.Equal(t, 4, srv.TokenRequests())
	assert.Empty(t, srv.Requests(), "token requests are not FHIR requests")
}

func TestTokenExpiryAndExpireTokens(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 12, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := alextest.NewTestServer(t, alextest.WithClock(clock), alextest.WithTokenLifetime(10*time.Minute))

	tok := token(t, srv)
	metadata := call{path: "/FHIR/metadata", tok: tok}
	require.Equal(t, 200, do(t, srv, metadata).status)
	advance(10*time.Minute - time.Second)
	require.Equal(t, 200, do(t, srv, metadata).status, "still valid one second before exp")
	advance(time.Second)
	r := do(t, srv, metadata)
	require.Equal(t, 401, r.status, "expired at exp")
	assert.Equal(t, float64(401), r.json(t)["statusCode"])
	assert.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")

	tok2 := token(t, srv)
	tok3 := token(t, srv)
	require.Equal(t, 200, do(t, srv, call{path: "/FHIR/metadata", tok: tok2}).status)
	srv.ExpireTokens()
	assert.Equal(t, 401, do(t, srv, call{path: "/FHIR/metadata", tok: tok2}).status)
	assert.Equal(t, 401, do(t, srv, call{path: "/FHIR/metadata", tok: tok3}).status)
	tok4 := token(t, srv)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/metadata", tok: tok4}).status, "tokens issued after ExpireTokens work")
}

func TestBadTokens(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	other := alextest.NewTestServer(t)
	good := token(t, srv)
	parts := strings.Split(good, ".")
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"x","exp":99999999999,"roles":["patient.media.write"]}`))
	cases := map[string]string{
		"none":                "",
		"from another server": token(t, other),
		"not a JWT":           "opaque-token",
		"payload swapped":     parts[0] + "." + forgedPayload + "." + parts[2],
		"signature cut":       parts[0] + "." + parts[1] + ".",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, call{path: "/FHIR/Patient?identifier=" + url.QueryEscape(alextest.NHISystem+"|ZZZ0016"), tok: tok})
			assert.Equal(t, 401, r.status)
		})
	}
	t.Run("Basic scheme", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, call{path: "/FHIR/metadata", header: map[string]string{"Authorization": "Basic " + good}})
		assert.Equal(t, 401, r.status)
	})
}
