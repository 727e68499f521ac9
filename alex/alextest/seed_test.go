package alextest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/jpeg"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// searchPages follows a Media search's next links from path and returns
// every entry's resource, page by page.
func searchPages(t *testing.T, srv *alextest.Server, tok, path string) (pages int, resources []map[string]any) {
	t.Helper()
	for path != "" {
		r := do(t, srv, call{path: path, tok: tok})
		require.Equal(t, 200, r.status, string(r.body))
		b := r.json(t)
		require.Equal(t, "Bundle", b["resourceType"])
		require.Equal(t, "searchset", b["type"])
		pages++
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			resources = append(resources, e.(map[string]any)["resource"].(map[string]any))
		}
		path = ""
		for _, l := range b["link"].([]any) {
			l := l.(map[string]any)
			if l["relation"] == "next" {
				u, err := url.Parse(l["url"].(string))
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(u.Path, "/fhir/"), "next links spell /fhir in lower case")
				path = u.RequestURI()
			}
		}
		require.Less(t, pages, 20, "next links never end")
	}
	return pages, resources
}

func TestSeedEarlierMediaSearch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	srv := alextest.NewTestServer(t, alextest.WithEarlierMedia(), alextest.WithPageSize(2),
		alextest.WithClock(func() time.Time { return now }))
	tok := token(t, srv)
	patients := srv.Patients()
	want := alextest.DefaultEarlierMedia(now)
	require.Len(t, srv.Media(), len(patients)*len(want))

	for _, p := range patients[:2] {
		pages, res := searchPages(t, srv, tok, "/FHIR/Media?patient.identifier="+nhiQuery(p.NHI))
		require.Len(t, res, len(want))
		assert.Equal(t, 3, pages, "5 Media at 2 a page")
		seen := map[string]bool{}
		for i, m := range res {
			assert.Equal(t, "Media", m["resourceType"])
			assert.Equal(t, srv.URL()+"/fhir/Patient/"+p.ID, m["subject"].(map[string]any)["reference"], "every Media is the patient's")
			c := m["content"].(map[string]any)
			assert.Equal(t, "image/jpeg", c["contentType"])
			data, err := base64.StdEncoding.DecodeString(c["data"].(string))
			require.NoError(t, err)
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
			require.NoError(t, err, "data is a JPEG")
			assert.Equal(t, want[i].Width, cfg.Width)
			assert.Equal(t, want[i].Height, cfg.Height)
			assert.False(t, seen[string(data)], "every seeded image differs")
			seen[string(data)] = true

			created, err := time.Parse(time.RFC3339, m["createdDateTime"].(string))
			require.NoError(t, err)
			assert.True(t, created.Equal(want[i].Created), "created %v, want %v", created, want[i].Created)
			site := m["bodySite"].(map[string]any)["coding"].([]any)[0].(map[string]any)
			assert.Equal(t, alextest.SNOMEDSystem, site["system"])
			code := want[i].BodySite
			if want[i].Laterality != "" {
				code += ":272741003=" + want[i].Laterality
			}
			assert.Equal(t, code, site["code"])
			assert.NotEmpty(t, c["title"])
		}
	}
}

func TestSeedMediaCustomAndCreatedAreSearchable(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	p, other := srv.Patients()[0], srv.Patients()[1]
	ids, err := srv.SeedMedia(p.ID,
		alextest.SeedMedia{Created: time.Now().Add(-48 * time.Hour), BodySite: alextest.SiteCheek, Laterality: alextest.SideLeft},
		// A Media found under p that names another patient: a faulty
		// server, for clients to prove they drop it.
		alextest.SeedMedia{Created: time.Now().Add(-24 * time.Hour), Subject: "Patient/" + other.ID},
	)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	_, err = srv.SeedMedia(other.ID, alextest.SeedMedia{Created: time.Now().Add(-time.Hour)})
	require.NoError(t, err)

	r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: mediaBody(t, p.ID, []byte{0xff, 0xd8, 0xff, 0xd9}, nil)})
	require.Equal(t, 201, r.status, string(r.body))
	posted := r.json(t)["id"].(string)

	_, res := searchPages(t, srv, tok, "/FHIR/Media?patient.identifier="+nhiQuery(p.NHI))
	var got []string
	for _, m := range res {
		got = append(got, m["id"].(string))
	}
	assert.ElementsMatch(t, []string{ids[0], ids[1], posted}, got, "seeded and POSTed Media of the patient, nothing of the other's")
	for _, m := range res {
		if m["id"] == ids[1] {
			assert.Equal(t, "Patient/"+other.ID, m["subject"].(map[string]any)["reference"])
		}
	}
	data, ok := srv.MediaData(ids[0])
	require.True(t, ok)
	_, err = jpeg.DecodeConfig(bytes.NewReader(data))
	require.NoError(t, err)

	// The other forms stay refused, with seeded Media present.
	for _, q := range []string{"patient=" + p.ID, "subject=Patient/" + p.ID, "subject=" + p.ID} {
		r := do(t, srv, call{path: "/FHIR/Media?" + q, tok: tok})
		assert.Equal(t, 403, r.status, q)
		code, diag := r.outcome(t)
		assert.Equal(t, "forbidden", code)
		assert.Equal(t, "Authorization failed.", diag)
	}
	// Filed at the default facility, found only there.
	r = do(t, srv, call{path: "/FHIR/Media?patient.identifier=" + nhiQuery(p.NHI), tok: tok, facility: alextest.LocalFacility})
	require.Equal(t, 200, r.status)
	assert.Nil(t, r.json(t)["entry"])
}

func TestSeedMediaRefuses(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	p := srv.Patients()[0]
	cases := map[string]struct {
		patient string
		m       alextest.SeedMedia
	}{
		"unknown patient":     {"0123456789abcdef0123456789abcdef", alextest.SeedMedia{Created: time.Now()}},
		"no created time":     {p.ID, alextest.SeedMedia{}},
		"side without a site": {p.ID, alextest.SeedMedia{Created: time.Now(), Laterality: alextest.SideLeft}},
		"site not a code":     {p.ID, alextest.SeedMedia{Created: time.Now(), BodySite: "forearm"}},
		"unlinked facility":   {p.ID, alextest.SeedMedia{Created: time.Now(), Facility: "F00000-X"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := srv.SeedMedia(tc.patient, alextest.SeedMedia{Created: time.Now()}, tc.m)
			require.Error(t, err)
		})
	}
	assert.Empty(t, srv.Media(), "a refused call stores nothing")
}

func TestSeededMediaRead(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	ids, err := srv.SeedMedia(srv.Patients()[0].ID, alextest.SeedMedia{Created: time.Now().Add(-time.Hour), View: "close-up"})
	require.NoError(t, err)
	r := do(t, srv, call{path: "/FHIR/Media/" + ids[0], tok: tok})
	require.Equal(t, 200, r.status, string(r.body))
	var m struct {
		Content struct{ Data []byte }
		View    struct {
			Coding []struct{ System, Code string }
		}
	}
	require.NoError(t, json.Unmarshal(r.body, &m))
	want, _ := srv.MediaData(ids[0])
	assert.Equal(t, want, m.Content.Data)
	assert.Equal(t, alextest.ViewSystem, m.View.Coding[0].System)
	assert.Equal(t, "close-up", m.View.Coding[0].Code)
}
