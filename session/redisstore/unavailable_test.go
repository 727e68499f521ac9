package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// downClient is a client that gives up quickly: no retries, short timeouts.
func downClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DialerRetries: 1, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestUnavailableClosedPort(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	storetest.TestStoreUnavailable(t, func(t *testing.T, now func() time.Time) session.Store {
		st, err := redisstore.New(downClient(t, addr), redisstore.WithClock(now))
		require.NoError(t, err)
		return st
	})
}

// TestUnavailableServerStopped: a Store whose Redis stops reports it on its
// pooled connection and on new ones, and recovers when Redis is back.
func TestUnavailableServerStopped(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	st, err := redisstore.New(downClient(t, srv.Addr))
	require.NoError(t, err)
	now := time.Now()
	s := &session.Session{ID: session.NewID(), CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour),
		Launch: session.Launch{PatientID: "p-1", NHI: "ZZZ0016"}}
	require.NoError(t, st.Create(t.Context(), s))
	_, err = st.Get(t.Context(), s.ID)
	require.NoError(t, err)

	srv.Kill()
	_, err = st.Get(t.Context(), s.ID) // the pooled connection is dead
	require.ErrorIs(t, err, session.ErrUnavailable)
	assert.NotContains(t, err.Error(), "ZZZ0016")
	_, err = st.Update(t.Context(), s.ID, func(*session.Session) error { return nil })
	require.ErrorIs(t, err, session.ErrUnavailable)
	_, err = st.Fail(t.Context(), "k", time.Minute)
	require.ErrorIs(t, err, session.ErrUnavailable)

	storetest.TestStoreUnavailable(t, func(t *testing.T, now func() time.Time) session.Store {
		st, err := redisstore.New(downClient(t, srv.Addr), redisstore.WithClock(now))
		require.NoError(t, err)
		return st
	})

	srv.Start() // same port, empty (no persistence)
	_, err = st.Get(t.Context(), s.ID)
	require.ErrorIs(t, err, session.ErrNotFound, "the same Store works again once Redis is back")
	assert.NotErrorIs(t, err, session.ErrUnavailable)
	require.NoError(t, st.Create(t.Context(), s.Clone()))
}

// TestReadOnlyReplica: a replica (here of a master that is not there)
// refuses writes with READONLY, and with replica-serve-stale-data off
// refuses reads with MASTERDOWN: both are outages to retry, not bugs.
func TestReadOnlyReplica(t *testing.T) {
	t.Parallel()
	master := strconv.Itoa(testenv.FreePort(t))
	now := time.Now()
	rec := func() *session.Session {
		return &session.Session{ID: session.NewID(), CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)}
	}

	stale := testenv.StartRedis(t, "--replicaof", "127.0.0.1", master)
	st, err := redisstore.New(downClient(t, stale.Addr))
	require.NoError(t, err)
	err = st.Create(t.Context(), rec())
	require.ErrorIs(t, err, session.ErrUnavailable)
	assert.True(t, redis.IsReadOnlyError(err), "Redis's own error is kept: %v", err)
	_, err = st.Fail(t.Context(), "k", time.Minute)
	require.ErrorIs(t, err, session.ErrUnavailable)
	_, err = st.Get(t.Context(), session.NewID())
	require.ErrorIs(t, err, session.ErrNotFound, "reads are still served")
	assert.NotErrorIs(t, err, session.ErrUnavailable)

	strict := testenv.StartRedis(t, "--replicaof", "127.0.0.1", master, "--replica-serve-stale-data", "no")
	st, err = redisstore.New(downClient(t, strict.Addr))
	require.NoError(t, err)
	_, err = st.Get(t.Context(), session.NewID())
	require.ErrorIs(t, err, session.ErrUnavailable)
	assert.True(t, redis.IsMasterDownError(err), "Redis's own error is kept: %v", err)
}

// TestWrongTypeIsNotAnOutage: a key holding something else is a bug (or
// another application on our prefix), not an outage.
func TestWrongTypeIsNotAnOutage(t *testing.T) {
	t.Parallel()
	c := client(t)
	p := prefix(t, c)
	st, err := redisstore.New(c, redisstore.WithPrefix(p))
	require.NoError(t, err)
	id := session.NewID()
	require.NoError(t, c.Set(t.Context(), p+"session:"+id, "a string", time.Minute).Err())
	_, err = st.Get(t.Context(), id)
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable)
	assert.NotErrorIs(t, err, session.ErrNotFound)
}

// fakeRedis answers every command with one error reply, as a server that is
// loading, failing over or out of memory does.
func fakeRedis(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serveErrors(c, reply) })
		}
	})
	return l.Addr().String()
}

// serveErrors reads RESP commands (arrays of bulk strings) and answers each
// with -reply.
func serveErrors(c net.Conn, reply string) {
	defer func() { _ = c.Close() }()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
		if !strings.HasPrefix(line, "*") || err != nil {
			return
		}
		for range n {
			head, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(head, "$") {
				return
			}
			size, err := strconv.Atoi(strings.TrimSpace(head[1:]))
			if err != nil {
				return
			}
			if _, err := r.Discard(size + 2); err != nil {
				return
			}
		}
		if _, err := io.WriteString(c, "-"+reply+"\r\n"); err != nil {
			return
		}
	}
}

// TestServerErrorReplies: the replies that mean "retry later" are
// ErrUnavailable; those that mean a bug or a misconfiguration are not.
func TestServerErrorReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reply  string
		outage bool
	}{
		{"LOADING Redis is loading the dataset in memory", true},
		{"READONLY You can't write against a read only replica.", true},
		{"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", true},
		{"CLUSTERDOWN The cluster is down", true},
		{"TRYAGAIN Multiple keys request during rehashing of slot", true},
		{"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.", true},
		{"OOM command not allowed when used memory > 'maxmemory'.", true},
		{"ERR max number of clients reached", true},
		{"NOREPLICAS Not enough good replicas to write.", true},
		{"WRONGTYPE Operation against a key holding the wrong kind of value", false},
		{"NOAUTH Authentication required.", false},
		{"NOPERM this user has no permissions to run the 'hget' command", false},
		{"ERR unknown command 'hget'", false},
	}
	for _, tc := range tests {
		t.Run(strings.Fields(tc.reply)[0]+"/"+strings.Fields(tc.reply)[1], func(t *testing.T) {
			t.Parallel()
			st, err := redisstore.New(downClient(t, fakeRedis(t, tc.reply)))
			require.NoError(t, err)
			_, err = st.Get(t.Context(), session.NewID())
			require.Error(t, err)
			assert.Equal(t, tc.outage, errors.Is(err, session.ErrUnavailable), "%v", err)
			assert.Contains(t, err.Error(), tc.reply, "Redis's reply is kept")
			_, err = st.Fail(t.Context(), "k", time.Minute)
			require.Error(t, err)
			assert.Equal(t, tc.outage, errors.Is(err, session.ErrUnavailable), "scripts too: %v", err)
		})
	}
}

// TestHungServer: a server that accepts but never answers trips the
// client's read timeout, which is an outage; the caller's own deadline is
// not.
func TestHungServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() })
		}
	})
	c := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, DisableIdentity: true,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() }) // closes the server side's copies too
	st, err := redisstore.New(c)
	require.NoError(t, err)

	_, err = st.Get(t.Context(), session.NewID())
	require.ErrorIs(t, err, session.ErrUnavailable)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())

	c2 := redis.NewClient(&redis.Options{Addr: l.Addr().String(), MaxRetries: -1, DisableIdentity: true,
		ReadTimeout: time.Minute, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c2.Close() })
	st2, err := redisstore.New(c2)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = st2.Get(ctx, session.NewID())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "the caller's deadline is the caller's")
}
