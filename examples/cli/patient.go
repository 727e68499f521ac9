package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func runPatient(ctx context.Context, args []string, std stdio) int {
	fs := flag.NewFlagSet("patient", flag.ContinueOnError)
	var af alexFlags
	af.register(fs, std.Getenv)
	nhi := fs.String("nhi", "", "the patient's NHI (checked before any call)")
	id := fs.String("id", "", "the patient's ALEX id, instead of --nhi")
	if code, ok := parse(fs, args, std, "usage: cli patient --nhi NHI | --id ID [flags]\n\nLooks a patient up in ALEX and prints the id, name, birth date and NHI."); !ok {
		return code
	}
	if (*nhi == "") == (*id == "") {
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
	if *nhi != "" {
		p, err = t.client.FindPatientByNHI(ctx, *nhi)
	} else {
		p, err = t.client.ReadPatient(ctx, *id)
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
