package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/spf13/cobra"
)

func patientCmd(std stdio) *cobra.Command {
	var af alexFlags
	var nhi, id string
	cmd := &cobra.Command{
		Use:   "patient (--nhi NHI | --id ID)",
		Short: "look a patient up in ALEX by NHI or id",
		Long:  "Looks a patient up in ALEX and prints the id, name, birth date and NHI.",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return exit(runPatient(cmd.Context(), std, &af, nhi, id)) },
	}
	af.register(cmd.Flags(), std.Getenv)
	cmd.Flags().StringVar(&nhi, "nhi", "", "the patient's NHI (checked before any call)")
	cmd.Flags().StringVar(&id, "id", "", "the patient's ALEX id, instead of --nhi")
	return cmd
}

func runPatient(ctx context.Context, std stdio, af *alexFlags, nhi, id string) int {
	if (nhi == "") == (id == "") {
		fmt.Fprintln(std.Err, "cli patient: give exactly one of --nhi and --id")
		return exitUsage
	}
	ctx, cancel := withTimeout(ctx, af.timeout)
	defer cancel()
	t, err := af.connect(std)
	if err != nil {
		fmt.Fprintln(std.Err, "cli patient:", err)
		return exitBadConfig
	}
	defer t.Close()
	var p *fhir.Patient
	if nhi != "" {
		p, err = t.client.FindPatientByNHI(ctx, nhi)
	} else {
		p, err = t.client.ReadPatient(ctx, id)
	}
	if err != nil {
		fmt.Fprintln(std.Err, "cli patient:", explain(err))
		return exitFailed
	}
	printPatient(std, p)
	return exitOK
}

func printPatient(std stdio, p *fhir.Patient) {
	fmt.Fprintf(std.Out, "id:          %s\n", deref(p.Id))
	for _, n := range p.Name {
		fmt.Fprintf(std.Out, "name:        %s %s\n", strings.Join(n.Given, " "), deref(n.Family))
		break
	}
	fmt.Fprintf(std.Out, "birth date:  %s\n", deref(p.BirthDate))
	if p.Gender != nil {
		fmt.Fprintf(std.Out, "gender:      %s\n", p.Gender.Code())
	}
	for _, idf := range p.Identifier {
		if deref(idf.System) == "https://standards.digital.health.nz/ns/nhi-id" {
			fmt.Fprintf(std.Out, "NHI:         %s\n", deref(idf.Value))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
