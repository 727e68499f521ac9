// Package layout holds one test: the SDK's import direction, as doc.go and
// the design describe it, checked against the code.
package layout

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/clinicpro/clinicalimages"

// allowed lists, for each SDK package (by path inside the module, longest
// match wins), the packages of this module it may import besides any
// internal/ package Go's own rule lets it see. The root package may import
// everything; nothing may import the root or examples/.
var allowed = map[string][]string{
	"alex":                {},
	"alex/alextest":       {"alex"},
	"media":               {},
	"compress":            {},
	"compress/heic":       {"compress"},
	"compress/enginetest": {"compress", "compress/heic"},
	"session":             {},
	"session/memory":      {"session"},
	"session/fsblob":      {"session"},
	"session/redisstore":  {"session"},
	"session/s3blob":      {"session"},
	"session/pgaudit":     {"session"},
	"session/storetest":   {"session", "session/memory"},
	"sync":                {},
	"sync/redisnotify":    {"sync"},
	"sync/ablynotify":     {"sync"},
	"sync/notifytest":     {"sync"},
	"sync/internal":       {"sync"},
	"session/internal":    {"session"},
	"internal":            {},
}

// forbidden are third-party modules that belong to examples/ only.
var forbidden = []string{
	"github.com/chromedp/", "github.com/spf13/cobra", "github.com/vbauerster/mpb",
	"github.com/nats-io/", "github.com/skip2/go-qrcode", "rsc.io/qr",
}

func rule(rel string) (string, []string, bool) {
	best := ""
	for k := range allowed {
		if (rel == k || strings.HasPrefix(rel, k+"/")) && len(k) > len(best) {
			best = k
		}
	}
	a, ok := allowed[best]
	return best, a, ok
}

func TestImportDirection(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(mod), "module "+module+"\n") {
		t.Fatalf("go.mod of %s is not the SDK's: %v", root, err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		base := d.Name()
		if rel != "." && (strings.HasPrefix(base, ".") || base == "testdata" || rel == "examples" || rel == "docs" || rel == "scripts") {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here (only tests, or none)
		}
		checked++
		for _, imp := range pkg.Imports {
			for _, f := range forbidden {
				if strings.HasPrefix(imp, f) {
					t.Errorf("%s imports %s, which belongs to the examples module", rel, imp)
				}
			}
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			target := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			switch {
			case target == "" || target == "examples" || strings.HasPrefix(target, "examples/"):
				if rel != "." || target != "" {
					t.Errorf("%s imports %s: nothing in the SDK imports the root package or examples/", rel, imp)
				}
				continue
			case rel == ".":
				continue // the root wires everything
			case strings.Contains("/"+target+"/", "/internal/"):
				continue // Go's internal rule already limits who sees it
			}
			key, may, ok := rule(rel)
			if !ok {
				t.Errorf("%s is not in the layout table: add it (and to doc.go)", rel)
				continue
			}
			if !slices.Contains(may, target) {
				t.Errorf("%s imports %s; the layout lets %s import only %v", rel, target, key, may)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 15 {
		t.Fatalf("only %d packages checked: the walk missed the tree", checked)
	}
}
