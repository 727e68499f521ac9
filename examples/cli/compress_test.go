package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompressCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 3000, 1000))
	for y := 0; y < 1000; y++ {
		for x := 0; x < 3000; x++ {
			img.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y * 3), B: uint8(x ^ y), A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}))
	in := filepath.Join(dir, "wide.jpg")
	require.NoError(t, os.WriteFile(in, buf.Bytes(), 0o600))
	bad := filepath.Join(dir, "page.html")
	require.NoError(t, os.WriteFile(bad, []byte("<html><script>alert(1)</script></html>"), 0o600))
	outDir := filepath.Join(dir, "out")

	code, out, errOut := runCLI(t, nil, "compress", "-o", outDir, "--budget", "200000", in, bad)
	assert.Equal(t, exitFailed, code, "one input was not an image")
	assert.Contains(t, out+errOut, "wide.jpg")
	assert.Contains(t, out+errOut, "unsupported")

	entries, err := os.ReadDir(outDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the photo produced an output")
	got, err := os.ReadFile(filepath.Join(outDir, entries[0].Name()))
	require.NoError(t, err)
	assert.LessOrEqual(t, len(got), 200000, "within the byte budget")
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(got))
	require.NoError(t, err)
	assert.Equal(t, 2048, cfg.Width, "long edge at the limit, aspect kept")
	assert.InDelta(t, 683, cfg.Height, 1)

	code, _, _ = runCLI(t, nil, "compress")
	assert.Equal(t, exitUsage, code)
}

// writeImage writes a small w x h JPEG or PNG (by path's extension) and
// returns the path.
func writeImage(t *testing.T, path string, w, h int) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x * 5), G: uint8(y * 7), B: 80, A: 255})
		}
	}
	var buf bytes.Buffer
	if filepath.Ext(path) == ".png" {
		require.NoError(t, png.Encode(&buf, img))
	} else {
		require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	}
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

// jpegSize decodes a written output's dimensions.
func jpegSize(t *testing.T, path string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err, "output %s", path)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	require.NoError(t, err, "output %s is a JPEG", path)
	return cfg.Width, cfg.Height
}

// listFiles lists every regular file under dir, relative to it.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	}))
	sort.Strings(out)
	return out
}

func TestCompressOutputs(t *testing.T) {
	t.Parallel()
	// Each case runs in its own directory holding a/photo.jpg (64x48),
	// b/photo.png (40x30) and a/photo.png (24x18); args name them relative to
	// it (the {dir}/ prefix is added). want maps each output to the input
	// dimensions it must have, and lists every file present afterwards.
	type dims [2]int
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		args  []string
		code  int
		want  map[string]dims // every file under dir afterwards, inputs excluded
		errIs string          // substring of stderr
	}{
		{name: "one input, -o DIR/ missing: a directory", args: []string{"-o", "out/", "a/photo.jpg"},
			want: map[string]dims{"out/photo.jpg": {64, 48}}},
		{name: "one input, -o existing directory without slash", setup: withDir("out"), args: []string{"-o", "out", "a/photo.jpg"},
			want: map[string]dims{"out/photo.jpg": {64, 48}}},
		{name: "one input, -o a file name", args: []string{"-o", "norm.jpg", "a/photo.jpg"},
			want: map[string]dims{"norm.jpg": {64, 48}}},
		{name: "one input, -o a file in a missing directory", args: []string{"-o", "deep/er/norm.jpg", "a/photo.jpg"},
			want: map[string]dims{"deep/er/norm.jpg": {64, 48}}},
		{name: "several inputs sharing a name: numbered in argument order", args: []string{"-o", "out", "a/photo.jpg", "b/photo.png", "a/photo.png"},
			want: map[string]dims{"out/photo.jpg": {64, 48}, "out/photo-2.jpg": {40, 30}, "out/photo-3.jpg": {24, 18}}},
		{name: "a numbered name taken by an input's own name", setup: withImage("c/photo-2.jpg", 16, 12),
			args: []string{"-o", "out", "a/photo.jpg", "b/photo.png", "c/photo-2.jpg"},
			want: map[string]dims{"out/photo.jpg": {64, 48}, "out/photo-2.jpg": {40, 30}, "out/photo-2-2.jpg": {16, 12}}},
		{name: "names differing only in case never share a file", setup: withImage("c/PHOTO.jpg", 16, 12),
			args: []string{"-o", "out", "a/photo.jpg", "c/PHOTO.jpg"},
			want: map[string]dims{"out/photo.jpg": {64, 48}, "out/PHOTO-2.jpg": {16, 12}}},
		{name: "no -o: beside each input, numbered when they share a name", args: []string{"a/photo.jpg", "a/photo.png", "b/photo.png"},
			want: map[string]dims{"a/photo.norm.jpg": {64, 48}, "a/photo-2.norm.jpg": {24, 18}, "b/photo.norm.jpg": {40, 30}}},
		{name: "existing output refused before any work", setup: withFile("out/photo-2.jpg", "keep"),
			args: []string{"-o", "out", "a/photo.jpg", "b/photo.png"}, code: exitUsage, errIs: "--force",
			want: map[string]dims{"out/photo-2.jpg": {}}},
		{name: "existing output replaced with --force", setup: withFile("out/photo-2.jpg", "old"),
			args: []string{"--force", "-o", "out", "a/photo.jpg", "b/photo.png"},
			want: map[string]dims{"out/photo.jpg": {64, 48}, "out/photo-2.jpg": {40, 30}}},
		{name: "existing -o file refused", setup: withFile("norm.jpg", "keep"), args: []string{"-o", "norm.jpg", "a/photo.jpg"},
			code: exitUsage, errIs: "norm.jpg", want: map[string]dims{"norm.jpg": {}}},
		{name: "output replacing its input refused even with --force", args: []string{"--force", "-o", "a/photo.jpg", "a/photo.jpg"},
			code: exitUsage, errIs: "replace an input", want: map[string]dims{}},
		{name: "output in the input's directory replacing it refused", args: []string{"--force", "-o", "a/", "a/photo.jpg"},
			code: exitUsage, errIs: "replace an input", want: map[string]dims{}},
		{name: "several inputs and -o an existing file", setup: withFile("norm.jpg", "keep"), args: []string{"-o", "norm.jpg", "a/photo.jpg", "b/photo.png"},
			code: exitUsage, errIs: "must be a directory", want: map[string]dims{"norm.jpg": {}}},
		{name: "missing input: nothing done", args: []string{"-o", "out", "a/photo.jpg", "nope.jpg"},
			code: exitUsage, errIs: "nope.jpg: no such file", want: map[string]dims{}},
		{name: "directory input: nothing done", args: []string{"-o", "out", "a/photo.jpg", "b"},
			code: exitUsage, errIs: "is a directory", want: map[string]dims{}},
		{name: "bad flag value: nothing done", args: []string{"--quality", "500", "-o", "out", "a/photo.jpg"},
			code: exitUsage, want: map[string]dims{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			inputs := map[string]bool{}
			for _, in := range []struct {
				p    string
				w, h int
			}{{"a/photo.jpg", 64, 48}, {"b/photo.png", 40, 30}, {"a/photo.png", 24, 18}} {
				writeImage(t, filepath.Join(dir, in.p), in.w, in.h)
				inputs[in.p] = true
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			before := listFiles(t, dir)
			for _, f := range before {
				if _, planted := tc.want[f]; !planted {
					inputs[f] = true
				}
			}
			args := []string{"compress", "-q"}
			for i, a := range tc.args {
				if !strings.HasPrefix(a, "-") && (i == 0 || tc.args[i-1] != "--quality") {
					a = filepath.Join(dir, a)
					if strings.HasSuffix(tc.args[i], "/") {
						a += string(filepath.Separator)
					}
				}
				args = append(args, a)
			}
			code, out, errOut := runCLI(t, nil, args...)
			assert.Equal(t, tc.code, code, out+errOut)
			if tc.errIs != "" {
				assert.Contains(t, errOut, tc.errIs)
			}
			var got []string
			for _, f := range listFiles(t, dir) {
				if !inputs[f] {
					got = append(got, f)
				}
			}
			var want []string
			for f := range tc.want {
				want = append(want, f)
			}
			sort.Strings(want)
			assert.Equal(t, want, got, "the files written")
			for f, d := range tc.want {
				if d == (dims{}) {
					continue // planted, must be untouched
				}
				w, h := jpegSize(t, filepath.Join(dir, f))
				assert.Equal(t, d, dims{w, h}, "%s is the output of the right input", f)
			}
			if tc.code != exitOK {
				for f, d := range tc.want {
					if d == (dims{}) {
						b, err := os.ReadFile(filepath.Join(dir, f))
						require.NoError(t, err)
						assert.Equal(t, "keep", string(b), "an existing file is untouched")
					}
				}
			}
		})
	}
}

func withDir(p string) func(*testing.T, string) {
	return func(t *testing.T, dir string) { require.NoError(t, os.MkdirAll(filepath.Join(dir, p), 0o755)) }
}

func withImage(p string, w, h int) func(*testing.T, string) {
	return func(t *testing.T, dir string) { writeImage(t, filepath.Join(dir, p), w, h) }
}

func withFile(p, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(content), 0o600))
	}
}

func writeFileT(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// TestCompressHEIC: the CLI turns HEIC decoding on (it is opt-in in the
// SDK), so an iPhone photo comes out as a JPEG of the same picture.
func TestCompressHEIC(t *testing.T) {
	t.Parallel()
	outDir := t.TempDir() + string(filepath.Separator)
	code, out, errOut := runCLI(t, nil, "compress", "-o", outDir, filepath.Join("..", "..", "compress", "enginetest", "testdata", "marker.heic"))
	require.Equal(t, exitOK, code, out+errOut)
	w, h := jpegSize(t, filepath.Join(outDir, "marker.jpg"))
	assert.Equal(t, [2]int{240, 320}, [2]int{w, h}, "the HEIC's upright size")
}
