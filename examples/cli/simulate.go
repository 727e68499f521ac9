package main

import (
	"context"
	"fmt"
	"net"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// runSimulate serves the ALEX simulator on an address until interrupted, so
// other teams' tests and tools can run against it over the network.
func simulateCmd(std stdio) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "run the ALEX simulator standalone on a port, for other tools and tests",
		Long: "Runs the ALEX simulator (alextest) standalone until interrupted and prints the\n" +
			"environment that points this CLI, the reference server or any ALEX client at it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return exit(runSimulate(cmd.Context(), std, addr)) },
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8089", "address to listen on (loopback by default)")
	return cmd
}

func runSimulate(ctx context.Context, std stdio, addr string) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(std.Err, "cli simulate:", err)
		return exitFailed
	}
	srv := alextest.NewServer(alextest.WithListener(l))
	defer srv.Close()
	id, secret, scope := srv.Credentials()
	fmt.Fprintf(std.Out, "SIMULATED ALEX listening on %s (Ctrl-C to stop)\n\n", srv.URL())
	for _, kv := range [][2]string{
		{envBaseURL, srv.BaseURL()}, {envTokenURL, srv.TokenURL()}, {envClientID, id},
		{envClientSecret, secret}, {envScope, scope}, {envFacility, srv.Facility()},
	} {
		fmt.Fprintf(std.Out, "export %s=%s\n", kv[0], kv[1])
	}
	fmt.Fprintln(std.Out, "\nTest patients:")
	tw := tabwriter.NewWriter(std.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NHI\tALEX ID\tNAME")
	for _, p := range srv.Patients() {
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\n", p.NHI, p.ID, p.Given, p.Family)
	}
	_ = tw.Flush()
	fmt.Fprintln(std.Out, "\nPractitioners:")
	for _, p := range srv.Practitioners() {
		fmt.Fprintf(std.Out, "  %s\n", p.ID)
	}
	<-ctx.Done()
	return exitOK
}
