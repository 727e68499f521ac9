package fhirjson

import (
	"bufio"
	"io"
)

// SkipData returns a reader that yields the JSON read from r with the value of
// every object member named "data" whose value is a string replaced by the
// empty string. Everything else passes through unchanged. It holds a constant
// amount of memory however long the skipped strings are, and does not
// validate the JSON: malformed input passes through (a decoder reading the
// result reports it). A member name spelt with escapes ("d\u0061ta") is not
// recognised; no FHIR server writes plain ASCII names that way.
func SkipData(r io.Reader) io.Reader {
	return &skipReader{src: bufio.NewReaderSize(r, 32<<10)}
}

type skipState uint8

const (
	stNormal    skipState = iota // outside any string
	stString                     // inside a string that is kept
	stStringEsc                  // after a backslash in a kept string
	stSkip                       // inside a "data" value being dropped
	stSkipEsc                    // after a backslash in a dropped string
)

type skipReader struct {
	src   *bufio.Reader
	state skipState
	// key holds up to 5 bytes of the current or last kept string; keyLong is
	// set once it is known to be longer than "data".
	key     [5]byte
	keyLen  int
	keyLong bool
	// afterDataKey: the last token was the key "data" and its colon; a string
	// opening now is a value to drop.
	lastWasData  bool
	afterDataKey bool
	err          error
}

func (s *skipReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if s.err != nil {
			break
		}
		c, err := s.src.ReadByte()
		if err != nil {
			s.err = err
			break
		}
		switch s.state {
		case stNormal:
			switch c {
			case '"':
				if s.afterDataKey {
					s.afterDataKey = false
					s.state = stSkip
				} else {
					s.state = stString
					s.keyLen, s.keyLong = 0, false
				}
			case ':':
				s.afterDataKey = s.lastWasData
				s.lastWasData = false
			case ' ', '\t', '\n', '\r':
			default:
				s.afterDataKey, s.lastWasData = false, false
			}
			p[n] = c
			n++
		case stString:
			switch c {
			case '\\':
				s.state = stStringEsc
				s.keyLong = true // an escaped key is never the plain "data"
			case '"':
				s.state = stNormal
				s.lastWasData = !s.keyLong && s.keyLen == 4 && string(s.key[:4]) == "data"
			default:
				if s.keyLen < len(s.key) {
					s.key[s.keyLen] = c
					s.keyLen++
				} else {
					s.keyLong = true
				}
			}
			p[n] = c
			n++
		case stStringEsc:
			s.state = stString
			p[n] = c
			n++
		case stSkip:
			switch c {
			case '\\':
				s.state = stSkipEsc
			case '"':
				s.state = stNormal
				p[n] = c
				n++
			}
		case stSkipEsc:
			s.state = stSkip
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, s.err
}
