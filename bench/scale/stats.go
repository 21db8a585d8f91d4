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

// deltaBuckets is after minus before, bucket by bucket (both cumulative,
// same bounds; a bound missing from before counts as zero).
func deltaBuckets(before, after []bucket) []bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.le] = b.count
	}
	out := make([]bucket, len(after))
	for i, b := range after {
		out[i] = bucket{b.le, b.count - prev[b.le]}
	}
	return out
}

// histogramQuantile estimates the q-quantile from cumulative buckets the
// way PromQL's histogram_quantile does: linear within the bucket that
// holds the rank, the lower bound of the first bucket taken as 0; a rank
// in the +Inf bucket gives the largest finite bound. NaN without
// observations.
func histogramQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				if i == 0 {
					return math.NaN()
				}
				return bs[i-1].le
			}
			in := b.count - below
			if in <= 0 {
				return b.le
			}
			return lower + (b.le-lower)*(rank-below)/in
		}
		lower, below = b.le, b.count
	}
	return bs[len(bs)-1].le
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
