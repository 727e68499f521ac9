package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// compressFlags are the compress command's flags.
type compressFlags struct {
	out                         string
	longEdge, maxQ, minQ        int
	budget, maxBytes, maxPixels int64
	quiet, force                bool
}

const compressLong = `Normalises photos (JPEG, PNG, GIF, WebP, HEIC) into upright sRGB JPEGs with no
metadata, at most --max-edge px and --budget bytes, and prints what it did.

Where the outputs go:
  no -o              NAME.norm.jpg beside each input
  -o DIR             NAME.jpg in DIR (created when missing). -o is a directory when
                     it names an existing directory, ends with a path separator
                     (-o out/), or when there are several inputs.
  -o FILE            with exactly one input and none of the above, the output file
                     (its directory is created when missing).

Inputs that share a name get distinct outputs, numbered in argument order:
photo.jpg, photo-2.jpg, photo-3.jpg (or photo.norm.jpg, photo-2.norm.jpg). No run
writes two inputs to the same file.

An output file that already exists is never replaced unless --force is given: the
command checks every output before normalising anything, lists the ones that exist,
and exits 2 without writing. An output that would replace one of the inputs is
refused even with --force.

Inputs are checked before any work too: a missing, unreadable or directory input
is a usage error (exit 2) and nothing is written.

Exit codes: 0 every file normalised; 1 at least one file failed (the others were
written); 2 usage error (bad flags, bad inputs, outputs that exist), nothing written.` + goRunNote

func compressCmd(std stdio) *cobra.Command {
	var cf compressFlags
	cmd := &cobra.Command{
		Use:   "compress [flags] FILE...",
		Short: "normalise image files into upright, metadata-free JPEGs under a byte budget",
		Long:  compressLong,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return exit(runCompress(cmd.Context(), std, &cf, files))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cf.out, "output", "o", "", "output file (one input) or directory (several inputs, an existing directory, or a trailing /); default NAME.norm.jpg beside each input")
	f.BoolVarP(&cf.force, "force", "f", false, "replace output files that already exist")
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
// a usage error (found before any file is normalised).
func runCompress(ctx context.Context, std stdio, cf *compressFlags, files []string) int {
	n, err := compress.New(heic.Option(), compress.WithMaxLongEdge(cf.longEdge),
		compress.WithByteBudget(cf.budget), compress.WithQuality(cf.minQ, cf.maxQ),
		compress.WithMaxInputBytes(cf.maxBytes), compress.WithMaxPixels(cf.maxPixels))
	if err != nil {
		fmt.Fprintln(std.Err, "cli compress:", err)
		return exitUsage
	}
	if err := checkInputs(files); err != nil {
		fmt.Fprintln(std.Err, "cli compress:", err)
		return exitUsage
	}
	plan, err := planOutputs(cf.out, files)
	if err != nil {
		fmt.Fprintln(std.Err, "cli compress:", err)
		return exitUsage
	}
	if err := checkOutputs(plan, files, cf.force); err != nil {
		fmt.Fprintln(std.Err, "cli compress:", err)
		return exitUsage
	}
	if mk := plan.mkdir(); mk != "" {
		if err := os.MkdirAll(mk, 0o755); err != nil {
			fmt.Fprintln(std.Err, "cli compress:", err)
			return exitFailed
		}
	}

	tw := tabwriter.NewWriter(std.Out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	if !cf.quiet {
		fmt.Fprintln(tw, "file\tformat\tin size\tin bytes\torient\tout size\tout bytes\tquality\tstripped\toutput\t")
	}
	code := exitOK
	for i, f := range files {
		dst := plan.dsts[i]
		res, err := compressFile(ctx, n, f, dst)
		if err != nil {
			fmt.Fprintf(std.Err, "cli compress: %s: %v\n", f, err)
			code = exitFailed
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if !cf.quiet {
			fmt.Fprintf(tw, "%s\t%s\t%dx%d\t%d\t%d\t%dx%d\t%d\t%d\t%s\t%s\t\n", f, res.Format,
				res.InWidth, res.InHeight, res.InBytes, res.Orientation, res.OutWidth, res.OutHeight,
				res.OutBytes, res.Quality, res.Stripped, dst)
		}
	}
	_ = tw.Flush()
	return code
}

// outputPlan is where each input's output goes.
type outputPlan struct {
	dir  string   // the output directory to create, "" when -o names a file or is absent
	file string   // the output file -o names (one input), else ""
	dsts []string // one output path per input, in input order, all distinct
}

// mkdir is the directory to create before writing: the output directory,
// or the parent of an output file named by -o.
func (p outputPlan) mkdir() string {
	if p.dir != "" {
		return p.dir
	}
	if p.file != "" {
		return filepath.Dir(p.file)
	}
	return ""
}

// usageError lists problems found before any work.
type usageError struct {
	what     string
	problems []string
}

func (e *usageError) Error() string {
	return e.what + ":\n  " + strings.Join(e.problems, "\n  ")
}

// checkInputs finds inputs that cannot be read, before any work.
func checkInputs(files []string) error {
	var problems []string
	for _, f := range files {
		fi, err := os.Stat(f)
		switch {
		case errors.Is(err, os.ErrNotExist):
			problems = append(problems, f+": no such file")
			continue
		case err != nil:
			problems = append(problems, f+": "+pathErrText(err))
			continue
		case fi.IsDir():
			problems = append(problems, f+": is a directory")
			continue
		case !fi.Mode().IsRegular():
			problems = append(problems, f+": not a regular file")
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			problems = append(problems, f+": "+pathErrText(err))
			continue
		}
		_ = fh.Close()
	}
	if len(problems) > 0 {
		return &usageError{what: "cannot read the input", problems: problems}
	}
	return nil
}

// pathErrText is an *os.PathError's cause without the path, which the
// caller already names.
func pathErrText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// planOutputs decides each input's output path. out is a directory when it
// names an existing directory, ends with a path separator, or there are
// several inputs; otherwise, for one input, it is the output file. With no
// out, each output sits beside its input as NAME.norm.jpg. Inputs sharing a
// name are numbered in argument order (NAME.jpg, NAME-2.jpg...).
func planOutputs(out string, files []string) (outputPlan, error) {
	var plan outputPlan
	isDir := false
	if out != "" {
		fi, err := os.Stat(out)
		switch {
		case err == nil && fi.IsDir():
			isDir = true
		case err == nil:
			// An existing file: a file name, which several inputs cannot share.
			if len(files) > 1 {
				return plan, fmt.Errorf("-o %s is a file; with %d inputs -o must be a directory", out, len(files))
			}
		case strings.HasSuffix(out, "/") || strings.HasSuffix(out, string(os.PathSeparator)) || len(files) > 1:
			isDir = true
		}
	}
	if isDir {
		plan.dir = filepath.Clean(out)
	}
	taken := map[string]bool{}
	for _, f := range files {
		stem := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		var dir, suffix string
		switch {
		case isDir:
			dir, suffix = plan.dir, ".jpg"
		case out != "":
			plan.file = out
			plan.dsts = append(plan.dsts, out)
			continue
		default:
			dir, suffix = filepath.Dir(f), ".norm.jpg"
		}
		dst := filepath.Join(dir, stem+suffix)
		for i := 2; taken[outputKey(dst)]; i++ {
			dst = filepath.Join(dir, stem+"-"+strconv.Itoa(i)+suffix)
		}
		taken[outputKey(dst)] = true
		plan.dsts = append(plan.dsts, dst)
	}
	return plan, nil
}

// outputKey compares output paths as case-insensitive file systems (macOS,
// Windows) do, so photo.jpg and Photo.jpg never share a file.
func outputKey(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return strings.ToLower(filepath.Clean(p))
}

// checkOutputs refuses, before any work, outputs that would replace an
// input (always) or an existing file (unless force).
func checkOutputs(plan outputPlan, files []string, force bool) error {
	inputs := map[string]string{}
	var inputInfos []os.FileInfo
	for _, f := range files {
		inputs[outputKey(f)] = f
		if fi, err := os.Stat(f); err == nil {
			inputInfos = append(inputInfos, fi)
		}
	}
	var replaceInput, exist []string
	for _, dst := range plan.dsts {
		fi, err := os.Stat(dst)
		if err != nil {
			if _, ok := inputs[outputKey(dst)]; ok {
				replaceInput = append(replaceInput, dst)
			}
			continue
		}
		same := false
		for _, in := range inputInfos {
			if os.SameFile(fi, in) {
				same = true
				break
			}
		}
		switch {
		case same:
			replaceInput = append(replaceInput, dst)
		case fi.IsDir():
			exist = append(exist, dst+" (a directory)")
		case !force:
			exist = append(exist, dst)
		}
	}
	if len(replaceInput) > 0 {
		return &usageError{what: "refusing to replace an input with its output (choose another -o)", problems: replaceInput}
	}
	if len(exist) > 0 {
		return &usageError{what: "refusing to replace files that exist (nothing was written; --force replaces them)", problems: exist}
	}
	return nil
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
