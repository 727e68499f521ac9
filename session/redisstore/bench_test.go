package redisstore_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
)

// The benchmarks come in pairs: the Store operation, and the raw go-redis
// calls that move the same bytes (GET, and GET plus SET), so session/bench.sh
// can print the Store's overhead as a ratio.

func benchSession(b *testing.B) *session.Session {
	b.Helper()
	now := time.Now()
	s := &session.Session{
		ID:        session.NewID(),
		Launch:    session.Launch{Facility: "F2N060-D", PatientID: "p-1", NHI: "ZZZ0016", Practitioner: "d-1"},
		CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour),
	}
	for range 5 {
		iid := session.NewID()
		key, err := session.NewBlobKey(s.ID, iid)
		require.NoError(b, err)
		s.Images = append(s.Images, session.Image{ID: iid, BlobKey: key, ContentType: "image/jpeg", Size: 1 << 20,
			SHA1: "da39a3ee5e6b4b0d3255bfef95601890afd80709", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			State: session.StateUploaded, Source: session.SourceDesktop, Version: 1, CreatedAt: now, UpdatedAt: now})
	}
	return s
}

func BenchmarkStoreUpdate(b *testing.B) {
	c := client(b)
	st, err := redisstore.New(c, redisstore.WithPrefix(prefix(b, c)))
	require.NoError(b, err)
	s := benchSession(b)
	require.NoError(b, st.Create(b.Context(), s))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, err := st.Update(b.Context(), s.ID, func(s *session.Session) error {
			s.Images[i%5].Clinical.Title = "title"
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawGetSet(b *testing.B) {
	c := client(b)
	p := prefix(b, c)
	data, err := json.Marshal(benchSession(b))
	require.NoError(b, err)
	key := p + "raw"
	require.NoError(b, c.Set(b.Context(), key, data, time.Hour).Err())
	for b.Loop() {
		got, err := c.Get(b.Context(), key).Bytes()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Set(b.Context(), key, got, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreGet(b *testing.B) {
	c := client(b)
	st, err := redisstore.New(c, redisstore.WithPrefix(prefix(b, c)))
	require.NoError(b, err)
	s := benchSession(b)
	require.NoError(b, st.Create(b.Context(), s))
	for b.Loop() {
		if _, err := st.Get(b.Context(), s.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawGet(b *testing.B) {
	c := client(b)
	p := prefix(b, c)
	data, err := json.Marshal(benchSession(b))
	require.NoError(b, err)
	key := p + "raw"
	require.NoError(b, c.Set(b.Context(), key, data, time.Hour).Err())
	for b.Loop() {
		if err := c.Get(b.Context(), key).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodec is the CPU part of the Store's overhead: decoding and
// re-encoding the same session record as BenchmarkStoreUpdate does.
func BenchmarkCodec(b *testing.B) {
	data, err := json.Marshal(benchSession(b))
	require.NoError(b, err)
	for b.Loop() {
		var s session.Session
		if err := json.Unmarshal(data, &s); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(&s); err != nil {
			b.Fatal(err)
		}
	}
}
