package main

import (
	"io"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrustedProxiesConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		want    []netip.Prefix
		wantErr string
	}{
		{name: "none", want: nil},
		{name: "cidrs and addresses", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7 ,2001:db8::/48,::1"},
			want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("::1/128")}},
		{name: "masked", env: map[string]string{"TRUSTED_PROXIES": "10.1.2.3/8"}, want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{name: "bad", env: map[string]string{"TRUSTED_PROXIES": "proxy.internal"}, wantErr: "TRUSTED_PROXIES"},
		{name: "both", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8", "TRUST_PROXY_HEADERS": "true"}, wantErr: "not both"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.TrustedProxies)
		})
	}
}
