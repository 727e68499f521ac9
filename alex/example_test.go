package alex_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
)

// The README's "Using the ALEX client" block is newClient and sendPhoto,
// word for word; keep them in step.

// newClient builds the one client a server shares between all its goroutines.
func newClient(logger *slog.Logger) (*alex.Client, error) {
	return alex.New(alex.UATBaseURL, // alex.ProductionBaseURL in production
		alex.WithClientCredentials(alex.Credentials{
			ClientID:     os.Getenv("ALEX_CLIENT_ID"),
			ClientSecret: os.Getenv("ALEX_CLIENT_SECRET"),
			Scope:        os.Getenv("ALEX_SCOPE"), // api://<guid>/.default, from Medtech
		}),
		alex.WithFacility("F2N060-E"), // default mt-facilityid; per call: alex.WithFacilityID(ctx, id)
		alex.WithLogger(logger),       // silent by default; never logs tokens or patient identifiers
	)
}

// sendPhoto files one JPEG as a Media on the record of the patient with this
// NHI and returns the Media's id. in.Image.ID must be the same on every
// attempt: it is how a lost reply is reconciled.
func sendPhoto(ctx context.Context, c *alex.Client, nhi string, in media.Input, jpeg []byte) (string, error) {
	patient, err := c.FindPatientByNHI(ctx, nhi) // check digit verified before anything is sent
	if err != nil {
		return "", err
	}
	in.Patient = media.Patient{ID: *patient.Id, NHI: nhi}
	m, err := media.Build(in) // a FHIR Media, checked against FHIR's and ALEX's rules
	if err != nil {
		return "", err
	}
	created, err := c.CreateMedia(ctx, m, alex.BytesContent(jpeg)) // streamed; alex.FileContent for a file
	switch {
	case err == nil:
		return created.ID, nil
	case errors.Is(err, alex.ErrOutcomeUnknown): // sent, no reply: look before any resend
		found, ferr := c.FindMediaByIdentifier(ctx, nhi, "", in.Image.ID)
		if ferr == nil {
			return *found.Id, nil // it was stored
		} // errors.Is(ferr, alex.ErrNotFound): not stored, safe to send again
	case errors.Is(err, alex.ErrFacilityUnavailable): // the practice's server is unreachable from ALEX; try later
	case errors.Is(err, alex.ErrValidation): // ALEX refused the Media: fix it, then send again
	}
	return "", err
}

// ExampleNew builds the client for ALEX UAT from the environment. It only
// compiles here: running it needs Medtech's credentials and an allow-listed
// IP address.
func ExampleNew() {
	c, err := newClient(slog.Default())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.BaseURL())
}

// ExampleClient_CreateMedia runs sendPhoto against the in-process ALEX
// simulator: once as it usually goes, once with the reply to the POST lost
// after ALEX stored the Media, which sendPhoto reconciles instead of sending
// the photo twice.
func ExampleClient_CreateMedia() {
	srv := alextest.NewServer()
	defer srv.Close()
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(), alex.WithFacility(srv.Facility()),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	jpeg := []byte("stand-in for a normalised JPEG")
	in := media.Input{
		Image:    media.ImageFacts{ID: "img-1", ContentType: "image/jpeg", Size: int64(len(jpeg))},
		Operator: srv.Practitioners()[0].ID,
		Facility: srv.Facility(),
		Metadata: media.Metadata{BodySite: "14975008", Laterality: media.LateralityLeft}, // left forearm
	}

	first, err := sendPhoto(ctx, c, "ZZZ0016", in, jpeg)
	fmt.Println(first == *srv.Media()[0].Id, err)

	srv.DropNextCreate(1, "Media") // ALEX stores the next Media, then the reply is lost
	in.Image.ID = "img-2"
	second, err := sendPhoto(ctx, c, "ZZZ0016", in, jpeg)
	fmt.Println(second == *srv.Media()[1].Id, err)
	fmt.Println(len(srv.Media()), "Media stored")
	for _, r := range srv.Requests() {
		fmt.Println(r.Method, r.Path)
	}
	// Output:
	// true <nil>
	// true <nil>
	// 2 Media stored
	// GET /FHIR/Patient
	// POST /FHIR/Media
	// GET /FHIR/Patient
	// POST /FHIR/Media
	// GET /FHIR/Media
}
