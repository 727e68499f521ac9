package media

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBodySitesTable(t *testing.T) {
	t.Parallel()
	sites := BodySites()
	require.GreaterOrEqual(t, len(sites), 80, "the issue asks for at least 80 sites")

	seenCode := map[string]string{}
	seenName := map[string]bool{}
	regions := map[Region]int{}
	for _, s := range sites {
		assert.Truef(t, isSCTID(s.Code), "%s (%s) is not a valid SNOMED CT concept id", s.Code, s.Name)
		if prev, dup := seenCode[s.Code]; dup {
			t.Errorf("code %s used by %q and %q", s.Code, prev, s.Name)
		}
		seenCode[s.Code] = s.Name
		assert.Falsef(t, seenName[s.Name], "name %q repeated", s.Name)
		seenName[s.Name] = true
		assert.NotEmpty(t, s.Display, s.Code)
		assert.Equal(t, cleanText(s.Name), s.Name)
		regions[s.Region]++
		if s.Region == RegionGenital {
			assert.Truef(t, s.Sensitive, "%s is genital or perianal and must be sensitive", s.Name)
		}
	}
	for _, r := range []Region{RegionHeadNeck, RegionTrunk, RegionUpperLimb, RegionLowerLimb, RegionGenital} {
		assert.Positive(t, regions[r], r)
	}
	for _, name := range []string{"Scalp", "Forehead", "Ear", "Neck", "Forearm", "Hand", "Thumb", "Fingernail", "Foot", "Big toe", "Toenail", "Perianal skin", "Vulva", "Scrotum"} {
		assert.Truef(t, seenName[name], "missing %s", name)
	}
}

func TestValueSetsAreCopies(t *testing.T) {
	t.Parallel()
	a := BodySites()
	a[0].Name = "changed"
	a[0].Synonyms[0] = "changed"
	b := BodySites()
	assert.NotEqual(t, "changed", b[0].Name)
	assert.NotEqual(t, "changed", b[0].Synonyms[0])

	l := Lateralities()
	l[0].Name = "changed"
	assert.Equal(t, "Left", Lateralities()[0].Name)

	v := Views()
	v[0].Synonyms[0] = "changed"
	assert.NotEqual(t, "changed", Views()[0].Synonyms[0])

	s, ok := LookupBodySite("14975008")
	require.True(t, ok)
	s.Synonyms[0] = "changed"
	s2, _ := LookupBodySite("14975008")
	assert.NotEqual(t, "changed", s2.Synonyms[0])
}

func TestLateralities(t *testing.T) {
	t.Parallel()
	want := map[string]string{"7771000": "Left", "24028007": "Right", "51440002": "Bilateral", "399488007": "Midline"}
	got := map[string]string{}
	for _, l := range Lateralities() {
		got[l.Code] = l.Name
		assert.True(t, isSCTID(l.Code), l.Code)
	}
	assert.Equal(t, want, got)
	_, ok := LookupLaterality("12345")
	assert.False(t, ok)
}

func TestViews(t *testing.T) {
	t.Parallel()
	codes := map[string]bool{}
	for _, v := range Views() {
		assert.False(t, codes[v.Code], "duplicate view %s", v.Code)
		codes[v.Code] = true
		assert.NotEmpty(t, v.Name)
		assert.NotEmpty(t, v.Definition)
	}
	for _, c := range []string{"close-up", "overview", "dermoscopic", "before", "after"} {
		assert.True(t, codes[c], c)
	}
}

func names(sites []BodySite) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.Name
	}
	return out
}

func TestSearchBodySites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		query     string
		wantFirst []string // these, in order, at the head of the result
		contains  []string
		excludes  []string
		wantLen   int // -1: do not check
	}{
		{name: "prefix of name", query: "fore", wantFirst: []string{"Forehead", "Forearm"}, wantLen: -1},
		{name: "case insensitive", query: "FOREARM", wantFirst: []string{"Forearm"}, wantLen: 1},
		{name: "synonym", query: "pinky", contains: []string{"Little finger", "Little fingernail"}, wantLen: -1},
		{name: "two words", query: "big toe", wantFirst: []string{"Big toe", "Big toenail"}, wantLen: -1},
		{name: "word prefix not infix", query: "arm", contains: []string{"Arm", "Upper arm", "Forearm", "Armpit"}, excludes: []string{"Palm"}, wantLen: -1},
		{name: "snomed term", query: "helix", contains: []string{"Rim of ear"}, wantLen: -1},
		{name: "no match", query: "zzzz", wantLen: 0},
		{name: "punctuation ignored", query: "  nail,  toe ", contains: []string{"Toenail", "Big toenail"}, excludes: []string{"Fingernail"}, wantLen: -1},
		{name: "empty returns all", query: "", wantLen: len(bodySites)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := names(SearchBodySites(tc.query))
			if tc.wantLen >= 0 {
				assert.Len(t, got, tc.wantLen)
			}
			require.GreaterOrEqual(t, len(got), len(tc.wantFirst))
			for i, w := range tc.wantFirst {
				assert.Equal(t, w, got[i], "position %d", i)
			}
			for _, c := range tc.contains {
				assert.Contains(t, got, c)
			}
			for _, e := range tc.excludes {
				assert.NotContains(t, got, e)
			}
		})
	}
}

func TestSearchViews(t *testing.T) {
	t.Parallel()
	got := SearchViews("derm")
	require.NotEmpty(t, got)
	assert.Equal(t, "dermoscopic", got[0].Code)
	got = SearchViews("ruler")
	require.Len(t, got, 1)
	assert.Equal(t, "close-up-scale", got[0].Code)
	assert.Len(t, SearchViews(""), len(views))
	assert.Empty(t, SearchViews("qqq"))
}

func TestSCTID(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"14975008":  true,
		"272741003": true,
		"7771000":   true,
		"14975009":  false, // check digit wrong
		"14975":     false, // too short
		"014975008": false, // leading zero
		"1497500x":  false,
		"":          false,
		"123456120": false, // partition 12 is a description, not a concept
	}
	for in, want := range tests {
		assert.Equal(t, want, isSCTID(in), in)
	}
}
