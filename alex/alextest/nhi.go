package alextest

// nhiLetters are the letters an NHI may contain (I and O are never used), in
// the order that gives each its value: A=1 ... Z=24.
const nhiLetters = "ABCDEFGHJKLMNPQRSTUVWXYZ"

func nhiLetter(c byte) int {
	for i := 0; i < len(nhiLetters); i++ {
		if nhiLetters[i] == c {
			return i + 1
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validNHI reports whether s is an upper-case NHI number with a correct check
// character, in the old AAANNNC form (mod 11 check digit) or the new AAANNAX
// form (mod 23 check letter), as HISO 10046 specifies. The simulator uses it
// only to keep its default patients honest; it accepts any NHI in WithPatients
// because a client is expected to validate before calling.
func validNHI(s string) bool {
	if len(s) != 7 {
		return false
	}
	sum := 0
	for i := 0; i < 3; i++ {
		v := nhiLetter(s[i])
		if v == 0 {
			return false
		}
		sum += v * (7 - i)
	}
	if !isDigit(s[3]) || !isDigit(s[4]) {
		return false
	}
	sum += int(s[3]-'0')*4 + int(s[4]-'0')*3
	switch {
	case isDigit(s[5]) && isDigit(s[6]): // old format: AAANNNC
		sum += int(s[5]-'0') * 2
		rem := sum % 11
		if rem == 0 {
			return false
		}
		check := (11 - rem) % 10
		return int(s[6]-'0') == check
	case nhiLetter(s[5]) != 0 && nhiLetter(s[6]) != 0: // new format: AAANNAX
		sum += nhiLetter(s[5]) * 2
		rem := sum % 23
		if rem == 0 {
			return false
		}
		return nhiLetter(s[6]) == 23-rem
	}
	return false
}
