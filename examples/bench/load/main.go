// Command load plays many GPs at once against the reference server
// (examples/server) backed by Redis and an S3 server, with the ALEX
// simulator answering slowly, and reports what they saw.
//
// Each simulated GP launches for its own patient (POST /api/launch with an
// Evolution launch pair the simulator issued), opens the desktop event
// stream (GET /api/events), issues a handoff and claims it as a phone, uploads
// the photos from the phone, edits each photo's metadata and commits. The
// report gives accepted uploads, upload and upload-to-desktop-event latency
// (p50/p99), commit outcomes, the server's peak RSS and CPU time, and checks
// in the simulator that every accepted photo became exactly one Media for its
// GP's patient. It exits non-zero when that check or any upload or commit fails.
//
// By default two server instances share Redis and S3, as behind a load
// balancer: each GP's desktop talks to one and its phone to the other, so
// every upload reaches the desktop through Redis (-instances 1 for one).
// Each runs with MEMORY_LIMIT_MB=160, as it would in a 200 MiB container
// (-memory-limit-mb 0 leaves Go's default): the live heap under 100 GPs
// is about 100 MB (the uploads in flight), and without a limit Go's
// collector lets the heap reach twice that before it runs.
//
// The program starts the simulator itself on a loopback port, builds and
// starts the servers as child processes pointed at it (so each server's
// memory can be read from /proc), and stops them at the end. Redis keys go under a
// fresh prefix and blobs into a fresh bucket, both removed afterwards.
//
//	go run ./examples/bench/load                           100 GPs x 5 photos of 1 MiB, two instances
//	go run ./examples/bench/load -gps 20 -latency 0s-0s    a quick smoke run
//
// Redis and S3 are found as the tests find them: TEST_REDIS_URL (default
// redis://127.0.0.1:6379/0) and TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY,
// TEST_S3_SECRET_KEY, TEST_S3_REGION (scripts/lib.sh ensure_s3 exports them).
// Without TEST_S3_ENDPOINT the server keeps blobs in a temporary directory.
// Everything listens on 127.0.0.1 only; the run is bounded by -timeout.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/examples/bench/internal/photo"
)

type options struct {
	gps, photos int
	instances   int
	memLimitMB  int
	photoKiB    int
	latMin      time.Duration
	latMax      time.Duration
	timeout     time.Duration
	eventWait   time.Duration
	out         string
	serverBin   string
	redisURL    string
	s3          s3Config
	keep        bool
}

type s3Config struct{ endpoint, access, secret, region string }

func main() {
	log.SetFlags(0)
	log.SetPrefix("load: ")
	var o options
	var lat string
	flag.IntVar(&o.gps, "gps", 100, "simulated GPs, all at once")
	flag.IntVar(&o.photos, "photos", 5, "photos each GP uploads")
	flag.IntVar(&o.instances, "instances", 2, "server instances sharing Redis and S3; each GP's phone uses a different one from its desktop")
	flag.IntVar(&o.memLimitMB, "memory-limit-mb", 160, "each server's MEMORY_LIMIT_MB (GOMEMLIMIT; the decode budget is half of it), as in a 200 MiB container; 0 leaves it unset")
	flag.IntVar(&o.photoKiB, "photo-kib", 1024, "approximate size of each photo (KiB)")
	flag.StringVar(&lat, "latency", "1s-3s", "ALEX simulator latency per request, min-max (uniform)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.eventWait, "event-wait", 30*time.Second, "how long a GP waits for an upload's image.added")
	flag.StringVar(&o.out, "out", "bench/out/load.txt", "report file (also printed); empty for none")
	flag.StringVar(&o.serverBin, "server", "", "server binary (default: go build ./examples/server into a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the Redis keys and the bucket")
	flag.Parse()
	var err error
	if o.latMin, o.latMax, err = parseLatency(lat); err != nil {
		log.Fatal(err)
	}
	if o.gps < 1 || o.photos < 1 || o.photoKiB < 8 || o.instances < 1 {
		log.Fatal("-gps, -photos and -instances must be at least 1, -photo-kib at least 8")
	}
	o.redisURL = envOr("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	o.s3 = s3Config{os.Getenv("TEST_S3_ENDPOINT"), os.Getenv("TEST_S3_ACCESS_KEY"), os.Getenv("TEST_S3_SECRET_KEY"), envOr("TEST_S3_REGION", "us-east-1")}

	if o.instances > 1 && o.s3.endpoint == "" {
		log.Fatal("-instances above 1 needs TEST_S3_ENDPOINT: instances share blobs through S3 (scripts/lib.sh ensure_s3 starts one)")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseLatency(s string) (lo, hi time.Duration, err error) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		b = a
	}
	if lo, err = time.ParseDuration(a); err == nil {
		hi, err = time.ParseDuration(b)
	}
	if err != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("-latency %q: want min-max durations such as 1s-3s", s)
	}
	return lo, hi, nil
}

// testPatients returns n fictional patients with valid test NHIs (the ZZZ
// range), derived from n alone.
func testPatients(n int) []alextest.Patient {
	out := make([]alextest.Patient, 0, n)
	for i := 0; len(out) < n && i < 10000; i++ {
		nhi := fmt.Sprintf("ZZZ%04d", i)
		if !alex.ValidNHI(nhi) {
			continue
		}
		out = append(out, alextest.Patient{NHI: nhi, Family: "Loadtest", Given: "Patient " + strconv.Itoa(len(out)+1), BirthDate: "1970-01-01", Gender: "unknown"})
	}
	return out
}

func run(ctx context.Context, o options) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	log.Printf("generating %d photos of about %d KiB", o.photos, o.photoKiB)
	photos, err := photo.Make(o.photos, o.photoKiB<<10)
	if err != nil {
		return false, err
	}
	patients := testPatients(o.gps)
	if len(patients) < o.gps {
		return false, fmt.Errorf("only %d test NHIs available", len(patients))
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false, err
	}
	sim := alextest.NewServer(alextest.WithListener(ln), alextest.WithPatients(patients...))
	defer sim.Close()
	simPatients := sim.Patients() // with the ids the simulator derived
	jitterDone := jitterLatency(ctx, sim, o.latMin, o.latMax)
	defer jitterDone()

	tag, secret := randomHex(6), randomHex(32)
	if !o.keep {
		defer cleanup(o, tag)
	}
	bin := o.serverBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "bench-load-bin-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "server")
		log.Printf("building ./examples/server")
		b := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/server")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return false, fmt.Errorf("building the server: %w", err)
		}
	}
	// One after the other: the first creates the bucket.
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	for i := range o.instances {
		srv, err := startServer(ctx, o, bin, sim, tag, secret, i)
		if err != nil {
			return false, err
		}
		servers = append(servers, srv)
	}
	transport := &http.Transport{MaxIdleConns: 4 * o.gps, MaxIdleConnsPerHost: 4 * o.gps, IdleConnTimeout: 30 * time.Second}
	clients := make([]*client, len(servers))
	for i, s := range servers {
		clients[i] = &client{base: s.url + "/api", http: &http.Client{Transport: transport}}
	}
	res := newResults()
	providers := alextest.DefaultPractitioners()
	log.Printf("%d GPs start", o.gps)
	began := time.Now()
	var wg gosync.WaitGroup
	for i := range o.gps {
		g := &gp{n: i, c: clients[i%len(clients)], phone: clients[(i+1)%len(clients)], sim: sim, patient: simPatients[i], provider: providers[i%len(providers)].ID,
			photos: photos, eventWait: o.eventWait, res: res}
		wg.Go(func() { g.run(ctx) })
	}
	wg.Wait()
	wall := time.Since(began)
	log.Printf("GPs done in %s", wall.Round(time.Millisecond))

	info := runInfo{gps: o.gps, photos: o.photos, photoBytes: avgLen(photos), instances: len(servers), memLimitMB: o.memLimitMB,
		latency: fmt.Sprintf("%s-%s", o.latMin, o.latMax), wall: wall, tokenRequests: sim.TokenRequests()}
	for _, s := range servers {
		info.peakRSSKiB = append(info.peakRSSKiB, s.peakRSS())
	}
	for _, s := range servers {
		info.serverCPU += s.stop()
	}
	res.mu.Lock()
	mc := checkMedia(sim.Media(), res.images)
	res.mu.Unlock()

	var buf bytes.Buffer
	writeReport(&buf, info, res, mc)
	os.Stdout.Write(buf.Bytes())
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
			return false, err
		}
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	return mc.ok(res.accepted) && res.accepted == o.gps*o.photos && res.outcomes["committed"] == res.accepted, nil
}

func avgLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n / len(bs)
}

// jitterLatency makes every simulated ALEX request take between lo and hi:
// a fixed delay before acting plus a reply delay redrawn every 100 ms.
func jitterLatency(ctx context.Context, sim *alextest.Server, lo, hi time.Duration) (stop func()) {
	sim.SetLatency(lo)
	if hi == lo {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := mrand.New(mrand.NewPCG(1, 2))
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			sim.SetReplyLatency(time.Duration(rng.Int64N(int64(hi - lo))))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// checkMedia matches the simulator's Media against the accepted images: the
// identifier value is the image id, the subject the GP's patient.
func checkMedia(all []fhir.Media, images map[string]string) mediaCheck {
	mc := mediaCheck{media: len(all)}
	count := map[string]int{}
	for _, m := range all {
		var img string
		for _, id := range m.Identifier {
			if id.Value != nil {
				if _, ok := images[*id.Value]; ok {
					img = *id.Value
				}
			}
		}
		if img == "" {
			mc.stray++
			continue
		}
		count[img]++
		if m.Subject == nil || m.Subject.Reference == nil || !strings.HasSuffix(*m.Subject.Reference, "Patient/"+images[img]) {
			mc.wrongPatient++
		}
	}
	for img := range images {
		switch count[img] {
		case 0:
			mc.missing++
		case 1:
			mc.exactlyOnce++
		default:
			mc.duplicated++
		}
	}
	return mc
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// server is the reference server running as a child process.
type server struct {
	cmd  *exec.Cmd
	url  string
	once gosync.Once
	cpu  time.Duration
	dir  string
}

// startServer starts instance n of the server binary on a free loopback
// port, pointed at the simulator, Redis and S3 (every instance with the
// same prefix, bucket and session secret, as behind a load balancer), and
// waits until it answers /api/healthz.
func startServer(ctx context.Context, o options, bin string, sim *alextest.Server, tag, sessionSecret string, n int) (*server, error) {
	dir, err := os.MkdirTemp("", "bench-load-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	addr, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	id, secret, scope := sim.Credentials()
	env := append(os.Environ(),
		"LISTEN_ADDR="+addr,
		"LOG_LEVEL=warn",
		"ALEX_BASE_URL="+sim.BaseURL(),
		"ALEX_TOKEN_URL="+sim.TokenURL(),
		"ALEX_CLIENT_ID="+id,
		"ALEX_CLIENT_SECRET="+secret,
		"ALEX_SCOPE="+scope,
		"ALEX_FACILITY_ID="+sim.Facility(),
		"REDIS_URL="+o.redisURL,
		"REDIS_PREFIX=bench-load-"+tag+":",
		"SESSION_SECRET="+sessionSecret,
		"MAX_IMAGES="+strconv.Itoa(max(30, o.photos)),
		// Every simulated GP launches from loopback, so the per-client
		// launch limit and the session caps are raised to the load's size.
		"LAUNCH_RATE_PER_CLIENT="+strconv.Itoa(max(30, 2*o.gps)),
		"LAUNCH_RATE_TOTAL="+strconv.Itoa(max(600, 2*o.gps)),
		"MAX_SESSIONS_PER_PRACTITIONER="+strconv.Itoa(max(20, o.gps)),
		"MAX_SESSIONS_PER_FACILITY="+strconv.Itoa(max(500, o.gps)),
	)
	if o.memLimitMB > 0 {
		env = append(env, "MEMORY_LIMIT_MB="+strconv.Itoa(o.memLimitMB))
	}
	if o.s3.endpoint != "" {
		env = append(env, "S3_ENDPOINT="+o.s3.endpoint, "S3_BUCKET=bench-load-"+tag,
			"S3_ACCESS_KEY="+o.s3.access, "S3_SECRET_KEY="+o.s3.secret, "S3_REGION="+o.s3.region)
	} else {
		env = append(env, "BLOB_DIR="+filepath.Join(dir, "blobs"))
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(o.outOr()), fmt.Sprintf("server%d.log", n+1)))
	if err != nil {
		logf, _ = os.Create(filepath.Join(dir, "server.log"))
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.url = "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.url + "/api/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, fmt.Errorf("the server did not become ready (see %s)", logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (o options) outOr() string {
	if o.out == "" {
		return filepath.Join(os.TempDir(), "load.txt")
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return filepath.Join(os.TempDir(), "load.txt")
	}
	return o.out
}

// peakRSS reads the server's resident-set high-water mark (VmHWM) in KiB,
// or 0 when /proc does not have it.
func (s *server) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// stop sends SIGTERM, waits (SIGKILL after 20 s) and returns the process's
// CPU time. Safe to call more than once.
func (s *server) stop() time.Duration {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
		if ps := s.cmd.ProcessState; ps != nil {
			s.cpu = ps.UserTime() + ps.SystemTime()
		}
		os.RemoveAll(s.dir)
	})
	return s.cpu
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cleanup removes the run's Redis keys (by its own prefix; never FLUSHDB)
// and its bucket.
func cleanup(o options, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ropt, err := redis.ParseURL(o.redisURL); err == nil {
		rdb := redis.NewClient(ropt)
		iter := rdb.Scan(ctx, 0, "bench-load-"+tag+":*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			rdb.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
		_ = rdb.Close()
	}
	if o.s3.endpoint == "" {
		return
	}
	u, err := url.Parse(o.s3.endpoint)
	if err != nil {
		return
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(o.s3.access, o.s3.secret, ""),
		Secure: u.Scheme == "https", Region: o.s3.region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return
	}
	bucket := "bench-load-" + tag
	for err := range mc.RemoveObjects(ctx, bucket, mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}), minio.RemoveObjectsOptions{}) {
		_ = err
	}
	if err := mc.RemoveBucket(ctx, bucket); err != nil && !errors.Is(err, io.EOF) {
		log.Printf("bucket %s not removed: %v", bucket, err)
	}
}
