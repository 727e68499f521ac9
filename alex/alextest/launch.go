package alextest

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// IssueLaunch creates an Evolution vendor-forms launch, as Evolution does
// when a user opens the app from Patient Manager, and returns the {context}
// and {signature} values Evolution would put in the launch URL. patientID ""
// means no patient is open (the endpoint then returns "patientId": null);
// facility "" means the default facility.
//
// Both values are standard base64 (the context always contains a '/', and
// both end in '=' padding), so a client that forgets to URL-encode the path
// segments fails here as it would against Evolution.
func (s *Server) IssueLaunch(patientID, facility, providerID string) (context, signature string) {
	if facility == "" {
		facility = s.Facility()
	}
	for {
		var b [25]byte // 25 bytes: base64 ends in "=="
		_, _ = rand.Read(b[:])
		context = base64.StdEncoding.EncodeToString(b[:])
		if strings.Contains(context, "/") {
			break
		}
	}
	signature = base64.StdEncoding.EncodeToString(s.mac("launch", context))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.launches[context] = launch{patientID: patientID, facility: facility, providerID: providerID, created: s.now()}
	return context, signature
}

// serveLaunch is GET <root>/vendorforms/api/getlaunchcontextstring/{context}/{signature}.
// It needs a bearer token with patient.launchformincontext.read (no
// mt-facilityid: the facility comes from the launch). A signature that does
// not match its context gets 403 forbidden; a well-signed context the server
// does not hold (issued before Reset) gets 404 not-found; both as
// OperationOutcomes.
func (s *Server) serveLaunch(w http.ResponseWriter, r *http.Request, context, signature string) {
	if r.Method != http.MethodGet {
		writeNotFound(w)
		return
	}
	claims, ok := s.checkToken(r)
	if !ok {
		writeUnauthorized(w)
		return
	}
	hasRole := false
	for _, role := range claims.Roles {
		hasRole = hasRole || role == RoleLaunch
	}
	if !hasRole {
		writeOO(w, http.StatusForbidden, "forbidden", diagForbidden)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || !hmac.Equal(sig, s.mac("launch", context)) {
		writeOO(w, http.StatusForbidden, "forbidden", "The launch context signature is invalid.")
		return
	}
	s.mu.Lock()
	l, ok := s.launches[context]
	down := s.down[l.facility]
	s.mu.Unlock()
	if !ok {
		writeOO(w, http.StatusNotFound, "not-found", "Launch context not found")
		return
	}
	if down {
		writeOO(w, http.StatusServiceUnavailable, "exception", diagFacilityDown)
		return
	}
	var patient any // JSON null when no patient is open
	if l.patientID != "" {
		patient = l.patientID
	}
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{
		"patientId":    patient,
		"facilityCode": l.facility,
		"providerId":   l.providerID,
		"createdTime":  l.created.UTC().Format(time.RFC3339),
	})
}
