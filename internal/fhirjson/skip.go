package fhirjson

import (
	"bufio"
	"bytes"
	"io"
)

// SkipData returns a reader that yields the JSON read from r with the value of
// every object member named "data" whose value is a string replaced by the
// empty string. Everything else passes through unchanged. It holds a constant
// amount of memory however long the skipped strings are, and does not
// validate the JSON: malformed input passes through (a decoder reading the
// result reports it). A member name spelt with escapes ("d\u0061ta") is not
// recognised; no FHIR server writes plain ASCII names that way.
func SkipData(r io.Reader) io.Reader { return NewDataFilter(r, discard{}) }

// A DataSink receives the "data" string values a [NewDataFilter] takes out of
// a JSON stream, one at a time, in order.
type DataSink interface {
	// Start is called when the n-th (from 0) "data" string value begins.
	Start(n int)
	// Data receives the value's characters in runs, with JSON's one-letter
	// escapes decoded (\/ gives '/', \n a newline...). The slice is only
	// valid during the call.
	Data(p []byte)
	// Unicode is called for each \uXXXX escape, which is not decoded: its
	// four hex digits are skipped. (Base64 content never needs one.)
	Unicode()
	// End is called at the value's closing quote. It returns what the
	// filtered JSON carries in the value's place: the content of a JSON
	// string, already escaped.
	End(n int) string
}

type discard struct{}

func (discard) Start(int)      {}
func (discard) Data([]byte)    {}
func (discard) Unicode()       {}
func (discard) End(int) string { return "" }

// NewDataFilter returns a reader that yields the JSON read from r with the
// value of every "data" string member taken out and handed to sink, and
// sink's replacement written in its place. Memory use is constant. The JSON is
// not validated; see [SkipData] for what is recognised.
func NewDataFilter(r io.Reader, sink DataSink) io.Reader {
	return &filter{src: bufio.NewReaderSize(r, 32<<10), sink: sink}
}

type filterState uint8

const (
	stNormal    filterState = iota // outside any string
	stString                       // inside a string that is kept
	stStringEsc                    // after a backslash in a kept string
	stData                         // inside a "data" value being taken out
	stDataEsc                      // after a backslash in a "data" value
	stDataHex                      // in the four hex digits of a \u escape
)

type filter struct {
	src   *bufio.Reader
	sink  DataSink
	state filterState
	// key holds up to 5 bytes of the current or last kept string; keyLong is
	// set once it is known to be longer than "data".
	key     [5]byte
	keyLen  int
	keyLong bool
	// lastWasData: the last string was the key "data"; afterDataKey: and its
	// colon followed, so a string opening now is a value to take out.
	lastWasData  bool
	afterDataKey bool
	values       int    // "data" values seen
	hex          int    // hex digits of a \u escape still to skip
	out          []byte // replacement bytes not yet returned
	one          [1]byte
	err          error
}

func (f *filter) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(f.out) > 0 {
			k := copy(p[n:], f.out)
			f.out = f.out[k:]
			n += k
			continue
		}
		if f.err != nil {
			break
		}
		if f.state == stData {
			f.takeRun()
		}
		c, err := f.src.ReadByte()
		if err != nil {
			f.err = err
			break
		}
		switch f.state {
		case stNormal:
			switch c {
			case '"':
				if f.afterDataKey {
					f.afterDataKey = false
					f.state = stData
					f.sink.Start(f.values)
					continue // the quotes are written with the replacement
				}
				f.state = stString
				f.keyLen, f.keyLong = 0, false
			case ':':
				f.afterDataKey = f.lastWasData
				f.lastWasData = false
			case ' ', '\t', '\n', '\r':
			default:
				f.afterDataKey, f.lastWasData = false, false
			}
			p[n] = c
			n++
		case stString:
			switch c {
			case '\\':
				f.state = stStringEsc
				f.keyLong = true // an escaped key is never the plain "data"
			case '"':
				f.state = stNormal
				f.lastWasData = !f.keyLong && f.keyLen == 4 && string(f.key[:4]) == "data"
			default:
				if f.keyLen < len(f.key) {
					f.key[f.keyLen] = c
					f.keyLen++
				} else {
					f.keyLong = true
				}
			}
			p[n] = c
			n++
		case stStringEsc:
			f.state = stString
			p[n] = c
			n++
		case stData:
			switch c {
			case '\\':
				f.state = stDataEsc
			case '"':
				f.state = stNormal
				f.out = append(append(append(f.out[:0], '"'), f.sink.End(f.values)...), '"')
				f.values++
			default: // the first character after a refill of the buffer
				f.one[0] = c
				f.sink.Data(f.one[:])
			}
		case stDataEsc:
			f.state = stData
			switch c {
			case 'u':
				f.sink.Unicode()
				f.state, f.hex = stDataHex, 4
			default:
				f.one[0] = unescape(c)
				f.sink.Data(f.one[:])
			}
		case stDataHex:
			if f.hex--; f.hex == 0 {
				f.state = stData
			}
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, f.err
}

// takeRun hands the buffered characters up to the next quote or backslash to
// the sink in one call, without the byte-at-a-time state machine.
func (f *filter) takeRun() {
	buf, _ := f.src.Peek(f.src.Buffered())
	end := bytes.IndexAny(buf, "\"\\")
	if end < 0 {
		end = len(buf)
	}
	if end > 0 {
		f.sink.Data(buf[:end])
		_, _ = f.src.Discard(end)
	}
}

// unescape decodes JSON's one-letter escapes; others give the letter itself.
func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	}
	return c // '"', '\\', '/'
}
