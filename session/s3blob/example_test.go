package s3blob_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
)

// Wiring for several instances behind a load balancer: sessions in Redis,
// image bytes in S3, and a sweeper on every instance.
func Example_production() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"redis.internal:6379"}})
	defer func() { _ = rdb.Close() }()
	store, err := redisstore.New(rdb, redisstore.WithPrefix("clinicalimages:"), redisstore.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}

	s3, err := minio.New("s3.ap-southeast-2.amazonaws.com", &minio.Options{
		Creds:  credentials.NewEnvAWS(),
		Secure: true,
		Region: "ap-southeast-2",
		// For MinIO, Supabase Storage or versitygw add:
		// BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		log.Fatal(err)
	}
	blobs, err := s3blob.New(s3, "practice-clinical-images", s3blob.WithPrefix("capture/"))
	if err != nil {
		log.Fatal(err)
	}

	m, err := session.New(store, blobs, session.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = m.RunSweeper(ctx, time.Minute) }() // stops with ctx
	// Hand m to the service: m.Start, m.AddImage, m.ClaimCommit, ...
}
