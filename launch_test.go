package clinicalimages_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
)

var hsKey = []byte("launch-secret-0123456789abcdef-0123456789")

func launchClaims(aud string, iat, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"aud": aud, "iat": iat.Unix(), "exp": exp.Unix(), "jti": rand.Text(),
		"facility": "F2N060-E", "patient": "14e52e16edb7a435bfa05e307afd008b", "nhi": "zzz0016", "practitioner": "prac-1"}
}

func TestLaunchTokens(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	w := newWorld(t, ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Secret: hsKey}, ci.LaunchKey{KeyID: "ec1", Public: &ecKey.PublicKey}))
	now := time.Now()

	sign := func(m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(m, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	good := func() jwt.MapClaims { return launchClaims("clinicpro-bff", now, now.Add(5*time.Minute)) }
	cases := []struct {
		name   string
		token  string
		status int
	}{
		{"HS256", sign(jwt.SigningMethodHS256, hsKey, "", good()), http.StatusCreated},
		{"ES256", sign(jwt.SigningMethodES256, ecKey, "ec1", good()), http.StatusCreated},
		{"expired", sign(jwt.SigningMethodHS256, hsKey, "", launchClaims("clinicpro-bff", now.Add(-10*time.Minute), now.Add(-5*time.Minute))), 401},
		{"wrong audience", sign(jwt.SigningMethodHS256, hsKey, "", launchClaims("someone-else", now, now.Add(time.Minute))), 401},
		{"lives too long", sign(jwt.SigningMethodHS256, hsKey, "", launchClaims("clinicpro-bff", now, now.Add(time.Hour))), 401},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-0123"), "", good()), 401},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", good()), 401},
		{"no nhi", sign(jwt.SigningMethodHS256, hsKey, "", func() jwt.MapClaims {
			c := launchClaims("clinicpro-bff", now, now.Add(time.Minute))
			delete(c, "nhi")
			return c
		}()), 401},
		{"garbage", "not.a.jwt", 401},
	}
	for _, tc := range cases {
		st, body := w.call("POST", "/launch", "", map[string]string{"token": tc.token})
		assert.Equal(t, tc.status, st, "%s: %v", tc.name, body)
		if tc.status == http.StatusCreated {
			sess := body["session"].(map[string]any)
			assert.Equal(t, "14e52e16edb7a435bfa05e307afd008b", sess["patientId"], tc.name)
		}
	}
	// An HMAC token signed with the ECDSA public key's bytes (algorithm
	// confusion) is refused: public keys only verify their own family.
	w2 := newWorld(t, ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Public: &ecKey.PublicKey}))
	st, _ := w2.call("POST", "/launch", "", map[string]string{"token": sign(jwt.SigningMethodHS256, mustPEM(t, &ecKey.PublicKey), "", good())})
	assert.Equal(t, 401, st)

	// Launch tokens are off unless configured.
	st, _ = newWorld(t).call("POST", "/launch", "", map[string]string{"token": cases[0].token})
	assert.Equal(t, 401, st)
}

func TestLaunchTokenOptionsAreValidated(t *testing.T) {
	t.Parallel()
	for _, opt := range []ci.Option{
		ci.WithLaunchTokens("", ci.LaunchKey{Secret: hsKey}),
		ci.WithLaunchTokens("aud"),
		ci.WithLaunchTokens("aud", ci.LaunchKey{Secret: []byte("short")}),
		ci.WithLaunchTokens("aud", ci.LaunchKey{}),
		ci.WithSecret([]byte("short")),
		ci.WithLimits(ci.Limits{MaxUploadBytes: -1}),
		ci.WithLimits(ci.Limits{MaxSessionsPerPractitioner: -1}),
		ci.WithLaunchMaxAge(-time.Minute),
		ci.WithLaunchMaxAge(48 * time.Hour),
		ci.WithLaunchZone(nil),
	} {
		_, err := ci.New(alexClient(t, newWorld(t).alex, discardLogger()), opt)
		assert.Error(t, err)
	}
	_, err := ci.New(nil)
	assert.Error(t, err)
}

func TestHandlerOptionsAreValidated(t *testing.T) {
	t.Parallel()
	svc := newWorld(t).svc
	for name, o := range map[string]ci.HTTPOptions{
		"AnyOrigin":      {AllowedOrigins: []string{"*"}},
		"OriginNoScheme": {AllowedOrigins: []string{"example.org"}},
		"NegativeRate":   {LaunchRate: ci.LaunchRate{PerClient: -1}},
		"TinyWindow":     {LaunchRate: ci.LaunchRate{Window: time.Millisecond}},
	} {
		h, err := svc.Handler(o)
		assert.Error(t, err, name)
		assert.Nil(t, h, name)
	}
	h, err := svc.Handler(ci.HTTPOptions{AllowedOrigins: []string{"https://example.org"}})
	require.NoError(t, err)
	assert.NotNil(t, h)
}
