package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestQuantileIsTheNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, .5, 0},
		{"one", ms(7), .99, 7 * time.Millisecond},
		{"median of 1..100", ms(hundred...), .5, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), .99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the largest", ms(hundred...), .999, 100 * time.Millisecond},
		{"p0 is the smallest", ms(3, 4, 5), 0, 3 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, quantile(tc.sorted, tc.q))
		})
	}
}

func TestReportComparesWithTheGoals(t *testing.T) {
	r := &report{opts: options{warm: 2 * time.Second}}
	r.memory = &memoryResult{held: 2000, before: 50 << 20, after: 80 << 20}
	r.opts.throughputFor = 5 * time.Second
	r.throughput = []throughputResult{
		{ok: 50000, wall: 5 * time.Second, cpu: 2 * time.Second, workers: 32},
		{ok: 30000, wall: 5 * time.Second, cpu: 2 * time.Second, workers: 32},
		{ok: 60000, wall: 5 * time.Second, cpu: 2 * time.Second, workers: 32},
	}
	r.zero = &zeroResult{startup: 2 * time.Second, runs: []zeroRun{{afterReady: 20 * time.Millisecond}, {afterReady: 150 * time.Millisecond}, {total: time.Second, failure: `502 "bad gateway" <nil>`}}}
	var b bytes.Buffer
	r.write(&b)
	out := b.String()
	assert.Contains(t, out, "**15.00 MiB per 1,000 held requests** (goal: at most 10 MiB: MISSED)")
	assert.Contains(t, out, "| 2 | 30000 | 0 | 6000 | 2s | 40% | 15000 |")
	assert.Contains(t, out, "Median of the runs: **25000 proxied requests per CPU-second** (goal: at least 20000: within)")
	assert.Contains(t, out, "Worst pod Ready → answer: 150.000 ms over 2 answered runs, 1 failed (goal: at most 100ms: MISSED)")
	assert.Contains(t, out, "| 3 | failed after 1000.000 ms: 502 \"bad gateway\" <nil> | | |")
	assert.False(t, strings.Contains(out, "## a."), "no latency part was run")

	// Three latency runs whose added p99 are 1.4, 0.4 and 0.7 ms: the
	// median, 0.7 ms, is judged.
	direct := latencies{d: []time.Duration{100 * time.Microsecond}}
	r = &report{opts: options{warm: 2 * time.Second}}
	for _, p := range []time.Duration{1500, 500, 800} {
		r.latency = append(r.latency, latencyResult{direct: direct, proxied: latencies{d: []time.Duration{p * time.Microsecond}}, rate: 1000, for_: 10 * time.Second, cpu: time.Second})
	}
	b.Reset()
	r.write(&b)
	out = b.String()
	assert.Contains(t, out, "| 1 | added by the activator | | | 1.400 ms | | 1.400 ms | |")
	assert.Contains(t, out, "median of the runs: p50 0.700 ms, **p99 0.700 ms** (goal: p99 at most 1ms: within)")
}
