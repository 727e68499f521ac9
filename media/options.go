package media

import (
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // the default zone must load on hosts without a zoneinfo database
)

// Defaults used when no option overrides them.
const (
	// DefaultIdentifierSystem is the identifier system written with each
	// image's stable id. ALEX accepts an identifier without a system, but
	// a system makes the value unambiguous to anyone reconciling records.
	DefaultIdentifierSystem = "https://clinicpro.co.nz/fhir/NamingSystem/clinical-image-id"
	// DefaultTimeZone is the practice time zone for createdDateTime.
	DefaultTimeZone = "Pacific/Auckland"
	// DefaultMaxSize is the largest content accepted, in bytes: ALEX's
	// documented limit for Inbox attachments is "under 8 MB", read here
	// conservatively as 8,000,000 bytes. No Media limit is documented.
	DefaultMaxSize = 8_000_000
	// MaxIdentifierLength bounds identifier.value. ALEX's maximum is
	// undocumented (its Outbox profile limits external references), so the
	// FHIR id limit of 64 is used.
	MaxIdentifierLength = 64
	// MaxTitleLength bounds content.title in characters; Medtech's Inbox
	// lists items by title in a narrow column.
	MaxTitleLength = 80
	// MaxNoteLength bounds each note's text in characters.
	MaxNoteLength = 4000
)

// defaultContentTypes is never modified; DefaultContentTypes hands out copies.
var defaultContentTypes = []string{"image/jpeg", "image/png"}

// DefaultContentTypes returns the content types accepted when
// [WithContentTypes] is not given: image/jpeg and image/png, the types
// ALEX was seen to accept for Media.
func DefaultContentTypes() []string { return slices.Clone(defaultContentTypes) }

// Option configures a [Builder]. Each option checks its argument; [New]
// returns the first error.
type Option func(*config) error

type config struct {
	idSystem       string
	loc            *time.Location
	maxSize        int64
	contentTypes   []string
	now            func() time.Time
	requireConsent bool
	refBase        string
}

// WithIdentifierSystem sets the identifier system URI written beside each
// image's stable id. It must be an absolute URI; the empty string omits
// the system, as Medtech's own sample does.
func WithIdentifierSystem(uri string) Option {
	return func(c *config) error {
		if uri != "" && !absoluteURI(uri) {
			return fmt.Errorf("media: identifier system %q is not an absolute URI", uri)
		}
		c.idSystem = uri
		return nil
	}
}

// WithTimeZone sets the practice's time zone, used for createdDateTime,
// DocumentReference.date and generated titles so that a photo lands on the
// right clinical day. The default is Pacific/Auckland.
func WithTimeZone(loc *time.Location) Option {
	return func(c *config) error {
		if loc == nil {
			return errors.New("media: nil time zone")
		}
		c.loc = loc
		return nil
	}
}

// WithMaxSize sets the largest content size accepted, in bytes (default
// [DefaultMaxSize]).
func WithMaxSize(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("media: max size %d is not positive", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithContentTypes replaces the accepted Media content types (default
// image/jpeg and image/png). Each must be a bare MIME type such as
// "image/jpeg", without parameters.
func WithContentTypes(types ...string) Option {
	return func(c *config) error {
		if len(types) == 0 {
			return errors.New("media: no content types given")
		}
		out := make([]string, 0, len(types))
		for _, t := range types {
			mt, params, err := mime.ParseMediaType(t)
			if err != nil || len(params) > 0 || mt != strings.ToLower(t) || !strings.Contains(mt, "/") {
				return fmt.Errorf("media: content type %q is not a bare lower-case MIME type", t)
			}
			out = append(out, mt)
		}
		c.contentTypes = out
		return nil
	}
}

// WithClock sets the clock used when an image has no capture time and for
// document dates. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("media: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithReferenceBase makes references absolute under base, for example
// "https://alexapiuat.medtechglobal.com/fhir" gives
// "https://alexapiuat.medtechglobal.com/fhir/Patient/<id>". Medtech's Inbox
// Scan examples use absolute subject references; ALEX also accepted relative
// ones ("Patient/<id>", the default) for Media.
func WithReferenceBase(base string) Option {
	return func(c *config) error {
		base = strings.TrimRight(base, "/")
		if !absoluteURI(base) {
			return fmt.Errorf("media: reference base %q is not an absolute URL", base)
		}
		c.refBase = base
		return nil
	}
}

// WithConsentRequired makes a missing [Consent] a validation problem. By
// default consent is optional, because a practice may record consent in
// the clinical notes instead.
func WithConsentRequired() Option {
	return func(c *config) error {
		c.requireConsent = true
		return nil
	}
}

func newConfig(opts []Option) (config, error) {
	loc, err := time.LoadLocation(DefaultTimeZone)
	if err != nil {
		return config{}, fmt.Errorf("media: loading %s: %w", DefaultTimeZone, err)
	}
	c := config{
		idSystem:     DefaultIdentifierSystem,
		loc:          loc,
		maxSize:      DefaultMaxSize,
		contentTypes: defaultContentTypes,
		now:          time.Now,
	}
	for _, o := range opts {
		if o == nil {
			return config{}, errors.New("media: nil option")
		}
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

func absoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "") && !strings.ContainsAny(s, " \t\r\n")
}
