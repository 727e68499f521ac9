package media

import (
	"strings"
	"testing"
	"time"
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
		{"sensitive paired site", Metadata{BodySite: "76752008", Laterality: LateralityRight}, "Clinical photo (sensitive site), 25 Nov 2026 10:42"},
		{"GP title wins", Metadata{BodySite: "14975008", Title: "  Mole\tcheck \n left arm "}, "Mole check left arm"},
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

func TestEveryGeneratedTitleIsBounded(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	// 30 Sep renders the longest date ("30 Sep 2026 10:42").
	when := time.Date(2026, 9, 29, 21, 42, 0, 0, time.UTC) // NZDT, +13:00
	for _, s := range BodySites() {
		for _, l := range append(Lateralities(), Laterality{}) {
			for _, v := range append(Views(), View{}) {
				md := Metadata{BodySite: s.Code, Laterality: l.Code, View: v.Code}
				got := b.Title(md, when)
				assert.LessOrEqual(t, utf8.RuneCountInString(got), MaxTitleLength, got)
				assert.True(t, strings.HasSuffix(got, ", 30 Sep 2026 10:42"), got)
				if s.Sensitive {
					assert.NotContains(t, got, s.Name)
				}
			}
		}
	}
}
