package clinicalimages

import (
	"testing"
	"time"
)

func TestAgeOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct{ birth, want string }{
		{"1965-08-07", "60 years"},
		{"1965-03-01", "61 years"}, // birthday today
		{"1965-03-02", "60 years"}, // tomorrow
		{"2024-03-01", "2 years"},
		{"2024-03-02", "23 months"},
		{"2025-12-15", "2 months"},
		{"2026-01-20", "5 weeks"},
		{"2026-02-14", "2 weeks"},
		{"2026-02-20", "9 days"},
		{"2026-02-28", "1 day"},
		{"2026-03-01", "0 days"},
		{"1965", "61 years"},
		{"1965-08", "60 years"},
		{"2026-03-02", ""}, // the future
		{"07/08/1965", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := ageOf(tc.birth, now); got != tc.want {
			t.Errorf("ageOf(%q) = %q, want %q", tc.birth, got, tc.want)
		}
	}
}

func TestInitial(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"aroha": "A.", " Ōtautahi": "Ō.", "'Ofa": "O.", "": "", "  ": ""} {
		if got := initial(in); got != want {
			t.Errorf("initial(%q) = %q, want %q", in, got, want)
		}
	}
}
