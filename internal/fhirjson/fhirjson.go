// Package fhirjson streams the large part of a FHIR resource, the inline
// base64 content of an Attachment, so that neither the SDK nor the ALEX client
// ever holds an image's base64 form in memory.
//
// Writing: the caller sets the Attachment's Data to [DataPlaceholder] and
// builds a [Template]; the template is the resource's JSON split around the
// placeholder, and [Template.WriteTo] writes the prefix, the base64 of the data
// read from an io.Reader, then the suffix. The output is byte for byte what
// encoding/json would produce for the same resource with the data inlined.
//
// Reading: ALEX echoes the whole resource, image included, in its 201 reply.
// [SkipData] filters the value of every "data" member out of a JSON stream as
// it is read, so the reply decodes in constant memory.
package fhirjson

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DataPlaceholder is the value a caller puts in Attachment.Data before
// building a [Template]. It contains characters that base64 never produces, so
// it cannot be confused with real content.
const DataPlaceholder = "@@fhirjson:data@@"

// ErrPlaceholder reports that a resource's JSON did not contain the quoted
// [DataPlaceholder] exactly once.
var ErrPlaceholder = errors.New("fhirjson: resource JSON must contain the data placeholder exactly once")

var quotedPlaceholder = []byte(`"` + DataPlaceholder + `"`)

// Template is a resource's JSON split around its data placeholder. It is
// immutable and safe for concurrent use; one Template can be written any
// number of times, for example once per retry.
type Template struct {
	prefix []byte // up to and including the opening quote of the data value
	suffix []byte // from the closing quote of the data value
}

// NewTemplate marshals resource with encoding/json. Its JSON must contain the
// quoted [DataPlaceholder] exactly once, or the error wraps [ErrPlaceholder].
func NewTemplate(resource any) (*Template, error) {
	b, err := json.Marshal(resource)
	if err != nil {
		return nil, fmt.Errorf("fhirjson: marshal resource: %w", err)
	}
	i := bytes.Index(b, quotedPlaceholder)
	if i < 0 || bytes.Contains(b[i+len(quotedPlaceholder):], quotedPlaceholder) {
		return nil, ErrPlaceholder
	}
	return &Template{
		prefix: b[:i+1],
		suffix: b[i+len(quotedPlaceholder)-1:],
	}, nil
}

// Len returns the exact length in bytes of the JSON that WriteTo produces for
// dataLen bytes of raw (not yet base64) data, for a Content-Length header.
func (t *Template) Len(dataLen int64) int64 {
	return int64(len(t.prefix)+len(t.suffix)) + base64Len(dataLen)
}

func base64Len(n int64) int64 { return (n + 2) / 3 * 4 }

// WriteTo writes the resource's JSON to w with the data read from data to EOF
// and written as standard, padded base64. It returns the bytes written. Memory
// use does not depend on the size of data.
func (t *Template) WriteTo(w io.Writer, data io.Reader) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	if _, err := bw.Write(t.prefix); err != nil {
		return cw.n, err
	}
	enc := base64.NewEncoder(base64.StdEncoding, bw)
	if _, err := io.Copy(enc, data); err != nil {
		return cw.n, fmt.Errorf("fhirjson: stream data: %w", err)
	}
	if err := enc.Close(); err != nil {
		return cw.n, err
	}
	if _, err := bw.Write(t.suffix); err != nil {
		return cw.n, err
	}
	err := bw.Flush()
	return cw.n, err
}

// Encode is NewTemplate followed by WriteTo.
func Encode(w io.Writer, resource any, data io.Reader) (int64, error) {
	t, err := NewTemplate(resource)
	if err != nil {
		return 0, err
	}
	return t.WriteTo(w, data)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
