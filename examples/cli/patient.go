package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func runPatient(ctx context.Context, args []string, io stdio) int {
	fs := flag.NewFlagSet("patient", flag.ContinueOnError)
	var af alexFlags
	af.register(fs, io.Getenv)
	nhi := fs.String("nhi", "", "the patient's NHI (checked before any call)")
	id := fs.String("id", "", "the patient's ALEX id, instead of --nhi")
	if code, ok := parse(fs, args, io, "usage: cli patient --nhi NHI | --id ID [flags]\n\nLooks a patient up in ALEX and prints the id, name, birth date and NHI."); !ok {
		return code
	}
	if (*nhi == "") == (*id == "") {
		fmt.Fprintln(io.Err, "cli patient: give exactly one of --nhi and --id")
		return exitUsage
	}
	ctx, cancel := withTimeout(ctx, af.timeout)
	defer cancel()
	t, err := af.connect(io)
	if err != nil {
		fmt.Fprintln(io.Err, "cli patient:", err)
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
		fmt.Fprintln(io.Err, "cli patient:", explain(err))
		return exitFailed
	}
	printPatient(io, p)
	return exitOK
}

func printPatient(io stdio, p *fhir.Patient) {
	fmt.Fprintf(io.Out, "id:          %s\n", deref(p.Id))
	for _, n := range p.Name {
		fmt.Fprintf(io.Out, "name:        %s %s\n", strings.Join(n.Given, " "), deref(n.Family))
		break
	}
	fmt.Fprintf(io.Out, "birth date:  %s\n", deref(p.BirthDate))
	if p.Gender != nil {
		fmt.Fprintf(io.Out, "gender:      %s\n", p.Gender.Code())
	}
	for _, idf := range p.Identifier {
		if deref(idf.System) == "https://standards.digital.health.nz/ns/nhi-id" {
			fmt.Fprintf(io.Out, "NHI:         %s\n", deref(idf.Value))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
