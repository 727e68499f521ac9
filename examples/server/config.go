package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/session"
)

// config is everything the server reads from flags and the environment.
// Flags win over environment variables; both have the defaults documented
// in the package comment.
type config struct {
	Listen          string
	PublicURL       string
	TLSCert         string
	TLSKey          string
	TrustProxy      bool           // deprecated TRUST_PROXY_HEADERS: trust loopback and private proxies
	TrustedProxies  []netip.Prefix // TRUSTED_PROXIES
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	SweepInterval   time.Duration
	CommitLease     time.Duration
	PhoneLapse      time.Duration // silence after which the desktop is told the phone has gone

	Simulate     bool
	ALEXBaseURL  string
	Credentials  alex.Credentials
	Facility     string
	AppID        string
	Proxy        string
	RedisURL     string
	RedisPrefix  string
	DatabaseURL  string // PostgreSQL for the audit trail; environment only (it may hold a password)
	BlobDir      string
	S3Endpoint   string
	S3Bucket     string
	S3AccessKey  string
	S3SecretKey  string
	S3Region     string
	AblyKey      string
	AblyEndpoint string
	Secret       string
	LaunchKey    string
	LaunchAud    string
	MaxUploadMB  int
	MaxImages    int
	// Launch limits: POST /launch per client address and in total per
	// minute, and live sessions per practitioner and per facility.
	LaunchPerClient, LaunchTotal                 int
	LaunchWindow                                 time.Duration
	SessionsPerPractitioner, SessionsPerFacility int
	AllowOrigins                                 []string
	Retention                                    time.Duration

	// The edge: how long and how many clients may hold the server.
	ReadHeaderTimeout time.Duration // request line and headers
	BodyTimeout       time.Duration // a whole non-upload body; the grace before an upload's rate counts
	MinUploadRate     int           // bytes per second an upload body must average after BodyTimeout
	WriteTimeout      time.Duration // the longest one response write may block on a client not reading
	IdleTimeout       time.Duration // a kept-alive connection between requests
	MaxConns          int           // concurrent connections
	MaxStreams        int           // concurrent event streams per desktop or phone credential

	// Posture and operations.
	MemoryLimitMB  int    // soft memory limit (GOMEMLIMIT) in MiB; 0 leaves Go's default
	DecodeBudgetMB int    // decode memory budget in MiB shared by all uploads; 0: half of MemoryLimitMB, or the SDK's default
	MetricsToken   string // bearer token /metrics requires; empty leaves it open on loopback only
}

// simulated reports whether the built-in ALEX simulator stands in for ALEX:
// asked for with -simulate, or because no client id is configured.
func (c *config) simulated() bool { return c.Simulate || c.Credentials.ClientID == "" }

// parseConfig reads flags from args and the environment through getenv.
// A -help request returns flag.ErrHelp after printing usage to out.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (*config, error) {
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := &config{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "Usage: server [flags]\n\nThe clinical images reference server. Every flag also reads the environment variable named in its help.")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Listen, "listen", env("LISTEN_ADDR", "127.0.0.1:8080"), "address to listen on (LISTEN_ADDR)")
	fs.StringVar(&c.PublicURL, "public-url", env("PUBLIC_URL", ""), "URL the phone reaches this server at, for the QR code (PUBLIC_URL; default: the desktop page's own origin)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("TLS_CERT_FILE", ""), "serve HTTPS with this certificate file (TLS_CERT_FILE)")
	fs.StringVar(&c.TLSKey, "tls-key", env("TLS_KEY_FILE", ""), "private key file for -tls-cert (TLS_KEY_FILE)")
	trust := fs.String("trust-proxy-headers", env("TRUST_PROXY_HEADERS", "false"), "deprecated: use -trusted-proxies; true trusts X-Forwarded-For hops from loopback and private addresses (TRUST_PROXY_HEADERS)")
	proxies := fs.String("trusted-proxies", env("TRUSTED_PROXIES", ""), "comma-separated CIDRs or addresses of the reverse proxies in front of this server; the client address is the rightmost X-Forwarded-For entry that is not one of them (TRUSTED_PROXIES; default none: the header is ignored)")
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", durEnv(getenv, "SHUTDOWN_TIMEOUT", 30*time.Second), "how long shutdown waits for uploads and commits in flight (SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", durEnv(getenv, "SWEEP_INTERVAL", time.Minute), "how often background recovery and sweeping run (SWEEP_INTERVAL)")
	fs.DurationVar(&c.PhoneLapse, "phone-lapse", durEnv(getenv, "PHONE_LAPSE", ci.DefaultPhoneLapse), "how long a phone may stay silent before the desktop is told it has gone; the phone page sends a heartbeat every 3 s (PHONE_LAPSE)")
	fs.DurationVar(&c.CommitLease, "commit-lease", durEnv(getenv, "COMMIT_LEASE", session.DefaultCommitLease), "how long a commit is exclusive before another instance may recover it; longer than the slowest ALEX upload (COMMIT_LEASE)")

	simEnv, simErr := strconv.ParseBool(env("SIMULATE", "false"))
	fs.BoolVar(&c.Simulate, "simulate", simEnv, "use the built-in ALEX simulator; required to serve it on a non-loopback address, refused with ALEX_CLIENT_ID (SIMULATE)")
	fs.StringVar(&c.ALEXBaseURL, "alex-base-url", env("ALEX_BASE_URL", alex.UATBaseURL), "ALEX FHIR base URL (ALEX_BASE_URL)")
	fs.StringVar(&c.Credentials.ClientID, "alex-client-id", env("ALEX_CLIENT_ID", ""), "app (client) id issued by Medtech (ALEX_CLIENT_ID)")
	c.Credentials.ClientSecret = env("ALEX_CLIENT_SECRET", "") // environment only: a flag would show in ps
	fs.StringVar(&c.Credentials.Scope, "alex-scope", env("ALEX_SCOPE", ""), "api://<guid>/.default (ALEX_SCOPE)")
	fs.StringVar(&c.Credentials.TenantID, "alex-tenant-id", env("ALEX_TENANT_ID", ""), "Azure AD tenant (ALEX_TENANT_ID; default Medtech's)")
	fs.StringVar(&c.Credentials.TokenURL, "alex-token-url", env("ALEX_TOKEN_URL", ""), "token endpoint (ALEX_TOKEN_URL; default from the tenant)")
	fs.StringVar(&c.Facility, "alex-facility", env("ALEX_FACILITY_ID", ""), "default HPI facility id (ALEX_FACILITY_ID; sessions use their launch's facility)")
	fs.StringVar(&c.AppID, "alex-app-id", env("ALEX_APP_ID", ""), "mt-appid header (ALEX_APP_ID)")
	fs.StringVar(&c.Proxy, "alex-proxy", env("ALEX_PROXY", ""), "egress proxy URL for ALEX (ALEX_PROXY)")

	fs.StringVar(&c.RedisURL, "redis-url", env("REDIS_URL", ""), "Redis for sessions and events, shared by every instance (REDIS_URL; default in memory)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", env("REDIS_PREFIX", ""), "prefix of every Redis key, to share one Redis between apps (REDIS_PREFIX; default the packages' own)")
	fs.StringVar(&c.BlobDir, "blob-dir", env("BLOB_DIR", ""), "directory for image bytes (BLOB_DIR; default a folder per instance under the user's cache directory, swept on start)")
	fs.StringVar(&c.S3Endpoint, "s3-endpoint", env("S3_ENDPOINT", ""), "S3 endpoint URL for image bytes, e.g. https://s3.ap-southeast-2.amazonaws.com (S3_ENDPOINT)")
	fs.StringVar(&c.S3Bucket, "s3-bucket", env("S3_BUCKET", ""), "S3 bucket (S3_BUCKET)")
	fs.StringVar(&c.S3AccessKey, "s3-access-key", env("S3_ACCESS_KEY", ""), "S3 access key (S3_ACCESS_KEY)")
	c.S3SecretKey = env("S3_SECRET_KEY", "") // environment only
	fs.StringVar(&c.S3Region, "s3-region", env("S3_REGION", "ap-southeast-2"), "S3 region (S3_REGION)")
	c.AblyKey = env("ABLY_KEY", "")         // environment only
	c.DatabaseURL = env("DATABASE_URL", "") // environment only
	fs.StringVar(&c.AblyEndpoint, "ably-endpoint", env("ABLY_ENDPOINT", ""), "Ably REST endpoint (ABLY_ENDPOINT; default Ably's)")
	c.Secret = env("SESSION_SECRET", "")      // environment only
	c.LaunchKey = env("LAUNCH_TOKEN_KEY", "") // environment only
	fs.StringVar(&c.LaunchAud, "launch-audience", env("LAUNCH_AUDIENCE", ""), "aud claim launch tokens must carry (LAUNCH_AUDIENCE; needs LAUNCH_TOKEN_KEY)")
	fs.IntVar(&c.MaxUploadMB, "max-upload-mb", intEnv(getenv, "MAX_UPLOAD_MB", int(ci.DefaultLimits.MaxUploadBytes>>20)), "largest upload accepted, in MiB (MAX_UPLOAD_MB)")
	fs.IntVar(&c.MaxImages, "max-images", intEnv(getenv, "MAX_IMAGES", ci.DefaultLimits.MaxImagesPerSession), "photos one session may hold (MAX_IMAGES)")
	fs.IntVar(&c.LaunchPerClient, "launch-rate-per-client", intEnv(getenv, "LAUNCH_RATE_PER_CLIENT", ci.DefaultLaunchRate.PerClient), "Evolution launches one client address may make per minute, each costing an ALEX call (LAUNCH_RATE_PER_CLIENT)")
	fs.IntVar(&c.LaunchTotal, "launch-rate-total", intEnv(getenv, "LAUNCH_RATE_TOTAL", ci.DefaultLaunchRate.Total), "Evolution launches all clients may make per minute (LAUNCH_RATE_TOTAL)")
	fs.DurationVar(&c.LaunchWindow, "launch-rate-window", durEnv(getenv, "LAUNCH_RATE_WINDOW", ci.DefaultLaunchRate.Window), "the window the launch rates count in (LAUNCH_RATE_WINDOW)")
	fs.IntVar(&c.SessionsPerPractitioner, "max-sessions-per-practitioner", intEnv(getenv, "MAX_SESSIONS_PER_PRACTITIONER", ci.DefaultLimits.MaxSessionsPerPractitioner), "live sessions one practitioner may hold (MAX_SESSIONS_PER_PRACTITIONER)")
	fs.IntVar(&c.SessionsPerFacility, "max-sessions-per-facility", intEnv(getenv, "MAX_SESSIONS_PER_FACILITY", ci.DefaultLimits.MaxSessionsPerFacility), "live sessions one facility may hold (MAX_SESSIONS_PER_FACILITY)")
	fs.DurationVar(&c.Retention, "retention", durEnv(getenv, "RETENTION", session.DefaultRetention), "image bytes are deleted this long after upload at the latest (RETENTION)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", durEnv(getenv, "READ_HEADER_TIMEOUT", 10*time.Second), "time a client has to send a request's headers (READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.BodyTimeout, "body-timeout", durEnv(getenv, "BODY_TIMEOUT", 10*time.Second), "time a client has to send a whole non-upload body, and the grace before an upload's minimum rate applies (BODY_TIMEOUT)")
	fs.IntVar(&c.MinUploadRate, "min-upload-rate", intEnv(getenv, "MIN_UPLOAD_RATE", 8<<10), "bytes per second an upload must average after the grace, or it is cut (MIN_UPLOAD_RATE)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", durEnv(getenv, "WRITE_TIMEOUT", 30*time.Second), "longest one response write may wait on a client that does not read (WRITE_TIMEOUT)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", durEnv(getenv, "IDLE_TIMEOUT", 2*time.Minute), "how long a kept-alive connection may idle between requests (IDLE_TIMEOUT)")
	fs.IntVar(&c.MaxConns, "max-connections", intEnv(getenv, "MAX_CONNECTIONS", 1024), "concurrent connections; more wait to be accepted (MAX_CONNECTIONS)")
	fs.IntVar(&c.MaxStreams, "max-streams-per-credential", intEnv(getenv, "MAX_STREAMS_PER_CREDENTIAL", 4), "concurrent event streams one desktop or phone credential may hold; more get 429 (MAX_STREAMS_PER_CREDENTIAL)")
	fs.IntVar(&c.MemoryLimitMB, "memory-limit-mb", intEnv(getenv, "MEMORY_LIMIT_MB", 0), "soft memory limit in MiB, as GOMEMLIMIT (MEMORY_LIMIT_MB; default Go's, which honours GOMEMLIMIT)")
	fs.IntVar(&c.DecodeBudgetMB, "decode-budget-mb", intEnv(getenv, "DECODE_BUDGET_MB", 0), "memory in MiB that all uploads being decoded may hold at once (DECODE_BUDGET_MB; default half of MEMORY_LIMIT_MB, else 512)")
	c.MetricsToken = env("METRICS_TOKEN", "") // environment only
	origins := fs.String("allowed-origins", env("ALLOWED_ORIGINS", ""), "comma-separated origins allowed to call the API cross-origin (ALLOWED_ORIGINS)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if simErr != nil {
		return nil, fmt.Errorf("SIMULATE: %q is not true or false", getenv("SIMULATE"))
	}
	if c.TrustProxy, err = strconv.ParseBool(*trust); err != nil {
		return nil, fmt.Errorf("TRUST_PROXY_HEADERS: %q is not true or false", *trust)
	}
	if c.TrustedProxies, err = parseProxies(*proxies); err != nil {
		return nil, err
	}
	if c.TrustProxy && len(c.TrustedProxies) > 0 {
		return nil, errors.New("TRUSTED_PROXIES and the deprecated TRUST_PROXY_HEADERS: set one, not both")
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", *level)
	}
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	return c, c.validate()
}

func (c *config) validate() error {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("PUBLIC_URL must be an absolute http(s) URL")
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither")
	}
	if c.Simulate && c.Credentials.ClientID != "" {
		return errors.New("ALEX_CLIENT_ID is set: the simulator is never served with real ALEX credentials; unset one of SIMULATE and ALEX_CLIENT_ID")
	}
	if !loopback(c.Listen) {
		if c.Credentials.ClientID == "" && !c.Simulate {
			return fmt.Errorf("LISTEN_ADDR %s is not loopback and ALEX_CLIENT_ID is unset: set the ALEX credentials, or SIMULATE=true to serve the simulator with fictional patients on the network", c.Listen)
		}
		if c.PublicURL == "" {
			return fmt.Errorf("LISTEN_ADDR %s is not loopback: set PUBLIC_URL, the URL phones reach this server at (the QR code is built from it alone)", c.Listen)
		}
	}
	if !c.simulated() && (c.Credentials.ClientSecret == "" || c.Credentials.Scope == "") {
		return errors.New("ALEX_CLIENT_ID is set: also set ALEX_CLIENT_SECRET and ALEX_SCOPE (or use -simulate)")
	}
	if c.S3Endpoint != "" || c.S3Bucket != "" {
		if c.S3Endpoint == "" || c.S3Bucket == "" || c.S3AccessKey == "" || c.S3SecretKey == "" {
			return errors.New("S3 needs S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY and S3_SECRET_KEY together")
		}
		if c.BlobDir != "" {
			return errors.New("set BLOB_DIR or S3_*, not both")
		}
	}
	if c.Secret != "" && len(c.Secret) < 32 {
		return errors.New("SESSION_SECRET must be at least 32 bytes")
	}
	if c.RedisURL != "" && c.Secret == "" {
		return errors.New("REDIS_URL is set: set SESSION_SECRET (the same on every instance) too")
	}
	if (c.LaunchKey == "") != (c.LaunchAud == "") {
		return errors.New("set both LAUNCH_TOKEN_KEY and LAUNCH_AUDIENCE, or neither")
	}
	if c.MaxUploadMB <= 0 || c.MaxImages <= 0 {
		return errors.New("MAX_UPLOAD_MB and MAX_IMAGES must be positive")
	}
	if c.LaunchPerClient <= 0 || c.LaunchTotal <= 0 || c.LaunchWindow <= 0 || c.SessionsPerPractitioner <= 0 || c.SessionsPerFacility <= 0 {
		return errors.New("LAUNCH_RATE_PER_CLIENT, LAUNCH_RATE_TOTAL, LAUNCH_RATE_WINDOW, MAX_SESSIONS_PER_PRACTITIONER and MAX_SESSIONS_PER_FACILITY must be positive")
	}
	if c.ShutdownTimeout <= 0 || c.SweepInterval <= 0 || c.CommitLease <= 0 || c.Retention <= 0 {
		return errors.New("SHUTDOWN_TIMEOUT, SWEEP_INTERVAL, COMMIT_LEASE and RETENTION must be positive")
	}
	if c.PhoneLapse < 5*time.Second {
		return errors.New("PHONE_LAPSE must be at least 5s: the phone page sends a heartbeat every 3s")
	}
	if c.ReadHeaderTimeout <= 0 || c.BodyTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 {
		return errors.New("READ_HEADER_TIMEOUT, BODY_TIMEOUT, WRITE_TIMEOUT and IDLE_TIMEOUT must be positive")
	}
	if c.MinUploadRate <= 0 || c.MaxConns <= 0 || c.MaxStreams <= 0 {
		return errors.New("MIN_UPLOAD_RATE, MAX_CONNECTIONS and MAX_STREAMS_PER_CREDENTIAL must be positive")
	}
	if c.MemoryLimitMB < 0 || c.DecodeBudgetMB < 0 {
		return errors.New("MEMORY_LIMIT_MB and DECODE_BUDGET_MB must not be negative")
	}
	if c.MemoryLimitMB > 0 && c.DecodeBudgetMB >= c.MemoryLimitMB {
		return errors.New("DECODE_BUDGET_MB must be below MEMORY_LIMIT_MB: the rest of the server needs memory too")
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return errors.New("METRICS_TOKEN must be at least 16 bytes")
	}
	return nil
}

// loopback reports whether the listen address is reachable from this
// machine only: a loopback IP or "localhost". An empty host (":8080")
// listens on every interface.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cookieName is the desktop credential cookie: __Host- prefixed when the
// pages are served over HTTPS, so no subdomain can set or shadow it.
func (c *config) cookieName() string {
	if c.secure() {
		return "__Host-ci_desktop"
	}
	return "ci_desktop"
}

// launchKey turns LAUNCH_TOKEN_KEY into a key: a PEM public key (ES256,
// RS256, EdDSA) or an HMAC secret of at least 32 bytes (HS256).
func (c *config) launchKey() (ci.LaunchKey, error) {
	if strings.HasPrefix(strings.TrimSpace(c.LaunchKey), "-----BEGIN") {
		b, _ := pem.Decode([]byte(strings.TrimSpace(c.LaunchKey)))
		if b == nil {
			return ci.LaunchKey{}, errors.New("LAUNCH_TOKEN_KEY: not a PEM block")
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return ci.LaunchKey{}, errors.New("LAUNCH_TOKEN_KEY: not a PKIX public key")
		}
		return ci.LaunchKey{Public: pub}, nil
	}
	if len(c.LaunchKey) < 32 {
		return ci.LaunchKey{}, errors.New("LAUNCH_TOKEN_KEY: an HMAC secret must be at least 32 bytes")
	}
	return ci.LaunchKey{Secret: []byte(c.LaunchKey)}, nil
}

func durEnv(getenv func(string) string, k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(strings.TrimSpace(getenv(k))); err == nil {
		return d
	}
	return def
}

func intEnv(getenv func(string) string, k string, def int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(getenv(k))); err == nil {
		return n
	}
	return def
}

// parseProxies reads TRUSTED_PROXIES: comma-separated CIDRs, or bare
// addresses meaning just that address.
func parseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for v := range strings.SplitSeq(list, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR or an IP address", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// decodeBudget is the decode memory budget in bytes: DECODE_BUDGET_MB, else
// half of MEMORY_LIMIT_MB (the other half for the server, the buffers in
// flight and the collector's headroom; BenchmarkDecodeBudgetMix in
// examples/bench/hostile measures a mix of uploads against that split),
// else 0 for the SDK's default.
func (c *config) decodeBudget() int64 {
	switch {
	case c.DecodeBudgetMB > 0:
		return int64(c.DecodeBudgetMB) << 20
	case c.MemoryLimitMB > 0:
		return int64(c.MemoryLimitMB) << 19
	}
	return 0
}
