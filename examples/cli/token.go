package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
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

func tokenCmd(std stdio) *cobra.Command {
	var af alexFlags
	var show bool
	cmd := &cobra.Command{
		Use:   "token",
		Short: "fetch an ALEX access token and print its expiry and roles",
		Long:  "Fetches an access token and prints its expiry and roles, never the token itself unless --show-token.",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return exit(runToken(cmd.Context(), std, &af, show)) },
	}
	af.register(cmd.Flags(), std.Getenv)
	cmd.Flags().BoolVar(&show, "show-token", false, "also print the access token itself (a secret: do not paste it anywhere)")
	return cmd
}

func runToken(ctx context.Context, std stdio, af *alexFlags, show bool) int {
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
	if show {
		fmt.Fprintf(std.Out, "token:       %s\n", tok.AccessToken)
	}
	return exitOK
}
