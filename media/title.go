package media

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Title returns the content.title that [Builder.Build] writes for md and a
// photo taken at created. Medtech Evolution does not show bodySite,
// laterality or view, and its Inbox lists the item by this title, so it
// carries them in words: "Left forearm, close-up, 25 Nov 2026 10:42".
//
// A title the GP gave (md.Title) is used as given, with surrounding and
// repeated white space and control characters collapsed; [Builder.Validate]
// rejects one longer than [MaxTitleLength]. A generated title never exceeds
// [MaxTitleLength]. For a sensitive site the generated title says "Clinical
// photo (sensitive site)" instead of naming it, because the Inbox list is
// read by other staff; the coded body site is still in the resource.
func (b *Builder) Title(md Metadata, created time.Time) string {
	return b.title(md, created)
}

func (b *Builder) title(md Metadata, created time.Time) string {
	if t := cleanText(md.Title); t != "" {
		return t
	}
	what := "Clinical photo"
	if site, ok := LookupBodySite(md.BodySite); ok {
		if site.Sensitive {
			what = "Clinical photo (sensitive site)"
		} else {
			lat, _ := LookupLaterality(md.Laterality)
			what = lateralName(site, lat)
		}
	}
	if created.IsZero() {
		created = b.cfg.now()
	}
	date := created.In(b.cfg.loc).Format("2 Jan 2006 15:04")
	view := ""
	if v, ok := LookupView(md.View); ok {
		view = strings.ToLower(v.Name)
	}
	parts := []string{what}
	if view != "" {
		parts = append(parts, view)
	}
	parts = append(parts, date)
	t := strings.Join(parts, ", ")
	if utf8.RuneCountInString(t) <= MaxTitleLength {
		return t
	}
	// Too long: keep the site and date, drop the view, then shorten the
	// site's words.
	room := MaxTitleLength - utf8.RuneCountInString(", "+date)
	return truncate(what, room) + ", " + date
}

// cleanText trims s, turns control characters into spaces and collapses
// runs of white space.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// truncate shortens s to at most n characters, ending with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return ""
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ,") + "…"
}
