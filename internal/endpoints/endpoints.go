// Package endpoints reads the ready addresses of a Service's
// EndpointSlices: the activator's route to an app's pods, and the
// controller's route to the activator replicas.
package endpoints

import (
	"net"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// Port picks a slice's port: a number is taken as is, a name picks the
// slice port of that name; empty picks the slice's only port, else the one
// named fallback. false when the slice has no such port.
func Port(s *discoveryv1.EndpointSlice, port, fallback string) (int32, bool) {
	if n, err := strconv.Atoi(port); err == nil {
		return int32(n), true
	}
	name := port
	if name == "" {
		if len(s.Ports) == 1 && s.Ports[0].Port != nil {
			return *s.Ports[0].Port, true
		}
		name = fallback
	}
	for _, p := range s.Ports {
		if p.Name != nil && *p.Name == name && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}

// Ready lists host:port of the slices' ready endpoints (an absent ready
// condition counts as ready) that are not terminating, on the port Port
// picks, each once. An endpoint's addresses are fungible: its first one is
// taken, through mapAddr when it is not nil. FQDN slices and slices without
// the port are skipped.
func Ready(slices []*discoveryv1.EndpointSlice, port, fallback string, mapAddr func(string) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range slices {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		p, ok := Port(s, port, fallback)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			if (c.Ready != nil && !*c.Ready) || (c.Terminating != nil && *c.Terminating) || len(e.Addresses) == 0 {
				continue
			}
			host := e.Addresses[0]
			if mapAddr != nil {
				host = mapAddr(host)
			}
			addr := net.JoinHostPort(host, strconv.Itoa(int(p)))
			if !seen[addr] {
				seen[addr] = true
				out = append(out, addr)
			}
		}
	}
	return out
}
