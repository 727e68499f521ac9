package media

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// FuzzEncode checks that Encode equals json.Marshal with the data inlined
// for any content and any title or note text.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{}, "Left forearm", "")
	f.Add([]byte("\x00\xff\xfe"), "quote \" backslash \\ <tag> & \u2028", "line\nbreak\t")
	f.Add(bytes.Repeat([]byte{7}, 5000), "ā ✓ 😀", "\x7f")
	b, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, title, note string) {
		in := testInput()
		in.Metadata.Title = title
		in.Metadata.Note = note
		in.Image.Size = int64(len(data)) + 1 // Build needs a positive size; Encode does not care
		m, err := b.Build(in)
		if err != nil {
			m = &fhir.Media{Status: fhir.EventStatusCompleted, Content: fhir.Attachment{Title: &title}, Note: []fhir.Annotation{{Text: note}}}
		}
		var got bytes.Buffer
		if _, err := Encode(&got, m, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		want := marshalInlined(t, m, data)
		if !bytes.Equal(want, got.Bytes()) {
			t.Fatalf("Encode differs from json.Marshal:\nwant %s\n got %s", want, got.Bytes())
		}
	})
}

// FuzzValidate feeds arbitrary JSON through the samply types into
// Validate, which must never panic and must reject what it cannot read.
func FuzzValidate(f *testing.F) {
	m, err := Build(testInput())
	if err != nil {
		f.Fatal(err)
	}
	seed, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"resourceType":"Media","bodySite":{"coding":[{"system":"http://snomed.info/sct","code":"1:2=3"}]}}`))
	f.Add([]byte(`{"content":{"data":"====","hash":"x","size":-1}}`))
	b, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var m fhir.Media
		if json.Unmarshal(doc, &m) != nil {
			return
		}
		_ = b.Validate(&m)
		var d fhir.DocumentReference
		if json.Unmarshal(doc, &d) != nil {
			return
		}
		_ = b.ValidateDocument(&d)
	})
}
