package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/compress"
)

// runCompress normalises image files into upright, metadata-free JPEGs under
// a byte budget, exactly as the SDK does for every upload, and prints a table
// of what it did. Exit 0 when every file succeeded, 1 when any failed, 2 on
// a usage error.
type compressFlags struct {
	out                         string
	longEdge, maxQ, minQ        int
	budget, maxBytes, maxPixels int64
	quiet                       bool
}

func compressCmd(std stdio) *cobra.Command {
	var cf compressFlags
	cmd := &cobra.Command{
		Use:   "compress [flags] FILE...",
		Short: "normalise image files into upright, metadata-free JPEGs under a byte budget",
		Long: "Normalises photos (JPEG, PNG, GIF, WebP, HEIC) into upright sRGB JPEGs with no\n" +
			"metadata, at most --max-edge px and --budget bytes, and prints what it did.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return exit(runCompress(cmd.Context(), std, &cf, files))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cf.out, "output", "o", "", "output path: a file for one input, a directory (created) for several; default NAME.norm.jpg beside each input")
	f.IntVar(&cf.longEdge, "max-edge", compress.DefaultMaxLongEdge, "longest output side in px")
	f.Int64Var(&cf.budget, "budget", compress.DefaultByteBudget, "largest output in bytes")
	f.IntVar(&cf.maxQ, "quality", compress.DefaultMaxQuality, "JPEG quality tried first")
	f.IntVar(&cf.minQ, "min-quality", compress.DefaultMinQuality, "lowest JPEG quality before scaling down")
	f.Int64Var(&cf.maxBytes, "max-bytes", compress.DefaultMaxInputBytes, "refuse inputs larger than this many bytes")
	f.Int64Var(&cf.maxPixels, "max-pixels", compress.DefaultMaxPixels, "refuse inputs declaring more pixels")
	f.BoolVarP(&cf.quiet, "quiet", "q", false, "print no table, only errors")
	return cmd
}

// runCompress normalises image files into upright, metadata-free JPEGs under
// a byte budget, exactly as the SDK does for every upload, and prints a table
// of what it did. Exit 0 when every file succeeded, 1 when any failed, 2 on
// a usage error.
func runCompress(ctx context.Context, io stdio, cf *compressFlags, files []string) int {
	out, longEdge, budget, maxQ, minQ := &cf.out, &cf.longEdge, &cf.budget, &cf.maxQ, &cf.minQ
	maxBytes, maxPixels, quiet := &cf.maxBytes, &cf.maxPixels, &cf.quiet
	n, err := compress.New(compress.WithMaxLongEdge(*longEdge),
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
