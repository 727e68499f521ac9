package alextest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// aadError gives the HTTP status, AADSTS number and text Azure AD sends with
// an OAuth error code.
func aadError(errorCode string) (status, code int, text string) {
	switch errorCode {
	case "invalid_client":
		return http.StatusUnauthorized, 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID."
	case "unauthorized_client":
		return http.StatusBadRequest, 700016, "Application with the identifier was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant."
	case "invalid_scope":
		return http.StatusBadRequest, 70011, "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid."
	case "unsupported_grant_type":
		return http.StatusBadRequest, 70003, "The app requested an unsupported grant type."
	case "invalid_request":
		return http.StatusBadRequest, 900144, "The request body must contain the following parameter."
	case "temporarily_unavailable":
		return http.StatusServiceUnavailable, 90033, "A transient error has occurred. Please try again."
	case "server_error":
		return http.StatusInternalServerError, 90100, "An internal server error occurred."
	}
	return http.StatusBadRequest, 90000, "The request failed."
}

// writeAADError writes an error in Azure AD v2's JSON shape.
func (s *Server) writeAADError(w http.ResponseWriter, errorCode, extra string) {
	status, code, text := aadError(errorCode)
	trace, corr := newID(), newID()
	ts := s.now().UTC()
	desc := fmt.Sprintf("AADSTS%d: %s%s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		code, text, extra, trace, corr, ts.Format("2006-01-02 15:04:05Z"))
	body := map[string]any{
		"error":             errorCode,
		"error_description": desc,
		"error_codes":       []int{code},
		"timestamp":         ts.Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(code),
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, status, "application/json; charset=utf-8", body)
}

// serveToken is the Azure AD v2 token endpoint for the client-credentials
// grant. The client may authenticate with form fields or HTTP Basic.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	s.tokenRequests.Add(1)
	if r.Method != http.MethodPost {
		s.writeAADError(w, "invalid_request", " The token endpoint only accepts POST.")
		return
	}
	if tenant != s.cfg.tenant {
		s.writeAADError(w, "invalid_request", " Tenant not found.")
		return
	}
	s.mu.Lock()
	var fault string
	if len(s.tokenFaults) > 0 {
		fault = s.tokenFaults[0]
		s.tokenFaults = s.tokenFaults[1:]
	}
	roles := slices.Clone(s.roles)
	s.mu.Unlock()
	if fault != "" {
		s.writeAADError(w, fault, "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		s.writeAADError(w, "invalid_request", " The request body must be application/x-www-form-urlencoded.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeAADError(w, "invalid_request", " The request body could not be parsed.")
		return
	}
	f := r.PostForm
	switch gt := f.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		s.writeAADError(w, "invalid_request", " 'grant_type'")
		return
	default:
		s.writeAADError(w, "unsupported_grant_type", "")
		return
	}
	id, secret := f.Get("client_id"), f.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: form-encoded before Basic encoding (x/oauth2 does this).
		id, secret = bid, bsecret
		if u, err := url.QueryUnescape(bid); err == nil {
			id = u
		}
		if u, err := url.QueryUnescape(bsecret); err == nil {
			secret = u
		}
	}
	if id == "" {
		s.writeAADError(w, "invalid_request", " 'client_id'")
		return
	}
	if id != s.cfg.clientID {
		s.writeAADError(w, "unauthorized_client", "")
		return
	}
	if secret == "" {
		s.writeAADError(w, "invalid_client", " 'client_secret' is required.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.secret)) != 1 {
		s.writeAADError(w, "invalid_client", "")
		return
	}
	if f.Get("scope") != s.cfg.scope {
		s.writeAADError(w, "invalid_scope", "")
		return
	}

	now := s.now()
	s.mu.Lock()
	seq := s.nextSeq
	s.nextSeq++
	s.mu.Unlock()
	tok := s.signToken(tokenClaims{
		Aud:   strings.TrimSuffix(s.cfg.scope, "/.default"),
		Iss:   "https://sts.windows.net/" + s.cfg.tenant + "/",
		Iat:   now.Unix(),
		Nbf:   now.Unix(),
		Exp:   now.Add(s.cfg.lifetime).Unix(),
		AppID: s.cfg.clientID,
		Roles: roles,
		Tid:   s.cfg.tenant,
		Sub:   s.cfg.clientID,
		Ver:   "1.0",
		JTI:   newID(),
		Seq:   seq,
	})
	secs := int64(s.cfg.lifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// tokenClaims is the payload of an access token: Azure AD v1 access token
// claims, plus seq, the simulator's own issue counter (for ExpireTokens).
type tokenClaims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
	AppID string   `json:"appid"`
	Roles []string `json:"roles"`
	Tid   string   `json:"tid"`
	Sub   string   `json:"sub"`
	Ver   string   `json:"ver"`
	JTI   string   `json:"uti"`
	Seq   int64    `json:"xms_alextest_seq"`
}

// tokenHeader is base64url({"typ":"JWT","alg":"HS256","kid":"alextest"}).
const tokenHeader = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImFsZXh0ZXN0In0"

// signToken builds a JWT: base64url header.payload.signature, signed with
// HMAC-SHA256 under the server's random key. Clients must treat it as opaque.
func (s *Server) signToken(c tokenClaims) string {
	payload, _ := json.Marshal(c)
	signed := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signed + "." + base64.RawURLEncoding.EncodeToString(s.mac("token", signed))
}

func (s *Server) mac(purpose, msg string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(purpose + "\x00" + msg))
	return h.Sum(nil)
}

// checkToken returns the claims of the request's bearer token, or false if
// it is missing, forged, for another audience, expired (by the clock or
// ExpireTokens).
func (s *Server) checkToken(r *http.Request) (tokenClaims, bool) {
	var c tokenClaims
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return c, false
	}
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return c, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac("token", parts[0]+"."+parts[1])) {
		return c, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return c, false
	}
	if c.Aud != strings.TrimSuffix(s.cfg.scope, "/.default") {
		return c, false
	}
	now := s.now().Unix()
	if now >= c.Exp || now < c.Nbf-300 {
		return c, false
	}
	s.mu.Lock()
	expired := c.Seq < s.minSeq
	s.mu.Unlock()
	return c, !expired
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
