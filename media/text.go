package media

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// PlainText returns s as plain text, fit for any field a person reads in
// Medtech (a title, a note, a caption, a description). It removes what a
// reader cannot see but a renderer obeys, and keeps everything else as it
// was:
//
//   - format characters (Unicode category Cf) are removed: the
//     bidirectional controls U+202A–U+202E, U+2066–U+2069, U+200E, U+200F
//     and U+061C, which can make "left" display where "right" is stored
//     or reorder a title; the zero-width U+200B–U+200D, U+2060 and U+FEFF;
//     the soft hyphen U+00AD; tag characters and the rest of Cf;
//   - line breaks (CR LF, CR, LF, NEL, U+2028, U+2029, vertical tab, form
//     feed) become "\n", and a tab becomes a space;
//   - every other control character (C0, DEL, C1) is removed;
//   - bytes that are not UTF-8 become U+FFFD, visibly.
//
// Text with none of these (valid UTF-8 whose only control character is
// "\n") is returned unchanged, and PlainText(PlainText(s)) ==
// PlainText(s). It does not trim or fold white space: single-line fields
// fold it themselves ([Builder.Title] does). Removing rather than refusing
// is deliberate: these characters arrive by copy and paste far more often
// than by intent, and the GP cannot see them to delete them.
//
// [Builder.Build] and [Builder.Title] apply it to every free text they
// write; builders of other resources should too.
func PlainText(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				i++
			}
			b.WriteByte('\n')
		case isLineBreak(r):
			b.WriteByte('\n')
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			// removed
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isPlain reports whether PlainText would return s unchanged.
func isPlain(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 && c != '\n') || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size <= 1) || isLineBreak(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
		i += size
	}
	return true
}

// isLineBreak reports the characters other than CR and LF that end a line.
func isLineBreak(r rune) bool {
	switch r {
	case '\v', '\f', 0x85, '\u2028', '\u2029':
		return true
	}
	return false
}

// cleanText is [PlainText] folded to one line: trimmed, with every run of
// white space (line breaks included) made one space. Titles and other
// single-line fields use it.
func cleanText(s string) string {
	return strings.Join(strings.Fields(PlainText(s)), " ")
}

// cleanNote is [PlainText] trimmed: notes keep their line breaks.
func cleanNote(s string) string {
	return strings.TrimSpace(PlainText(s))
}

// Plain returns md with its title and note as [Builder.Build] writes them
// plain: the title folded to one line, the note trimmed with its line
// breaks kept (see [PlainText]). Store what Plain returns and the GP sees
// the text the record will get.
func (md Metadata) Plain() Metadata {
	md.Title, md.Note = cleanText(md.Title), cleanNote(md.Note)
	return md
}
