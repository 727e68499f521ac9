package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/clinicpro/clinicalimages/alex"
)

// progressWanted reads --progress: auto shows bars when w is a terminal.
func progressWanted(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		f, ok := w.(*os.File)
		if !ok {
			return false, nil
		}
		fi, err := f.Stat()
		return err == nil && fi.Mode()&os.ModeCharDevice != 0, nil
	}
	return false, fmt.Errorf("--progress must be auto, always or never, not %q", mode)
}

// progress draws one bar per photo (its stage, then the bytes sent to ALEX)
// and one for the whole run. A disabled progress does nothing.
type progress struct {
	p       *mpb.Progress
	overall *mpb.Bar
}

func newProgress(ctx context.Context, w io.Writer, enabled bool, files int) *progress {
	if !enabled {
		return &progress{}
	}
	p := mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithAutoRefresh())
	overall := p.AddBar(int64(files),
		mpb.PrependDecorators(decor.Name("all photos", decor.WC{W: 24, C: decor.DindentRight}), decor.CountersNoUnit("%d / %d")),
		mpb.AppendDecorators(decor.Percentage()),
		mpb.BarPriority(1<<20), // drawn last, below the files
	)
	return &progress{p: p, overall: overall}
}

func (pr *progress) file(name string) *fileBar {
	if pr.p == nil {
		return &fileBar{}
	}
	fb := &fileBar{overall: pr.overall}
	fb.label.Store("waiting")
	fb.bar = pr.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(truncateName(name, 22), decor.WC{W: 24, C: decor.DindentRight}),
			decor.Any(func(decor.Statistics) string { return fb.label.Load().(string) }, decor.WC{W: 12, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
	)
	return fb
}

func (pr *progress) wait() {
	if pr.p != nil {
		pr.p.Wait()
	}
}

func truncateName(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// fileBar is one photo's bar. Its zero value does nothing.
type fileBar struct {
	bar     *mpb.Bar
	overall *mpb.Bar
	label   atomic.Value // string; read by mpb's render goroutine
}

func (fb *fileBar) stage(label string) {
	if fb.bar != nil {
		fb.label.Store(label)
	}
}

// content is the photo's bytes for CreateMedia, counted on the bar as they
// are sent (from zero again on a retry).
func (fb *fileBar) content(b []byte) alex.Content {
	c := alex.BytesContent(b)
	if fb.bar == nil {
		return c
	}
	fb.bar.SetTotal(int64(len(b)), false)
	return alex.Content{Size: c.Size, Open: func(context.Context) (io.ReadCloser, error) {
		fb.bar.SetCurrent(0)
		return fb.bar.ProxyReader(bytes.NewReader(b))
	}}
}

func (fb *fileBar) done(err error) {
	if fb.bar == nil {
		return
	}
	if err != nil {
		fb.label.Store("failed")
		fb.bar.Abort(false)
	} else {
		if fb.label.Load() != "skipped" {
			fb.label.Store("done")
		}
		fb.bar.SetTotal(-1, true)
	}
	fb.overall.Increment()
}
