package media_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/clinicpro/clinicalimages/media"
)

// Build a Media for one photo, validate it, and stream the image into its
// JSON as the alex client does.
func Example() {
	photo := []byte("stand-in for the JPEG bytes read from the blob store")
	sum := sha1.Sum(photo)

	b, err := media.New(media.WithIdentifierSystem("https://example.clinic.nz/ns/clinical-image"))
	if err != nil {
		log.Fatal(err)
	}
	m, err := b.Build(media.Input{
		Image: media.ImageFacts{
			ID:          "img-7f3a9c",
			ContentType: "image/jpeg",
			Size:        int64(len(photo)),
			SHA1:        sum[:],
			Width:       2048,
			Height:      1536,
			Created:     time.Date(2026, 11, 24, 21, 42, 0, 0, time.UTC),
		},
		Patient:  media.Patient{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", NHI: "ZZZ0016"},
		Operator: "prac-123",
		Facility: "F2N060-E",
		Metadata: media.Metadata{
			BodySite:   media.SearchBodySites("forearm")[0].Code,
			Laterality: media.LateralityLeft,
			View:       "close-up",
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Validate(m); err != nil {
		log.Fatal(err)
	}

	var out bytes.Buffer
	if _, err := media.Encode(&out, m, bytes.NewReader(photo)); err != nil {
		log.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		log.Fatal(err)
	}
	fmt.Println(pretty.String())
	// Output:
	// {
	//   "identifier": [
	//     {
	//       "system": "https://example.clinic.nz/ns/clinical-image",
	//       "value": "img-7f3a9c"
	//     }
	//   ],
	//   "status": "completed",
	//   "type": {
	//     "coding": [
	//       {
	//         "system": "http://terminology.hl7.org/CodeSystem/media-type",
	//         "code": "image",
	//         "display": "Image"
	//       }
	//     ]
	//   },
	//   "view": {
	//     "coding": [
	//       {
	//         "system": "https://clinicpro.co.nz/fhir/CodeSystem/clinical-photo-view",
	//         "code": "close-up",
	//         "display": "Close-up"
	//       }
	//     ],
	//     "text": "Close-up"
	//   },
	//   "subject": {
	//     "reference": "Patient/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
	//     "identifier": {
	//       "system": "https://standards.digital.health.nz/ns/nhi-id",
	//       "value": "ZZZ0016"
	//     }
	//   },
	//   "createdDateTime": "2026-11-25T10:42:00+13:00",
	//   "operator": {
	//     "reference": "Practitioner/prac-123"
	//   },
	//   "bodySite": {
	//     "coding": [
	//       {
	//         "system": "http://snomed.info/sct",
	//         "code": "14975008:272741003=7771000",
	//         "display": "Left forearm"
	//       }
	//     ],
	//     "text": "Left forearm"
	//   },
	//   "height": 1536,
	//   "width": 2048,
	//   "content": {
	//     "contentType": "image/jpeg",
	//     "data": "c3RhbmQtaW4gZm9yIHRoZSBKUEVHIGJ5dGVzIHJlYWQgZnJvbSB0aGUgYmxvYiBzdG9yZQ==",
	//     "size": 52,
	//     "hash": "Hnj0djeD1ps125+z+v7/W7rcR34=",
	//     "title": "Left forearm, close-up, 25 Nov 2026 10:42",
	//     "creation": "2026-11-25T10:42:00+13:00"
	//   },
	//   "resourceType": "Media"
	// }
}

// Validation reports every problem at once, each naming its field.
func ExampleValidationError() {
	_, err := media.Build(media.Input{
		Image:    media.ImageFacts{ID: "img 1", ContentType: "image/gif", Size: 10},
		Patient:  media.Patient{ID: "p1"},
		Operator: "prac-1",
		Metadata: media.Metadata{BodySite: "123"},
	})
	var ve *media.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Println(p)
		}
	}
	fmt.Println(errors.Is(err, media.ErrInvalid))
	// Output:
	// Input.Facility: facility is required (the HPI facility id the Media is sent under)
	// Media.bodySite: body site code is not in the body-site value set
	// Media.identifier[0].value: identifier value may hold only letters, digits, '.', '-' and '_'
	// Media.content.contentType: content type is not accepted (accepted: image/jpeg, image/png)
	// true
}

// A picker searches the body sites as the GP types.
func ExampleSearchBodySites() {
	for _, s := range media.SearchBodySites("fore") {
		fmt.Println(s.Code, s.Name)
	}
	// Output:
	// 52795006 Forehead
	// 14975008 Forearm
}
