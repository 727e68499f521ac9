package redisnotify_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// ourGoroutines lists goroutines running code of this module's sync
// packages (followers, the wake-up listener) or go-redis's pub/sub channel
// pump that the hub started, other than the caller.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		ours := strings.Contains(g, "clinicalimages/sync") || strings.Contains(g, "go-redis/v9.(*channel)")
		if i > 0 && ours && !strings.Contains(g, "_test.") {
			out = append(out, g)
		}
	}
	return out
}

func waitNoGoroutines(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return len(ourGoroutines()) == 0 }, 5*time.Second, 10*time.Millisecond,
		"goroutines left: %v", ourGoroutines())
}

// TestCloseLeavesNoGoroutine is not parallel: it counts goroutines, which
// only works before the package's parallel tests start.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	rdb := client(t)
	prefix := testenv.Prefix(t)
	cleanupKeys(t, rdb, prefix)
	waitNoGoroutines(t)

	h, err := redisnotify.New(t.Context(), rdb, redisnotify.WithPrefix(prefix))
	require.NoError(t, err)
	var subs []sync.Subscription
	for range 10 {
		s, err := h.Subscribe(t.Context(), notifytest.Session(t), 0)
		require.NoError(t, err)
		subs = append(subs, s)
	}
	require.GreaterOrEqual(t, len(ourGoroutines()), len(subs)+1, "followers and the listener are visible")
	require.NoError(t, h.Close())
	for _, s := range subs {
		_, open := <-s.Events()
		assert.False(t, open)
		assert.ErrorIs(t, s.Err(), sync.ErrClosed)
	}
	require.NoError(t, h.Close(), "Close is idempotent")
	waitNoGoroutines(t)
}
