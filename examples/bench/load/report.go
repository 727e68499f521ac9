package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"text/tabwriter"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method, or 0 for an empty slice. ds is sorted in place.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// results collects what the simulated GPs saw. Safe for concurrent use.
type results struct {
	mu          gosync.Mutex
	launches    []time.Duration   // POST /api/launch, end to end (ALEX launch lookup included)
	uploads     []time.Duration   // phone upload request, first byte sent to response read
	eventLag    []time.Duration   // upload response read -> image.added read on the GP's stream (0 when the event came first)
	endToEnd    []time.Duration   // upload request start -> image.added read
	commits     []time.Duration   // POST /api/commit, whole request
	eventFirst  int               // image.added read before the upload's response
	accepted    int               // uploads answered 201
	rejected    map[string]int    // upload failures by status or error
	missedEvent int               // accepted uploads whose image.added never came
	outcomes    map[string]int    // commit outcome per image: committed, failed:<code>, ...
	gpErrors    map[string]int    // GP flows that stopped early, by step
	images      map[string]string // accepted image id -> the GP's patient id
}

func newResults() *results {
	return &results{rejected: map[string]int{}, outcomes: map[string]int{}, gpErrors: map[string]int{}, images: map[string]string{}}
}

func (r *results) add(f func(r *results)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// mediaCheck is the verdict on what reached the simulated ALEX.
type mediaCheck struct {
	media        int // Media resources stored
	exactlyOnce  int // accepted images with exactly one Media
	missing      int // accepted images with no Media
	duplicated   int // accepted images with more than one Media
	wrongPatient int // Media whose subject is not the image's GP's patient
	stray        int // Media naming no accepted image
}

func (m mediaCheck) ok(accepted int) bool {
	return m.exactlyOnce == accepted && m.missing == 0 && m.duplicated == 0 && m.wrongPatient == 0 && m.stray == 0
}

// runInfo is the run's configuration and machine-level figures.
type runInfo struct {
	gps, photos   int
	instances     int
	memLimitMB    int // each server's MEMORY_LIMIT_MB, 0 unset
	photoBytes    int
	latency       string
	wall          time.Duration
	peakRSSKiB    []int64 // per instance
	serverCPU     time.Duration
	tokenRequests int
}

func writeReport(w io.Writer, info runInfo, r *results, mc mediaCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := "phone and desktop on one instance"
	if info.instances > 1 {
		path = "phone on one instance, desktop on another"
	}
	fmt.Fprintf(w, "load: %d GPs x %d photos of %d KiB, ALEX latency %s, %d server instance(s) sharing Redis and S3 (%s), wall %s\n\n",
		info.gps, info.photos, info.photoBytes>>10, info.latency, info.instances, path, info.wall.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tcount\tp50\tp99\tmax\t")
	row := func(name string, ds []time.Duration) {
		d := slices.Clone(ds)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", name, len(d), ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(d, 100)))
	}
	row("launch (POST /api/launch)", r.launches)
	row("phone upload request", r.uploads)
	hop := ""
	if info.instances > 1 {
		hop = " (across instances)"
	}
	row("upload response -> image.added"+hop, r.eventLag)
	row("upload start -> image.added"+hop, r.endToEnd)
	row("commit (POST /api/commit)", r.commits)
	_ = tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	kv := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	want := info.gps * info.photos
	kv("uploads accepted", fmt.Sprintf("%d of %d", r.accepted, want))
	kv("uploads rejected", fmtCounts(r.rejected))
	kv("image.added before upload response", r.eventFirst)
	kv("image.added never seen", r.missedEvent)
	kv("commit outcomes (per image)", fmtCounts(r.outcomes))
	kv("GP flows stopped early", fmtCounts(r.gpErrors))
	kv("Media stored in simulator", mc.media)
	kv("images with exactly one Media", fmt.Sprintf("%d of %d accepted", mc.exactlyOnce, r.accepted))
	kv("missing / duplicated / wrong patient / stray", fmt.Sprintf("%d / %d / %d / %d", mc.missing, mc.duplicated, mc.wrongPatient, mc.stray))
	kv("ALEX token requests", info.tokenRequests)
	var peaks []string
	var peak int64
	for _, k := range info.peakRSSKiB {
		peaks = append(peaks, fmt.Sprintf("%.1f MiB", float64(k)/1024))
		peak = max(peak, k)
	}
	kv("server peak RSS (VmHWM), largest instance", fmt.Sprintf("%.1f MiB", float64(peak)/1024))
	kv("server peak RSS (VmHWM) per instance", strings.Join(peaks, ", "))
	limit := "unset (Go's default)"
	if info.memLimitMB > 0 {
		limit = fmt.Sprintf("%d MiB (decode budget %d MiB)", info.memLimitMB, info.memLimitMB/2)
	}
	kv("server MEMORY_LIMIT_MB", limit)
	kv("server CPU time (user+sys), all instances", info.serverCPU.Round(10*time.Millisecond))
	verdict := "PASS: every accepted photo is exactly one Media for its GP's patient"
	switch {
	case !mc.ok(r.accepted):
		verdict = "FAIL: Media do not match the accepted photos one to one"
	case r.accepted != want:
		verdict = "FAIL: not every upload was accepted"
	case r.outcomes["committed"] != r.accepted:
		verdict = "FAIL: not every accepted photo was committed"
	}
	kv("verdict", verdict)
	_ = tw.Flush()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
