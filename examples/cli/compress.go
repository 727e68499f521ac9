package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/engines"
)

// runCompress normalises image files into upright, metadata-free JPEGs under
// a byte budget, exactly as the SDK does for every upload, and prints a table
// of what it did. Exit 0 when every file succeeded, 1 when any failed, 2 on
// a usage error.
func runCompress(ctx context.Context, args []string, io stdio) int {
	fs := flag.NewFlagSet("compress", flag.ContinueOnError)
	fs.SetOutput(io.Err)
	out := fs.String("o", "", "output `path`: a file for one input, a directory (created) for several; default NAME.norm.jpg beside each input")
	engine := fs.String("engine", "go", "engine: "+strings.Join(engines.Names(), ", "))
	longEdge := fs.Int("max-edge", compress.DefaultMaxLongEdge, "longest output side in `px`")
	budget := fs.Int64("budget", compress.DefaultByteBudget, "largest output in `bytes`")
	maxQ := fs.Int("quality", compress.DefaultMaxQuality, "JPEG quality tried first")
	minQ := fs.Int("min-quality", compress.DefaultMinQuality, "lowest JPEG quality before scaling down")
	maxBytes := fs.Int64("max-bytes", compress.DefaultMaxInputBytes, "refuse inputs larger than this many `bytes`")
	maxPixels := fs.Int64("max-pixels", compress.DefaultMaxPixels, "refuse inputs declaring more `pixels`")
	quiet := fs.Bool("q", false, "print no table, only errors")
	fs.Usage = func() {
		fmt.Fprintln(io.Err, "usage: cli compress [flags] FILE...")
		fmt.Fprintln(io.Err, "\nNormalises photos (JPEG, PNG, GIF, WebP, HEIC) into upright sRGB JPEGs with no")
		fmt.Fprintln(io.Err, "metadata, at most -max-edge px and -budget bytes, and prints what it did.")
		fmt.Fprintln(io.Err, "\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintln(io.Err, "cli compress: no input files")
		fs.Usage()
		return exitUsage
	}
	eng, err := engines.New(*engine)
	if err != nil {
		fmt.Fprintln(io.Err, "cli compress:", err)
		return exitUsage
	}
	n, err := compress.New(compress.WithEngine(eng), compress.WithMaxLongEdge(*longEdge),
		compress.WithByteBudget(*budget), compress.WithQuality(*minQ, *maxQ),
		compress.WithMaxInputBytes(*maxBytes), compress.WithMaxPixels(*maxPixels))
	if err != nil {
		fmt.Fprintln(io.Err, "cli compress:", err)
		return exitUsage
	}
	dir := ""
	if *out != "" && len(files) > 1 {
		dir = *out
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(io.Err, "cli compress:", err)
			return exitFailed
		}
	}

	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	if !*quiet {
		fmt.Fprintln(tw, "file\tformat\tin size\tin bytes\torient\tout size\tout bytes\tquality\tstripped\t")
	}
	code := exitOK
	for _, f := range files {
		dst := f[:len(f)-len(filepath.Ext(f))] + ".norm.jpg"
		switch {
		case dir != "":
			dst = filepath.Join(dir, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))+".jpg")
		case *out != "":
			dst = *out
		}
		res, err := compressFile(ctx, n, f, dst)
		if err != nil {
			fmt.Fprintf(io.Err, "cli compress: %s: %v\n", f, err)
			code = exitFailed
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !*quiet {
			fmt.Fprintf(tw, "%s\t%s\t%dx%d\t%d\t%d\t%dx%d\t%d\t%d\t%s\t\n", filepath.Base(f), res.Format,
				res.InWidth, res.InHeight, res.InBytes, res.Orientation, res.OutWidth, res.OutHeight,
				res.OutBytes, res.Quality, res.Stripped)
		}
	}
	_ = tw.Flush()
	return code
}

// compressFile normalises src into dst, writing a temporary file first so
// that a failure never leaves a partial output.
func compressFile(ctx context.Context, n *compress.Normalizer, src, dst string) (compress.Result, error) {
	in, err := os.Open(src)
	if err != nil {
		return compress.Result{}, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".compress-*.jpg")
	if err != nil {
		return compress.Result{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	res, err := n.Normalize(ctx, in, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	return res, os.Rename(tmp.Name(), dst)
}
