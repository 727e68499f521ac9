package natsnotify_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
)

func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, "clinicalimages/sync") && !strings.Contains(g, "_test.") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseLeavesNoGoroutine is not parallel: it counts goroutines, which
// only works before the package's parallel tests start.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	nc := conn(t)
	stream, prefix := names(t, nc)
	require.Empty(t, ourGoroutines())
	h := newHub(t, nc, stream, prefix)
	var subs []sync.Subscription
	for range 10 {
		s, err := h.Subscribe(t.Context(), notifytest.Session(t), 0)
		require.NoError(t, err)
		subs = append(subs, s)
	}
	require.Len(t, ourGoroutines(), len(subs), "one goroutine per subscription, none of the hub's own")
	require.NoError(t, h.Close())
	for _, s := range subs {
		_, open := <-s.Events()
		assert.False(t, open)
		assert.ErrorIs(t, s.Err(), sync.ErrClosed)
	}
	require.Eventually(t, func() bool { return len(ourGoroutines()) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, h.Close(), "Close is idempotent")
}
