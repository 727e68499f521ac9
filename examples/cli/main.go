// Command cli is the operator's command line for the clinical images SDK:
// check a token, look up a patient, normalise photos, upload photos to a
// patient, and diagnose a configuration. Every command works against real ALEX
// from environment configuration, or against the built-in simulator with
// --simulate.
//
// Run "cli help" for the list of commands and "cli COMMAND --help" for one.
//
// Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 the
// configuration is wrong (doctor found a problem).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes shared by every command.
const (
	exitOK        = 0
	exitFailed    = 1
	exitUsage     = 2
	exitBadConfig = 3
)

// stdio is what a command reads and writes besides its arguments, so tests can
// run commands in process.
type stdio struct {
	Out, Err io.Writer
	Getenv   func(string) string
}

type command struct {
	summary string
	run     func(ctx context.Context, args []string, std stdio) int
}

func commands() map[string]command {
	return map[string]command{
		"compress": {"normalise image files into upright, metadata-free JPEGs under a byte budget", runCompress},
		"token":    {"fetch an ALEX access token and print its expiry and roles", runToken},
		"patient":  {"look a patient up in ALEX by NHI or id", runPatient},
		"upload":   {"normalise photos and commit each to a patient's record as a FHIR Media", runUpload},
		"simulate": {"run the ALEX simulator standalone on a port, for other tools and tests", runSimulate},
		"doctor":   {"diagnose an ALEX configuration (secret, scope, roles, egress IP, facility)", runDoctor},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, std stdio) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(std.Out, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(std.Err, "cli: unknown command %q\n\n", args[0])
		usage(std.Err, cmds)
		return exitUsage
	}
	return c.run(ctx, args[1:], std)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: cli COMMAND [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'cli COMMAND --help' for a command's flags.")
}
