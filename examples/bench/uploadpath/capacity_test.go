package uploadpath_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/examples/bench/internal/photo"
	"github.com/clinicpro/clinicalimages/session"
)

// capacityWorkers is how many uploads run at once: enough to keep every
// core busy while others wait on Redis and S3 (CAPACITY_WORKERS overrides).
func capacityWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("CAPACITY_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 8 * runtime.GOMAXPROCS(0)
}

// desktopPhoto is a 12 MP camera JPEG (4032x3024, q90), which the upload
// path decodes at a DCT-domain scale, shrinks to 2048 px and re-encodes.
func desktopPhoto(tb testing.TB) []byte {
	tb.Helper()
	b, err := photo.Camera(7, 4032, 3024, 90)
	require.NoError(tb, err)
	return b
}

// BenchmarkCapacity drives b.N uploads through the real upload path
// (Service.AcceptUpload: normalise, s3blob PUT, redisstore update,
// redisnotify publish, the desktop's subscription receiving image.added)
// from capacityWorkers() phones at once, so the process saturates, and
// reports:
//
//   - uploads/s: uploads completed per second of wall time;
//   - cpu-ms/upload: this process's user+system CPU per upload, so one
//     core sustains 1000/cpu-ms uploads a second (upl/core-s);
//   - cpu-util: CPU used / (wall x GOMAXPROCS); near 1 means the Go process
//     was the bottleneck, lower means it waited on Redis or S3 (which share
//     these cores);
//   - redis-ops/upload, s3-req/upload: commands and requests counted at the
//     clients during the run (subscribers' XREADs included);
//   - redis-cpu-ms/upload, s3-cpu-ms/upload: CPU of the redis-server and
//     versitygw processes over the run per upload (an upper bound: they may
//     serve other runs on the machine).
//
// "phone" is the compliant ~900 KiB JPEG (passthrough), "desktop12MP" the
// 12 MP photo (re-encoded). Sessions, handoffs and subscriptions are made
// before the measurement.
func BenchmarkCapacity(b *testing.B) {
	r := newRig(b)
	desk := desktopPhoto(b)
	for _, kind := range []struct {
		name string
		body []byte
	}{{"phone", r.photo}, {"desktop12MP", desk}} {
		b.Run(kind.name, func(b *testing.B) {
			s := r.service(b)
			workers := capacityWorkers()
			total := b.N
			// Each worker's uploads, and a phone session for every
			// imagesPerSession of them, made up front.
			per := make([]int, workers)
			for i := range total {
				per[i%workers]++
			}
			phones := make([][]*phone, workers)
			for w := range workers {
				for k := 0; k < per[w]; k += imagesPerSession {
					phones[w] = append(phones[w], s.phone(b))
				}
			}
			redis0, s3snap := r.redisOps.snapshot(), r.s3Ops.snapshot()
			rcpu0, scpu0 := commandCPU("redis-server"), commandCPU("versitygw")
			var failed atomic.Int32
			var firstErr atomic.Value
			b.ResetTimer()
			cpu0, start := processCPU(), time.Now()
			var wg gosync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for k := range per[w] {
						if _, err := s.upload(b.Context(), phones[w][k/imagesPerSession], kind.body); err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
							return
						}
					}
				})
			}
			wg.Wait()
			wall, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d workers failed: %v", n, firstErr.Load())
			}
			_, rops := r.redisOps.since(redis0)
			s3m, sops := r.s3Ops.since(s3snap)
			rcpu, scpu := commandCPU("redis-server")-rcpu0, commandCPU("versitygw")-scpu0
			// End the sessions: the Service allows 20 live ones per practitioner.
			for _, ps := range phones {
				for _, p := range ps {
					_ = p.sub.Close()
					_ = s.svc.EndSession(b.Context(), p.session)
				}
			}
			n := float64(total)
			b.ReportMetric(n/wall.Seconds(), "uploads/s")
			b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms/upload")
			b.ReportMetric(n/cpu.Seconds(), "upl/core-s")
			b.ReportMetric(cpu.Seconds()/(wall.Seconds()*float64(runtime.GOMAXPROCS(0))), "cpu-util")
			b.ReportMetric(float64(rops)/n, "redis-ops/upload")
			b.ReportMetric(float64(sops)/n, "s3-req/upload")
			b.ReportMetric(float64(s3m["PUT"])/n, "s3-put/upload")
			b.ReportMetric(float64(rcpu.Milliseconds())/n, "redis-cpu-ms/upload")
			b.ReportMetric(float64(scpu.Milliseconds())/n, "s3-cpu-ms/upload")
			b.ReportMetric(float64(workers), "workers")
		})
	}
}

// TestOpsPerUploadAndCommit counts, at the clients, the Redis commands, S3
// requests and ALEX requests of one GP's work through the Service, one
// step at a time, with nothing else on the rig: one phone upload (of each
// kind), one metadata edit, and one commit of `photos` images. The figures
// feed the capacity table in examples/bench/README.md; bench/run.sh prints
// the "ops:" lines. The test fails if a step sends none of what it must.
func TestOpsPerUploadAndCommit(t *testing.T) {
	const photos = 5
	r := newRig(t)
	s := r.service(t)
	ph := s.phone(t)
	// The subscription's blocking reads run in the background; count them
	// with the upload they deliver, as a desktop's stream would.
	step := func(name string, f func()) (redisN, s3N, alexN int) {
		rs, ss, as := r.redisOps.snapshot(), r.s3Ops.snapshot(), r.alexOps.snapshot()
		f()
		time.Sleep(50 * time.Millisecond) // let a subscriber's next XREAD return
		rm, rn := r.redisOps.since(rs)
		sm, sn := r.s3Ops.since(ss)
		am, an := r.alexOps.since(as)
		t.Logf("ops: %-22s redis=%d [%s] s3=%d [%s] alex=%d [%s]", name, rn, fmtOps(rm), sn, fmtOps(sm), an, fmtOps(am))
		return rn, sn, an
	}
	var ids []string
	for i := range photos {
		body := r.photo
		name := "upload phone"
		if i == photos-1 {
			body, name = desktopPhoto(t), "upload desktop12MP"
		}
		rn, sn, _ := step(name, func() {
			id, err := s.upload(t.Context(), ph, body)
			require.NoError(t, err)
			ids = append(ids, id)
		})
		assert.Positive(t, rn, "an upload writes the session and publishes")
		assert.Positive(t, sn, "an upload stores a blob")
	}
	for i, id := range ids {
		rn, _, _ := step("edit metadata", func() {
			_, err := s.svc.UpdateImage(t.Context(), ph.session, id,
				session.Clinical{BodySite: "367577003", Laterality: "7771000", Title: fmt.Sprintf("capacity %d", i)}, session.Consent{})
			require.NoError(t, err)
		})
		assert.Positive(t, rn)
	}
	_, sn, an := step(fmt.Sprintf("commit %d photos", photos), func() {
		res, err := s.svc.Commit(t.Context(), ph.session, nil)
		require.NoError(t, err)
		require.Equal(t, photos, res.Committed(), "%+v", res.Images)
	})
	assert.GreaterOrEqual(t, an, photos, "one ALEX create per photo at least")
	assert.GreaterOrEqual(t, sn, photos, "every blob read for the commit")
}
