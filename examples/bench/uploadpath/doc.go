// Package uploadpath holds the benchmark of the upload path against the raw
// calls that move the same bytes, on the real Redis and S3 server:
//
//   - BenchmarkServiceUpload: a phone's upload through Service.AcceptUpload
//     (normalise, blob stored in S3 by s3blob, session updated in Redis by
//     redisstore, image.added published by redisnotify) until the desktop's
//     subscription receives the image.added event;
//   - BenchmarkRawUpload: the same bytes with a raw S3 PUT (minio-go), a Redis
//     SET of a session-sized record and a PUBLISH, until a raw Redis
//     subscriber receives it;
//   - BenchmarkNormalize: the normalising step alone on the same bytes, so the
//     report can tell the cost of normalising from the cost of the plumbing.
//
// bench/run.sh runs them side by side. They skip without Redis and S3 (see
// internal/testenv). The package has no API.
package uploadpath
