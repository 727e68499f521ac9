package media

import (
	"errors"
	"fmt"
	"io"

	"github.com/clinicpro/clinicalimages/internal/fhirjson"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// ErrUnsupportedResource is returned by [Encode] for a resource type it
// does not know where to put content in.
var ErrUnsupportedResource = errors.New("media: Encode supports *fhir.Media and *fhir.DocumentReference only")

// Encode writes resource as JSON to w with its content read from content
// to EOF and written, base64-encoded, as content.data (Media) or
// content[0].attachment.data (DocumentReference). The output is byte for
// byte what json.Marshal produces for the same resource with the base64
// inlined, but neither the image nor its base64 form is ever held in
// memory, so memory use does not grow with the image.
//
// resource must be a *fhir.Media or *fhir.DocumentReference (or the
// value types); it is not modified: the data placeholder is set on a
// copy, whatever Data held before. Encode does not close content. It
// returns the bytes written to w; an error from w or content is returned
// as is, wrapped with context.
func Encode(w io.Writer, resource any, content io.Reader) (int64, error) {
	var v any
	switch r := resource.(type) {
	case *fhir.Media:
		if r == nil {
			return 0, ErrUnsupportedResource
		}
		v = withMediaPlaceholder(*r)
	case fhir.Media:
		v = withMediaPlaceholder(r)
	case *fhir.DocumentReference:
		if r == nil {
			return 0, ErrUnsupportedResource
		}
		d, err := withDocumentPlaceholder(*r)
		if err != nil {
			return 0, err
		}
		v = d
	case fhir.DocumentReference:
		d, err := withDocumentPlaceholder(r)
		if err != nil {
			return 0, err
		}
		v = d
	default:
		return 0, fmt.Errorf("%w (got %T)", ErrUnsupportedResource, resource)
	}
	n, err := fhirjson.Encode(w, v, content)
	if err != nil {
		return n, fmt.Errorf("media: encode: %w", err)
	}
	return n, nil
}

func withMediaPlaceholder(m fhir.Media) fhir.Media {
	m.Content.Data = ptr(DataPlaceholder)
	return m
}

func withDocumentPlaceholder(d fhir.DocumentReference) (fhir.DocumentReference, error) {
	if len(d.Content) != 1 {
		return d, fmt.Errorf("%w: a DocumentReference needs exactly one content to stream into", ErrUnsupportedResource)
	}
	d.Content = []fhir.DocumentReferenceContent{d.Content[0]}
	d.Content[0].Attachment.Data = ptr(DataPlaceholder)
	return d, nil
}
