package alextest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

// endpoint is one FHIR route: the role it needs and whether it runs in a
// facility (mt-facilityid required and checked).
type endpoint struct {
	role     string
	facility bool
	handle   func(w http.ResponseWriter, r *http.Request, facility string, ids []string)
}

// route checks the token, facility and role and dispatches. The order is the
// gateway's: unknown route (404), token (401), facility (403), role (403),
// facility reachable (503), then the handler's own rules.
func (s *Server) route(w http.ResponseWriter, r *http.Request, segs []string, isLaunch bool) {
	if isLaunch {
		s.serveLaunch(w, r, segs[3], segs[4])
		return
	}
	ep, ids, ok := s.endpointFor(r.Method, segs[1:])
	if !ok {
		writeNotFound(w)
		return
	}
	claims, ok := s.checkToken(r)
	if !ok {
		writeUnauthorized(w)
		return
	}
	facility := ""
	if ep.facility {
		facility = r.Header.Get(HeaderFacility)
		if !slices.Contains(s.cfg.facilities, facility) {
			writeOO(w, http.StatusForbidden, "forbidden", diagFacilityMissing)
			return
		}
	}
	if ep.role != "" && !slices.Contains(claims.Roles, ep.role) {
		writeOO(w, http.StatusForbidden, "forbidden", diagForbidden)
		return
	}
	if facility != "" && s.facilityDown(facility) {
		writeOO(w, http.StatusServiceUnavailable, "exception", diagFacilityDown)
		return
	}
	ep.handle(w, r, facility, ids)
}

func (s *Server) facilityDown(facility string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down[facility]
}

// endpointFor maps a method and the path after /FHIR to an endpoint. ids are
// the path segments after the resource type.
func (s *Server) endpointFor(method string, p []string) (endpoint, []string, bool) {
	if len(p) == 0 {
		return endpoint{}, nil, false
	}
	get, post := method == http.MethodGet, method == http.MethodPost
	n := len(p)
	switch {
	case p[0] == "metadata" && n == 1 && get:
		return endpoint{handle: s.metadata}, nil, true
	case p[0] == "Location" && n == 1 && get:
		return endpoint{role: RoleLocation, facility: true, handle: s.searchLocation}, nil, true
	case p[0] == "Patient" && n == 1 && get:
		return endpoint{role: RoleNHISearch, facility: true, handle: s.searchPatient}, nil, true
	case p[0] == "Patient" && n == 2 && get:
		return endpoint{role: RoleNHISearch, facility: true, handle: s.readPatient}, p[1:], true
	case p[0] == "Practitioner" && n == 1 && get:
		return endpoint{role: RolePractitioner, facility: true, handle: s.searchPractitioner}, nil, true
	case p[0] == "Practitioner" && n == 2 && get:
		return endpoint{role: RolePractitioner, facility: true, handle: s.readPractitioner}, p[1:], true
	case p[0] == "Media" && n == 1 && post:
		return endpoint{role: RoleMediaWrite, facility: true, handle: s.createMedia}, nil, true
	case p[0] == "Media" && n == 1 && get:
		return endpoint{role: RoleMediaRead, facility: true, handle: s.searchMedia}, nil, true
	case p[0] == "Media" && n == 2 && get:
		return endpoint{role: RoleMediaRead, facility: true, handle: s.readMedia}, p[1:], true
	case p[0] == "DocumentReference" && n == 1 && post:
		return endpoint{role: RoleScanInboxWrite, facility: true, handle: s.createDocumentReference}, nil, true
	case (p[0] == "DocumentReference" || p[0] == "Task") && n <= 2 && get:
		// ALEX answers these reads with 403 for an app like ours.
		return endpoint{facility: true, handle: forbidden}, nil, true
	}
	return endpoint{}, nil, false
}

func forbidden(w http.ResponseWriter, _ *http.Request, _ string, _ []string) {
	writeOO(w, http.StatusForbidden, "forbidden", diagForbidden)
}

// writeOO writes a single-issue OperationOutcome.
func writeOO(w http.ResponseWriter, status int, code, diagnostics string) {
	writeJSON(w, status, fhirJSON, operationOutcome(code, diagnostics))
}

func operationOutcome(code, diagnostics string) map[string]any {
	return map[string]any{
		"resourceType": "OperationOutcome",
		"issue": []map[string]any{{
			"severity":    "error",
			"code":        code,
			"diagnostics": diagnostics,
		}},
	}
}

// writeNotFound writes the gateway's non-FHIR 404.
func writeNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, "application/json; charset=utf-8",
		map[string]any{"statusCode": 404, "message": "Resource not found"})
}

// writeUnauthorized writes the gateway's 401 for a missing, invalid or
// expired token (Azure API Management's validate-jwt shape).
func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, "application/json; charset=utf-8",
		map[string]any{"statusCode": 401, "message": "Unauthorized. Access token is missing or invalid."})
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	if f.Body == "" {
		code := "exception"
		if f.Status == http.StatusTooManyRequests {
			code = "throttled"
		}
		writeOO(w, f.Status, code, http.StatusText(f.Status))
		return
	}
	ct := "application/json; charset=utf-8"
	if strings.HasPrefix(strings.TrimSpace(f.Body), "{") && strings.Contains(f.Body, `"resourceType"`) {
		ct = fhirJSON
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

// lastUpdated formats t as ALEX does: UTC with a +00:00 offset.
func lastUpdated(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.9999999") + "+00:00"
}

// paging reads _count and _offset. It reports false for malformed values.
func (s *Server) paging(q url.Values) (count, offset int, ok bool) {
	count, offset = s.cfg.pageSize, 0
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, false
		}
		count = n
	}
	if v := q.Get("_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		offset = n
	}
	return count, offset, true
}

// onlyParams reports whether q holds no parameter other than the named ones
// and the paging parameters, each at most once.
func onlyParams(q url.Values, names ...string) bool {
	for k, v := range q {
		if len(v) != 1 {
			return false
		}
		if k != "_count" && k != "_offset" && !slices.Contains(names, k) {
			return false
		}
	}
	return true
}

// entry is one searchset match: its id and its JSON (which may hold blob
// placeholders).
type entry struct {
	id  string
	raw json.RawMessage
}

// writeBundle writes a searchset page of entries with self and next links.
// Placeholders in entries are replaced by the base64 of blobs.
func (s *Server) writeBundle(w http.ResponseWriter, r *http.Request, resourceType string, all []entry, blobs map[string][]byte) {
	q := r.URL.Query()
	count, offset, ok := s.paging(q)
	if !ok {
		writeOO(w, http.StatusBadRequest, "invalid", "_count and _offset must be non-negative integers")
		return
	}
	page := all[min(offset, len(all)):min(offset+count, len(all))]
	link := func(off int) string {
		q.Set("_count", strconv.Itoa(count))
		q.Set("_offset", strconv.Itoa(off))
		return s.fhirRoot() + "/" + resourceType + "?" + q.Encode()
	}
	links := []map[string]string{{"relation": "self", "url": link(offset)}}
	if offset+count < len(all) {
		links = append(links, map[string]string{"relation": "next", "url": link(offset + count)})
	}
	entries := make([]map[string]any, len(page))
	for i, e := range page {
		entries[i] = map[string]any{
			"fullUrl":  s.fhirRoot() + "/" + resourceType + "/" + e.id,
			"resource": e.raw,
			"search":   map[string]string{"mode": "match"},
		}
	}
	b := map[string]any{
		"resourceType": "Bundle",
		"id":           newID(),
		"meta":         map[string]string{"lastUpdated": lastUpdated(s.now())},
		"type":         "searchset",
		"total":        len(all),
		"link":         links,
	}
	if len(entries) > 0 {
		b["entry"] = entries
	}
	body, err := json.Marshal(b)
	if err != nil {
		writeOO(w, http.StatusInternalServerError, "exception", err.Error())
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusOK)
	_ = writeWithBlobs(w, body, blobs)
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request, _ string, _ []string) {
	res := func(typ string, interactions []string, params ...string) map[string]any {
		in := make([]map[string]string, len(interactions))
		for i, c := range interactions {
			in[i] = map[string]string{"code": c}
		}
		m := map[string]any{"type": typ, "interaction": in}
		if len(params) > 0 {
			ps := make([]map[string]string, len(params))
			for i, p := range params {
				ps[i] = map[string]string{"name": p, "type": "token"}
			}
			m["searchParam"] = ps
		}
		return m
	}
	writeJSON(w, http.StatusOK, fhirJSON, map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2026-02-25",
		"publisher":    "alextest (ALEX simulator)",
		"kind":         "instance",
		"software":     map[string]string{"name": "ALEX simulator", "version": "2.10"},
		"implementation": map[string]string{
			"description": "In-process ALEX simulator for tests",
			"url":         s.fhirRoot(),
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json"},
		"rest": []map[string]any{{
			"mode": "server",
			"resource": []map[string]any{
				res("Location", []string{"search-type"}),
				res("Patient", []string{"read", "search-type"}, "identifier"),
				res("Practitioner", []string{"read", "search-type"}),
				res("Media", []string{"create", "read", "search-type"}, "patient.identifier"),
				res("DocumentReference", []string{"create"}),
			},
		}},
	})
}

func (s *Server) locationJSON(facility string) json.RawMessage {
	sum := sha256.Sum256([]byte("alextest-location:" + facility))
	b, _ := json.Marshal(map[string]any{
		"resourceType": "Location",
		"id":           hex.EncodeToString(sum[:16]),
		"identifier":   []map[string]string{{"system": HPIFacilitySystem, "value": facility}},
		"name":         "Simulated Practice " + facility,
		"telecom":      []map[string]string{{"system": "phone", "value": "090000000"}},
		"managingOrganization": map[string]any{
			"identifier": map[string]string{"system": HPIOrgSystem, "value": "G00001-G"},
		},
		"extension": []map[string]any{{
			"url": PMSVersionURL,
			"valueCodeableConcept": map[string]any{
				"coding": []map[string]string{{"code": "8.0.0.112", "display": "Medtech Evolution v8.0.0.112"}},
			},
		}},
	})
	return b
}

// searchLocation lists the location of the request's facility.
func (s *Server) searchLocation(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	if !onlyParams(r.URL.Query()) {
		forbidden(w, r, facility, nil)
		return
	}
	raw := s.locationJSON(facility)
	var id struct{ ID string }
	_ = json.Unmarshal(raw, &id)
	s.writeBundle(w, r, "Location", []entry{{id: id.ID, raw: raw}}, nil)
}

func patientJSON(p Patient) json.RawMessage {
	m := map[string]any{
		"resourceType": "Patient",
		"id":           p.ID,
		"identifier":   []map[string]string{{"system": NHISystem, "value": p.NHI}},
		"name":         []map[string]any{{"use": "official", "family": p.Family, "given": []string{p.Given}}},
	}
	if p.Gender != "" {
		m["gender"] = p.Gender
	}
	if p.BirthDate != "" {
		m["birthDate"] = p.BirthDate
	}
	b, _ := json.Marshal(m)
	return b
}

func (s *Server) patientByID(id string) (Patient, bool) {
	for _, p := range s.cfg.patients {
		if p.ID == id {
			return p, true
		}
	}
	return Patient{}, false
}

// patientsByNHI returns every patient with the NHI (more than one when
// WithPatients gave duplicates).
func (s *Server) patientsByNHI(nhi string) []Patient {
	nhi = strings.ToUpper(nhi)
	var out []Patient
	for _, p := range s.cfg.patients {
		if p.NHI == nhi {
			out = append(out, p)
		}
	}
	return out
}

// nhiParam parses "<NHI system>|<NHI>"; any other form is refused.
func nhiParam(v string) (string, bool) {
	sys, nhi, ok := strings.Cut(v, "|")
	if !ok || sys != NHISystem || nhi == "" {
		return "", false
	}
	return nhi, true
}

// searchPatient supports only identifier=<NHI system>|<NHI>; ALEX refuses
// every other form, including no filter, with 403.
func (s *Server) searchPatient(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	q := r.URL.Query()
	nhi, ok := nhiParam(q.Get("identifier"))
	if !ok || !onlyParams(q, "identifier") {
		forbidden(w, r, facility, nil)
		return
	}
	var all []entry
	for _, p := range s.patientsByNHI(nhi) {
		all = append(all, entry{id: p.ID, raw: patientJSON(p)})
	}
	s.writeBundle(w, r, "Patient", all, nil)
}

func (s *Server) readPatient(w http.ResponseWriter, _ *http.Request, _ string, ids []string) {
	p, ok := s.patientByID(ids[0])
	if !ok {
		writeOO(w, http.StatusNotFound, "not-found", "Patient not found")
		return
	}
	writeRaw(w, http.StatusOK, patientJSON(p))
}

func practitionerJSON(p Practitioner) json.RawMessage {
	m := map[string]any{
		"resourceType": "Practitioner",
		"id":           p.ID,
		"active":       true,
		"name":         []map[string]any{{"family": p.Family, "given": []string{p.Given}}},
	}
	if p.CPN != "" {
		m["identifier"] = []map[string]string{{"system": HPIPersonSystem, "value": p.CPN}}
	}
	b, _ := json.Marshal(m)
	return b
}

func (s *Server) searchPractitioner(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	if !onlyParams(r.URL.Query()) {
		forbidden(w, r, facility, nil)
		return
	}
	all := make([]entry, len(s.cfg.practitioners))
	for i, p := range s.cfg.practitioners {
		all[i] = entry{id: p.ID, raw: practitionerJSON(p)}
	}
	s.writeBundle(w, r, "Practitioner", all, nil)
}

func (s *Server) readPractitioner(w http.ResponseWriter, _ *http.Request, _ string, ids []string) {
	for _, p := range s.cfg.practitioners {
		if p.ID == ids[0] {
			writeRaw(w, http.StatusOK, practitionerJSON(p))
			return
		}
	}
	writeOO(w, http.StatusNotFound, "not-found", "Practitioner not found")
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", fhirJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// referenceID returns the id in a reference to typ, relative ("Patient/<id>")
// or absolute ("https://host/fhir/Patient/<id>").
func referenceID(ref *fhir.Reference, typ string) (string, bool) {
	if ref == nil || ref.Reference == nil {
		return "", false
	}
	parts := strings.Split(strings.TrimSuffix(*ref.Reference, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-2] != typ || parts[len(parts)-1] == "" {
		return "", false
	}
	return parts[len(parts)-1], true
}

// decodeResource reads a FHIR JSON body of the given type in a streaming way:
// Attachment data are captured as decoded bytes and replaced by placeholders.
// It writes the error reply itself and returns false on failure.
func decodeResource(w http.ResponseWriter, r *http.Request, resourceType string, v any) (*captureReader, json.RawMessage, bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "application/fhir+json" {
		writeOO(w, http.StatusUnsupportedMediaType, "not-supported", "Content-Type must be application/fhir+json")
		return nil, nil, false
	}
	cr := newCaptureReader(r.Body, r.ContentLength)
	var raw json.RawMessage
	if err := json.NewDecoder(cr).Decode(&raw); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeOO(w, http.StatusRequestEntityTooLarge, "too-costly", "Request body too large")
			return nil, nil, false
		}
		writeOO(w, http.StatusBadRequest, "structure", "The request body is not valid JSON")
		return nil, nil, false
	}
	var probe struct {
		ResourceType string `json:"resourceType"`
	}
	if json.Unmarshal(raw, &probe) != nil || probe.ResourceType != resourceType {
		writeOO(w, http.StatusBadRequest, "invalid", "The request body must be a "+resourceType+" resource")
		return nil, nil, false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		writeOO(w, http.StatusBadRequest, "invalid", "The "+resourceType+" resource could not be parsed")
		return nil, nil, false
	}
	return cr, raw, true
}

// statusPresent reports whether the resource has a non-empty status; the
// FHIR models cannot tell an absent status from its zero value.
func statusPresent(raw json.RawMessage) bool {
	var p struct {
		Status *string `json:"status"`
	}
	return json.Unmarshal(raw, &p) == nil && p.Status != nil && *p.Status != ""
}

func hasIdentifierValue(ids []fhir.Identifier) bool {
	for _, id := range ids {
		if id.Value != nil && strings.TrimSpace(*id.Value) != "" {
			return true
		}
	}
	return false
}

// mediaType reports whether ALEX takes ct as a Media content type.
func mediaType(ct string) bool {
	switch ct {
	case "image/jpeg", "image/png", "application/pdf":
		return true
	}
	return false
}

// createMedia is POST /Media with ALEX's rules.
func (s *Server) createMedia(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	var m fhir.Media
	cr, raw, ok := decodeResource(w, r, "Media", &m)
	if !ok {
		return
	}
	// Order of checks: identifier (ALEX's own message), status, subject,
	// content type, data.
	if !hasIdentifierValue(m.Identifier) {
		writeOO(w, http.StatusBadRequest, "business-rule", diagIdentifier)
		return
	}
	if !statusPresent(raw) {
		writeOO(w, http.StatusBadRequest, "required", "Media.status is required")
		return
	}
	pid, ok := referenceID(m.Subject, "Patient")
	if !ok {
		writeOO(w, http.StatusBadRequest, "required", "Media.subject must reference a Patient")
		return
	}
	if _, known := s.patientByID(pid); !known {
		writeOO(w, http.StatusBadRequest, "business-rule", "The subject Patient was not found")
		return
	}
	if m.Content.ContentType == nil || !mediaType(*m.Content.ContentType) {
		writeOO(w, http.StatusBadRequest, "invalid", "Media.content.contentType must be image/jpeg, image/png or application/pdf")
		return
	}
	data, present, valid := cr.capturedData(m.Content.Data)
	if !present {
		writeOO(w, http.StatusBadRequest, "required", "Media.content.data is required")
		return
	}
	if !valid {
		writeOO(w, http.StatusBadRequest, "invalid", "Media.content.data is not valid base64")
		return
	}

	id := newID()
	m.Id = &id
	lu := lastUpdated(s.now())
	m.Meta = &fhir.Meta{VersionId: &id, LastUpdated: &lu}
	m.Content.Data = nil
	st := &storedMedia{m: m, data: data, facility: facility, patient: pid}
	s.mu.Lock()
	s.media = append(s.media, st)
	s.mediaByID[id] = st
	s.mu.Unlock()
	s.writeCreated(w, "Media", id, mediaJSON(m), map[string][]byte{id: data})
}

// mediaJSON marshals m with a placeholder for its data, keyed by its id.
func mediaJSON(m fhir.Media) []byte {
	ph := placeholder(*m.Id)
	m.Content.Data = &ph
	b, _ := json.Marshal(m)
	return b
}

// writeCreated writes ALEX's 201: Location <root>/fhir/<type>/<id>/_history/<id>,
// ETag W/"<id>" and the whole resource echoed, data included.
func (s *Server) writeCreated(w http.ResponseWriter, typ, id string, body []byte, blobs map[string][]byte) {
	h := w.Header()
	h.Set("Location", s.fhirRoot()+"/"+typ+"/"+id+"/_history/"+id)
	h.Set("ETag", `W/"`+id+`"`)
	h.Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusCreated)
	_ = writeWithBlobs(w, body, blobs)
}

// searchMedia supports only patient.identifier=<NHI system>|<NHI>, the form
// ALEX support gave; patient=, subject= and every other form get 403. Only
// Media created at the request's facility match. Data are included.
func (s *Server) searchMedia(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	q := r.URL.Query()
	nhi, ok := nhiParam(q.Get("patient.identifier"))
	if !ok || !onlyParams(q, "patient.identifier") {
		forbidden(w, r, facility, nil)
		return
	}
	var all []entry
	blobs := map[string][]byte{}
	for _, p := range s.patientsByNHI(nhi) {
		s.mu.Lock()
		for _, m := range s.media {
			if m.facility == facility && m.patient == p.ID {
				all = append(all, entry{id: *m.m.Id, raw: mediaJSON(m.m)})
				blobs[*m.m.Id] = m.data
			}
		}
		s.mu.Unlock()
	}
	s.writeBundle(w, r, "Media", all, blobs)
}

func (s *Server) readMedia(w http.ResponseWriter, _ *http.Request, facility string, ids []string) {
	s.mu.Lock()
	m, ok := s.mediaByID[ids[0]]
	s.mu.Unlock()
	if !ok || m.facility != facility {
		writeOO(w, http.StatusNotFound, "not-found", "Media not found")
		return
	}
	w.Header().Set("ETag", `W/"`+*m.m.Id+`"`)
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusOK)
	_ = writeWithBlobs(w, mediaJSON(m.m), map[string][]byte{*m.m.Id: m.data})
}

// scanType reports whether ALEX takes ct as an Inbox Scan attachment type.
func scanType(ct string) bool { return ct == "application/pdf" || ct == "image/tiff" }

// createDocumentReference is POST /DocumentReference as an Inbox Scan.
func (s *Server) createDocumentReference(w http.ResponseWriter, r *http.Request, facility string, _ []string) {
	var d fhir.DocumentReference
	cr, raw, ok := decodeResource(w, r, "DocumentReference", &d)
	if !ok {
		return
	}
	if !hasIdentifierValue(d.Identifier) {
		writeOO(w, http.StatusBadRequest, "business-rule", diagIdentifier)
		return
	}
	if !statusPresent(raw) || d.Status != fhir.DocumentReferenceStatusCurrent {
		writeOO(w, http.StatusBadRequest, "invalid", "DocumentReference.status must be current")
		return
	}
	if !hasCoding(d.Type, LOINCSystem, PhotographicImage) {
		writeOO(w, http.StatusBadRequest, "invalid", "DocumentReference.type must be LOINC 72170-4")
		return
	}
	pid, ok := referenceID(d.Subject, "Patient")
	if !ok {
		writeOO(w, http.StatusBadRequest, "required", "DocumentReference.subject must reference a Patient")
		return
	}
	if _, known := s.patientByID(pid); !known {
		writeOO(w, http.StatusBadRequest, "business-rule", "The subject Patient was not found")
		return
	}
	author := false
	for i := range d.Author {
		if _, ok := referenceID(&d.Author[i], "Practitioner"); ok {
			author = true
		}
	}
	if !author {
		writeOO(w, http.StatusBadRequest, "required", "DocumentReference.author must reference a Practitioner")
		return
	}
	if len(d.Content) == 0 {
		writeOO(w, http.StatusBadRequest, "required", "DocumentReference.content is required")
		return
	}
	blobs := map[string][]byte{}
	var data [][]byte
	id := newID()
	for i := range d.Content {
		a := &d.Content[i].Attachment
		if a.ContentType == nil || !scanType(*a.ContentType) {
			writeOO(w, http.StatusBadRequest, "invalid", "Attachment contentType must be application/pdf or image/tiff")
			return
		}
		b, present, valid := cr.capturedData(a.Data)
		switch {
		case !present:
			writeOO(w, http.StatusBadRequest, "required", "Attachment data is required")
			return
		case !valid:
			writeOO(w, http.StatusBadRequest, "invalid", "Attachment data is not valid base64")
			return
		case len(b) >= MaxScanAttachBytes:
			writeOO(w, http.StatusBadRequest, "business-rule", "Attachment must be under 8 MB")
			return
		}
		if *a.ContentType == "image/tiff" {
			if why := tiffProblem(b); why != "" {
				writeOO(w, http.StatusBadRequest, "invalid", "Attachment is not a valid TIFF: "+why)
				return
			}
		}
		data = append(data, b)
		key := id + "-" + strconv.Itoa(i)
		blobs[key] = b
		a.Data = nil
	}
	d.Id = &id
	lu := lastUpdated(s.now())
	d.Meta = &fhir.Meta{VersionId: &id, LastUpdated: &lu}
	s.mu.Lock()
	s.docRefs = append(s.docRefs, &storedDocRef{d: d, data: data, facility: facility})
	s.mu.Unlock()

	echo := d
	echo.Content = slices.Clone(d.Content)
	for i := range echo.Content {
		ph := placeholder(id + "-" + strconv.Itoa(i))
		echo.Content[i].Attachment.Data = &ph
	}
	body, _ := json.Marshal(echo)
	s.writeCreated(w, "DocumentReference", id, body, blobs)
}

func hasCoding(cc *fhir.CodeableConcept, system, code string) bool {
	if cc == nil {
		return false
	}
	for _, c := range cc.Coding {
		if c.System != nil && *c.System == system && c.Code != nil && *c.Code == code {
			return true
		}
	}
	return false
}
