package main

import (
	"math"
	"slices"
	"time"
)

// timeToFraction is how long until the fraction frac of total apps had
// reached their count, given the times of those that did (in any order).
// ok is false when too few did.
func timeToFraction(reached []time.Duration, total int, frac float64) (time.Duration, bool) {
	need := int(math.Ceil(frac*float64(total) - 1e-9))
	if total <= 0 || need > len(reached) {
		return 0, false
	}
	if need < 1 {
		need = 1
	}
	s := slices.Clone(reached)
	slices.Sort(s)
	return s[need-1], true
}

// percentile is the nearest-rank q-quantile of the durations: the
// smallest value at or above which a fraction q of them lie (with fewer
// than 100 values, p99 is the largest). ok is false without values.
func percentile(ds []time.Duration, q float64) (time.Duration, bool) {
	if len(ds) == 0 {
		return 0, false
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s))-1e-9)) - 1
	return s[min(max(i, 0), len(s)-1)], true
}

// linearFit is the least-squares line y = a + b·x through the points.
func linearFit(xs, ys []float64) (a, b float64, ok bool) {
	n := float64(len(xs))
	if len(xs) != len(ys) || len(xs) < 2 {
		return 0, 0, false
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, 0, false
	}
	b = (n*sxy - sx*sy) / den
	a = (sy - b*sx) / n
	return a, b, true
}
