// Command killable is the Service's HTTP API on Redis, S3 and an ALEX (the
// simulator), wired as examples/server wires it but with a short commit
// lease and stuck-commit age, so the SIGKILL scenario in bench/faults can
// watch recovery within seconds instead of the five-minute defaults. It is a
// test fixture, not a server to deploy.
//
// Configuration is by environment only: LISTEN_ADDR, REDIS_URL, PREFIX,
// S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_BUCKET,
// ALEX_BASE_URL, ALEX_TOKEN_URL, ALEX_CLIENT_ID, ALEX_CLIENT_SECRET,
// ALEX_SCOPE, ALEX_FACILITY_ID, SESSION_SECRET, LEASE (a duration).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	env := os.Getenv
	lease, err := time.ParseDuration(env("LEASE"))
	if err != nil {
		return errors.New("LEASE must be a duration")
	}
	ro, err := redis.ParseURL(env("REDIS_URL"))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	store, err := redisstore.New(rdb, redisstore.WithPrefix(env("PREFIX")+":s:"))
	if err != nil {
		return err
	}
	hub, err := redisnotify.New(ctx, rdb, redisnotify.WithPrefix(env("PREFIX")+":e:"))
	if err != nil {
		return err
	}
	defer hub.Close()
	u, err := url.Parse(env("S3_ENDPOINT"))
	if err != nil {
		return err
	}
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(env("S3_ACCESS_KEY"), env("S3_SECRET_KEY"), ""),
		Secure: u.Scheme == "https", Region: env("S3_REGION"), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	blobs, err := s3blob.New(mc, env("S3_BUCKET"))
	if err != nil {
		return err
	}
	if err := blobs.EnsureBucket(ctx, env("S3_REGION")); err != nil {
		return err
	}
	ac, err := alex.New(env("ALEX_BASE_URL"), alex.WithClientCredentials(alex.Credentials{TokenURL: env("ALEX_TOKEN_URL"),
		ClientID: env("ALEX_CLIENT_ID"), ClientSecret: env("ALEX_CLIENT_SECRET"), Scope: env("ALEX_SCOPE")}),
		alex.WithFacility(env("ALEX_FACILITY_ID")))
	if err != nil {
		return err
	}
	svc, err := ci.New(ac, ci.WithStore(store), ci.WithEvents(hub), ci.WithBlobStore(blobs),
		ci.WithSecret([]byte(env("SESSION_SECRET"))),
		ci.WithSessionOptions(session.WithCommitLease(lease)),
		ci.WithLimits(ci.Limits{StuckCommit: lease, CommitParallelism: 1}),
		ci.WithHTTP(ci.HTTPOptions{InsecureCookies: true}))
	if err != nil {
		return err
	}
	defer svc.Close()
	go func() { _ = svc.Run(ctx, lease/4) }()
	mux := http.NewServeMux()
	mux.Handle("/api/", http.StripPrefix("/api", svc.Handler()))
	srv := &http.Server{Addr: env("LISTEN_ADDR"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
