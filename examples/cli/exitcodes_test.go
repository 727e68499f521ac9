package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHelpStatesExitCodesAndGoRun(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"upload", "--help"}, {"compress", "--help"}, {"doctor", "--help"}} {
		code, out, errOut := runCLI(t, nil, args...)
		require.Equal(t, exitOK, code, errOut)
		assert.Contains(t, out, "Exit codes: 0 ", args)
		assert.Contains(t, out, "2 usage error", args)
		assert.Contains(t, out, `"go run" reports exit status 1 for every failure`, args)
		assert.Contains(t, out, "go build -o bin/cli ./examples/cli", args)
	}
	_, out, _ := runCLI(t, nil, "--help")
	assert.Contains(t, out, "3 configuration problem")
}

// TestBuiltBinaryExitCodes runs the built command, as the help tells scripts
// to: the process's exit status is the documented code, not go run's 1.
func TestBuiltBinaryExitCodes(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "cli")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dir := t.TempDir()
	photo := writeImage(t, filepath.Join(dir, "photo.jpg"), 32, 24)
	notImage := filepath.Join(dir, "notes.jpg")
	writeFileT(t, notImage, "not an image")
	tests := []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{"ok", []string{"compress", "-q", "-o", filepath.Join(dir, "ok") + "/", photo}, nil, exitOK},
		{"failed", []string{"compress", "-q", "-o", filepath.Join(dir, "failed") + "/", notImage}, nil, exitFailed},
		{"usage", []string{"upload", "--nhi", "ZZZ0016", photo}, nil, exitUsage},
		{"configuration", []string{"token"}, []string{"ALEX_CLIENT_ID=", "ALEX_CLIENT_SECRET=", "ALEX_SCOPE="}, exitBadConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), bin, tc.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir}, tc.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err, "%s", out)
			}
			assert.Equal(t, tc.want, code, "%s", out)
		})
	}
}
