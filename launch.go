package clinicalimages

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/clinicpro/clinicalimages/alex"
)

// VerifiedLaunch is who and what a session is for, established by a verified
// launch: ALEX's decoding of Evolution's signed launch context, or a launch
// token signed by the integrating server. The patient of a session comes only
// from here; no request body or phone can change it.
type VerifiedLaunch struct {
	Facility     string // HPI facility id (mt-facilityid)
	PatientID    string // ALEX Patient id
	NHI          string // the patient's NHI, for reconciling commits
	Practitioner string // ALEX Practitioner id of the GP
	Encounter    string // optional
	Source       string // "evolution" or "token"
}

// LaunchFromEvolution verifies Evolution's {context}/{signature} launch pair
// through ALEX (the only party that can decode it) and reads the patient's
// NHI. A launch with no patient open fails with alex.ErrNoPatient. Freshness
// fails closed: a launch with no readable createdTime, older than the max
// age ([WithLaunchMaxAge], 10 minutes by default) or more than two minutes in
// the future fails with ErrUnauthenticated; a createdTime without an offset
// is read in the practice's zone ([WithLaunchZone], Pacific/Auckland by
// default). Each pair starts one session: once ALEX has verified it, it is
// recorded in the store (as a hash) for as long as it could be accepted, and
// a second use, on any instance sharing the store, fails with
// ErrLaunchReplayed. Only pairs ALEX verified are recorded, so garbage does
// not fill the store. A store outage fails with ErrStorageUnavailable.
//
// Every call costs an ALEX request: rate-limit callers who are not yet
// authenticated before calling it (the HTTP handler does).
func (s *Service) LaunchFromEvolution(ctx context.Context, launchContext, signature string) (VerifiedLaunch, error) {
	l, err := s.alex.LaunchContext(ctx, launchContext, signature)
	if err != nil {
		return VerifiedLaunch{}, err
	}
	if err := s.checkFresh(ctx, l.CreatedRaw); err != nil {
		return VerifiedLaunch{}, err
	}
	if err := s.useOnce(ctx, "evolution", launchContext+"\x00"+signature, s.launchAge+2*launchClockSkew); err != nil {
		return VerifiedLaunch{}, err
	}
	fctx := alex.WithFacilityID(ctx, l.FacilityCode)
	p, err := s.alex.ReadPatient(fctx, l.PatientID)
	if err != nil {
		return VerifiedLaunch{}, err
	}
	if l.ProviderID == "" {
		return VerifiedLaunch{}, fmt.Errorf("%w: the launch did not say which practitioner opened it", ErrInvalidRequest)
	}
	vl := VerifiedLaunch{Facility: l.FacilityCode, PatientID: l.PatientID, Practitioner: l.ProviderID, Source: "evolution"}
	for _, id := range p.Identifier {
		if id.System != nil && *id.System == s.alex.NHISystem() && id.Value != nil {
			vl.NHI = *id.Value
		}
	}
	if vl.NHI == "" {
		return VerifiedLaunch{}, fmt.Errorf("%w: the launched patient has no NHI in ALEX", ErrInvalidRequest)
	}
	return vl, nil
}

// LaunchKey verifies launch tokens: an HMAC secret (HS256) or a public key
// (ES256 with *ecdsa.PublicKey, RS256 with *rsa.PublicKey, EdDSA with
// ed25519.PublicKey). KeyID, when set, must match the token's "kid".
type LaunchKey struct {
	KeyID  string
	Secret []byte           // for HS256, at least 32 bytes
	Public crypto.PublicKey // for ES256, RS256, EdDSA
}

// WithLaunchTokens lets the integrating server launch sessions with a signed
// JWT instead of Evolution's launch pair. Tokens must carry aud = audience,
// exp (at most 10 minutes after iat), a jti unique to the token, and the
// claims facility (an HPI facility id: letters, digits, hyphens), patient
// and practitioner (FHIR ids: [A-Za-z0-9-.]{1,64}), nhi and optionally
// encounter (a FHIR id); no claim may hold a control character. Each token
// starts one session (its jti is recorded in the store until the token
// expires). Each key accepts only its own algorithm family, so an HMAC
// secret can never be confused with a public key.
func WithLaunchTokens(audience string, keys ...LaunchKey) Option {
	return func(o *options) error {
		if audience == "" || len(keys) == 0 {
			return errors.New("clinicalimages: launch tokens need an audience and at least one key")
		}
		for _, k := range keys {
			if (k.Secret == nil) == (k.Public == nil) {
				return errors.New("clinicalimages: a launch key has either a secret or a public key")
			}
			if k.Secret != nil && len(k.Secret) < 32 {
				return errors.New("clinicalimages: an HS256 launch secret must be at least 32 bytes")
			}
		}
		o.audience, o.launchKeys = audience, append(o.launchKeys, keys...)
		return nil
	}
}

type launchClaims struct {
	jwt.RegisteredClaims
	Facility     string `json:"facility"`
	Patient      string `json:"patient"`
	NHI          string `json:"nhi"`
	Practitioner string `json:"practitioner"`
	Encounter    string `json:"encounter,omitempty"`
}

type launchVerifier struct {
	keys     []LaunchKey
	audience string
	now      func() time.Time
}

// maxLaunchTokenLife bounds exp - iat: a launch token is for one launch.
const maxLaunchTokenLife = 10 * time.Minute

// launchTokenLeeway is the clock skew allowed on a launch token's times.
const launchTokenLeeway = 30 * time.Second

// LaunchFromToken verifies a launch token (see [WithLaunchTokens]). A
// forged, expired or malformed token, one without jti, and one whose claims
// are not in their formats fail with ErrUnauthenticated (which claim is
// wrong is not said, and never logged with its value); a token used before
// fails with ErrLaunchReplayed, a store outage with ErrStorageUnavailable.
func (s *Service) LaunchFromToken(ctx context.Context, token string) (VerifiedLaunch, error) {
	v := s.launch
	if len(v.keys) == 0 {
		return VerifiedLaunch{}, fmt.Errorf("%w: launch tokens are not enabled", ErrUnauthenticated)
	}
	var claims launchClaims
	_, err := jwt.ParseWithClaims(token, &claims, v.keyFor,
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(launchTokenLeeway),
		jwt.WithValidMethods([]string{"HS256", "ES256", "RS256", "EdDSA"}),
	)
	if err != nil {
		return VerifiedLaunch{}, fmt.Errorf("%w: launch token: %s", ErrUnauthenticated, jwtReason(err))
	}
	if claims.IssuedAt == nil || claims.ExpiresAt.Sub(claims.IssuedAt.Time) > maxLaunchTokenLife {
		return VerifiedLaunch{}, fmt.Errorf("%w: launch token must have iat and live at most %s", ErrUnauthenticated, maxLaunchTokenLife)
	}
	nhi, err := alex.NormalizeNHI(claims.NHI)
	if err != nil || !validClaims(&claims) {
		s.log.InfoContext(ctx, "launch refused", "source", "token", "reason", "claims missing or not in their formats")
		return VerifiedLaunch{}, fmt.Errorf("%w: launch token lacks jti, facility, patient, a valid nhi or practitioner, or one is malformed", ErrUnauthenticated)
	}
	if err := s.useOnce(ctx, "token", claims.ID, claims.ExpiresAt.Sub(v.now())+launchTokenLeeway+time.Second); err != nil {
		return VerifiedLaunch{}, err
	}
	return VerifiedLaunch{Facility: claims.Facility, PatientID: claims.Patient, NHI: nhi, Practitioner: claims.Practitioner,
		Encounter: claims.Encounter, Source: "token"}, nil
}

func (v *launchVerifier) keyFor(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	for _, k := range v.keys {
		if k.KeyID != "" && k.KeyID != kid {
			continue
		}
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			if k.Secret != nil {
				return k.Secret, nil
			}
		default:
			if k.Public != nil {
				return k.Public, nil
			}
		}
	}
	return nil, errors.New("no key for this token")
}

// jwtReason names why a token failed without echoing it.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing exp"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "invalid"
}

// credentials issues and checks desktop credentials: HMAC-signed, bound to
// one session, stateless so any instance sharing the secret can check them.
type credentials struct {
	key []byte
	now func() time.Time
}

const credPrefix = "cid1"

func (c *credentials) mac(parts ...string) string {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// issue returns the credential and the CSRF token for a session.
func (c *credentials) issue(sessionID string, exp time.Time) (cred, csrf string) {
	e := fmt.Sprint(exp.Unix())
	cred = strings.Join([]string{credPrefix, sessionID, e, c.mac("desktop", sessionID, e)}, ".")
	return cred, c.csrf(sessionID)
}

func (c *credentials) csrf(sessionID string) string { return c.mac("csrf", sessionID) }

// check returns the session a credential is for.
func (c *credentials) check(cred string) (string, error) {
	parts := strings.Split(cred, ".")
	if len(parts) != 4 || parts[0] != credPrefix {
		return "", ErrUnauthenticated
	}
	if !hmac.Equal([]byte(parts[3]), []byte(c.mac("desktop", parts[1], parts[2]))) {
		return "", ErrUnauthenticated
	}
	var exp int64
	if _, err := fmt.Sscan(parts[2], &exp); err != nil || c.now().Unix() > exp {
		return "", fmt.Errorf("%w: credential expired", ErrUnauthenticated)
	}
	return parts[1], nil
}

func (c *credentials) checkCSRF(sessionID, token string) bool {
	return token != "" && hmac.Equal([]byte(token), []byte(c.csrf(sessionID)))
}
