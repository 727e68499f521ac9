package clinicalimages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// downStore is a memory store whose every method fails with an outage
// (as redisstore does when Redis is unreachable) while down is set.
type downStore struct {
	*memory.Store
	down atomic.Bool
}

var errRedisDown = fmt.Errorf("redisstore: %w: %w", session.ErrUnavailable, syscall.ECONNREFUSED)

func (d *downStore) fault() error {
	if d.down.Load() {
		return errRedisDown
	}
	return nil
}

func (d *downStore) Create(ctx context.Context, s *session.Session) error {
	if err := d.fault(); err != nil {
		return err
	}
	return d.Store.Create(ctx, s)
}

func (d *downStore) Get(ctx context.Context, id string) (*session.Session, error) {
	if err := d.fault(); err != nil {
		return nil, err
	}
	return d.Store.Get(ctx, id)
}

func (d *downStore) Update(ctx context.Context, id string, fn func(*session.Session) error) (*session.Session, error) {
	if err := d.fault(); err != nil {
		return nil, err
	}
	return d.Store.Update(ctx, id, fn)
}

func (d *downStore) Delete(ctx context.Context, id string) error {
	if err := d.fault(); err != nil {
		return err
	}
	return d.Store.Delete(ctx, id)
}

func (d *downStore) Failures(ctx context.Context, key string) (int64, error) {
	if err := d.fault(); err != nil {
		return 0, err
	}
	return d.Store.Failures(ctx, key)
}

func (d *downStore) Fail(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := d.fault(); err != nil {
		return 0, err
	}
	return d.Store.Fail(ctx, key, window)
}

// TestEveryEndpointReportsAStoreOutageAs503: with the session store down,
// every endpoint that needs it answers 503 storage_unavailable with
// Retry-After, never 500. The cases are keyed by the handler's own route
// list, so a new endpoint without a case fails this test.
func TestEveryEndpointReportsAStoreOutageAs503(t *testing.T) {
	t.Parallel()
	mem, err := memory.NewStore()
	require.NoError(t, err)
	store := &downStore{Store: mem}
	w := newWorldWith(t, store)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	st, img := w.call("POST", "/images", desktop, photo(t, 300, 200, 1))
	require.Equal(t, http.StatusCreated, st, img)
	imageID := img["id"].(string)
	st, h := w.call("POST", "/handoff", desktop, nil)
	require.Equal(t, http.StatusCreated, st, h)
	code := h["code"].(string)
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)

	type request struct {
		path, auth string
		body       any
	}
	cases := map[string]request{
		"POST /launch":                {"/launch", "", map[string]string{"context": lc, "signature": sig}},
		"GET /session":                {"/session", desktop, nil},
		"DELETE /session":             {"/session", desktop, nil},
		"GET /patient":                {"/patient", desktop, nil},
		"GET /presence":               {"/presence", desktop, nil},
		"POST /handoff":               {"/handoff", desktop, nil},
		"DELETE /handoff":             {"/handoff", desktop, nil},
		"POST /images":                {"/images", desktop, photo(t, 300, 200, 2)},
		"GET /images/{id}/content":    {"/images/" + imageID + "/content", desktop, nil},
		"GET /history":                {"/history", desktop, nil},
		"GET /history/{id}/thumbnail": {"/history/h1/thumbnail", desktop, nil},
		"PATCH /images/{id}":          {"/images/" + imageID, desktop, map[string]any{"clinical": map[string]string{"title": "t"}}},
		"DELETE /images/{id}":         {"/images/" + imageID, desktop, nil},
		"POST /images/{id}/edit":      {"/images/" + imageID + "/edit", desktop, map[string]any{"rotate": 90}},
		"POST /images/{id}/reset":     {"/images/" + imageID + "/reset", desktop, nil},
		"POST /commit":                {"/commit", desktop, map[string]any{}},
		"GET /events":                 {"/events", desktop, nil},
		"GET /events/poll":            {"/events/poll?after=0", desktop, nil},
		"POST /phone/claim":           {"/phone/claim", "", map[string]string{"code": code}},
		"GET /phone":                  {"/phone", phone, nil},
		"GET /phone/patient":          {"/phone/patient", phone, nil},
		"POST /phone/images":          {"/phone/images", phone, photo(t, 300, 200, 3)},
		"POST /phone/heartbeat":       {"/phone/heartbeat", phone, nil},
		"POST /phone/done":            {"/phone/done", phone, nil},
	}
	// Endpoints that touch no store.
	storeless := []string{"GET /healthz"}

	routes := ci.RoutePatterns(w.svc)
	for _, pattern := range routes {
		_, ok := cases[pattern]
		assert.True(t, ok || slices.Contains(storeless, pattern), "endpoint %q has no outage case", pattern)
	}
	for pattern := range cases {
		assert.Contains(t, routes, pattern, "case for an endpoint the handler does not serve")
	}

	store.down.Store(true)
	t.Cleanup(func() { store.down.Store(false) })
	for _, pattern := range routes {
		if slices.Contains(storeless, pattern) {
			continue
		}
		t.Run(pattern, func(t *testing.T) { // not parallel: one store, one fault
			method, _, _ := strings.Cut(pattern, " ")
			resp := w.do(method, cases[pattern].path, cases[pattern].auth, cases[pattern].body)
			defer resp.Body.Close()
			var body struct {
				Error ci.APIError `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			require.NoError(t, json.Unmarshal(raw, &body), "%s", raw)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", raw)
			assert.Equal(t, "5", resp.Header.Get("Retry-After"))
			assert.Equal(t, ci.CodeStorageUnavailable, body.Error.Code)
			assert.NotContains(t, body.Error.Message, "redis", "no internals in the reply")
		})
	}
}
