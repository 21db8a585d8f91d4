package activator

import (
	"fmt"
	"net/netip"
	"strings"
)

// AddressMap rewrites endpoint addresses before they are dialed, for
// clusters whose pod addresses are reached under another prefix: each rule
// maps a prefix to another of the same length, keeping the host bits.
type AddressMap []addressRule

type addressRule struct{ from, to netip.Prefix }

// ParseAddressMap parses a comma-separated list of CIDR=CIDR rules, such as
// "10.244.0.0/16=127.244.0.0/16". Both sides of a rule must be of the same
// family and prefix length. The empty string is the empty map.
func ParseAddressMap(s string) (AddressMap, error) {
	var m AddressMap
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, rule := range strings.Split(s, ",") {
		rule = strings.TrimSpace(rule)
		from, to, ok := strings.Cut(rule, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want FROM=TO, two CIDRs of the same length (e.g. 10.244.0.0/16=127.244.0.0/16)", rule)
		}
		f, err := netip.ParsePrefix(strings.TrimSpace(from))
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a CIDR: %w", rule, from, err)
		}
		t, err := netip.ParsePrefix(strings.TrimSpace(to))
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a CIDR: %w", rule, to, err)
		}
		switch {
		case f.Addr().Is4() != t.Addr().Is4():
			return nil, fmt.Errorf("%q: both sides must be IPv4 or both IPv6", rule)
		case f.Bits() != t.Bits():
			return nil, fmt.Errorf("%q: both sides must have the same prefix length (/%d and /%d)", rule, f.Bits(), t.Bits())
		}
		m = append(m, addressRule{from: f.Masked(), to: t.Masked()})
	}
	return m, nil
}

// Map returns addr rewritten by the first rule whose prefix holds it, or
// addr unchanged.
func (m AddressMap) Map(addr string) string {
	if len(m) == 0 {
		return addr
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	for _, r := range m {
		if !r.from.Contains(a) {
			continue
		}
		src, dst := a.AsSlice(), r.to.Addr().AsSlice()
		bits := r.from.Bits()
		for i := range dst {
			// Keep the destination's first bits, the source's others.
			keep := min(max(bits-8*i, 0), 8)
			mask := byte(0xff) << (8 - keep) // 0 when keep is 0
			dst[i] = dst[i]&mask | src[i]&^mask
		}
		out, _ := netip.AddrFromSlice(dst)
		return out.String()
	}
	return addr
}
