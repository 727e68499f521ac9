package compress

import (
	"errors"
	"fmt"
)

// Sentinel errors for every refusal. Callers branch on them with errors.Is;
// an HTTP layer maps them to status codes:
//
//	ErrUnsupportedFormat -> 415 Unsupported Media Type
//	ErrTooLarge          -> 413 Content Too Large
//	ErrTooManyPixels     -> 413 Content Too Large (or 422)
//	ErrCorrupt           -> 422 Unprocessable Content
//	ErrBudget            -> 422 Unprocessable Content
//	ErrInvalidEdit       -> 422 Unprocessable Content (Normalizer.Edit only)
//
// Every error returned by [Normalizer.Normalize] for a bad input is an
// [*Error] that wraps exactly one of these.
var (
	// ErrUnsupportedFormat: the bytes are not JPEG, PNG, GIF, WebP or HEIC
	// (SVG, HTML, PDF, AVIF, an empty body...), the format was left out by
	// WithFormats, or it is HEIC and no HEIC decoder was registered with
	// WithDecoder (the *Error's Err then says so).
	ErrUnsupportedFormat = errors.New("compress: unsupported image format")
	// ErrTooLarge: the input has more bytes than the configured limit.
	ErrTooLarge = errors.New("compress: input exceeds the byte limit")
	// ErrTooManyPixels: the header declares more pixels, or a longer side,
	// than the configured limits, or an image whose decoding alone would
	// need more memory than the whole decode budget (the *Error then also
	// wraps ErrDecodeBudget). Nothing was decoded.
	ErrTooManyPixels = errors.New("compress: image exceeds the pixel limit")
	// ErrCorrupt: the data is truncated or malformed.
	ErrCorrupt = errors.New("compress: corrupt or truncated image")
	// ErrBudget: no JPEG at or above the minimum quality and size fits the
	// byte budget. Only a pathological budget (a few KB) produces it.
	ErrBudget = errors.New("compress: cannot meet the byte budget")
)

// Error is the typed error for a refused or failed input. It carries what
// the HTTP layer or an operator needs to explain the refusal and never any
// image bytes or metadata values.
type Error struct {
	// Kind is the sentinel this error matches with errors.Is.
	Kind error
	// Op is the stage that refused: "read", "sniff", "limits", "decode",
	// "resize", "encode".
	Op string
	// Format is the sniffed format, empty when sniffing failed.
	Format Format
	// Width and Height are the declared dimensions when known.
	Width, Height int
	// Limit and Actual quantify a limit refusal (bytes or pixels).
	Limit, Actual int64
	// Err is the underlying cause (a decoder's error), or nil.
	Err error
}

// Error describes the refusal without any image content.
func (e *Error) Error() string {
	msg := e.Kind.Error()
	if e.Op != "" {
		msg += " (" + e.Op
		if e.Format != "" {
			msg += " " + string(e.Format)
		}
		if e.Width > 0 || e.Height > 0 {
			msg += fmt.Sprintf(" %dx%d", e.Width, e.Height)
		}
		if e.Limit > 0 {
			msg += fmt.Sprintf(", %d > limit %d", e.Actual, e.Limit)
		}
		msg += ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is and errors.As see both the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
