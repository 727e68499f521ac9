package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// requiredRoles are the app roles the SDK's flow uses, and what each is for.
var requiredRoles = []struct{ role, use string }{
	{"patient.media.write", "commit photos (POST Media)"},
	{"patient.media.read", "reconcile a commit whose reply was lost (GET Media)"},
	{"patient.nhisearch.read", "find a patient by NHI"},
	{"patient.launchformincontext.read", "open the widget from Evolution (launch context)"},
	{"practice.location.read", "check the facility (GET Location)"},
}

// faults staged by --simulate-fault, so each diagnosis can be seen (and tested).
var simFaults = []string{"bad-secret", "bad-scope", "unknown-app", "no-egress", "facility-not-linked", "missing-role"}

type doctorFlags struct {
	alexFlags
	nhi            string
	connectTimeout time.Duration
	fault          string
}

func doctorCmd(std stdio) *cobra.Command {
	var df doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "diagnose an ALEX configuration (secret, scope, roles, egress IP, facility)",
		Long: "Diagnoses an ALEX configuration step by step: credentials, token, roles,\n" +
			"network path to ALEX (egress allow-list), facility link, patient search.\n\n" +
			"Exit codes: 0 the configuration looks healthy; 2 usage error; 3 a problem was found." + goRunNote,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return exit(runDoctor(cmd.Context(), std, &df)) },
	}
	df.register(cmd.Flags(), std.Getenv)
	cmd.Flags().StringVar(&df.nhi, "nhi", "", "also look up this (test) NHI, to prove patient search works")
	cmd.Flags().DurationVar(&df.connectTimeout, "connect-timeout", 15*time.Second, "how long to wait for ALEX to answer before blaming the network")
	cmd.Flags().StringVar(&df.fault, "simulate-fault", "", "with --simulate, stage a fault to see its diagnosis: "+strings.Join(simFaults, ", "))
	return cmd
}

func runDoctor(ctx context.Context, std stdio, df *doctorFlags) int {
	af, nhi, connectTimeout, fault := &df.alexFlags, &df.nhi, &df.connectTimeout, &df.fault
	if *fault != "" && (!af.simulate || !slices.Contains(simFaults, *fault)) {
		fmt.Fprintf(std.Err, "cli doctor: --simulate-fault needs --simulate and one of: %s\n", strings.Join(simFaults, ", "))
		return exitUsage
	}
	ctx, cancel := withTimeout(ctx, af.timeout)
	defer cancel()

	d := &doctor{std: std}
	ss := stageFault(*fault)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: *connectTimeout}).DialContext
	tr.TLSHandshakeTimeout = *connectTimeout
	tr.ResponseHeaderTimeout = *connectTimeout
	if v := std.Getenv(envProxy); v != "" && !af.simulate {
		d.ok("egress proxy configured (%s)", envProxy)
		// connect adds WithProxy; a transport and a proxy cannot both be set.
		tr = nil
	}
	var extra []alex.Option
	if tr != nil {
		extra = append(extra, alex.WithTransport(tr))
	}
	extra = append(extra, alex.WithRetryPolicy(alex.NoRetries))
	t, err := af.connectWith(std, ss, extra...)
	if err != nil {
		d.fail("configuration: %v", err)
		return d.verdict()
	}
	defer t.Close()
	d.ok("configuration: client id, secret and scope are set (%s)", redactScope(t.creds.Scope))
	if t.client.Facility() == "" {
		d.fail("no facility: set %s to the practice's HPI facility id (e.g. F2N060-E)", envFacility)
		return d.verdict()
	}

	// 1. Token.
	tok, err := t.client.AccessToken(ctx)
	if err != nil {
		d.fail("token: %s", explainToken(err))
		return d.verdict()
	}
	d.ok("token: Azure AD issued a token valid until %s", tok.Expiry.Format(time.Kitchen))

	// 2. Roles.
	if c, err := decodeClaims(tok.AccessToken); err != nil {
		d.warn("roles: cannot read the token's claims (%v)", err)
	} else {
		for _, r := range requiredRoles {
			if !slices.ContainsFunc(c.Roles, func(s string) bool { return strings.EqualFold(s, r.role) }) {
				d.fail("role %s is missing: the app cannot %s. Ask Medtech to add it to the app profile.", r.role, r.use)
			}
		}
		if !d.failed {
			d.ok("roles: all %d roles the SDK uses are granted", len(requiredRoles))
		}
	}

	// 3. Network path to ALEX.
	if _, err := t.client.Capabilities(ctx); err != nil {
		var ae *alex.Error
		if errors.As(err, &ae) && ae.Status == 0 {
			d.fail("network: the token works but ALEX did not answer (%v). This is what happens when the server's public IP "+
				"is not on Medtech's allow-list: TCP to ALEX times out. Run from the allow-listed host or set %s.", rootCause(ae), envProxy)
			return d.verdict()
		}
		d.warn("metadata: %s", explain(err))
	} else {
		d.ok("network: ALEX answered at %s", t.client.BaseURL())
	}

	// 4. Facility link.
	found := false
	var locErr error
	for l, err := range t.client.Locations(ctx) {
		if err != nil {
			locErr = err
			break
		}
		for _, id := range l.Identifier {
			if id.Value != nil && strings.EqualFold(*id.Value, t.client.Facility()) {
				found = true
			}
		}
	}
	switch {
	case errors.Is(locErr, alex.ErrFacilityNotFound):
		d.fail("facility %s is not linked to this app (403 Practice Facility not found). Ask Medtech to link the app to the facility.", t.client.Facility())
	case errors.Is(locErr, alex.ErrForbidden):
		d.fail("facility check refused (403): the app probably lacks practice.location.read")
	case locErr != nil:
		d.fail("facility check: %s", explain(locErr))
	case !found:
		d.warn("facility %s answered, but its Location does not list that HPI facility id", t.client.Facility())
	default:
		d.ok("facility %s is linked and answering", t.client.Facility())
	}

	// 5. Patient search.
	if *nhi != "" {
		if _, err := t.client.FindPatientByNHI(ctx, *nhi); err != nil && !errors.Is(err, alex.ErrNotFound) {
			d.fail("patient search: %s", explain(err))
		} else {
			d.ok("patient search by NHI works")
		}
	}
	return d.verdict()
}

type doctor struct {
	std    stdio
	failed bool
}

func (d *doctor) ok(format string, a ...any) { fmt.Fprintf(d.std.Out, "  ok    "+format+"\n", a...) }
func (d *doctor) warn(format string, a ...any) {
	fmt.Fprintf(d.std.Out, "  warn  "+format+"\n", a...)
}
func (d *doctor) fail(format string, a ...any) {
	d.failed = true
	fmt.Fprintf(d.std.Out, "  FAIL  "+format+"\n", a...)
}

func (d *doctor) verdict() int {
	if d.failed {
		fmt.Fprintln(d.std.Out, "doctor: problems found (see FAIL lines)")
		return exitBadConfig
	}
	fmt.Fprintln(d.std.Out, "doctor: configuration looks healthy")
	return exitOK
}

func redactScope(s string) string {
	if len(s) > 16 {
		return s[:14] + "…/.default"
	}
	return s
}

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			s := err.Error()
			if i := strings.LastIndex(s, ": "); i >= 0 {
				return s[i+2:]
			}
			return s
		}
		err = u
	}
}

// stageFault prepares the simulator for --simulate-fault.
func stageFault(fault string) simSetup {
	var ss simSetup
	switch fault {
	case "bad-secret":
		ss.adjust = func(t *target, _, _ *string) { t.creds.ClientSecret = "not-the-secret" }
	case "bad-scope":
		ss.adjust = func(t *target, _, _ *string) { t.creds.Scope = "api://00000000-0000-0000-0000-000000000000/.default" }
	case "unknown-app":
		ss.adjust = func(t *target, _, _ *string) { t.creds.ClientID = "00000000-0000-0000-0000-00000000dead" }
	case "facility-not-linked":
		ss.adjust = func(_ *target, _, facility *string) { *facility = "F99999-Z" }
	case "missing-role":
		ss.opts = append(ss.opts, alextest.WithRoles("patient.media.read", "patient.nhisearch.read",
			"patient.launchformincontext.read", "practice.location.read"))
	case "no-egress":
		// The token endpoint answers but ALEX never does: what ALEX looks
		// like from an IP address it has not allow-listed.
		ss.adjust = func(t *target, _, _ *string) { t.sim.SetEgressBlocked(true) }
	}
	return ss
}

// explain turns an ALEX error into a sentence for an operator.
func explain(err error) string {
	switch {
	case errors.Is(err, alex.ErrFacilityNotFound):
		return "ALEX does not know this facility, or it is not linked to the app (ask Medtech)"
	case errors.Is(err, alex.ErrFacilityUnavailable):
		return "ALEX cannot reach the practice's server right now (is the practice PC with the Hybrid Connection awake?); try again later"
	case errors.Is(err, alex.ErrUnauthorized):
		return "ALEX refused the credentials: " + err.Error()
	case errors.Is(err, alex.ErrForbidden):
		return "ALEX refused the call (403): the app may lack a role, or ALEX does not allow this query form"
	case errors.Is(err, alex.ErrNotFound):
		return "not found"
	case errors.Is(err, alex.ErrValidation):
		return "rejected as invalid: " + err.Error()
	case errors.Is(err, alex.ErrRateLimited):
		return "ALEX is throttling requests; try again later"
	case errors.Is(err, alex.ErrOutcomeUnknown):
		return "sent, but no reply came back: ALEX may or may not have stored it"
	}
	return err.Error()
}

func explainToken(err error) string {
	var te *alex.TokenError
	if !errors.As(err, &te) {
		return err.Error()
	}
	switch te.Kind {
	case alex.TokenInvalidClient:
		return "Azure AD rejected the client secret (invalid_client). Check " + envClientSecret + "; secrets expire and are released once by Medtech."
	case alex.TokenInvalidScope:
		return "Azure AD rejected the scope (invalid_scope). " + envScope + " must be api://<GUID from Medtech>/.default; UAT and production GUIDs differ."
	case alex.TokenUnauthorizedClient:
		return "Azure AD does not know this app in Medtech's tenant (unauthorized_client). Check " + envClientID + " and " + envTenantID + "."
	case alex.TokenNetwork:
		return "the token endpoint could not be reached (" + rootCause(te) + "). Check DNS, proxy and outbound HTTPS to login.microsoftonline.com."
	}
	return err.Error()
}
