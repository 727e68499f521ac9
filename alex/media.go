package alex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/clinicpro/clinicalimages/internal/fhirjson"
)

// Content is the source of an attachment's bytes (an image or a PDF), opened
// once per attempt so a retry re-streams it from the start. The client never
// holds the bytes or their base64 form in memory.
type Content struct {
	// Size is the number of raw bytes Open yields, or -1 if unknown (the body
	// is then sent without a Content-Length).
	Size int64
	// Open returns a fresh reader from the first byte. The client closes it.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// BytesContent is Content over bytes already in memory.
func BytesContent(b []byte) Content {
	return Content{Size: int64(len(b)), Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// FileContent is Content over a file, opened per attempt.
func FileContent(path string) (Content, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Content{}, err
	}
	return Content{Size: fi.Size(), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}, nil
}

// CreateMedia POSTs a Media to ALEX with content.data streamed as base64
// from content, and returns the created id, version and Location. The Media's
// own content.data is ignored and m is not modified. ALEX's reply, which
// echoes the whole image, is read without being buffered.
//
// Before calling, it refuses (ErrValidation) what ALEX is known to reject: no
// identifier value, no subject, no content type. A reply of 201 is success;
// an error matching ErrOutcomeUnknown means ALEX may have stored it: search
// with [Client.FindMediaByIdentifier] before sending again.
func (c *Client) CreateMedia(ctx context.Context, m *fhir.Media, content Content) (*Created, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil Media", ErrValidation)
	}
	if err := checkMedia(m); err != nil {
		return nil, err
	}
	mm := *m
	mm.Content.Data = ptr(fhirjson.DataPlaceholder)
	return c.createStreamed(ctx, "Media", &mm, content)
}

// CreateDocumentReference POSTs an Inbox Scan DocumentReference with the
// first content's attachment data streamed from content (a PDF or TIFF: ALEX
// refuses JPEG and PNG here). d is not modified.
func (c *Client) CreateDocumentReference(ctx context.Context, d *fhir.DocumentReference, content Content) (*Created, error) {
	if d == nil || len(d.Content) == 0 {
		return nil, fmt.Errorf("%w: DocumentReference needs one content attachment", ErrValidation)
	}
	dd := *d
	dd.Content = append([]fhir.DocumentReferenceContent(nil), d.Content...)
	dd.Content[0].Attachment.Data = ptr(fhirjson.DataPlaceholder)
	return c.createStreamed(ctx, "DocumentReference", &dd, content)
}

func (c *Client) createStreamed(ctx context.Context, typ string, resource any, content Content) (*Created, error) {
	if content.Open == nil {
		return nil, fmt.Errorf("%w: %s content has no Open function", ErrValidation, typ)
	}
	tpl, err := fhirjson.NewTemplate(resource)
	if err != nil {
		return nil, fmt.Errorf("alex: encode %s: %w", typ, err)
	}
	length := int64(-1)
	if content.Size >= 0 {
		length = tpl.Len(content.Size)
	}
	body := func() (io.ReadCloser, error) {
		src, err := content.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("alex: open %s content: %w", typ, err)
		}
		pr, pw := io.Pipe()
		go func() {
			// Ends when the whole body is written or the transport closes pr
			// (request done or failed): pw's writes then fail at once.
			_, err := tpl.WriteTo(pw, src)
			_ = src.Close()
			_ = pw.CloseWithError(err)
		}()
		return pr, nil
	}
	return c.create(ctx, typ, body, length)
}

// checkMedia applies the rules ALEX enforces with a 400, so the call is not
// made in vain. The media package's Validate checks much more.
func checkMedia(m *fhir.Media) error {
	var errs []error
	hasID := false
	for _, id := range m.Identifier {
		if id.Value != nil && *id.Value != "" {
			hasID = true
		}
	}
	if !hasID {
		errs = append(errs, errors.New("identifier.value is required (ALEX: the mandatory reference number)"))
	}
	if m.Subject == nil || m.Subject.Reference == nil || *m.Subject.Reference == "" {
		errs = append(errs, errors.New("subject reference is required"))
	}
	if m.Content.ContentType == nil || *m.Content.ContentType == "" {
		errs = append(errs, errors.New("content.contentType is required"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: Media: %w", ErrValidation, errors.Join(errs...))
	}
	return nil
}

// SearchMediaByNHI lists the Media of the patient with the given NHI, in the
// only search form ALEX allows (patient.identifier=<NHI system>|<NHI>, the
// system and the NHI check configurable with [WithNHISystem] and [WithNHICheck];
// patient= and subject= are refused with 403). ALEX includes each image's
// base64 data; it is filtered out as the reply streams in, so the returned
// Media have no content.data.
func (c *Client) SearchMediaByNHI(ctx context.Context, nhi string) iter.Seq2[*fhir.Media, error] {
	n, err := c.checkNHI(nhi)
	if err != nil {
		return func(yield func(*fhir.Media, error) bool) { yield(nil, err) }
	}
	u := c.resolve("Media")
	u.RawQuery = url.Values{"patient.identifier": {c.nhiSystem + "|" + n}}.Encode()
	return searchURL[fhir.Media](ctx, c, u, true)
}

// FindMediaByIdentifier returns the patient's Media carrying the identifier
// (system may be "" to match any system), or an error matching ErrNotFound.
// It is how a write whose outcome was unknown is reconciled.
func (c *Client) FindMediaByIdentifier(ctx context.Context, nhi, system, value string) (*fhir.Media, error) {
	for m, err := range c.SearchMediaByNHI(ctx, nhi) {
		if err != nil {
			return nil, err
		}
		for _, id := range m.Identifier {
			if id.Value != nil && *id.Value == value && (system == "" || (id.System != nil && *id.System == system)) {
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: no Media with that identifier", ErrNotFound)
}

func ptr[T any](v T) *T { return &v }
