package main

import (
	"math"
	"sort"
)

// point is one policy at one target, summed over a split's windows.
type point struct {
	Target     int
	PodSeconds float64
	Under      float64
	Reversals  int
}

// frontier is HPA's cost/safety curve: its points sorted by cost.
type frontier []point

func newFrontier(pts []point) frontier {
	f := append(frontier(nil), pts...)
	sort.Slice(f, func(i, j int) bool { return f[i].PodSeconds < f[j].PodSeconds })
	return f
}

// underAt is HPA's under-provisioning at the given cost, interpolated
// between the two frontier points around it, linearly in cost and
// geometrically in under-provisioning (the curve falls roughly
// exponentially as pods are added, so a straight line between two points
// would overstate HPA's under-provisioning between them). Outside the swept
// range it extends the nearest segment; outside reports that it did.
func (f frontier) underAt(cost float64) (under float64, outside bool) {
	switch len(f) {
	case 0:
		return math.NaN(), true
	case 1:
		return f[0].Under, cost != f[0].PodSeconds
	}
	i := sort.Search(len(f), func(i int) bool { return f[i].PodSeconds >= cost })
	outside = i == 0 && cost < f[0].PodSeconds || i == len(f)
	i = min(max(i, 1), len(f)-1)
	a, b := f[i-1], f[i]
	if b.PodSeconds == a.PodSeconds {
		return math.Min(a.Under, b.Under), outside
	}
	x := (cost - a.PodSeconds) / (b.PodSeconds - a.PodSeconds)
	// A floor keeps the logarithm finite where HPA turned nothing away.
	floor := 1e-6 * math.Max(a.PodSeconds, 1)
	la, lb := math.Log(math.Max(a.Under, floor)), math.Log(math.Max(b.Under, floor))
	under = math.Exp(la + x*(lb-la))
	if under < 1.5*floor { // the floor, give or take rounding
		under = 0
	}
	return under, outside
}

// multiple is a point's under-provisioning as a multiple of HPA's at equal
// cost: below 1 moves the frontier.
func (f frontier) multiple(p point) (m float64, outside bool) {
	h, outside := f.underAt(p.PodSeconds)
	switch {
	case h == 0 && p.Under == 0:
		return 1, outside
	case h == 0:
		return math.Inf(1), outside
	}
	return p.Under / h, outside
}
