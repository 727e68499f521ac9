package clinicalimages

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/clinicpro/clinicalimages/alex"
)

// PatientCheck is what a paired phone may read about the session's patient:
// enough for the GP to see that the phone feeds the record on the desktop
// (compare with the desktop's banner), too little to identify anyone. No
// name, date of birth, NHI or patient id.
type PatientCheck struct {
	Initials string `json:"initials,omitempty"` // "A.T." from the first given and the family name
	Age      string `json:"age,omitempty"`      // "61 years", "8 months", "3 weeks" or "5 days"
	Sex      string `json:"sex,omitempty"`      // "Female", "Male", "Other" or "Unknown" (FHIR administrative gender)
}

// PhonePatientCheck returns the patient check for the phone holding token,
// read from ALEX as [Service.Patient] does. The token must be the paired,
// unrevoked phone's; the reply is never cached by the phone (no-store) and
// the phone page keeps it in its DOM only.
func (s *Service) PhonePatientCheck(ctx context.Context, token string) (PatientCheck, error) {
	view, err := s.sessions.AuthenticatePhone(ctx, token)
	if err != nil {
		return PatientCheck{}, storage(err)
	}
	sess, err := s.sessions.Get(ctx, view.SessionID)
	if err != nil {
		return PatientCheck{}, storage(err)
	}
	p, err := s.alex.ReadPatient(alex.WithFacilityID(ctx, sess.Facility), sess.PatientID)
	if err != nil {
		return PatientCheck{}, err
	}
	var c PatientCheck
	if len(p.Name) > 0 {
		n := p.Name[0]
		var given, family string
		if len(n.Given) > 0 {
			given = n.Given[0]
		}
		if n.Family != nil {
			family = *n.Family
		}
		c.Initials = initial(given) + initial(family)
	}
	if p.BirthDate != nil {
		c.Age = ageOf(*p.BirthDate, s.now())
	}
	if p.Gender != nil {
		switch g := p.Gender.Code(); g {
		case "female", "male", "other", "unknown":
			c.Sex = strings.ToUpper(g[:1]) + g[1:]
		}
	}
	return c, nil
}

// initial is the first letter of a name, capitalised, with a full stop.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		if unicode.IsLetter(r) {
			return string(unicode.ToUpper(r)) + "."
		}
	}
	return ""
}

// ageOf says how old someone born on birth (FHIR date: YYYY, YYYY-MM or
// YYYY-MM-DD) is at now, in whole years from two years on, else months,
// weeks or days. A date it cannot read, or in the future, gives "".
func ageOf(birth string, now time.Time) string {
	var b time.Time
	var err error
	switch len(birth) {
	case 10:
		b, err = time.Parse(time.DateOnly, birth)
	case 7:
		b, err = time.Parse("2006-01", birth)
	case 4:
		b, err = time.Parse("2006", birth)
	default:
		return ""
	}
	now = now.UTC()
	if err != nil || b.After(now) {
		return ""
	}
	months := (now.Year()-b.Year())*12 + int(now.Month()-b.Month())
	if now.Day() < b.Day() {
		months--
	}
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	switch days := int(now.Sub(b).Hours() / 24); {
	case months >= 24:
		return plural(months/12, "year")
	case months >= 2:
		return plural(months, "month")
	case days >= 14:
		return plural(days/7, "week")
	default:
		return plural(days, "day")
	}
}
