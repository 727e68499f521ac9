// Package readme keeps the README's Go code honest: every ```go block must be
// code that compiles and runs as a test in some example_test.go.
package readme

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pending names README sections whose block is still being turned into an
// Example, and who is doing it. Such a block is skipped, not failed, while no
// example_test.go holds it; remove the entry once one does.
var pending = map[string]string{}

// block is one ```go block of the README.
type block struct {
	section string   // the nearest heading above it
	imports []string // import paths it names
	body    string   // the code after any package clause and imports
	note    string   // the first paragraph after the block
}

// TestREADMEBlocksAreExamples checks that the body of each ```go block of the
// README appears, whitespace aside, in an example_test.go that imports every
// package the block imports, and that the note under the block names that
// file, so a reader can find the code that runs.
func TestREADMEBlocksAreExamples(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("no ```go block found in README.md")
	}
	examples := exampleFiles(t, root)

	for _, b := range blocks {
		t.Run(b.section, func(t *testing.T) {
			var found []string
			for path, src := range examples {
				if strings.Contains(normalize(src), normalize(b.body)) && importsAll(src, b.imports) {
					found = append(found, path)
				}
			}
			if len(found) == 0 {
				if who, ok := pending[b.section]; ok {
					t.Skipf("not yet in an example_test.go; pending: %s", who)
				}
				t.Fatalf("the block's code is in no example_test.go that imports %v; copy it into one "+
					"(or fix the drift between the two):\n%s", b.imports, b.body)
			}
			for _, path := range found {
				if strings.Contains(b.note, path) {
					return
				}
			}
			if who, ok := pending[b.section]; ok {
				t.Skipf("found in %s, but the note under the block does not name it; pending: %s", found[0], who)
			}
			t.Errorf("the note under the block should name %s, where its code runs; note: %q", found[0], b.note)
		})
	}
}

var (
	headingRE = regexp.MustCompile(`(?m)^#+ +(.+)$`)
	importRE  = regexp.MustCompile(`(?s)^import +(\([^)]*\)|"[^"]*")`)
	pathRE    = regexp.MustCompile(`"([^"]+)"`)
	spaceRE   = regexp.MustCompile(`\s+`)
)

// goBlocks returns the README's ```go blocks in order.
func goBlocks(md string) []block {
	var out []block
	lines := strings.Split(md, "\n")
	section := ""
	for i := 0; i < len(lines); i++ {
		if m := headingRE.FindStringSubmatch(lines[i]); m != nil {
			section = strings.TrimSpace(m[1])
			continue
		}
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, lines[i])
		}
		var note []string
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != ""; j++ {
			note = append(note, lines[j])
		}
		b := block{section: section, note: strings.Join(note, " ")}
		b.imports, b.body = splitImports(strings.Join(code, "\n"))
		out = append(out, b)
	}
	return out
}

// splitImports takes a leading package clause and import declaration off
// code and returns the imported paths and the rest.
func splitImports(code string) (imports []string, body string) {
	code = strings.TrimSpace(code)
	if strings.HasPrefix(code, "package ") {
		_, code, _ = strings.Cut(code, "\n")
		code = strings.TrimSpace(code)
	}
	if m := importRE.FindString(code); m != "" {
		for _, p := range pathRE.FindAllStringSubmatch(m, -1) {
			imports = append(imports, p[1])
		}
		code = strings.TrimSpace(code[len(m):])
	}
	return imports, code
}

// exampleFiles reads every example_test.go under root, keyed by its
// slash-separated path relative to root.
func exampleFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "example_test.go" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// importsAll reports whether the Go source src imports every path.
func importsAll(src string, paths []string) bool {
	_, rest, _ := strings.Cut(src, "\nimport ")
	decl := importRE.FindString("import " + rest)
	for _, p := range paths {
		if !strings.Contains(decl, `"`+p+`"`) {
			return false
		}
	}
	return true
}

func normalize(s string) string { return strings.TrimSpace(spaceRE.ReplaceAllString(s, " ")) }
