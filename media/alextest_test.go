package media_test

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"image"
	"image/jpeg"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
)

// TestBuiltResourcesAreAcceptedByALEXRules sends what the builders produce
// to the ALEX simulator through the real client: every view, body sites
// with and without each laterality, consent, and an Inbox Scan
// DocumentReference. ALEX's own rules (alextest) must accept all of it.
func TestBuiltResourcesAreAcceptedByALEXRules(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(), alex.WithFacility(srv.Facility()),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}))
	require.NoError(t, err)
	p, prac := srv.Patients()[0], srv.Practitioners()[0].ID

	var img bytes.Buffer
	require.NoError(t, jpeg.Encode(&img, image.NewRGBA(image.Rect(0, 0, 64, 48)), nil))
	sum := sha1.Sum(img.Bytes())

	b, err := media.New()
	require.NoError(t, err)
	var inputs []media.Metadata
	for _, v := range media.Views() {
		inputs = append(inputs, media.Metadata{View: v.Code})
	}
	sites := media.BodySites()
	for i, s := range sites {
		if i%10 != 0 { // a spread of sites keeps the test short
			continue
		}
		inputs = append(inputs, media.Metadata{BodySite: s.Code, Note: "note"})
		for _, l := range media.Lateralities() {
			inputs = append(inputs, media.Metadata{BodySite: s.Code, Laterality: l.Code})
		}
	}
	for i, md := range inputs {
		in := media.Input{
			Image:    media.ImageFacts{ID: fmt.Sprintf("img-%03d", i), ContentType: "image/jpeg", Size: int64(img.Len()), SHA1: sum[:], Width: 64, Height: 48, Created: time.Now()},
			Patient:  media.Patient{ID: p.ID, NHI: p.NHI},
			Operator: prac,
			Facility: srv.Facility(),
			Metadata: md,
			Consent:  &media.Consent{Purposes: []media.ConsentPurpose{media.ConsentRecord}, RecordedBy: prac, RecordedAt: time.Now()},
		}
		m, err := b.Build(in)
		require.NoError(t, err, "%+v", md)
		_, err = c.CreateMedia(t.Context(), m, alex.BytesContent(img.Bytes()))
		require.NoError(t, err, "%+v", md)
	}
	assert.Len(t, srv.Media(), len(inputs))

	// Inbox Scan: absolute references, as Medtech's examples use.
	db, err := media.New(media.WithReferenceBase(srv.BaseURL()))
	require.NoError(t, err)
	var pdf bytes.Buffer
	d, err := db.BuildDocument(&pdf, media.DocumentInput{ID: "doc-1", Patient: media.Patient{ID: p.ID, NHI: p.NHI}, Author: prac,
		Facility: srv.Facility(), Pages: []media.DocumentPage{{JPEG: bytes.NewReader(img.Bytes()), Metadata: media.Metadata{Title: "Rash"}}}})
	require.NoError(t, err)
	_, err = c.CreateDocumentReference(t.Context(), d, alex.BytesContent(pdf.Bytes()))
	require.NoError(t, err)
	require.Len(t, srv.DocumentReferences(), 1)
	data, ok := srv.DocumentReferenceData(*srv.DocumentReferences()[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.HasPrefix(data, []byte("%PDF-")))
}
