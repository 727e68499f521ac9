package natsnotify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
)

// BenchmarkPublishToReceive measures publish-to-receive latency through
// natsnotify across two instances (publish on A, subscriber on B, separate
// connections) beside a raw core NATS publish received by a subscriber on
// the other connection, interleaved in the same run on the same server:
//
//	go test -run '^$' -bench PublishToReceive -benchtime 2000x ./sync/natsnotify/
func BenchmarkPublishToReceive(b *testing.B) {
	ncA, ncB := conn(b), conn(b)
	stream, prefix := names(b, ncA)
	a := newHub(b, ncA, stream, prefix)
	hb := newHub(b, ncB, stream, prefix)
	session := notifytest.Session(b)
	sub, err := hb.Subscribe(b.Context(), session, 0)
	require.NoError(b, err)
	b.Cleanup(func() { _ = sub.Close() })

	rawMsgs := make(chan *nats.Msg, 1)
	rawSub, err := ncB.ChanSubscribe(prefix+".raw", rawMsgs)
	require.NoError(b, err)
	b.Cleanup(func() { _ = rawSub.Unsubscribe() })
	require.NoError(b, ncB.Flush())
	payload := []byte(`{"id":1,"session":"` + session + `","type":"image.added","image":"img"}`)

	hub := make([]time.Duration, 0, b.N)
	raw := make([]time.Duration, 0, b.N)
	ev := sync.Event{Session: session, Type: sync.ImageAdded, Image: "img"}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		require.NoError(b, ncA.Publish(prefix+".raw", payload))
		<-rawMsgs
		raw = append(raw, time.Since(start))

		start = time.Now()
		_, err := a.Publish(b.Context(), ev)
		require.NoError(b, err)
		<-sub.Events()
		hub = append(hub, time.Since(start))
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
	b.Logf("n=%d  natsnotify A->B p50 %v p99 %v | raw core NATS publish->receive p50 %v p99 %v | ratio p50 %.2fx p99 %.2fx",
		b.N, hp50, hp99, rp50, rp99, float64(hp50)/float64(rp50), float64(hp99)/float64(rp99))
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}
