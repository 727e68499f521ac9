package clinicalimages_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"log"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/redis/go-redis/v9"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/compress/heic"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// The whole flow in one process: a launch from Evolution, one photo from the
// desktop, and a commit that stores it in the patient's record as a FHIR
// Media. The ALEX simulator stands in for Medtech.
func Example() {
	ctx := context.Background()
	sim := alextest.NewServer()
	defer sim.Close()
	id, secret, scope := sim.Credentials()
	ac, err := alex.New(sim.BaseURL(), alex.WithClientCredentials(alex.Credentials{
		TokenURL: sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}))
	if err != nil {
		log.Fatal(err)
	}
	svc, err := ci.New(ac) // memory stores: one process
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	// Evolution's signed launch pair, verified through ALEX.
	lc, sig := sim.IssueLaunch(sim.Patients()[0].ID, sim.Facility(), sim.Practitioners()[0].ID)
	launch, err := svc.LaunchFromEvolution(ctx, lc, sig)
	if err != nil {
		log.Fatal(err)
	}
	started, err := svc.StartSession(ctx, launch)
	if err != nil {
		log.Fatal(err)
	}

	// A photo from the desktop: normalised, stored, listed.
	img, err := svc.AcceptUpload(ctx, ci.Uploader{SessionID: started.Session.ID}, bytes.NewReader(samplePhoto()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded:", img.State)

	res, err := svc.Commit(ctx, started.Session.ID, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed:", res.Committed(), res.Images[0].State)
	fmt.Println("Media in ALEX:", len(sim.Media()))
	// Output:
	// uploaded: uploaded
	// committed: 1 committed
	// Media in ALEX: 1
}

// samplePhoto is a small JPEG standing in for a camera's.
func samplePhoto() []byte {
	m := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			m.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: 128, A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

// newService wires the flow for several instances behind a load balancer:
// each gets the same Redis, bucket and secret.
func newService(ctx context.Context, ac *alex.Client, rdb redis.UniversalClient, s3 *minio.Client, secret, launchKey []byte) (*ci.Service, error) {
	store, err := redisstore.New(rdb) // sessions survive restarts, shared by instances
	if err != nil {
		return nil, err
	}
	blobs, err := s3blob.New(s3, "clinical-images") // or session/fsblob on one host
	if err != nil {
		return nil, err
	}
	hub, err := redisnotify.New(ctx, rdb) // a phone on instance B reaches a desktop on A
	if err != nil {
		return nil, err
	}
	return ci.New(ac,
		ci.WithStore(store),
		ci.WithBlobStore(blobs),
		ci.WithEvents(hub),
		ci.WithSecret(secret),                 // signs desktop credentials; the same on every instance
		ci.WithCompressOptions(heic.Option()), // accept iPhone HEIC photos (opt-in)
		ci.WithLaunchTokens("my-bff", ci.LaunchKey{Secret: launchKey}), // optional: launches signed by your server
	)
}

// serve runs the background work and mounts the HTTP API under /api/.
func serve(ctx context.Context, svc *ci.Service, mux *http.ServeMux) error {
	go svc.Run(ctx, time.Minute) // recovery of stuck commits, expiry events, retention sweep
	h, err := svc.Handler(ci.HTTPOptions{})
	if err != nil {
		return err
	}
	mux.Handle("/api/", http.StripPrefix("/api", h))
	return nil
}

// ExampleNew_manyInstances is the README's "Running the flow in your server":
// newService and serve above wire the Service on Redis and S3 for several
// instances. It compiles here; running it needs Redis, S3 and ALEX.
func ExampleNew_manyInstances() {
	_, _ = newService, serve
}
