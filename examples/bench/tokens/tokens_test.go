// Package tokens_test measures how many OAuth2 token requests the ALEX
// client makes while many calls run at once: the goal is one token for a
// burst of 1,000 concurrent calls, and one more after the token is revoked.
package tokens_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

const calls = 1000

func newClient(t testing.TB, sim *alextest.Server) *alex.Client {
	t.Helper()
	id, secret, scope := sim.Credentials()
	c, err := alex.New(sim.BaseURL(),
		alex.WithClientCredentials(alex.Credentials{TokenURL: sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithFacility(sim.Facility()))
	require.NoError(t, err)
	return c
}

// burst reads the patient calls times at once and fails on any error.
func burst(ctx context.Context, c *alex.Client, patientID string) error {
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			_, errs[i] = c.ReadPatient(ctx, patientID)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func TestTokenRequestsDuringConcurrentCalls(t *testing.T) {
	sim := alextest.NewTestServer(t)
	c := newClient(t, sim)
	pid := sim.Patients()[0].ID

	require.NoError(t, burst(t.Context(), c, pid))
	cold := sim.TokenRequests()
	t.Logf("tokens: %d token requests for %d concurrent calls from a cold client", cold, calls)
	assert.Equal(t, 1, cold, "a cold burst shares one token")

	require.NoError(t, burst(t.Context(), c, pid))
	assert.Equal(t, 1, sim.TokenRequests(), "a warm burst needs no token")

	// ALEX revokes every token: each call gets a 401 and the client must
	// fetch a new token, once for the whole burst.
	sim.ExpireTokens()
	require.NoError(t, burst(t.Context(), c, pid))
	revoked := sim.TokenRequests() - 1
	t.Logf("tokens: %d token requests for %d concurrent calls after the token was revoked", revoked, calls)
	assert.Equal(t, 1, revoked, "a revoked token is replaced once for the whole burst")
}
