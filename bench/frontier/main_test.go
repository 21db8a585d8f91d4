package main

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syntheticCounts is a day-like trace of n seconds with a collection gap of
// ten empty minutes at gapAt.
func syntheticCounts(n, gapAt int) []float64 {
	c := make([]float64, n)
	for i := range c {
		c[i] = 20 + 15*math.Sin(2*math.Pi*float64(i)/86400) + float64(i%7)
	}
	for i := gapAt; i < gapAt+600; i++ {
		c[i] = 0
	}
	return c
}

func TestDrawFromKeepsTheRules(t *testing.T) {
	counts := syntheticCounts(400000, 100000)
	ws, err := drawFrom("nasa", counts, 12, rand.New(rand.NewPCG(7, 1)))
	require.NoError(t, err)
	require.Len(t, ws, 12)
	busy := 0
	for i, w := range ws {
		assert.GreaterOrEqual(t, w.Length, minWindowSeconds, w.ID)
		assert.LessOrEqual(t, w.Length, maxWindowSeconds, w.ID)
		assert.False(t, w.Start < 100000+600 && 100000 < w.Start+w.Length, "window %d holds the gap", i)
		assert.False(t, overlaps(seen["nasa"], w.Start, w.Start+w.Length), "window %d overlaps a standard trace", i)
		for j := range i {
			assert.False(t, overlapsAny(ws[j:j+1], w.Start, w.Start+w.Length), "windows %d and %d overlap", j, i)
		}
		if w.Busy {
			busy++
		}
		// The stored load averages the scaled counts to the stated mean.
		total := 0.0
		for k, l := range w.Loads {
			total += l * float64(min(w.Bucket, w.Length-k*w.Bucket))
		}
		assert.InDelta(t, w.Mean, total/float64(w.Length), w.Mean*0.001, "window %d's mean", i)
		assert.Contains(t, startupChoices, w.StartupSeconds)
	}
	assert.Equal(t, 6, busy, "as many busy windows as calm ones")

	again, err := drawFrom("nasa", counts, 12, rand.New(rand.NewPCG(7, 1)))
	require.NoError(t, err)
	assert.Equal(t, ws, again, "the same seed draws the same windows")
	other, err := drawFrom("nasa", counts, 12, rand.New(rand.NewPCG(8, 1)))
	require.NoError(t, err)
	assert.NotEqual(t, ws, other, "another seed draws other windows")
}

func TestDrawFromReportsTooShortATrace(t *testing.T) {
	_, err := drawFrom("twitter", make([]float64, 1000), 2, rand.New(rand.NewPCG(1, 1)))
	assert.ErrorContains(t, err, "too short")
}

func TestGapsFindsRunsOfEmptyMinutes(t *testing.T) {
	c := make([]float64, 60*20)
	for i := range c {
		c[i] = 1
	}
	for i := 60 * 5; i < 60*8; i++ { // three empty minutes: a gap
		c[i] = 0
	}
	for i := 60 * 12; i < 60*14; i++ { // two: not a gap
		c[i] = 0
	}
	assert.Equal(t, [][2]int{{300, 480}}, gaps(c))
}

func TestFrontierInterpolatesAtEqualCost(t *testing.T) {
	f := newFrontier([]point{{Target: 70, PodSeconds: 200, Under: 100}, {Target: 50, PodSeconds: 300, Under: 25}, {Target: 40, PodSeconds: 400, Under: 0}})
	for _, tc := range []struct {
		name        string
		cost, under float64
		outside     bool
	}{
		{"on a point", 300, 25, false},
		{"halfway, geometrically", 250, 50, false},
		{"towards nothing turned away, with a floor of a millionth of the cost", 350, math.Sqrt(25 * 300e-6), false},
		{"cheaper than the sweep", 100, 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, outside := f.underAt(tc.cost)
			assert.InDelta(t, tc.under, u, tc.under*1e-6+1e-9)
			assert.Equal(t, tc.outside, outside)
		})
	}
	m, outside := f.multiple(point{PodSeconds: 250, Under: 25})
	assert.False(t, outside)
	assert.InDelta(t, 0.5, m, 1e-9, "half of HPA's under-provisioning at the same cost")
	m, _ = f.multiple(point{PodSeconds: 400, Under: 0})
	assert.Equal(t, 1.0, m, "nothing turned away where HPA turns nothing away")
}

func TestEveryPolicyRunsOnAWindow(t *testing.T) {
	w := window{ID: "w01", Length: 1800, Bucket: 60, StartupSeconds: 10}
	for i := range 30 {
		w.Loads = append(w.Loads, 500+float64(i%10)*150)
	}
	for _, s := range setups {
		for _, p := range []policy{{name: "hpa", profile: "hpa"}, {name: "spinscale", profile: "spinscale"}} {
			t.Run(s.name+"/"+p.name, func(t *testing.T) {
				sum, err := simulateOne(&w, s, p, 60)
				require.NoError(t, err)
				assert.Greater(t, sum.PodSeconds, 0.0)
				assert.Positive(t, sum.ScaleActions, "a load swinging 4-fold makes it scale")
			})
		}
	}
	_, err := simulateOne(&w, setups[0], policy{name: "x", profile: "spinscale", annotations: map[string]string{"spinscale.dev/nonsense": "1"}}, 60)
	assert.NoError(t, err, "unknown keys are warnings, as on a Deployment")
	_, err = simulateOne(&w, setups[0], policy{name: "x", profile: "spinscale", annotations: map[string]string{"spinscale.dev/burst-threshold": "nope"}}, 60)
	assert.ErrorContains(t, err, "burst-threshold")
}

func TestTryPolicyAndPercents(t *testing.T) {
	p, err := tryPolicy("lookahead=60s,spinscale.dev/drop-threshold=0.5")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"spinscale.dev/lookahead": "60s", "spinscale.dev/drop-threshold": "0.5"}, p.annotations)
	_, err = tryPolicy("lookahead")
	assert.ErrorContains(t, err, "key=value")

	ps, err := percents("70, 40,40")
	require.NoError(t, err)
	assert.Equal(t, []int{40, 70}, ps)
	_, err = percents("101")
	assert.ErrorContains(t, err, "whole percent")
}
