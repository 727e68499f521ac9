package alextest_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

func TestWithListenerServesOnTheGivenAddress(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := alextest.NewTestServer(t, alextest.WithListener(l))
	assert.Equal(t, "http://"+l.Addr().String(), srv.URL())
	resp, err := http.Get(srv.BaseURL() + "/Encounter") // a known route shape: non-FHIR 404
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
