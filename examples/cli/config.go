package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// Environment variables read by the ALEX commands. Flags override them.
const (
	envBaseURL      = "ALEX_BASE_URL"      // FHIR base; default UAT
	envTenantID     = "ALEX_TENANT_ID"     // Azure AD tenant; default Medtech's
	envTokenURL     = "ALEX_TOKEN_URL"     // token endpoint; default from the tenant
	envClientID     = "ALEX_CLIENT_ID"     // app (client) id
	envClientSecret = "ALEX_CLIENT_SECRET" // client secret
	envScope        = "ALEX_SCOPE"         // api://<guid>/.default
	envFacility     = "ALEX_FACILITY_ID"   // HPI facility id, mt-facilityid
	envAppID        = "ALEX_APP_ID"        // optional mt-appid
	envProxy        = "ALEX_PROXY"         // optional egress proxy URL
)

// alexFlags are the flags every ALEX command shares.
type alexFlags struct {
	simulate bool
	baseURL  string
	facility string
	timeout  time.Duration
	verbose  bool
}

func (f *alexFlags) register(fs *pflag.FlagSet, getenv func(string) string) {
	fs.BoolVar(&f.simulate, "simulate", false, "run against the built-in ALEX simulator (no credentials, no network)")
	fs.StringVar(&f.baseURL, "base-url", envOr(getenv, envBaseURL, alex.UATBaseURL), "ALEX FHIR base URL (env "+envBaseURL+")")
	fs.StringVar(&f.facility, "facility", getenv(envFacility), "HPI facility id sent as mt-facilityid (env "+envFacility+")")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "overall time limit for the command")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "log each ALEX attempt to stderr (no tokens or patient data)")
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// target is a configured client and, in simulate mode, the simulator behind it.
type target struct {
	client *alex.Client
	creds  alex.Credentials
	sim    *alextest.Server
}

func (t *target) Close() {
	if t.sim != nil {
		t.sim.Close()
	}
}

// credentialsFromEnv reads the client credentials.
func credentialsFromEnv(getenv func(string) string) alex.Credentials {
	return alex.Credentials{
		TokenURL:     getenv(envTokenURL),
		TenantID:     getenv(envTenantID),
		ClientID:     getenv(envClientID),
		ClientSecret: getenv(envClientSecret),
		Scope:        getenv(envScope),
	}
}

// connect builds the client from flags and environment, or starts the
// simulator. extra options are appended (doctor uses them).
func (f *alexFlags) connect(std stdio, extra ...alex.Option) (*target, error) {
	return f.connectWith(std, simSetup{}, extra...)
}

// simSetup adjusts the simulated world (doctor uses it to stage faults).
type simSetup struct {
	opts   []alextest.Option
	adjust func(t *target, base, facility *string)
}

func (f *alexFlags) connectWith(std stdio, ss simSetup, extra ...alex.Option) (*target, error) {
	var t target
	base, facility := f.baseURL, f.facility
	if f.simulate {
		t.sim = alextest.NewServer(ss.opts...)
		id, secret, scope := t.sim.Credentials()
		t.creds = alex.Credentials{TokenURL: t.sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}
		base = t.sim.BaseURL()
		if facility == "" {
			facility = t.sim.Facility()
		}
		if ss.adjust != nil {
			ss.adjust(&t, &base, &facility)
		}
		fmt.Fprintf(std.Err, "SIMULATED ALEX (facility %s): nothing leaves this machine\n", facility)
	} else {
		t.creds = credentialsFromEnv(std.Getenv)
		if t.creds.ClientID == "" || t.creds.ClientSecret == "" || t.creds.Scope == "" {
			return nil, fmt.Errorf("set %s, %s and %s (or use --simulate)", envClientID, envClientSecret, envScope)
		}
	}
	opts := []alex.Option{alex.WithClientCredentials(t.creds)}
	if facility != "" {
		opts = append(opts, alex.WithFacility(facility))
	}
	if v := std.Getenv(envAppID); v != "" {
		opts = append(opts, alex.WithAppID(v))
	}
	if v := std.Getenv(envProxy); v != "" && !f.simulate {
		opts = append(opts, alex.WithProxy(v))
	}
	if f.verbose {
		opts = append(opts, alex.WithLogger(slog.New(slog.NewTextHandler(std.Err, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	opts = append(opts, std.alexOptions...)
	c, err := alex.New(base, append(opts, extra...)...)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.client = c
	return &t, nil
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
