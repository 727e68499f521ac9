// Package faults_test holds the fault scenarios of the proof at scale: each
// test breaks one thing the upload-and-commit story depends on and gives a
// verdict on what the Service did. They are scenarios, not the unit suite:
// they start private servers and wait on real timeouts, so they run only
// with BENCH_FAULTS=1 (bench/run.sh sets it):
//
//	BENCH_FAULTS=1 go test -count=1 -v ./examples/bench/faults
package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/examples/bench/internal/photo"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/fsblob"
)

// gate skips a scenario unless BENCH_FAULTS=1.
func gate(t *testing.T) {
	t.Helper()
	if os.Getenv("BENCH_FAULTS") != "1" {
		t.Skip("fault scenario: set BENCH_FAULTS=1 to run it (bench/run.sh does)")
	}
}

// smallPhoto is a photo small enough to keep the scenarios quick.
func smallPhoto(t *testing.T, i int) []byte {
	t.Helper()
	ps, err := photo.Make(i+1, 48<<10)
	require.NoError(t, err)
	return ps[i]
}

func alexClient(t *testing.T, sim *alextest.Server) *alex.Client {
	t.Helper()
	id, secret, scope := sim.Credentials()
	c, err := alex.New(sim.BaseURL(),
		alex.WithClientCredentials(alex.Credentials{TokenURL: sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithFacility(sim.Facility()))
	require.NoError(t, err)
	return c
}

// startSession starts a session for the simulator's first patient.
func startSession(t *testing.T, svc *ci.Service, sim *alextest.Server) *ci.Started {
	t.Helper()
	p := sim.Patients()[0]
	st, err := svc.StartSession(t.Context(), ci.VerifiedLaunch{Facility: sim.Facility(), PatientID: p.ID, NHI: p.NHI,
		Practitioner: alextest.DefaultPractitioners()[0].ID, Source: "token"})
	require.NoError(t, err)
	return st
}

// mediaFor counts the simulator's Media whose identifier is imageID.
func mediaFor(sim *alextest.Server, imageID string) int {
	n := 0
	for _, m := range sim.Media() {
		for _, id := range m.Identifier {
			if id.Value != nil && *id.Value == imageID {
				n++
			}
		}
	}
	return n
}

// TestALEXFaultsDuringCommit: ALEX throttles, fails, is too slow, or drops
// the connection after storing the Media. The GP commits until the photo is
// committed (at most five times); the verdict is that it lands exactly once.
func TestALEXFaultsDuringCommit(t *testing.T) {
	gate(t)
	t.Parallel()
	tests := []struct {
		name    string
		fault   func(sim *alextest.Server)
		timeout time.Duration // on the first Commit's context; 0 for none
		// firstCommitted: whether the first Commit should already succeed
		// (the client retried within its budget).
		firstCommitted bool
	}{
		// A 503 to a POST is not retried by the client (the gateway may
		// have forwarded it); the GP's second commit lands it.
		{name: "503 with Retry-After, then recovers", fault: func(sim *alextest.Server) {
			sim.FailNext(1, alextest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "1", Path: "/FHIR/Media"})
		}},
		{name: "429 with Retry-After, then recovers", firstCommitted: true, fault: func(sim *alextest.Server) {
			sim.FailNext(1, alextest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Path: "/FHIR/Media"})
		}},
		{name: "429 beyond the retry budget", fault: func(sim *alextest.Server) {
			sim.FailNext(8, alextest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1", Path: "/FHIR/Media"})
		}},
		// The GP's request gives up while ALEX is slow: the commit goes on
		// detached from the request, so the photo still lands once.
		{name: "timeout before ALEX acts", timeout: 700 * time.Millisecond, fault: func(sim *alextest.Server) {
			sim.SetLatency(3 * time.Second)
		}},
		{name: "timeout after ALEX stored the Media", timeout: 700 * time.Millisecond, fault: func(sim *alextest.Server) {
			sim.SetReplyLatency(3 * time.Second)
		}},
		{name: "connection dropped after ALEX stored the Media", fault: func(sim *alextest.Server) {
			sim.DropNext(1)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim := alextest.NewTestServer(t)
			svc, err := ci.New(alexClient(t, sim))
			require.NoError(t, err)
			t.Cleanup(func() { _ = svc.Close() })
			st := startSession(t, svc, sim)
			img, err := svc.AcceptUpload(t.Context(), ci.Uploader{SessionID: st.Session.ID}, bytes.NewReader(smallPhoto(t, 0)))
			require.NoError(t, err)
			_, err = svc.UpdateImage(t.Context(), st.Session.ID, img.ID, session.Clinical{BodySite: "367577003", Laterality: "7771000", Title: "fault"}, session.Consent{})
			require.NoError(t, err)

			tc.fault(sim)
			var outcomes []string
			committed := false
			for attempt := range 5 {
				ctx := t.Context()
				if attempt == 0 && tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				res, err := svc.Commit(ctx, st.Session.ID, []string{img.ID})
				if attempt == 0 {
					// The fault has done its work; ALEX is healthy again.
					sim.SetLatency(0)
					sim.SetReplyLatency(0)
				}
				if err != nil {
					outcomes = append(outcomes, "error: "+err.Error())
					continue
				}
				require.Len(t, res.Images, 1)
				o := res.Images[0]
				outcomes = append(outcomes, fmt.Sprintf("%s %s reconciled=%v", o.State, o.Code, o.Reconciled))
				if o.State == session.StateCommitted {
					committed = true
					break
				}
				if o.Code == "" {
					assert.NotEmpty(t, o.Code, "a failed outcome carries a machine code")
				}
				time.Sleep(1100 * time.Millisecond) // as a GP would, after a Retry-After of 1 s
			}
			t.Logf("verdict %q: commits %v, Media in ALEX %d", tc.name, outcomes, mediaFor(sim, img.ID))
			require.True(t, committed, "the photo is committed within five tries")
			if tc.firstCommitted {
				assert.Len(t, outcomes, 1, "the client's retries absorb a single throttle")
			}
			assert.Equal(t, 1, mediaFor(sim, img.ID), "exactly one Media: no duplicate, no loss")
			assert.Len(t, sim.Media(), 1, "nothing else was stored")
		})
	}
}

// TestPhoneLosesConnectionMidUpload: the phone's connection drops after
// half the photo. Verdict: nothing is listed or stored, and the phone's
// retry is accepted as one image.
func TestPhoneLosesConnectionMidUpload(t *testing.T) {
	gate(t)
	t.Parallel()
	sim := alextest.NewTestServer(t)
	blobDir := t.TempDir()
	blobs, err := fsblob.New(blobDir)
	require.NoError(t, err)
	svc, err := ci.New(alexClient(t, sim), ci.WithBlobStore(blobs))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	api, err := svc.Handler(ci.HTTPOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(http.StripPrefix("/api", api))
	t.Cleanup(srv.Close)

	st := startSession(t, svc, sim)
	code, _, err := svc.IssueHandoff(t.Context(), st.Session.ID)
	require.NoError(t, err)
	tok, _, err := svc.ClaimHandoff(t.Context(), code, "fault phone", "127.0.0.1")
	require.NoError(t, err)
	body := smallPhoto(t, 0)

	// Half the body, then the connection closes.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	_, err = fmt.Fprintf(conn, "POST /api/phone/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", tok, len(body))
	require.NoError(t, err)
	_, err = conn.Write(body[:len(body)/2])
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // the server is reading the body
	require.NoError(t, conn.Close())

	// The server notices and gives up; nothing may be listed or stored.
	var sess *session.Session
	require.Eventually(t, func() bool {
		sess, err = svc.Session(t.Context(), st.Session.ID)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	sess, err = svc.Session(t.Context(), st.Session.ID)
	require.NoError(t, err)
	assert.Empty(t, sess.Images, "a half upload is not listed")
	assert.Empty(t, files(t, blobDir), "a half upload leaves no blob")

	// The phone retries on a new connection.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/phone/images", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "image/jpeg")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	sess, err = svc.Session(t.Context(), st.Session.ID)
	require.NoError(t, err)
	assert.Len(t, sess.Images, 1, "the retry is one image")
	assert.Len(t, files(t, blobDir), 1, "and one blob")
	t.Logf("verdict: half upload left %d images; retry answered %d", 0, resp.StatusCode)
}

// files lists the regular files under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	}))
	return out
}
