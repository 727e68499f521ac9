// Package testenv finds the real services that integration tests run against
// (Redis, an S3-compatible server, PostgreSQL) and decides what a missing
// one means.
//
// On a laptop a missing service skips the test that needs it. Under CI=true
// (or CLINICALIMAGES_REQUIRE_SERVICES=1) a missing service fails the test:
// CI never passes by skipping. scripts/test starts the services and exports
// the variables read here.
//
// Tests that share a service must isolate themselves: Redis tests use a key
// prefix unique to the test (see [Prefix]) and never FLUSHDB; S3 tests use
// their own bucket or key prefix; PostgreSQL tests get a schema of their own
// (see [Postgres]), dropped when the test ends.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Environment variables read by this package. scripts/test sets them.
const (
	EnvRequire     = "CLINICALIMAGES_REQUIRE_SERVICES"
	EnvRedisURL    = "TEST_REDIS_URL"
	EnvS3Endpoint  = "TEST_S3_ENDPOINT"
	EnvS3AccessKey = "TEST_S3_ACCESS_KEY"
	EnvS3SecretKey = "TEST_S3_SECRET_KEY"
	EnvS3Region    = "TEST_S3_REGION"
)

// DefaultRedisURL is used when TEST_REDIS_URL is unset.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// Strict reports whether a missing service must fail rather than skip:
// true under CI=true or CLINICALIMAGES_REQUIRE_SERVICES=1.
func Strict() bool {
	return truthy(os.Getenv("CI")) || truthy(os.Getenv(EnvRequire))
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Missing skips t, or fails it when [Strict] is true, explaining which
// service is missing and why.
func Missing(t testing.TB, service, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s is required (CI=true or %s=1) but unavailable: %s; run ./scripts/test, which starts it", service, EnvRequire, why)
	}
	t.Skipf("%s unavailable (%s); skipping integration test (set CI=true to make this a failure)", service, why)
}

// RedisURL returns the URL of a reachable Redis server (redis://host:port/db),
// or skips/fails t through [Missing].
func RedisURL(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(EnvRedisURL)
	if raw == "" {
		raw = DefaultRedisURL
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q is not a redis:// URL", EnvRedisURL, raw)
	}
	if err := dial(u.Host); err != nil {
		Missing(t, "Redis", err.Error())
	}
	return raw
}

// S3Config locates an S3-compatible server for integration tests.
type S3Config struct {
	Endpoint  string // http://host:port
	AccessKey string
	SecretKey string
	Region    string
}

// S3 returns the S3-compatible server started by scripts/test, or skips/fails
// t through [Missing].
func S3(t testing.TB) S3Config {
	t.Helper()
	c := S3Config{
		Endpoint:  os.Getenv(EnvS3Endpoint),
		AccessKey: os.Getenv(EnvS3AccessKey),
		SecretKey: os.Getenv(EnvS3SecretKey),
		Region:    os.Getenv(EnvS3Region),
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Endpoint == "" || c.AccessKey == "" || c.SecretKey == "" {
		Missing(t, "S3 server", EnvS3Endpoint+", "+EnvS3AccessKey+" and "+EnvS3SecretKey+" must be set")
		return c
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("%s=%q is not an http(s) URL", EnvS3Endpoint, c.Endpoint)
	}
	if err := dial(u.Host); err != nil {
		Missing(t, "S3 server", err.Error())
	}
	return c
}

// Prefix returns a short random string for namespacing keys, buckets or
// channels so that tests running at once against one server never collide.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

func dial(hostport string) error {
	c, err := net.DialTimeout("tcp", hostport, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
