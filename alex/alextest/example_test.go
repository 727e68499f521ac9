package alextest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
)

// ExampleNewServer obtains a token from the simulator's Azure-AD-shaped
// endpoint and looks a patient up by NHI, with net/http only, as any ALEX
// client would.
func ExampleNewServer() {
	srv := alextest.NewServer()
	defer srv.Close()

	// 1. Client-credentials token.
	id, secret, scope := srv.Credentials()
	resp, err := http.PostForm(srv.TokenURL(), url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {id},
		"client_secret": {secret},
		"scope":         {scope},
	})
	if err != nil {
		panic(err)
	}
	var tok struct {
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn)

	// 2. Patient search by NHI, with the two headers ALEX requires.
	q := url.Values{"identifier": {alextest.NHISystem + "|ZZZ0016"}}
	req, err := http.NewRequest(http.MethodGet, srv.BaseURL()+"/Patient?"+q.Encode(), nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("mt-facilityid", srv.Facility())
	req.Header.Set("Accept", "application/fhir+json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var bundle struct {
		Total int `json:"total"`
		Entry []struct {
			Resource struct {
				ID   string `json:"id"`
				Name []struct {
					Family string   `json:"family"`
					Given  []string `json:"given"`
				} `json:"name"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&bundle); err != nil {
		panic(err)
	}
	p := bundle.Entry[0].Resource
	fmt.Println(resp.StatusCode, bundle.Total, len(p.ID), p.Name[0].Family, strings.Join(p.Name[0].Given, " "))

	// 3. Without mt-facilityid ALEX refuses the call.
	req.Header.Del("mt-facilityid")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp2.Body.Close()
	fmt.Println(resp2.StatusCode, srv.TokenRequests(), len(srv.Requests()))
	// Output:
	// 200 Bearer 3599
	// 200 1 32 Testing Aroha
	// 403 1 2
}

// ExampleServer_FailNext makes the next call fail as ALEX's gateway might,
// with a Retry-After a client must honour, and shows what was recorded.
func ExampleServer_FailNext() {
	srv := alextest.NewServer()
	defer srv.Close()
	srv.FailNext(1, alextest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "2", Path: "/FHIR/Practitioner"})

	id, secret, scope := srv.Credentials()
	resp, err := http.PostForm(srv.TokenURL(), url.Values{"grant_type": {"client_credentials"},
		"client_id": {id}, "client_secret": {secret}, "scope": {scope}})
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	get := func() *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.BaseURL()+"/Practitioner", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("mt-facilityid", srv.Facility())
		req.Header.Set("mt-correlationid", "3f2b6c1e-0000-4000-8000-000000000001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp
	}
	first := get()
	fmt.Println(first.StatusCode, first.Header.Get("Retry-After"))
	fmt.Println(get().StatusCode)
	for _, r := range srv.Requests() {
		fmt.Println(r.Method, r.Path, r.Facility, r.CorrelationID)
	}
	// Output:
	// 503 2
	// 200
	// GET /FHIR/Practitioner F2N060-E 3f2b6c1e-0000-4000-8000-000000000001
	// GET /FHIR/Practitioner F2N060-E 3f2b6c1e-0000-4000-8000-000000000001
}

// ExampleServer_DropNext shows that DropNext drops the next request of any
// kind: here the patient lookup, which the client retries, so the Media
// that follows is stored and answered normally. DropNextCreate aims at the
// create itself (see TestLostReply).
func ExampleServer_DropNext() {
	srv := alextest.NewServer()
	defer srv.Close()
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(), alex.WithFacility(srv.Facility()),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithRetryPolicy(alex.RetryPolicy{MinWait: time.Millisecond, MaxWait: time.Millisecond}))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	srv.DropNext(1)
	p, err := c.FindPatientByNHI(ctx, "ZZZ0016") // dropped once, retried
	if err != nil {
		panic(err)
	}
	m, err := media.Build(media.Input{
		Image:    media.ImageFacts{ID: "img-1", ContentType: "image/jpeg", Size: 4},
		Patient:  media.Patient{ID: *p.Id, NHI: "ZZZ0016"},
		Operator: srv.Practitioners()[0].ID,
		Facility: srv.Facility(),
		Metadata: media.Metadata{BodySite: "14975008"},
	})
	if err != nil {
		panic(err)
	}
	_, err = c.CreateMedia(ctx, m, alex.BytesContent([]byte("jpeg")))
	fmt.Println("CreateMedia:", err)
	for _, r := range srv.Requests() {
		fmt.Println(r.Method, r.Path)
	}
	// Output:
	// CreateMedia: <nil>
	// GET /FHIR/Patient
	// GET /FHIR/Patient
	// POST /FHIR/Media
}

// The README's "Testing your integration with alextest" block is
// TestLostReply, word for word; keep them in step.

func TestLostReply(t *testing.T) {
	srv := alextest.NewTestServer(t) // closed with the test
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(), alex.WithFacility(srv.Facility()),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}))
	if err != nil {
		t.Fatal(err)
	}
	p := srv.Patients()[0] // ZZZ0016; srv.Practitioners() likewise
	m, err := media.Build(media.Input{
		Image:    media.ImageFacts{ID: "img-1", ContentType: "image/jpeg", Size: 4},
		Patient:  media.Patient{ID: p.ID, NHI: p.NHI},
		Operator: srv.Practitioners()[0].ID,
		Facility: srv.Facility(),
		Metadata: media.Metadata{BodySite: "14975008"}, // forearm
	})
	if err != nil {
		t.Fatal(err)
	}

	srv.DropNextCreate(1, "Media") // ALEX stores the next Media, then the reply is lost
	// Other faults: srv.FailNext(2, alextest.Fault{Status: 503}) (the practice's
	// server is unreachable), srv.SetLatency(2 * time.Second) (ALEX is slow),
	// srv.DropNext(1) (the reply to the next request of any kind is lost).
	_, err = c.CreateMedia(t.Context(), m, alex.BytesContent([]byte("jpeg")))
	if !errors.Is(err, alex.ErrOutcomeUnknown) {
		t.Fatalf("CreateMedia: got %v, want alex.ErrOutcomeUnknown", err)
	}

	// Inspect what ALEX saw and kept.
	stored := srv.Media() // stored Media (data removed); srv.MediaData(id) has the bytes
	if len(stored) != 1 {
		t.Fatalf("%d Media stored, want 1", len(stored))
	}
	if data, _ := srv.MediaData(*stored[0].Id); string(data) != "jpeg" {
		t.Errorf("stored bytes %q", data)
	}
	for _, r := range srv.Requests() { // every request with its headers
		t.Log(r.Method, r.Path, r.Header.Get("mt-facilityid"))
	}
}
