package clinicalimages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/redisstore"
)

// TestLaunchGuardsAcrossInstances: three instances sharing Redis. One
// launch pair and one launch token, each sent to every instance at once,
// start one session each, and the per-practitioner cap holds across them.
func TestLaunchGuardsAcrossInstances(t *testing.T) {
	t.Parallel()
	rdb, prefix := sharedRedis(t)
	sim := alextest.NewTestServer(t)
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	var srvs []string
	for range 3 {
		store, err := redisstore.New(rdb, redisstore.WithPrefix(prefix))
		require.NoError(t, err)
		blobs, err := memory.NewBlobStore()
		require.NoError(t, err)
		svc, err := ci.New(alexClient(t, sim, discardLogger()), ci.WithStore(store), ci.WithBlobStore(blobs), ci.WithSecret(secret),
			ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Secret: hsKey}), ci.WithLimits(ci.Limits{MaxSessionsPerPractitioner: 3}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = svc.Close() })
		h, err := svc.Handler(ci.HTTPOptions{InsecureCookies: true})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv.URL)
	}
	send := func(url string, body any) int {
		j, _ := json.Marshal(body)
		resp, err := http.Post(url+"/launch", "application/json", bytes.NewReader(j))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	race := func(body any) (created int32) {
		var n atomic.Int32
		var wg gosync.WaitGroup
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if send(srvs[i%len(srvs)], body) == http.StatusCreated {
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		return n.Load()
	}
	p := sim.Patients()[0]
	lc, sig := sim.IssueLaunch(p.ID, sim.Facility(), "prac-pair")
	assert.Equal(t, int32(1), race(map[string]string{"context": lc, "signature": sig}), "one session from one pair across instances")

	now := time.Now()
	tok := signToken(t, launchClaims("clinicpro-bff", now, now.Add(5*time.Minute)))
	assert.Equal(t, int32(1), race(map[string]string{"token": tok}), "one session from one token across instances")

	// prac-1 already has one session (the token's); two more fit, then the
	// cap holds whichever instance is asked.
	var statuses []int
	for i := range 4 {
		c := launchClaims("clinicpro-bff", now, now.Add(5*time.Minute))
		statuses = append(statuses, send(srvs[i%len(srvs)], map[string]string{"token": signToken(t, c)}))
	}
	assert.Equal(t, []int{201, 201, 429, 429}, statuses, "three live sessions per practitioner across instances")
}

// sharedRedis is a client of the test Redis and a key prefix of this
// test's own, whose keys are deleted when the test ends: what instances
// sharing one Redis are given.
func sharedRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := "clinicalimages-test:" + testenv.Prefix(t) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	return rdb, prefix
}
