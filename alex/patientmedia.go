package alex

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Bounds of [Client.PatientMedia] unless its options say otherwise.
const (
	// DefaultPatientMediaLimit is how many Media PatientMedia returns at
	// most: the newest ones.
	DefaultPatientMediaLimit = 50
	// DefaultPatientMediaPages is how many searchset pages PatientMedia
	// reads at most before it stops following next links.
	DefaultPatientMediaPages = 20
	// DefaultPatientMediaBytes is how many bytes of decoded image content
	// PatientMedia returns in all; older Media past it come without data.
	DefaultPatientMediaBytes = 64 << 20
)

// maxMediaPage caps one searchset page of Media read with their content.
// Entries are decoded one at a time, so this bounds a runaway reply, not
// memory.
const maxMediaPage = 512 << 20

// PatientMediaOption bounds [Client.PatientMedia]. An invalid value makes
// the call fail with an error matching [ErrValidation].
type PatientMediaOption func(*patientMediaConfig) error

type patientMediaConfig struct {
	limit, pages int
	bytes        int64
}

// WithMediaLimit returns at most n Media, the newest (default
// [DefaultPatientMediaLimit]; n must be positive).
func WithMediaLimit(n int) PatientMediaOption {
	return func(c *patientMediaConfig) error {
		if n < 1 {
			return fmt.Errorf("WithMediaLimit(%d): must be positive", n)
		}
		c.limit = n
		return nil
	}
}

// WithMediaPages reads at most n searchset pages (default
// [DefaultPatientMediaPages]; n must be positive).
func WithMediaPages(n int) PatientMediaOption {
	return func(c *patientMediaConfig) error {
		if n < 1 {
			return fmt.Errorf("WithMediaPages(%d): must be positive", n)
		}
		c.pages = n
		return nil
	}
}

// WithMediaBytes bounds the decoded content returned in all (default
// [DefaultPatientMediaBytes]; n must be positive). A single Media whose
// content is larger is returned without data.
func WithMediaBytes(n int64) PatientMediaOption {
	return func(c *patientMediaConfig) error {
		if n < 1 {
			return fmt.Errorf("WithMediaBytes(%d): must be positive", n)
		}
		c.bytes = n
		return nil
	}
}

// PatientMedia returns the Media ALEX holds for the patient with the given
// NHI at the call's facility, newest first, with their content: the images
// a GP compares a new photo with.
//
// It searches in the only form ALEX allows, GET
// [base]/Media?patient.identifier=<NHI system>|<NHI> (the system is
// [Client.NHISystem], the NHI checked as [Client.FindPatientByNHI] checks
// it; ALEX refuses ?patient= and ?subject= with 403), and follows the
// Bundle's next links, all pages under one mt-correlationid. "Newest" is by
// createdDateTime (or createdPeriod.start), else meta.lastUpdated; Media
// with neither come last; ties go by id.
//
// Bounds: at most [WithMediaPages] pages are read (the search then stops
// without error), and of what was read the newest [WithMediaLimit] Media
// are returned. Content: ALEX sends content.data inline, and it is kept as
// ALEX sent it (base64), newest first, while the decoded content fits in
// what is left of [WithMediaBytes]: from the first Media that does not fit
// on, older Media come with content.data nil (a single Media larger than
// the whole bound comes without data and does not stop the others). Data
// past the bound is dropped as the pages arrive, so memory stays near
// WithMediaBytes whatever ALEX holds. A Media that
// carries content.url instead of data has it fetched (GET with the client's
// token) only when the URL is on the ALEX base URL's scheme and host, and
// then its data set; a URL elsewhere is never fetched (it would receive the
// bearer token) and the Media comes with data nil and its url unchanged. A
// content fetch that fails leaves data nil; only the search itself fails
// the call.
//
// The result is only what ALEX answered: the caller must still check that
// each Media's subject is the patient it expects before showing it.
//
// Errors are *[Error]s as for every call: 403 ([ErrForbidden]) means the
// app lacks the patient.media.read role (or the facility is not linked,
// [ErrFacilityNotFound]); an invalid NHI or option matches [ErrValidation]
// and makes no request.
func (c *Client) PatientMedia(ctx context.Context, nhi string, opts ...PatientMediaOption) ([]fhir.Media, error) {
	n, err := c.checkNHI(nhi)
	if err != nil {
		return nil, err
	}
	cfg := patientMediaConfig{limit: DefaultPatientMediaLimit, pages: DefaultPatientMediaPages, bytes: DefaultPatientMediaBytes}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrValidation, err)
		}
	}
	ctx, _ = withCorrelation(ctx)
	next := c.resolve("Media")
	next.RawQuery = url.Values{"patient.identifier": {c.nhiSystem + "|" + n}}.Encode()

	var (
		kept []fhir.Media
		held int64 // decoded bytes of the data kept holds
	)
	for page := 0; next != nil && page < cfg.pages; page++ {
		rep, err := c.do(ctx, request{method: http.MethodGet, url: next})
		if err != nil {
			return nil, err
		}
		links, err := decodeMediaPage(rep, func(m fhir.Media) {
			kept = append(kept, m)
			held += dataSize(&m)
			if len(kept) >= 2*cfg.limit || held > cfg.bytes {
				// Keep memory to about twice the limit in Media and the
				// byte bound in data, whatever the number of pages.
				kept, held = c.keepNewest(ctx, kept, cfg, false)
			}
		})
		if err != nil {
			return nil, err
		}
		if next, err = c.nextLink(links); err != nil {
			return nil, err
		}
	}
	kept, _ = c.keepNewest(ctx, kept, cfg, true)
	return kept, nil
}

// keepNewest sorts ms newest first, cuts it to the limit and spends the
// byte bound on the newest Media's data: a Media larger than the whole
// bound comes without data, and once one does not fit in what is left, all
// older ones come without data. That rule lets the search drop data as it
// goes: a Media read later only ever pushes older ones further past the
// bound. With fetch, a kept Media that has content.url and no data has its
// content fetched (see fetchContent) while the bound lasts. It returns ms
// and the decoded bytes of the data it still holds.
func (c *Client) keepNewest(ctx context.Context, ms []fhir.Media, cfg patientMediaConfig, fetch bool) ([]fhir.Media, int64) {
	sortNewestFirst(ms)
	if len(ms) > cfg.limit {
		clear(ms[cfg.limit:])
		ms = ms[:cfg.limit]
	}
	left, held := cfg.bytes, int64(0)
	for i := range ms {
		m := &ms[i]
		if fetch && (m.Content.Data == nil || *m.Content.Data == "") && m.Content.Url != nil && left > 0 {
			m.Content.Data = c.fetchContent(ctx, *m.Content.Url, left)
		}
		switch size := dataSize(m); {
		case size > cfg.bytes:
			m.Content.Data = nil
		case size > left:
			m.Content.Data, left = nil, 0
		default:
			left -= size
			held += size
		}
	}
	return ms, held
}

// dataSize is the decoded size of m's inline content (padding counted
// out), 0 without data.
func dataSize(m *fhir.Media) int64 {
	if m.Content.Data == nil {
		return 0
	}
	d := *m.Content.Data
	n := int64(base64.StdEncoding.DecodedLen(len(d)))
	for i := len(d) - 1; i >= 0 && i >= len(d)-2 && d[i] == '='; i-- {
		n--
	}
	return n
}

// decodeMediaPage reads a searchset Bundle entry by entry, calling each
// for every Media (other entries are skipped), and returns its links. It
// closes the reply.
func decodeMediaPage(rep *reply, each func(fhir.Media)) ([]fhir.BundleLink, error) {
	defer rep.Body.Close()
	bad := func(err error) ([]fhir.BundleLink, error) {
		return nil, replyError(rep, fmt.Errorf("decode Media searchset: %w", err))
	}
	dec := json.NewDecoder(io.LimitReader(rep.Body, maxMediaPage))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad(errors.New("reply is not a JSON object"))
	}
	var (
		typ   string
		links []fhir.BundleLink
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		switch t {
		case "resourceType":
			err = dec.Decode(&typ)
		case "link":
			err = dec.Decode(&links)
		case "entry":
			err = decodeEntries(dec, each)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return bad(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	if typ != "Bundle" {
		return bad(fmt.Errorf("reply is a %q, want \"Bundle\"", typ))
	}
	return links, nil
}

func decodeEntries(dec *json.Decoder, each func(fhir.Media)) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return errors.New("entry is not an array")
	}
	for dec.More() {
		var e struct {
			Resource json.RawMessage `json:"resource"`
		}
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if len(e.Resource) == 0 || checkType(e.Resource, "Media") != nil {
			continue
		}
		var m fhir.Media
		if err := json.Unmarshal(e.Resource, &m); err != nil {
			return fmt.Errorf("decode Media entry: %w", err)
		}
		each(m)
	}
	_, err := dec.Token()
	return err
}

// fetchContent returns the base64 of the attachment at raw, or nil when it
// is not on ALEX's origin, cannot be read, or is over max bytes.
func (c *Client) fetchContent(ctx context.Context, raw string, max int64) *string {
	// A relative reference (Binary/<id>) is relative to the FHIR base.
	dir := *c.base
	dir.Path += "/"
	dir.RawPath = ""
	u, err := dir.Parse(raw)
	if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host || u.User != nil {
		return nil
	}
	if bp := c.base.Path; strings.HasPrefix(strings.ToLower(u.Path), strings.ToLower(bp)+"/") {
		u.Path, u.RawPath = bp+u.Path[len(bp):], ""
	}
	rep, err := c.do(ctx, request{method: http.MethodGet, url: u, accept: ContentTypeFHIR + ", image/*;q=0.9, */*;q=0.5"})
	if err != nil {
		c.log.DebugContext(ctx, "alex: Media content not fetched", "error", err)
		return nil
	}
	defer drain(rep.Body)
	// A FHIR Binary holds base64 already (4/3 of the bytes, plus JSON).
	b, err := io.ReadAll(io.LimitReader(rep.Body, max*4/3+64<<10+1))
	if err != nil {
		return nil
	}
	if ct, _, _ := mime.ParseMediaType(rep.Header.Get("Content-Type")); strings.HasSuffix(ct, "json") {
		var bin struct {
			ResourceType string  `json:"resourceType"`
			Data         *string `json:"data"`
		}
		if json.Unmarshal(b, &bin) != nil || bin.ResourceType != "Binary" || bin.Data == nil {
			return nil
		}
		return bin.Data
	}
	if int64(len(b)) > max {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// sortNewestFirst orders Media newest first (see [MediaTime]); Media
// without a time come last, ties by id.
func sortNewestFirst(ms []fhir.Media) {
	slices.SortStableFunc(ms, func(a, b fhir.Media) int {
		ta, oka := MediaTime(&a)
		tb, okb := MediaTime(&b)
		switch {
		case oka && okb && !ta.Equal(tb):
			return tb.Compare(ta)
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		}
		return cmp.Compare(deref(a.Id), deref(b.Id))
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// MediaTime returns when a Media was taken: createdDateTime, else
// createdPeriod.start, else meta.lastUpdated (when ALEX stored it). FHIR
// dateTimes may be partial (2025, 2025-06, 2025-06-01; read as UTC) or lack
// seconds' fractions; an unreadable one counts as absent.
func MediaTime(m *fhir.Media) (time.Time, bool) {
	if m == nil {
		return time.Time{}, false
	}
	if m.CreatedDateTime != nil {
		if t, ok := parseFHIRTime(*m.CreatedDateTime); ok {
			return t, true
		}
	}
	if m.CreatedPeriod != nil && m.CreatedPeriod.Start != nil {
		if t, ok := parseFHIRTime(*m.CreatedPeriod.Start); ok {
			return t, true
		}
	}
	if m.Meta != nil && m.Meta.LastUpdated != nil {
		if t, ok := parseFHIRTime(*m.Meta.LastUpdated); ok {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseFHIRTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
