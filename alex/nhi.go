package alex

import (
	"fmt"
	"strings"
)

// NHISystem is the identifier system of New Zealand's National Health Index.
const NHISystem = "https://standards.digital.health.nz/ns/nhi-id"

// HPIFacilitySystem and HPIOrganisationSystem identify HPI facilities and
// organisations in ALEX's Location resources.
const (
	HPIFacilitySystem     = "https://standards.digital.health.nz/ns/hpi-facility-id"
	HPIOrganisationSystem = "https://standards.digital.health.nz/ns/hpi-organisation-id"
)

// nhiLetters are the letters an NHI uses, in value order (I and O are never
// used): A=1 ... Z=24.
const nhiLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ"

// NormalizeNHI upper-cases and trims an NHI and checks it against the NHI
// validation routine of HISO 10046:2023: the old format AAANNNC (numeric
// check digit, modulus 11) and the new AAANNAX (alphabetic check character,
// modulus 23). Test NHIs (starting with Z) are valid. The error matches
// ErrValidation and does not repeat the input.
func NormalizeNHI(nhi string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(nhi))
	if !ValidNHI(n) {
		return "", fmt.Errorf("%w: not a valid NHI (format AAANNNC or AAANNAX with a correct check character)", ErrValidation)
	}
	return n, nil
}

// ValidNHI reports whether s (upper case) is a well-formed NHI with a
// correct check character.
func ValidNHI(s string) bool {
	if len(s) != 7 {
		return false
	}
	sum := 0
	for i := 0; i < 6; i++ {
		c := s[i]
		var v int
		switch {
		case i < 3 || (i == 5 && !isDigit(c)):
			v = strings.IndexByte(nhiLetters, c) + 1
			if v == 0 || (i == 5 && isDigit(s[6])) {
				return false
			}
		case isDigit(c):
			v = int(c - '0')
		default:
			return false
		}
		sum += v * (7 - i)
	}
	if isDigit(s[5]) { // old format: AAANNNC
		if !isDigit(s[6]) {
			return false
		}
		r := sum % 11
		if r == 0 {
			return false
		}
		check := (11 - r) % 10
		return int(s[6]-'0') == check
	}
	// new format: AAANNAX
	r := sum % 23
	if r == 0 {
		return false
	}
	return strings.IndexByte(nhiLetters, s[6])+1 == 23-r
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
