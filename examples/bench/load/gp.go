package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	gosync "sync"
	"time"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// client talks to the reference server's API under base (…/api).
type client struct {
	base string
	http *http.Client
}

// apiError is a non-2xx answer; code is the API's machine code when the body has one.
type apiError struct {
	status int
	code   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.code) }

// do sends a request and decodes a JSON answer into out (when non-nil).
func (c *client) do(ctx context.Context, method, path, bearer, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
		return &apiError{status: resp.StatusCode, code: e.Error.Code}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *client) json(ctx context.Context, method, path, bearer string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, method, path, bearer, ct, body, out)
}

// stream is one GP's desktop event stream: it records when each
// image.added arrived and lets the GP wait for one.
type stream struct {
	mu      gosync.Mutex
	added   map[string]time.Time
	changed chan struct{} // closed and replaced on every event
	err     error
}

// openStream opens GET /api/events and reads it until ctx ends. It returns
// once the server has answered the request, so no event can be missed.
func (c *client) openStream(ctx context.Context, cred string) (*stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &apiError{status: resp.StatusCode}
	}
	s := &stream{added: map[string]time.Time{}, changed: make(chan struct{})}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "image.added":
				now := time.Now()
				var ev struct {
					Image string `json:"image"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev) == nil && ev.Image != "" {
					s.mu.Lock()
					if _, seen := s.added[ev.Image]; !seen {
						s.added[ev.Image] = now
					}
					close(s.changed)
					s.changed = make(chan struct{})
					s.mu.Unlock()
				}
			case line == "":
				event = ""
			}
		}
		s.mu.Lock()
		s.err = sc.Err()
		if s.err == nil {
			s.err = io.EOF
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}()
	return s, nil
}

// waitAdded returns when image id's image.added was read, or an error when
// the stream ended or ctx did first.
func (s *stream) waitAdded(ctx context.Context, id string) (time.Time, error) {
	for {
		s.mu.Lock()
		at, ok := s.added[id]
		ch, err := s.changed, s.err
		s.mu.Unlock()
		if ok {
			return at, nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("event stream ended: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// gp is one simulated GP: a desktop session for one patient and a phone.
type gp struct {
	n         int
	c         *client // the desktop's instance
	phone     *client // the phone's instance (another one when there are several)
	sim       *alextest.Server
	patient   alextest.Patient
	provider  string
	photos    [][]byte
	eventWait time.Duration
	res       *results
}

// run plays the whole story; a step that fails ends this GP's flow and is
// counted under its name.
func (g *gp) run(ctx context.Context) {
	step, err := g.story(ctx)
	if err != nil {
		g.res.add(func(r *results) { r.gpErrors[step+": "+errKind(err)]++ })
	}
}

func errKind(err error) string {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "transport"
}

func (g *gp) story(ctx context.Context) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the event stream

	lctx, sig := g.sim.IssueLaunch(g.patient.ID, "", g.provider)
	var launched struct {
		Credential string `json:"credential"`
		Session    struct {
			PatientID string `json:"patientId"`
		} `json:"session"`
	}
	start := time.Now()
	if err := g.c.json(ctx, http.MethodPost, "/launch", "", map[string]string{"context": lctx, "signature": sig}, &launched); err != nil {
		return "launch", err
	}
	g.res.add(func(r *results) { r.launches = append(r.launches, time.Since(start)) })
	if launched.Session.PatientID != g.patient.ID {
		return "launch", errors.New("session for another patient")
	}
	cred := launched.Credential

	events, err := g.c.openStream(ctx, cred)
	if err != nil {
		return "events", err
	}

	var handoff struct {
		Code string `json:"code"`
	}
	if err := g.c.json(ctx, http.MethodPost, "/handoff", cred, nil, &handoff); err != nil {
		return "handoff", err
	}
	var claimed struct {
		Token string `json:"token"`
	}
	if err := g.phone.json(ctx, http.MethodPost, "/phone/claim", "", map[string]string{"code": handoff.Code, "device": "bench-load phone"}, &claimed); err != nil {
		return "claim", err
	}

	var ids []string
	for i, photo := range g.photos {
		var up struct {
			Image string `json:"image"`
		}
		start := time.Now()
		err := g.phone.do(ctx, http.MethodPost, "/phone/images", claimed.Token, "image/jpeg", bytes.NewReader(photo), &up)
		answered := time.Now()
		if err != nil {
			g.res.add(func(r *results) { r.rejected[errKind(err)]++ })
			continue
		}
		ids = append(ids, up.Image)
		g.res.add(func(r *results) {
			r.accepted++
			r.uploads = append(r.uploads, answered.Sub(start))
			r.images[up.Image] = g.patient.ID
		})
		wctx, wcancel := context.WithTimeout(ctx, g.eventWait)
		at, err := events.waitAdded(wctx, up.Image)
		wcancel()
		if err != nil {
			g.res.add(func(r *results) { r.missedEvent++ })
		} else {
			g.res.add(func(r *results) {
				lag := at.Sub(answered)
				if lag < 0 {
					r.eventFirst++
					lag = 0
				}
				r.eventLag = append(r.eventLag, lag)
				r.endToEnd = append(r.endToEnd, at.Sub(start))
			})
		}
		edit := map[string]any{"clinical": map[string]string{
			"bodySite": "367577003", "laterality": "7771000",
			"title": fmt.Sprintf("Load test photo %d", i+1),
		}}
		if err := g.c.json(ctx, http.MethodPatch, "/images/"+up.Image, cred, edit, nil); err != nil {
			return "edit", err
		}
	}
	if len(ids) == 0 {
		return "upload", errors.New("no upload accepted")
	}

	var res struct {
		Images []struct {
			State string `json:"state"`
			Code  string `json:"code"`
		} `json:"images"`
	}
	start = time.Now()
	if err := g.c.json(ctx, http.MethodPost, "/commit", cred, map[string]any{"images": ids}, &res); err != nil {
		return "commit", err
	}
	took := time.Since(start)
	g.res.add(func(r *results) {
		r.commits = append(r.commits, took)
		for _, o := range res.Images {
			k := o.State
			if o.Code != "" {
				k += ":" + o.Code
			}
			r.outcomes[k]++
		}
	})
	return "", nil
}
