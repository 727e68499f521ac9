package clinicalimages_test

import (
	"net/http"
	gosync "sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/session"
)

// recorder keeps every Metrics call.
type recorder struct {
	mu      gosync.Mutex
	launch  []ci.FailureCode
	commit  []string
	limited []string
}

func (r *recorder) metrics() ci.Metrics {
	return ci.Metrics{
		Launch: func(c ci.FailureCode) { r.mu.Lock(); r.launch = append(r.launch, c); r.mu.Unlock() },
		Commit: func(s session.State, c ci.FailureCode) {
			r.mu.Lock()
			r.commit = append(r.commit, string(s)+"/"+string(c))
			r.mu.Unlock()
		},
		RateLimited: func(l string) { r.mu.Lock(); r.limited = append(r.limited, l); r.mu.Unlock() },
	}
}

func (r *recorder) take() (launch []ci.FailureCode, commit, limited []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	launch, commit, limited = r.launch, r.commit, r.limited
	r.launch, r.commit, r.limited = nil, nil, nil
	return launch, commit, limited
}

// TestLaunchMetrics: Metrics.Launch once per attempt with its code, and
// Metrics.RateLimited("launch") for each launch the limiter refused.
func TestLaunchMetrics(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := newWorld(t, ci.WithMetrics(rec.metrics()))
	srv := launchServer(t, w, ci.HTTPOptions{LaunchRate: ci.LaunchRate{PerClient: 3, Total: 100}})
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)
	pair := map[string]string{"context": lc, "signature": sig}
	tests := []struct {
		name    string
		body    any
		headers map[string]string
		code    ci.FailureCode
		limited []string
	}{
		{"Started", pair, nil, "", nil},
		{"Replayed", pair, nil, ci.CodeLaunchReplayed, nil},
		{"Garbage", garbagePair(1), nil, ci.CodeUnauthenticated, nil},
		{"RateLimited", garbagePair(2), nil, ci.CodeRateLimited, []string{"launch"}},
		{"NotJSON", pair, map[string]string{"Content-Type": "text/plain"}, ci.CodeUnsupportedContentType, nil},
		{"CrossSite", pair, map[string]string{"Origin": "https://evil.example"}, ci.CodeForbidden, nil},
		{"Empty", map[string]string{}, nil, ci.CodeInvalidRequest, nil},
		{"UnknownField", map[string]string{"patient": "x"}, nil, ci.CodeInvalidRequest, nil},
	}
	for _, tc := range tests {
		post(t, srv, tc.body, tc.headers)
		launch, _, limited := rec.take()
		assert.Equal(t, []ci.FailureCode{tc.code}, launch, tc.name)
		assert.Equal(t, tc.limited, limited, tc.name)
	}
}

// TestCommitMetrics: Metrics.Commit once per image in a Commit's result.
func TestCommitMetrics(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	w := newWorld(t, ci.WithMetrics(rec.metrics()))
	desktop, _ := w.launch()
	st, img := w.call("POST", "/images", desktop, samplePhoto())
	require.Equal(t, http.StatusCreated, st, img)
	id := img["id"].(string)
	st, body := w.call("PATCH", "/images/"+id, desktop, map[string]any{
		"clinical": map[string]any{"title": "Left forearm lesion"}, "consent": map[string]any{"given": true}})
	require.Equal(t, 200, st, body)
	rec.take()

	tests := []struct {
		name   string
		images []string
		want   []string
	}{
		{"Committed", []string{id}, []string{"committed/"}},
		{"AgainAndUnknown", []string{id, "nope", id}, []string{"committed/", "/" + string(ci.CodeNotFound), "/" + string(ci.CodeDuplicate)}},
	}
	for _, tc := range tests {
		st, body := w.call("POST", "/commit", desktop, map[string]any{"images": tc.images})
		require.Equal(t, 200, st, body)
		_, commit, _ := rec.take()
		assert.Equal(t, tc.want, commit, tc.name)
	}
}
