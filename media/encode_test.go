package media

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// marshalInlined is the reference Encode must equal: json.Marshal of the
// resource with the data inlined as base64.
func marshalInlined(t testing.TB, resource any, data []byte) []byte {
	t.Helper()
	enc := ptr(base64.StdEncoding.EncodeToString(data))
	var v any
	switch r := resource.(type) {
	case *fhir.Media:
		c := *r
		c.Content.Data = enc
		v = c
	case *fhir.DocumentReference:
		c := *r
		c.Content = []fhir.DocumentReferenceContent{c.Content[0]}
		c.Content[0].Attachment.Data = enc
		v = c
	default:
		t.Fatalf("unexpected %T", resource)
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestEncodeEqualsMarshal(t *testing.T) {
	t.Parallel()
	b := testBuilder(t)
	in := testInput()
	in.Metadata.Title = `Quotes " and \ and <html> & unicode ā ✓`
	in.Metadata.Note = "line\nbreak"
	m, err := b.Build(in)
	require.NoError(t, err)
	doc := testDocumentReference(t)

	for _, size := range []int{0, 1, 2, 3, 4, 57, 4095, 4096, 3*4096 + 1, 1 << 20} {
		data := randomBytes(size, uint64(size))
		for name, res := range map[string]any{"Media": m, "DocumentReference": doc} {
			var got bytes.Buffer
			n, err := Encode(&got, res, bytes.NewReader(data))
			require.NoError(t, err, "%s %d", name, size)
			want := marshalInlined(t, res, data)
			assert.Equal(t, int64(got.Len()), n)
			if !assert.True(t, bytes.Equal(want, got.Bytes()), "%s with %d bytes: encode differs from json.Marshal", name, size) {
				t.Logf("want %.300s\n got %.300s", want, got.Bytes())
			}
		}
	}
	assert.Equal(t, DataPlaceholder, *m.Content.Data, "Encode must not modify the resource")
}

func TestEncodeValueTypesAndReplacesData(t *testing.T) {
	t.Parallel()
	m, err := testBuilder(t).Build(testInput())
	require.NoError(t, err)
	m.Content.Data = ptr("c3RhbGU=") // stale data is replaced, not kept
	var got bytes.Buffer
	_, err = Encode(&got, *m, bytes.NewReader(testImage))
	require.NoError(t, err)
	assert.Equal(t, string(marshalInlined(t, m, testImage)), got.String())
	assert.Equal(t, "c3RhbGU=", *m.Content.Data)

	doc := testDocumentReference(t)
	got.Reset()
	_, err = Encode(&got, *doc, bytes.NewReader(testImage))
	require.NoError(t, err)
	assert.Equal(t, string(marshalInlined(t, doc, testImage)), got.String())
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	m, err := testBuilder(t).Build(testInput())
	require.NoError(t, err)

	_, err = Encode(io.Discard, fhir.Patient{}, bytes.NewReader(nil))
	assert.ErrorIs(t, err, ErrUnsupportedResource)
	_, err = Encode(io.Discard, (*fhir.Media)(nil), bytes.NewReader(nil))
	assert.ErrorIs(t, err, ErrUnsupportedResource)
	_, err = Encode(io.Discard, &fhir.DocumentReference{}, bytes.NewReader(nil))
	assert.ErrorIs(t, err, ErrUnsupportedResource, "no content to stream into")

	boom := errors.New("blob store went away")
	_, err = Encode(io.Discard, m, failingReader{boom})
	assert.ErrorIs(t, err, boom)
}

// BenchmarkEncode compares streaming a 10 MB image into the Media JSON
// with json.Marshal of the Media holding the image's base64; compare
// B/op. Run: go test -run '^$' -bench Encode -benchmem ./media
func BenchmarkEncode(b *testing.B) {
	data := randomBytes(10<<20, 1)
	m, err := New(WithMaxSize(int64(len(data))))
	require.NoError(b, err)
	in := testInput()
	in.Image.Size = int64(len(data))
	in.Image.SHA1 = nil
	in.Image.Created = testCreated
	media, err := m.Build(in)
	require.NoError(b, err)

	b.Run("stream", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Encode(io.Discard, media, bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			c := *media
			c.Content.Data = ptr(base64.StdEncoding.EncodeToString(data))
			out, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Discard.Write(out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
