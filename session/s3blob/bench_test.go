package s3blob_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/s3blob"
)

// Pairs again: Store.Put/Open of 1 MiB, and minio-go's PutObject/GetObject
// of the same bytes, for session/bench.sh to print as ratios. The Store also
// hashes the body twice (SHA-256, SHA-1) as it streams; that is the overhead
// being measured.

const benchSize = 1 << 20

func benchBody(b *testing.B) []byte {
	b.Helper()
	body := make([]byte, benchSize)
	_, _ = rand.Read(body)
	return body
}

func BenchmarkStorePut1MiB(b *testing.B) {
	c, bucket, _ := server(b)
	st, err := s3blob.New(c, bucket)
	require.NoError(b, err)
	body := benchBody(b)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(b, err)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := st.Put(b.Context(), key, bytes.NewReader(body), benchSize, "image/jpeg"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPut1MiB(b *testing.B) {
	c, bucket, _ := server(b)
	body := benchBody(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		// Wrapped like the Store's body, so neither side gets minio's
		// ReaderAt fast path.
		r := struct{ io.Reader }{bytes.NewReader(body)}
		if _, err := c.PutObject(b.Context(), bucket, "raw/object", r, benchSize, minio.PutObjectOptions{ContentType: "image/jpeg"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreOpen1MiB(b *testing.B) {
	c, bucket, _ := server(b)
	st, err := s3blob.New(c, bucket)
	require.NoError(b, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(b, err)
	_, err = st.Put(b.Context(), key, bytes.NewReader(benchBody(b)), benchSize, "image/jpeg")
	require.NoError(b, err)
	b.SetBytes(benchSize)
	for b.Loop() {
		rc, err := st.Open(b.Context(), key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		_ = rc.Close()
	}
}

func BenchmarkRawGet1MiB(b *testing.B) {
	c, bucket, _ := server(b)
	_, err := c.PutObject(b.Context(), bucket, "raw/object", bytes.NewReader(benchBody(b)), benchSize, minio.PutObjectOptions{ContentType: "image/jpeg"})
	require.NoError(b, err)
	b.SetBytes(benchSize)
	for b.Loop() {
		obj, err := c.GetObject(b.Context(), bucket, "raw/object", minio.GetObjectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, obj); err != nil {
			b.Fatal(err)
		}
		_ = obj.Close()
	}
}
