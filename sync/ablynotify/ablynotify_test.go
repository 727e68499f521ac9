package ablynotify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/ablynotify"
)

const (
	testKey    = "appX1y.keyZ9:s3cr3t-ably-secret-value"
	testKeyID  = "appX1y.keyZ9"
	testSecret = "s3cr3t-ably-secret-value"
)

// recorded is what Ably's REST endpoint received.
type recorded struct {
	method, path, auth, contentType string
	body                            []byte
}

// fakeAbly answers with the given statuses in turn (the last repeats) and
// records every request. Bodies of failures follow Ably's error envelope.
type fakeAbly struct {
	mu       gosync.Mutex
	reqs     []recorded
	statuses []int
	message  string
}

func (f *fakeAbly) respond(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, recorded{
		method: req.Method, path: req.URL.EscapedPath(), auth: req.Header.Get("Authorization"),
		contentType: req.Header.Get("Content-Type"), body: body,
	})
	status := http.StatusCreated
	if len(f.statuses) > 0 {
		status = f.statuses[min(len(f.reqs), len(f.statuses))-1]
	}
	if status < 300 {
		return httpmock.NewStringResponse(status, `{"channel":"c","messageId":"m"}`), nil
	}
	msg := f.message
	if msg == "" {
		msg = "failure"
	}
	return httpmock.NewJsonResponse(status, map[string]any{
		"error": map[string]any{"message": msg, "code": status * 100, "statusCode": status},
	})
}

func (f *fakeAbly) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

// setup returns a hub, a fake Ably behind httpmock and a Publisher wired to
// both.
func setup(t *testing.T, fake *fakeAbly, opts ...ablynotify.Option) (*sync.Hub, *ablynotify.Publisher) {
	t.Helper()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	mt := httpmock.NewMockTransport()
	mt.RegisterNoResponder(fake.respond)
	opts = append([]ablynotify.Option{
		ablynotify.WithHTTPClient(&http.Client{Transport: mt}),
		ablynotify.WithRetry(3, time.Millisecond),
	}, opts...)
	p, err := ablynotify.New(hub, testKey, opts...)
	require.NoError(t, err)
	return hub, p
}

func TestPublishRequestShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []ablynotify.Option
		wantPath string
	}{
		{"default channel", nil, "/channels/clinicalimages:s1/messages"},
		{"custom channel, escaped", []ablynotify.Option{ablynotify.WithChannel(func(s string) string { return "practice/42 " + s })},
			"/channels/practice%2F42%20s1/messages"},
		{"custom endpoint with base path", []ablynotify.Option{ablynotify.WithEndpoint("https://ably.example.org/base/")},
			"/base/channels/clinicalimages:s1/messages"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAbly{}
			hub, p := setup(t, fake, tc.opts...)
			ev, err := p.Publish(t.Context(), sync.Event{Session: "s1", Type: sync.ImageAdded, Image: "img-7", Data: json.RawMessage(`{"thumb":"/t/7"}`)})
			require.NoError(t, err)

			reqs := fake.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			assert.Equal(t, http.MethodPost, r.method)
			assert.Equal(t, tc.wantPath, r.path)
			assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte(testKeyID+":"+testSecret)), r.auth)
			assert.Equal(t, "application/json", r.contentType)

			var msg struct{ ID, Name, Data, Encoding string }
			require.NoError(t, json.Unmarshal(r.body, &msg))
			assert.Equal(t, fmt.Sprintf("s1:%d", ev.ID), msg.ID, "the message id makes retries idempotent")
			assert.Equal(t, "image.added", msg.Name)
			assert.Equal(t, "json", msg.Encoding)
			var mirrored sync.Event
			require.NoError(t, json.Unmarshal([]byte(msg.Data), &mirrored))
			assert.Equal(t, ev.ID, mirrored.ID)
			assert.Equal(t, "img-7", mirrored.Image)
			assert.JSONEq(t, `{"thumb":"/t/7"}`, string(mirrored.Data))

			stored, err := hub.Since(t.Context(), "s1", 0, 10)
			require.NoError(t, err)
			require.Len(t, stored, 1, "the hub stays the source of truth")
			assert.Equal(t, ev.ID, stored[0].ID)
		})
	}
}

func TestRetriesTemporaryFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int
		attempts int
		wantErr  bool
	}{
		{"503 then success", []int{503, 201}, 2, false},
		{"429 twice then success", []int{429, 429, 201}, 3, false},
		{"always 500 gives up after 3", []int{500}, 3, true},
		{"400 is not retried", []int{400}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAbly{statuses: tc.statuses}
			_, p := setup(t, fake)
			err := p.Send(t.Context(), sync.Event{ID: 4, Session: "s1", Type: sync.ImageCommitted})
			reqs := fake.requests()
			require.Len(t, reqs, tc.attempts)
			for _, r := range reqs {
				assert.Equal(t, reqs[0].body, r.body, "every attempt sends the same message id")
			}
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			var ae *ablynotify.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.statuses[len(tc.statuses)-1], ae.StatusCode)
			assert.Equal(t, ae.StatusCode*100, ae.Code)
		})
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var handled []error
	fake := &fakeAbly{statuses: []int{401}, message: "Invalid key " + testKey}
	_, p := setup(t, fake,
		ablynotify.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		ablynotify.WithErrorHandler(func(_ context.Context, _ sync.Event, err error) { handled = append(handled, err) }))

	ev, err := p.Publish(t.Context(), sync.Event{Session: "s1", Type: sync.ImageAdded})
	require.NoError(t, err, "an Ably failure must not fail a publish the hub stored")
	assert.Equal(t, uint64(1), ev.ID)
	require.Len(t, handled, 1)
	require.ErrorIs(t, handled[0], ablynotify.ErrUnauthorized)
	assert.Len(t, fake.requests(), 1, "401 is not retried")

	direct := p.Send(t.Context(), ev)
	require.ErrorIs(t, direct, ablynotify.ErrUnauthorized)
	for name, s := range map[string]string{
		"error":      direct.Error(),
		"logs":       logs.String(),
		"%v":         fmt.Sprintf("%v", p),
		"%+v":        fmt.Sprintf("%+v", p),
		"%#v":        fmt.Sprintf("%#v", p),
		"String":     p.String(),
		"slog value": p.LogValue().String(),
	} {
		assert.NotContains(t, s, testSecret, name)
	}
	assert.NotContains(t, direct.Error(), testKeyID, "Ably's quoted key id is masked too")
	assert.Contains(t, logs.String(), "ablynotify: mirroring to Ably failed", "the failure is logged")
}

func TestSendStopsWithContext(t *testing.T) {
	t.Parallel()
	fake := &fakeAbly{statuses: []int{503}}
	_, p := setup(t, fake, ablynotify.WithRetry(5, time.Minute))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Send(ctx, sync.Event{ID: 1, Session: "s1", Type: sync.ImageAdded}) }()
	require.Eventually(t, func() bool { return len(fake.requests()) == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "Send did not stop with its context")
	}
}

func TestSendNeedsStoredEvent(t *testing.T) {
	t.Parallel()
	fake := &fakeAbly{}
	_, p := setup(t, fake)
	require.Error(t, p.Send(t.Context(), sync.Event{Session: "s1", Type: sync.ImageAdded}))
	assert.Empty(t, fake.requests())
}

func TestPublishPassesHubErrorsThrough(t *testing.T) {
	t.Parallel()
	fake := &fakeAbly{}
	_, p := setup(t, fake)
	_, err := p.Publish(t.Context(), sync.Event{Session: "s1", Type: "bogus"})
	require.ErrorIs(t, err, sync.ErrInvalidEvent)
	assert.Empty(t, fake.requests(), "nothing the hub refused reaches Ably")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	tests := []struct {
		name string
		next sync.Publisher
		key  string
		opts []ablynotify.Option
	}{
		{"nil next", nil, testKey, nil},
		{"key without secret", hub, "app.key", nil},
		{"key without dot", hub, "appkey:Zq7secret", nil},
		{"empty secret", hub, "app.key:", nil},
		{"key with space", hub, "app.key:Zq7 secret", nil},
		{"plain http endpoint", hub, testKey, []ablynotify.Option{ablynotify.WithEndpoint("http://rest.ably.io")}},
		{"endpoint with credentials", hub, testKey, []ablynotify.Option{ablynotify.WithEndpoint("https://u:p@rest.ably.io")}},
		{"nil client", hub, testKey, []ablynotify.Option{ablynotify.WithHTTPClient(nil)}},
		{"nil channel func", hub, testKey, []ablynotify.Option{ablynotify.WithChannel(nil)}},
		{"zero attempts", hub, testKey, []ablynotify.Option{ablynotify.WithRetry(0, time.Second)}},
		{"nil logger", hub, testKey, []ablynotify.Option{ablynotify.WithLogger(nil)}},
		{"nil error handler", hub, testKey, []ablynotify.Option{ablynotify.WithErrorHandler(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ablynotify.New(tc.next, tc.key, tc.opts...)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "Zq7", "errors never quote the key")
		})
	}
	_, err = ablynotify.New(hub, testKey, ablynotify.WithEndpoint("http://127.0.0.1:8080"))
	require.NoError(t, err, "plain http is allowed on loopback for local fakes")
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   bool
	}{{401, true}, {403, true}, {400, false}, {500, false}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, errors.Is(&ablynotify.Error{StatusCode: tc.status}, ablynotify.ErrUnauthorized))
		})
	}
}
