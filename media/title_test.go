package media

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestTitle(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	tests := []struct {
		name string
		md   Metadata
		want string
	}{
		{"site side view", Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up"}, "Left forearm, close-up, 25 Nov 2026 10:42"},
		{"site only", Metadata{BodySite: "41695006"}, "Scalp, 25 Nov 2026 10:42"},
		{"view only", Metadata{View: "dermoscopic"}, "Clinical photo, dermoscopic, 25 Nov 2026 10:42"},
		{"nothing", Metadata{}, "Clinical photo, 25 Nov 2026 10:42"},
		{"bilateral", Metadata{BodySite: "2059009", Laterality: LateralityBilateral}, "Earlobe (bilateral), 25 Nov 2026 10:42"},
		{"sensitive site is not named", Metadata{BodySite: "20233005", View: "close-up"}, "Clinical photo (sensitive site), close-up, 25 Nov 2026 10:42"},
		{"sensitive paired site keeps its side", Metadata{BodySite: "76752008", Laterality: LateralityRight}, "Right sensitive site, 25 Nov 2026 10:42"},
		{"sensitive bilateral", Metadata{BodySite: "76752008", Laterality: LateralityBilateral}, "Sensitive site (bilateral), 25 Nov 2026 10:42"},
		// Issue 14: the GP's title used to replace the site and side.
		{"GP title keeps site side and view", Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up", Title: "Lesion"}, "Lesion — left forearm, close-up"},
		{"GP title is folded to one line", Metadata{BodySite: "14975008", Title: "  Mole\tcheck \n left arm "}, "Mole check left arm — forearm"},
		{"GP title with view only", Metadata{View: "dermoscopic", Title: "Naevus"}, "Naevus — dermoscopic"},
		{"GP title alone", Metadata{Title: "Rash, left forearm"}, "Rash, left forearm"},
		{"GP title on a sensitive site names the side only", Metadata{BodySite: "76752008", Laterality: LateralityLeft, Title: "Lump"}, "Lump — left sensitive site"},
		{"the title shown earlier typed back in", Metadata{BodySite: "14975008", Laterality: LateralityLeft, View: "close-up", Title: "Lesion — left forearm, close-up"}, "Lesion — left forearm, close-up"},
		{"a contradicting GP title stays visible", Metadata{BodySite: "14975008", Laterality: LateralityLeft, Title: "Right forearm"}, "Right forearm — left forearm"},
		{"invisible characters are removed", Metadata{BodySite: "14975008", Laterality: LateralityLeft, Title: "Le\u200bsion\u202e\u00ad\ufeff"}, "Lesion — left forearm"},
		{"long GP title is shortened, not the site", Metadata{BodySite: "27887005", Laterality: LateralityBilateral, View: "close-up-scale", Title: strings.Repeat("word ", 16)},
			"word word word word word… — inner corner of eye (bilateral), close-up with scale"},
		{"blank GP title is ignored", Metadata{BodySite: "14975008", Title: " \t "}, "Forearm, 25 Nov 2026 10:42"},
		{"unknown codes are left out", Metadata{BodySite: "1", View: "x"}, "Clinical photo, 25 Nov 2026 10:42"},
		{"long name drops the view", Metadata{BodySite: "110488009", Laterality: LateralityMidline, View: "close-up-scale"}, "Around the mouth (midline), close-up with scale, 25 Nov 2026 10:42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := b.Title(tc.md, testCreated)
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, utf8.RuneCountInString(got), MaxTitleLength)
		})
	}
}

func TestTitleZones(t *testing.T) {
	t.Parallel()
	syd, err := time.LoadLocation("Australia/Sydney")
	if err != nil {
		t.Fatal(err)
	}
	b := testBuilder(t, WithTimeZone(syd))
	assert.Equal(t, "Clinical photo, 25 Nov 2026 08:42", b.Title(Metadata{}, testCreated))
	// Winter in Auckland is +12:00.
	nz := testBuilder(t)
	assert.Equal(t, "Clinical photo, 1 Jul 2026 12:00", nz.Title(Metadata{}, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)))
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "abc", truncate("abc", 3))
	assert.Equal(t, "ab…", truncate("abcd", 3))
	assert.Equal(t, "ā…", truncate("āēīōū", 2))
	assert.Equal(t, "", truncate("abc", 1))
	long := strings.Repeat("word ", 40)
	assert.Equal(t, 20, utf8.RuneCountInString(truncate(long, 20)))
}

// TestEveryTitleTellsSiteSideAndView walks every site, side and view,
// with no title from the GP and with the longest one allowed: the title
// fits, names the side and view in full, names the site in full unless it
// is sensitive, and only the GP's words are ever shortened.
func TestEveryTitleTellsSiteSideAndView(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	// 30 Sep renders the longest date ("30 Sep 2026 10:42").
	when := time.Date(2026, 9, 29, 21, 42, 0, 0, time.UTC) // NZDT, +13:00
	longest := strings.Repeat("ā", MaxTitleLength)
	for _, s := range BodySites() {
		for _, l := range append(Lateralities(), Laterality{}) {
			for _, v := range append(Views(), View{}) {
				md := Metadata{BodySite: s.Code, Laterality: l.Code, View: v.Code}
				site := lateralName(s, l)
				if s.Sensitive {
					site = lateralName(BodySite{Name: sensitiveSiteName}, l)
				}
				tail := lowerFirst(site)
				if v.Code != "" {
					tail += ", " + strings.ToLower(v.Name)
				}

				got := b.Title(md, when)
				assert.LessOrEqual(t, utf8.RuneCountInString(got), MaxTitleLength, got)
				assert.True(t, strings.HasSuffix(got, ", 30 Sep 2026 10:42"), got)
				lower := strings.ToLower(got)
				assert.Contains(t, lower, strings.ToLower(l.Name), "the side")
				assert.Contains(t, lower, strings.ToLower(v.Name), "the view in full")
				if !s.Sensitive {
					assert.Contains(t, lower, strings.ToLower(s.Name), "the site in full")
				}
				if s.Sensitive {
					assert.NotContains(t, got, s.Name)
				}

				md.Title = longest
				got = b.Title(md, when)
				assert.LessOrEqual(t, utf8.RuneCountInString(got), MaxTitleLength, got)
				assert.True(t, strings.HasSuffix(got, TitleSeparator+tail), got)
				typed := strings.TrimSuffix(got, TitleSeparator+tail)
				assert.True(t, strings.HasSuffix(typed, "…"), "the GP's words are shortened: %q", got)
				assert.GreaterOrEqual(t, utf8.RuneCountInString(typed), minTypedRoom, got)
			}
		}
	}
}

// TestTitleIsPlain: whatever the GP types, the title has no control or
// format character and stays within the limit.
func TestTitleIsPlain(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	for _, typed := range []string{
		"\u202eLeft\u202c", "a\u2066b\u2069c", "x\u200e\u200f\u061cy", "\x00\x1b[31mred\x7f\u0085", "tab\tline\r\nbreak\u2028end",
		"\xff\xfe not utf-8", "\U000e0041tag", strings.Repeat("\u200b", 500) + "short",
	} {
		got := b.Title(Metadata{BodySite: "14975008", Laterality: LateralityRight, Title: typed}, testCreated)
		assert.True(t, utf8.ValidString(got), "%q", got)
		for _, r := range got {
			assert.False(t, unicode.IsControl(r) || unicode.Is(unicode.Cf, r), "%q holds %U", got, r)
		}
		assert.True(t, strings.HasSuffix(got, " — right forearm"), got)
		assert.LessOrEqual(t, utf8.RuneCountInString(got), MaxTitleLength, got)
	}
}
