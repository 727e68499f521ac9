package clinicalimages

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// TestClientAddr: with proxies trusted, only hops added by them count; the
// rightmost address that is no trusted proxy is the client.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	loopProxy := HTTPOptions{TrustedProxies: prefixes("127.0.0.1/32")}
	tests := []struct {
		name   string
		opts   HTTPOptions
		remote string
		xff    []string
		want   string
	}{
		{"NoHeader", loopProxy, "127.0.0.1:1234", nil, "127.0.0.1"},
		{"NothingTrustedIgnoresHeader", HTTPOptions{}, "198.51.100.1:1234", []string{"203.0.113.9"}, "198.51.100.1"},
		{"UntrustedPeerIgnoresHeader", loopProxy, "198.51.100.1:1234", []string{"203.0.113.9"}, "198.51.100.1"},
		{"OneProxy", loopProxy, "127.0.0.1:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"ForgedLeftmostIgnored", loopProxy, "127.0.0.1:1234", []string{"6.6.6.6, 10.0.0.1, 203.0.113.9"}, "203.0.113.9"},
		{"ProxyChain", HTTPOptions{TrustedProxies: prefixes("127.0.0.0/8", "10.0.0.0/8")}, "127.0.0.1:1234",
			[]string{"6.6.6.6, 203.0.113.9, 10.0.0.7, 10.1.2.3"}, "203.0.113.9"},
		{"HeaderLinesInOrder", HTTPOptions{TrustedProxies: prefixes("127.0.0.0/8", "10.0.0.0/8")}, "127.0.0.1:1234",
			[]string{"6.6.6.6", "203.0.113.9, 10.0.0.7"}, "203.0.113.9"},
		{"ForgedWholeLineIgnored", loopProxy, "127.0.0.1:1234", []string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},
		{"AllTrustedTakesLeftmost", HTTPOptions{TrustedProxies: prefixes("10.0.0.0/8")}, "10.0.0.1:1234",
			[]string{"10.1.1.1, 10.0.0.7"}, "10.1.1.1"},
		{"MalformedStopsAtItsProxy", HTTPOptions{TrustedProxies: prefixes("127.0.0.0/8", "10.0.0.0/8")}, "127.0.0.1:1234",
			[]string{"203.0.113.9, unknown, 10.0.0.7"}, "10.0.0.7"},
		{"MalformedRightmost", loopProxy, "127.0.0.1:1234", []string{"203.0.113.9, _hidden"}, "127.0.0.1"},
		{"MalformedLeftOfClient", loopProxy, "127.0.0.1:1234", []string{"<script>, 1.2.3.4.5, 203.0.113.9"}, "203.0.113.9"},
		{"EmptyEntriesSkipped", loopProxy, "127.0.0.1:1234", []string{"203.0.113.9, , ", ""}, "203.0.113.9"},
		{"EntryWithPort", loopProxy, "127.0.0.1:1234", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6Peer", HTTPOptions{TrustedProxies: prefixes("::1/128")}, "[::1]:1234", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv6Bracketed", HTTPOptions{TrustedProxies: prefixes("::1/128")}, "[::1]:1234", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"IPv6WithPort", HTTPOptions{TrustedProxies: prefixes("::1/128")}, "[::1]:1234", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"IPv6ProxyChain", HTTPOptions{TrustedProxies: prefixes("::1/128", "fd00::/8")}, "[::1]:1234",
			[]string{"2001:db8::bad, 2001:db8::7, fd00::2"}, "2001:db8::7"},
		{"IPv6ZoneDropped", HTTPOptions{TrustedProxies: prefixes("::1/128")}, "[::1]:1234", []string{"fe80::1%eth0"}, "fe80::1"},
		{"MappedIPv4PeerTrusted", loopProxy, "[::ffff:127.0.0.1]:1234", []string{"203.0.113.9"}, "203.0.113.9"},
		{"MappedIPv4Entry", loopProxy, "127.0.0.1:1234", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"DeprecatedSwitch", HTTPOptions{TrustProxyHeaders: true}, "10.0.0.1:1234",
			[]string{"6.6.6.6, 203.0.113.9, 192.168.1.1"}, "203.0.113.9"},
		{"NotAnIPPeer", loopProxy, "@", []string{"203.0.113.9"}, "@"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tc.opts.withDefaults()
			require.NoError(t, err)
			a := &api{cfg: cfg}
			r := httptest.NewRequest("POST", "/phone/claim", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			assert.Equal(t, tc.want, a.clientAddr(r))
		})
	}
}

func TestTrustedProxiesValidate(t *testing.T) {
	t.Parallel()
	_, err := HTTPOptions{TrustProxyHeaders: true, TrustedProxies: prefixes("10.0.0.0/8")}.withDefaults()
	require.Error(t, err, "both")
	_, err = HTTPOptions{TrustedProxies: []netip.Prefix{{}}}.withDefaults()
	require.Error(t, err, "the zero Prefix")

	mine := prefixes("10.1.2.3/8")
	cfg, err := HTTPOptions{TrustedProxies: mine}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, prefixes("10.0.0.0/8"), cfg.TrustedProxies, "masked")
	mine[0] = netip.MustParsePrefix("0.0.0.0/0")
	assert.Equal(t, prefixes("10.0.0.0/8"), cfg.TrustedProxies, "a copy: the caller's slice may change")

	cfg, err = HTTPOptions{TrustProxyHeaders: true}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, PrivateProxyNetworks(), cfg.TrustedProxies)
}

// FuzzForwardedClient: whatever the header, the result is the peer or an
// address the header holds, and an untrusted peer is always itself.
func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "6.6.6.6, 10.0.0.1", "[::1]:80, unknown", ",,,", "fe80::1%eth0"} {
		f.Add(s)
	}
	trusted := prefixes("127.0.0.0/8", "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, xff string) {
		untrusted := netip.MustParseAddr("198.51.100.1")
		require.Equal(t, untrusted, forwardedClient(untrusted, []string{xff}, trusted))
		got := forwardedClient(netip.MustParseAddr("127.0.0.1"), []string{xff}, trusted)
		require.True(t, got.IsValid())
	})
}
