package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"
)

// claims are the JWT claims the CLI shows. They are read, not verified: ALEX
// verifies tokens; the CLI only explains them.
type claims struct {
	Audience any      `json:"aud"`
	AppID    string   `json:"appid"`
	Tenant   string   `json:"tid"`
	Roles    []string `json:"roles"`
	Expiry   int64    `json:"exp"`
}

func decodeClaims(jwt string) (claims, error) {
	var c claims
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("the access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return c, fmt.Errorf("the access token's payload is not base64url")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("the access token's payload is not JSON")
	}
	return c, nil
}

func runToken(ctx context.Context, args []string, std stdio) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	var af alexFlags
	af.register(fs, std.Getenv)
	show := fs.Bool("show-token", false, "also print the access token itself (a secret: do not paste it anywhere)")
	if code, ok := parse(fs, args, std, "usage: cli token [flags]\n\nFetches an access token and prints its expiry and roles, never the token unless --show-token."); !ok {
		return code
	}
	ctx, cancel := withTimeout(ctx, af.timeout)
	defer cancel()
	t, err := af.connect(std)
	if err != nil {
		fmt.Fprintln(std.Err, "cli token:", err)
		return exitBadConfig
	}
	defer t.Close()
	tok, err := t.client.AccessToken(ctx)
	if err != nil {
		fmt.Fprintln(std.Err, "cli token:", err)
		return exitFailed
	}
	fmt.Fprintf(std.Out, "token type:  %s\n", tok.Type())
	fmt.Fprintf(std.Out, "expires:     %s (in %s)\n", tok.Expiry.Format(time.RFC3339), time.Until(tok.Expiry).Round(time.Second))
	if c, err := decodeClaims(tok.AccessToken); err == nil {
		fmt.Fprintf(std.Out, "app id:      %s\n", c.AppID)
		fmt.Fprintf(std.Out, "audience:    %v\n", c.Audience)
		fmt.Fprintf(std.Out, "roles:       %s\n", strings.Join(c.Roles, ", "))
	} else {
		fmt.Fprintf(std.Out, "claims:      unreadable (%v)\n", err)
	}
	if *show {
		fmt.Fprintf(std.Out, "token:       %s\n", tok.AccessToken)
	}
	return exitOK
}
