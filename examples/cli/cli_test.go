package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// runCLI runs the CLI in process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, stdio{Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errb.String()
}

// envFor points the CLI at a running simulator as if it were real ALEX.
func envFor(srv *alextest.Server) map[string]string {
	id, secret, scope := srv.Credentials()
	return map[string]string{
		envBaseURL: srv.BaseURL(), envTokenURL: srv.TokenURL(), envClientID: id,
		envClientSecret: secret, envScope: scope, envFacility: srv.Facility(),
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, nil, "help")
	assert.Equal(t, exitOK, code)
	for _, c := range []string{"token", "patient", "doctor", "upload", "compress"} {
		assert.Contains(t, out, c)
	}
	code, _, errOut := runCLI(t, nil, "frobnicate")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "unknown command")
	code, _, _ = runCLI(t, nil)
	assert.Equal(t, exitUsage, code, "no command")
	code, _, errOut = runCLI(t, nil, "token", "--no-such-flag")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "unknown flag")
	code, out, _ = runCLI(t, nil, "upload", "--help")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "--body-site")
	code, _, _ = runCLI(t, nil, "patient", "--simulate")
	assert.Equal(t, exitUsage, code)
	code, _, _ = runCLI(t, nil, "doctor", "--simulate-fault", "bad-secret")
	assert.Equal(t, exitUsage, code, "a staged fault needs --simulate")
	code, _, errOut = runCLI(t, nil, "token")
	assert.Equal(t, exitBadConfig, code)
	assert.Contains(t, errOut, envClientSecret)
}

func TestTokenNeverPrintsTheTokenUnlessAsked(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	env := envFor(srv)
	code, out, errOut := runCLI(t, env, "token")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "patient.media.write")
	assert.Contains(t, out, "expires:")
	assert.NotContains(t, out, "token:  ")
	assert.NotContains(t, out+errOut, env[envClientSecret])
	assert.NotRegexp(t, `eyJ[A-Za-z0-9_-]+\.`, out, "no JWT in the output")

	code, out, _ = runCLI(t, env, "token", "--show-token")
	require.Equal(t, exitOK, code)
	assert.Regexp(t, `token:\s+eyJ[A-Za-z0-9_-]+\.`, out)
}

func TestPatientLookup(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	p := srv.Patients()[0]
	code, out, errOut := runCLI(t, envFor(srv), "patient", "--nhi", strings.ToLower(p.NHI))
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, p.ID)
	assert.Contains(t, out, p.Family)

	code, _, errOut = runCLI(t, envFor(srv), "patient", "--nhi", "ZZZ0017")
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, errOut, "invalid")
	assert.NotContains(t, errOut, "ZZZ0017")
	assert.Len(t, srv.Requests(), 1, "the invalid NHI never reached ALEX")
}

func TestDoctorDiagnosesEachFault(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, nil, "doctor", "--simulate", "--nhi", "ZZZ0016")
	require.Equal(t, exitOK, code, out+errOut)
	assert.Contains(t, out, "configuration looks healthy")
	assert.NotContains(t, out, "FAIL")

	cases := map[string]string{
		"bad-secret":          "rejected the client secret",
		"bad-scope":           "rejected the scope",
		"unknown-app":         "does not know this app",
		"no-egress":           "allow-list",
		"facility-not-linked": "not linked to this app",
		"missing-role":        "role patient.media.write is missing",
	}
	for fault, want := range cases {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, nil, "doctor", "--simulate", "--simulate-fault", fault, "--connect-timeout", "500ms")
			assert.Equal(t, exitBadConfig, code, out+errOut)
			assert.Contains(t, out, want)
		})
	}
}

func TestDoctorAgainstConfiguredALEX(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	env := envFor(srv)
	env[envClientSecret] = "wrong"
	code, out, _ := runCLI(t, env, "doctor")
	assert.Equal(t, exitBadConfig, code)
	assert.Contains(t, out, "invalid_client")
	assert.NotContains(t, out, "wrong", "the secret is not echoed")
}

func TestUploadCommitsEachFileOnceToThePatient(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	p := srv.Patients()[0]
	dir := t.TempDir()
	var files []string
	for i, size := range []int{4000, 900} {
		img := image.NewNRGBA(image.Rect(0, 0, size, size*3/4))
		for y := 0; y < img.Bounds().Dy(); y += 3 {
			for x := 0; x < img.Bounds().Dx(); x++ {
				img.Set(x, y, color.NRGBA{R: uint8(x), G: uint8(y), B: 90, A: 255})
			}
		}
		f := filepath.Join(dir, []string{"a.png", "b.png"}[i])
		fh, err := os.Create(f)
		require.NoError(t, err)
		require.NoError(t, png.Encode(fh, img))
		require.NoError(t, fh.Close())
		files = append(files, f)
	}
	bogus := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(bogus, []byte("<svg onload=alert(1)>"), 0o600))

	env := envFor(srv)
	prac := srv.Practitioners()[0].ID
	code, out, errOut := runCLI(t, env, append([]string{"upload", "--nhi", p.NHI, "--practitioner", prac,
		"--body-site", "", "--title", "Rash, left forearm"}, append(files, bogus)...)...)
	assert.Equal(t, exitFailed, code, "one file was not an image")
	assert.Equal(t, 2, strings.Count(out, "committed"), out+errOut)
	assert.Contains(t, out, "unsupported")

	media := srv.Media()
	require.Len(t, media, 2, "exactly one Media per good photo")

	// Re-running the same upload is idempotent: nothing is sent twice, not
	// even a file named twice in one run.
	code, out, errOut = runCLI(t, env, append([]string{"upload", "--nhi", p.NHI, "--practitioner", prac}, append(files, files[0])...)...)
	require.Equal(t, exitOK, code, out+errOut)
	assert.Equal(t, 3, strings.Count(out, "already in the record"), out)
	require.Len(t, srv.Media(), 2, "a re-run sends nothing again")
	for _, m := range media {
		assert.Equal(t, "Patient/"+p.ID, *m.Subject.Reference)
		assert.Equal(t, "Rash, left forearm", *m.Content.Title)
		data, ok := srv.MediaData(*m.Id)
		require.True(t, ok)
		assert.LessOrEqual(t, len(data), 1<<20, "under the byte budget")
		assert.Equal(t, []byte{0xFF, 0xD8}, data[:2], "a JPEG")
	}
}

func TestUploadSimulatedQuickStart(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, nil, "upload", "--simulate", "--progress", "always")
	require.Equal(t, exitOK, code, out+errOut)
	assert.Contains(t, out, "committed")
	assert.Contains(t, errOut, "SIMULATED ALEX")
	assert.Contains(t, errOut, "all photos", "the overall progress bar was drawn")
	assert.Contains(t, errOut, "generated-sample", "and the photo's own bar")

	code, _, errOut = runCLI(t, nil, "upload", "--simulate", "--progress", "sometimes")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--progress")
}

func TestSimulateServesUntilInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var out syncBuf
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"simulate", "--addr", "127.0.0.1:0"}, stdio{Out: &out, Err: &out, Getenv: func(string) string { return "" }})
	}()
	var base string
	require.Eventually(t, func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "export "+envBaseURL+"="); ok {
				base = v
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
	// The printed environment works for the other commands.
	env := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	assert.Equal(t, base, env[envBaseURL])
	code, pout, perr := runCLI(t, env, "patient", "--nhi", "ZZZ0016")
	assert.Equal(t, exitOK, code, pout+perr)
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(5 * time.Second):
		t.Fatal("simulate did not stop on interrupt")
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
