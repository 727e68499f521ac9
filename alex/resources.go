package alex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/internal/fhirjson"
)

// maxResourceBody caps a buffered reply (reads, search pages without inline
// content). Replies with inline content are streamed through a filter instead.
const maxResourceBody = 32 << 20

// maxPages stops a search that keeps returning next links.
const maxPages = 1000

// Created describes a resource ALEX created.
type Created struct {
	ID            string // the new resource's id
	VersionID     string // its version (ALEX: the same as ID)
	Location      string // the Location header as ALEX sent it
	ETag          string // the ETag header, e.g. W/"<id>"
	CorrelationID string // mt-correlationid of the call
}

// ResourceType returns the FHIR resource type of T, a samply fhir type such
// as fhir.Patient ("Patient").
func ResourceType[T any]() string { return reflect.TypeFor[T]().Name() }

// Read returns the resource of type T with the given id (GET [base]/T/id).
// A missing resource matches ErrNotFound.
func Read[T any](ctx context.Context, c *Client, id string) (*T, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	u := c.resolve(ResourceType[T](), id)
	rep, err := c.do(ctx, request{method: http.MethodGet, url: u})
	if err != nil {
		return nil, err
	}
	return decodeResource[T](rep, nil)
}

// Search returns the resources of type T matching params (GET [base]/T?...),
// following the Bundle's next links page by page. Iteration stops at the
// first error, which is yielded with a nil resource. Entries of other types
// (OperationOutcome, included resources) are skipped.
func Search[T any](ctx context.Context, c *Client, params url.Values) iter.Seq2[*T, error] {
	u := c.resolve(ResourceType[T]())
	u.RawQuery = params.Encode()
	return searchURL[T](ctx, c, u, false)
}

// SearchAll collects Search into a slice.
func SearchAll[T any](ctx context.Context, c *Client, params url.Values) ([]*T, error) {
	var out []*T
	for r, err := range Search[T](ctx, c, params) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Create POSTs resource (POST [base]/T) and returns what ALEX reported. The
// resource is sent as it is, inline data included; for images use
// [Client.CreateMedia], which streams. A failed write whose outcome is
// unknown matches ErrOutcomeUnknown and is not resent.
func Create[T any](ctx context.Context, c *Client, resource *T) (*Created, error) {
	if resource == nil {
		return nil, fmt.Errorf("%w: nil resource", ErrValidation)
	}
	b, err := json.Marshal(resource)
	if err != nil {
		return nil, fmt.Errorf("alex: encode %s: %w", ResourceType[T](), err)
	}
	return c.create(ctx, ResourceType[T](), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, int64(len(b)))
}

func (c *Client) create(ctx context.Context, typ string, body func() (io.ReadCloser, error), length int64) (*Created, error) {
	rep, err := c.do(ctx, request{method: http.MethodPost, url: c.resolve(typ), body: body, length: length})
	if err != nil {
		return nil, err
	}
	defer rep.Body.Close()
	cr := &Created{Location: rep.Header.Get("Location"), ETag: rep.Header.Get("ETag"), CorrelationID: rep.correlationID}
	cr.ID, cr.VersionID = parseLocation(cr.Location, typ)
	// The reply echoes the whole resource, base64 content included: read it
	// through the filter so it costs no memory, and take id and version from
	// it when the headers lacked them.
	var echo struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         *struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(fhirjson.SkipData(rep.Body)).Decode(&echo); err == nil && echo.ResourceType == typ {
		if cr.ID == "" {
			cr.ID = echo.ID
		}
		if cr.VersionID == "" && echo.Meta != nil {
			cr.VersionID = echo.Meta.VersionID
		}
	}
	drain(rep.Body)
	if cr.ID == "" {
		return cr, &Error{Status: rep.StatusCode, Method: http.MethodPost, URL: redactURL(c.resolve(typ)), CorrelationID: rep.correlationID,
			Err: errors.New("created, but the reply named no id (no Location header and no id in the body)")}
	}
	return cr, nil
}

// parseLocation reads .../<type>/<id>/_history/<version> (any case of /fhir).
func parseLocation(loc, typ string) (id, version string) {
	if loc == "" {
		return "", ""
	}
	if u, err := url.Parse(loc); err == nil {
		loc = u.Path
	}
	segs := strings.Split(strings.Trim(loc, "/"), "/")
	for i := 0; i < len(segs)-1; i++ {
		if segs[i] == typ {
			id = segs[i+1]
			if i+3 < len(segs) && segs[i+2] == "_history" {
				version = segs[i+3]
			}
			return id, version
		}
	}
	return "", ""
}

// resolve joins path segments onto the FHIR base, escaping each.
func (c *Client) resolve(segs ...string) *url.URL {
	u := *c.base
	for _, s := range segs {
		u = *u.JoinPath(s)
	}
	return &u
}

func validID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "/?#%\\ ") {
		return fmt.Errorf("%w: invalid resource id", ErrValidation)
	}
	return nil
}

// decodeResource reads a single resource of type T from rep and closes it.
// filter, if set, wraps the body (fhirjson.SkipData for inline content).
func decodeResource[T any](rep *reply, filter func(io.Reader) io.Reader) (*T, error) {
	defer rep.Body.Close()
	var r io.Reader = io.LimitReader(rep.Body, maxResourceBody)
	if filter != nil {
		r = filter(rep.Body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, replyError(rep, fmt.Errorf("read reply: %w", err))
	}
	if err := checkType(b, ResourceType[T]()); err != nil {
		return nil, replyError(rep, err)
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, replyError(rep, fmt.Errorf("decode %s: %w", ResourceType[T](), err))
	}
	return v, nil
}

func checkType(b []byte, want string) error {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("reply is not FHIR JSON: %w", err)
	}
	if head.ResourceType != want {
		return fmt.Errorf("reply is a %q, want %q", head.ResourceType, want)
	}
	return nil
}

// replyError reports a 2xx reply the client could not use.
func replyError(rep *reply, err error) *Error {
	return &Error{Status: rep.StatusCode, Method: rep.Request.Method, URL: redactURL(rep.Request.URL), CorrelationID: rep.correlationID, Err: err}
}

func searchURL[T any](ctx context.Context, c *Client, first *url.URL, skipData bool) iter.Seq2[*T, error] {
	typ := ResourceType[T]()
	return func(yield func(*T, error) bool) {
		next := first
		for page := 0; next != nil; page++ {
			if page == maxPages {
				yield(nil, fmt.Errorf("alex: search %s: more than %d pages", typ, maxPages))
				return
			}
			rep, err := c.do(ctx, request{method: http.MethodGet, url: next})
			if err != nil {
				yield(nil, err)
				return
			}
			var filter func(io.Reader) io.Reader
			if skipData {
				filter = fhirjson.SkipData
			}
			bundle, err := decodeResource[fhir.Bundle](rep, filter)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range bundle.Entry {
				if len(e.Resource) == 0 || checkType(e.Resource, typ) != nil {
					continue
				}
				v := new(T)
				if err := json.Unmarshal(e.Resource, v); err != nil {
					yield(nil, replyError(rep, fmt.Errorf("decode %s entry: %w", typ, err)))
					return
				}
				if !yield(v, nil) {
					return
				}
			}
			next, err = c.nextLink(bundle.Link)
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// nextLink returns the Bundle's next page, on the same host as the base (a
// link elsewhere would receive our bearer token) and with ALEX's lowercase
// /fhir put back in the base's case.
func (c *Client) nextLink(links []fhir.BundleLink) (*url.URL, error) {
	for _, l := range links {
		if l.Relation != "next" || l.Url == "" {
			continue
		}
		u, err := c.base.Parse(l.Url)
		if err != nil {
			return nil, fmt.Errorf("alex: invalid next link: %w", err)
		}
		if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
			return nil, errors.New("alex: refusing a next link to another host")
		}
		if bp := c.base.Path; strings.HasPrefix(strings.ToLower(u.Path), strings.ToLower(bp)+"/") {
			u.Path = bp + u.Path[len(bp):]
			u.RawPath = ""
		}
		return u, nil
	}
	return nil, nil
}
