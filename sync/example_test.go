package sync_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/clinicpro/clinicalimages/sync"
)

// A phone's upload publishes an event; a desktop that subscribes later, or
// reconnects, replays what it missed and then follows live.
func ExampleHub() {
	ctx := context.Background()
	hub, err := sync.NewHub()
	if err != nil {
		panic(err)
	}
	defer hub.Close()

	_, _ = hub.Publish(ctx, sync.Event{Session: "sess-1", Type: sync.PhoneConnected})
	added, _ := hub.Publish(ctx, sync.Event{Session: "sess-1", Type: sync.ImageAdded, Image: "img-1"})

	sub, err := hub.Subscribe(ctx, "sess-1", 0) // 0: from the start
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	_, _ = hub.Publish(ctx, sync.Event{Session: "sess-1", Type: sync.ImageCommitted, Image: "img-1"})
	for range 3 {
		ev := <-sub.Events()
		fmt.Println(strings.TrimSpace(fmt.Sprint(ev.ID, " ", ev.Type, " ", ev.Image)))
	}

	// A desktop that saw the image.added event resumes after it.
	resumed, _ := hub.Since(ctx, "sess-1", added.ID, 10)
	fmt.Println("missed:", len(resumed), resumed[0].Type)
	p, _ := hub.Presence(ctx, "sess-1")
	fmt.Println("phone connected:", p.Phone)
	// Output:
	// 1 phone.connected
	// 2 image.added img-1
	// 3 image.committed img-1
	// missed: 1 image.committed
	// phone connected: true
}

// The Service mounts the SSE handler behind its own authentication and tells
// it which session the request may watch.
func ExampleSSEHandler() {
	hub, _ := sync.NewHub()
	defer hub.Close()
	events, _ := sync.NewSSEHandler(hub, func(r *http.Request) (string, error) {
		return r.PathValue("session"), nil // after the Service's auth check
	})
	defer events.Close() // on shutdown: ends every stream

	mux := http.NewServeMux()
	mux.Handle("GET /sessions/{session}/events", events)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	_, _ = hub.Publish(context.Background(), sync.Event{Session: "sess-1", Type: sync.ImageAdded, Image: "img-1"})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sessions/sess-1/events", nil)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "data: ") || !strings.HasSuffix(got.String(), "\n\n") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, line := range strings.Split(got.String(), "\n") {
		if strings.HasPrefix(line, "data: ") {
			line = "data: {...}"
		}
		fmt.Println(line)
	}
	// Output:
	// retry: 2000
	//
	// id: 1
	// event: image.added
	// data: {...}
	//
	//
}
