package main

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
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
