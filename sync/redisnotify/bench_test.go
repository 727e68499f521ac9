package redisnotify_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
)

// BenchmarkPublishToReceive measures publish-to-receive latency through
// redisnotify across two instances (publish on A, a subscriber on B: the
// phone-to-desktop path when they hit different servers) beside the floor
// any Redis design has, a raw go-redis PUBLISH received on a subscribed
// connection, interleaved in the same run against the same Redis. It
// reports p50 and p99 of both and their ratios:
//
//	go test -run '^$' -bench PublishToReceive -benchtime 2000x ./sync/redisnotify/
func BenchmarkPublishToReceive(b *testing.B) {
	rdb := client(b)
	prefix := testenv.Prefix(b)
	cleanupKeys(b, rdb, prefix)
	ctx := context.Background()
	a := newHub(b, rdb, prefix)
	hb := newHub(b, rdb, prefix)
	session := notifytest.Session(b)
	sub, err := hb.Subscribe(ctx, session, 0)
	require.NoError(b, err)
	b.Cleanup(func() { _ = sub.Close() })

	rawCh := prefix + ":raw"
	ps := rdb.Subscribe(ctx, rawCh)
	b.Cleanup(func() { _ = ps.Close() })
	_, err = ps.Receive(ctx)
	require.NoError(b, err)
	rawMsgs := ps.Channel()
	payload := `{"id":1,"session":"` + session + `","type":"image.added","image":"img"}`

	hub := make([]time.Duration, 0, b.N)
	raw := make([]time.Duration, 0, b.N)
	ev := sync.Event{Session: session, Type: sync.ImageAdded, Image: "img"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		require.NoError(b, rdb.Publish(ctx, rawCh, payload).Err())
		<-rawMsgs
		raw = append(raw, time.Since(start))

		start = time.Now()
		_, err := a.Publish(ctx, ev)
		require.NoError(b, err)
		got := <-sub.Events()
		hub = append(hub, time.Since(start))
		if got.Type != sync.ImageAdded {
			b.Fatalf("unexpected %s event", got.Type)
		}
	}
	b.StopTimer()
	rp50, rp99 := percentiles(raw)
	hp50, hp99 := percentiles(hub)
	b.ReportMetric(float64(hp50.Microseconds()), "hub-p50-µs")
	b.ReportMetric(float64(hp99.Microseconds()), "hub-p99-µs")
	b.ReportMetric(float64(rp50.Microseconds()), "raw-p50-µs")
	b.ReportMetric(float64(rp99.Microseconds()), "raw-p99-µs")
	b.ReportMetric(float64(hp50)/float64(rp50), "p50-ratio")
	b.ReportMetric(float64(hp99)/float64(rp99), "p99-ratio")
	b.Logf("n=%d  redisnotify A->B p50 %v p99 %v | raw PUBLISH->receive p50 %v p99 %v | ratio p50 %.2fx p99 %.2fx",
		b.N, hp50, hp99, rp50, rp99, float64(hp50)/float64(rp50), float64(hp99)/float64(rp99))
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}
