package media

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlainText(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"plain is unchanged", "Whānau consent – ‘left arm’ ✓ 😀\nline two", "Whānau consent – ‘left arm’ ✓ 😀\nline two"},
		{"right-to-left override", "\u202eleft\u202c", "left"},
		{"embeddings and isolates", "a\u202ab\u202bc\u202dd\u2066e\u2067f\u2068g\u2069", "abcdefg"},
		{"marks", "x\u200e\u200f\u061cy", "xy"},
		{"zero width and BOM", "le\u200bf\u200ct\u200d\u2060\ufeff", "left"},
		{"soft hyphen", "fore\u00adarm", "forearm"},
		{"tag characters", "\U000e0001\U000e0041x", "x"},
		{"line breaks become LF", "a\r\nb\rc\u2028d\u2029e\u0085f\vg\fh", "a\nb\nc\nd\ne\nf\ng\nh"},
		{"tab becomes a space", "a\tb", "a b"},
		{"other controls removed", "\x00a\x1b[31mb\x7fc\u009bd", "a[31mbcd"},
		{"invalid UTF-8 shows", "a\xffb\xc0", "a\ufffdb\ufffd"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, PlainText(tc.in))
		})
	}
}

// FuzzPlainText: whatever goes in, what comes out is valid UTF-8 without a
// control character other than "\n" and without a format (Cf) character;
// PlainText is idempotent; and text that was plain comes back unchanged.
// The seeds run as ordinary tests.
func FuzzPlainText(f *testing.F) {
	for _, s := range []string{
		"", "Left forearm", "\u202eLeft\u202c", "a\u2066b\u2069", "\u200b\u200c\u200d\u2060\ufeff\u00ad", "\u061c\u200e\u200f",
		"a\r\nb\r", "\x00\x01\x1f\x7f\u0080\u009f", "\xff\xfe\xc0\xaf", "\U000e0041", "ā ✓ 😀\nline", "\u2028\u2029\u0085\v\f\t",
	} {
		f.Add(s)
	}
	b, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, out := range map[string]string{
			"PlainText": PlainText(s),
			"title":     b.Title(Metadata{BodySite: "14975008", Laterality: LateralityLeft, Title: s}, testCreated),
			"note":      cleanNote(s),
		} {
			if !utf8.ValidString(out) {
				t.Fatalf("%s(%q) = %q: not UTF-8", name, s, out)
			}
			for _, r := range out {
				if (unicode.IsControl(r) && r != '\n') || unicode.Is(unicode.Cf, r) {
					t.Fatalf("%s(%q) = %q holds %U", name, s, out, r)
				}
			}
		}
		out := PlainText(s)
		if again := PlainText(out); again != out {
			t.Fatalf("PlainText not idempotent: %q then %q", out, again)
		}
		if plainByHand(s) && out != s {
			t.Fatalf("plain text %q changed to %q", s, out)
		}
		if title := b.Title(Metadata{Title: s}, testCreated); strings.ContainsRune(title, '\n') || utf8.RuneCountInString(title) > MaxTitleLength {
			t.Fatalf("title %q is not one bounded line", title)
		}
	})
}

// plainByHand says whether s is already plain, written independently of
// isPlain.
func plainByHand(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

func TestCheckMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   Metadata
		want []string
	}{
		{"fine", Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up", Title: strings.Repeat("t", MaxTitleLength), Note: strings.Repeat("n", MaxNoteLength)}, nil},
		{"side on a site that is not paired", Metadata{BodySite: "41695006", Laterality: LateralityLeft}, nil},
		{"invisible characters do not count", Metadata{Title: strings.Repeat("t\u200b", MaxTitleLength), Note: " " + strings.Repeat("n\u202e", MaxNoteLength) + "\n"}, nil},
		{"title of 81", Metadata{Title: strings.Repeat("t", MaxTitleLength+1)}, []string{"Metadata.Title"}},
		{"note of 4001", Metadata{Note: strings.Repeat("n", MaxNoteLength+1)}, []string{"Metadata.Note"}},
		{"unknown codes", Metadata{BodySite: "1", Laterality: "2", View: "selfie"}, []string{"Metadata.BodySite", "Metadata.Laterality", "Metadata.View"}},
		{"side without site", Metadata{Laterality: LateralityRight}, []string{"Metadata.Laterality"}},
	}
	b := testBuilder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckMetadata(tc.md)
			in := testInput()
			in.Metadata = tc.md
			_, berr := b.Build(in)
			if tc.want == nil {
				assert.NoError(t, err)
				assert.NoError(t, berr, "Build agrees")
				return
			}
			assert.Equal(t, tc.want, problemFields(t, err))
			assert.Len(t, problemFields(t, berr), len(tc.want), "Build refuses the same, once each")
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, "Metadata", ve.Resource)
		})
	}
}

// TestPlainResourcesPassIndependentValidators: a Media built from hostile
// text and with the consent method passes FHIR.js and @medplum/core.
func TestPlainResourcesPassIndependentValidators(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	in := testInput()
	in.Metadata.Title = "\u202eLesion\u202c \u200bon\u2066 arm\u2069\x1b"
	in.Metadata.Note = "\ufeffLine one\r\nline two\u00ad\u200d\x00"
	in.Consent = &Consent{Purposes: []ConsentPurpose{ConsentRecord}, Method: ConsentWritten, RecordedBy: "prac-9", RecordedAt: testCreated}
	m, err := b.Build(in)
	require.NoError(t, err)
	require.Len(t, m.Note, 2)
	assert.Equal(t, "Consent (written): clinical record: yes; teaching: no; publication: no.", m.Note[1].Text)
	results := runValidators(t, [][]byte{inlineMedia(t, m, testImage)})
	if results == nil {
		return
	}
	assert.Empty(t, results[0].errors())
}

func TestMetadataPlain(t *testing.T) {
	t.Parallel()
	md := Metadata{BodySite: "14975008", Title: " \u202eLe\u200bsion \n here ", Note: "\r\n one\u2066\r\n two \x00"}
	assert.Equal(t, Metadata{BodySite: "14975008", Title: "Lesion here", Note: "one\n two"}, md.Plain())
	assert.Equal(t, md.Plain(), md.Plain().Plain())
}
