package media

import (
	"strings"
	"time"
	"unicode/utf8"
)

// TitleSeparator joins the GP's own title to the site, side and view that
// [Builder.Title] appends to it: "Lesion — left forearm, close-up".
const TitleSeparator = " — "

// Title returns the content.title that [Builder.Build] writes for md and a
// photo taken at created; call it to show the GP, before anything is sent,
// exactly what the record will carry. Medtech Evolution shows a Media's
// title and none of its coded fields, so the title always tells the body
// site, its side and the view when they are set:
//
//   - With no title from the GP it is made from them and the time taken:
//     "Left forearm, close-up, 25 Nov 2026 10:42" (the date in the
//     practice's time zone; a zero created means now by the builder's
//     clock).
//   - With the GP's title they follow it after [TitleSeparator]: "Lesion —
//     left forearm, close-up". A title that already ends with exactly that
//     ending gets it once. When the whole would pass [MaxTitleLength], the
//     GP's words are shortened (ending in "…"), never the site, side or
//     view.
//
// The GP's title is made plain first ([PlainText], white space folded to
// single spaces). A sensitive site (genital, perianal, breast) is never
// named, because the Inbox list is read by other staff, but its side is:
// "Right sensitive site, 25 Nov 2026 10:42", "Lesion — right sensitive site"
// ("Clinical photo (sensitive site), 25 Nov 2026 10:42" with no side);
// the coded body site is still in the resource. The result is never longer
// than MaxTitleLength characters; [CheckMetadata] refuses a GP's title
// longer than that on its own.
func (b *Builder) Title(md Metadata, created time.Time) string {
	return b.title(md, created)
}

func (b *Builder) title(md Metadata, created time.Time) string {
	site := siteText(md)
	view := ""
	if v, ok := LookupView(md.View); ok {
		view = strings.ToLower(v.Name)
	}
	if typed := cleanText(md.Title); typed != "" {
		return typedTitle(typed, site, view)
	}
	what := "Clinical photo"
	switch {
	case site == sensitiveSiteName:
		what = "Clinical photo (sensitive site)" // no side to tell
	case site != "":
		what = site
	}
	if created.IsZero() {
		created = b.cfg.now()
	}
	date := created.In(b.cfg.loc).Format("2 Jan 2006 15:04")
	parts := []string{what}
	if view != "" {
		parts = append(parts, view)
	}
	parts = append(parts, date)
	t := strings.Join(parts, ", ")
	if utf8.RuneCountInString(t) <= MaxTitleLength {
		return t
	}
	// Unreachable with this package's value sets (a test checks every
	// combination); kept so the bound holds whatever the tables become.
	room := MaxTitleLength - utf8.RuneCountInString(", "+date)
	return truncate(strings.Join(parts[:len(parts)-1], ", "), room) + ", " + date
}

// typedTitle is the GP's title followed by the site (with its side) and
// the view, shortening only the GP's words to fit.
func typedTitle(typed, site, view string) string {
	var tail []string
	if site != "" {
		tail = append(tail, lowerFirst(site))
	}
	if view != "" {
		tail = append(tail, view)
	}
	if len(tail) == 0 {
		return truncate(typed, MaxTitleLength)
	}
	suffix := TitleSeparator + strings.Join(tail, ", ")
	if t, ok := strings.CutSuffix(typed, suffix); ok && t != "" {
		typed = t // the title shown earlier, typed back in
	}
	room := MaxTitleLength - utf8.RuneCountInString(suffix)
	if room < minTypedRoom {
		// Unreachable with this package's value sets (a test checks every
		// combination): the site and view always leave the GP some words.
		return truncate(typed+suffix, MaxTitleLength)
	}
	return truncate(typed, room) + suffix
}

// minTypedRoom is the least room a site and view leave for the GP's words.
const minTypedRoom = 20

// siteText names md's body site with its side ("Left forearm", "Earlobe
// (bilateral)"), or, for a sensitive site, only the side ("Right sensitive
// site", "Sensitive site"); "" when no known site is set.
func siteText(md Metadata) string {
	site, ok := LookupBodySite(md.BodySite)
	if !ok {
		return ""
	}
	lat, _ := LookupLaterality(md.Laterality)
	if site.Sensitive {
		site = BodySite{Name: sensitiveSiteName}
	}
	return lateralName(site, lat)
}

// sensitiveSiteName stands for a sensitive site in titles.
const sensitiveSiteName = "Sensitive site"

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
