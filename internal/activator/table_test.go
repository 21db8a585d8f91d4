package activator

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
)

func TestReadyAddresses(t *testing.T) {
	twoPorts := func(eps ...ep) *discoveryv1.EndpointSlice {
		s := slice("ns", "s", "svc", "http", 8080, eps...)
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To("metrics"), Port: ptr.To(int32(9090))})
		return s
	}
	fqdn := slice("ns", "f", "svc", "http", 80, ep{addr: "pod.example.com"})
	fqdn.AddressType = discoveryv1.AddressTypeFQDN
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		port   string
		want   []string
	}{
		{
			name: "ready true or absent counts, not ready or terminating does not",
			slices: []*discoveryv1.EndpointSlice{slice("ns", "s", "svc", "web", 80,
				ep{addr: "10.0.0.1", ready: ptr.To(true)}, ep{addr: "10.0.0.2"},
				ep{addr: "10.0.0.3", ready: ptr.To(false)}, ep{addr: "10.0.0.4", ready: ptr.To(true), terminating: true})},
			want: []string{"10.0.0.1:80", "10.0.0.2:80"},
		},
		{name: "the port named http among several", slices: []*discoveryv1.EndpointSlice{twoPorts(ep{addr: "10.0.0.1"})}, want: []string{"10.0.0.1:8080"}},
		{name: "http-port by name", port: "metrics", slices: []*discoveryv1.EndpointSlice{twoPorts(ep{addr: "10.0.0.1"})}, want: []string{"10.0.0.1:9090"}},
		{name: "http-port by number", port: "3000", slices: []*discoveryv1.EndpointSlice{twoPorts(ep{addr: "10.0.0.1"})}, want: []string{"10.0.0.1:3000"}},
		{name: "a named port the slice lacks", port: "grpc", slices: []*discoveryv1.EndpointSlice{twoPorts(ep{addr: "10.0.0.1"})}},
		{name: "FQDN slices are skipped", slices: []*discoveryv1.EndpointSlice{fqdn}},
		{
			name: "duplicates across slices once",
			slices: []*discoveryv1.EndpointSlice{slice("ns", "a", "svc", "http", 80, ep{addr: "10.0.0.1"}),
				slice("ns", "b", "svc", "http", 80, ep{addr: "10.0.0.1"}, ep{addr: "10.0.0.2"})},
			want: []string{"10.0.0.1:80", "10.0.0.2:80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, readyAddresses(tt.slices, tt.port, nil))
		})
	}
}

func TestReadyAddressesAreMapped(t *testing.T) {
	m, err := ParseAddressMap("10.244.0.0/16=127.244.0.0/16")
	require.NoError(t, err)
	got := readyAddresses([]*discoveryv1.EndpointSlice{slice("ns", "s", "svc", "http", 80, ep{addr: "10.244.3.7"}, ep{addr: "10.1.2.3"})}, "", m)
	assert.Equal(t, []string{"127.244.3.7:80", "10.1.2.3:80"}, got)
}

func TestAddressMap(t *testing.T) {
	m, err := ParseAddressMap(" 10.244.0.0/16=127.244.0.0/16, 10.96.0.0/12=127.96.0.0/12,fd00::/64=fd01::/64")
	require.NoError(t, err)
	for in, want := range map[string]string{
		"10.244.1.2":  "127.244.1.2",
		"10.100.3.4":  "127.100.3.4", // host bits of a /12 kept
		"10.245.1.2":  "10.245.1.2",
		"fd00::1":     "fd01::1",
		"not-an-addr": "not-an-addr",
	} {
		assert.Equal(t, want, m.Map(in), in)
	}
	empty, err := ParseAddressMap("")
	require.NoError(t, err)
	assert.Equal(t, "10.244.1.2", empty.Map("10.244.1.2"))
}

func TestParseAddressMapErrors(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":                      "want FROM=TO",
		"10.0.0.0/8=127.0.0.0/16":         "same prefix length (/8 and /16)",
		"10.0.0.0/8=fd00::/8":             "both sides must be IPv4 or both IPv6",
		"10.0.0.0=127.0.0.0/8":            `"10.0.0.0" is not a CIDR`,
		"10.0.0.0/8=127.0.0.0/8,x=y":      `"x" is not a CIDR`,
		"10.244.0.0/16=127.244.0.0/16,,a": "want FROM=TO",
	} {
		_, err := ParseAddressMap(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestMatchPrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/anything", true},
		{"/api", "/api", true},
		{"/api", "/api/v1", true},
		{"/api", "/apiary", false},
		{"/api/", "/api/v1", true},
		{"/api/", "/api", false},
		{"/api", "/", false},
	} {
		assert.Equal(t, tt.want, matchPrefix(tt.prefix, tt.path), "%s under %s", tt.path, tt.prefix)
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"Shop.Example.COM":     "shop.example.com",
		"shop.example.com:443": "shop.example.com",
		"shop.example.com.":    "shop.example.com",
		"[::1]:8080":           "::1",
		"[::1]":                "::1",
		"WEB:8080":             "web",
		"web.example.com":      "web.example.com",
		"web.example.com.:80":  "web.example.com",
		"2001:db8::1":          "2001:db8::1", // no brackets: no port
	} {
		assert.Equal(t, want, canonicalHost(in), in)
	}
}
