package compress_test

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoWebAssemblyRuntime keeps HEIC decoding opt-in: neither compress nor
// the SDK's root package may reach the WebAssembly runtime (wazero), purego
// or gen2brain/heic, directly or through a package of this module (most
// likely compress/heic). It reads import lists with go/build, without the
// go command, so third-party packages are checked by name only; `go list
// -deps . | grep -E 'wazero|purego|gen2brain'` is the full check.
func TestNoWebAssemblyRuntime(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	const module = "github.com/clinicpro/clinicalimages"
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(mod), "module "+module+"\n", "the test must run in compress/")

	forbidden := []string{"github.com/tetratelabs/wazero", "github.com/ebitengine/purego", "github.com/gen2brain/", module + "/compress/heic"}
	for _, start := range []string{module, module + "/compress"} {
		seen := map[string]bool{}
		var walk func(path string, chain []string)
		walk = func(path string, chain []string) {
			if seen[path] {
				return
			}
			seen[path] = true
			dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(path, module), "/")))
			pkg, err := build.Default.ImportDir(dir, 0)
			require.NoError(t, err, "%s", path)
			for _, imp := range pkg.Imports {
				via := append(chain[:len(chain):len(chain)], imp)
				for _, f := range forbidden {
					assert.False(t, strings.HasPrefix(imp, f), "%s must not depend on %s: %s", start, imp, strings.Join(via, " -> "))
				}
				if imp == module || strings.HasPrefix(imp, module+"/") {
					walk(imp, via)
				}
			}
		}
		walk(start, []string{start})
		assert.Greater(t, len(seen), 1, "%s: in-module packages walked", start)
	}
}
