package clinicalimages

import (
	"context"
	"time"
)

// LaunchCreated is launchCreated, for the freshness tests.
func LaunchCreated(raw string, zone *time.Location) (time.Time, bool) {
	return launchCreated(raw, zone)
}

// BuiltAuckland is the Pacific/Auckland the SDK builds when the host has no
// tz database.
func BuiltAuckland() (*time.Location, error) {
	return time.LoadLocationFromTZData("Pacific/Auckland", posixTZif(aucklandTZ, "NZST", 12*3600))
}

// CheckFresh is the freshness check of an Evolution launch's createdTime.
func (s *Service) CheckFresh(ctx context.Context, raw string) error { return s.checkFresh(ctx, raw) }
