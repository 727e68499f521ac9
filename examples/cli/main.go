// Command cli is the operator's command line for the clinical images SDK:
// check a token, look up a patient, normalise photos, upload photos to a
// patient, diagnose a configuration, run the ALEX simulator, and list the
// audit trail the reference server keeps in PostgreSQL (audit). Every ALEX
// command works against real ALEX from environment configuration, or against
// the built-in simulator with --simulate.
//
// Run "cli help" for the list of commands and "cli COMMAND --help" for one.
// Commands and flags are built with github.com/spf13/cobra; upload's progress
// bars with github.com/vbauerster/mpb.
//
// Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 the
// configuration is wrong (doctor found a problem). "go run" reports 1 for
// every non-zero code, so scripts build the binary first
// (go build -o bin/cli ./examples/cli).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/alex"
)

// Exit codes shared by every command.
const (
	exitOK        = 0
	exitFailed    = 1
	exitUsage     = 2
	exitBadConfig = 3
)

// goRunNote ends every long help that states exit codes.
const goRunNote = `

"go run" reports exit status 1 for every failure, whatever the code, so scripts that
branch on the exit code must build the binary first and run it:
  go build -o bin/cli ./examples/cli && bin/cli ...`

// stdio is what a command reads and writes besides its arguments, so tests can
// run commands in process.
type stdio struct {
	Out, Err io.Writer
	Getenv   func(string) string
	// alexOptions are appended to every ALEX client's options; tests use
	// them to put a transport between the CLI and the simulator.
	alexOptions []alex.Option
}

// exitError carries a command's exit code through cobra.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// exit turns a command's exit code into what RunE returns.
func exit(code int) error {
	if code == exitOK {
		return nil
	}
	return exitError(code)
}

func newRoot(std stdio) *cobra.Command {
	root := &cobra.Command{
		Use:   "cli",
		Short: "The operator's command line for the clinical images SDK",
		Long: `The operator's command line for the clinical images SDK: photos into Medtech Evolution
through ALEX. ALEX commands read ALEX_* environment variables, or use --simulate.

Exit codes: 0 success; 1 the operation failed; 2 usage error (bad command, flag or
file; nothing was done); 3 configuration problem (doctor found one, or ALEX_* is
incomplete).` + goRunNote,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(std.Out)
	root.SetErr(std.Err)
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(compressCmd(std), tokenCmd(std), patientCmd(std), uploadCmd(std), simulateCmd(std), doctorCmd(std), auditCmd(std))
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, std stdio) int {
	root := newRoot(std)
	root.SetArgs(args)
	if len(args) == 0 {
		_ = root.Usage()
		return exitUsage
	}
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return int(ee)
	}
	// Cobra's own errors: unknown command or flag, wrong arguments.
	fmt.Fprintf(std.Err, "cli: %v\nRun 'cli --help' for usage.\n", err)
	return exitUsage
}
