package alextest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/clinicpro/clinicalimages/alex/alextest"
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
