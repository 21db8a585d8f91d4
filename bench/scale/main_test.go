package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseText(t *testing.T) {
	text := `# HELP spinscale_kube_resource_requests_total Kubernetes API requests.
# TYPE spinscale_kube_resource_requests_total counter
spinscale_kube_resource_requests_total{group="apps",resource="deployments/scale",verb="PATCH"} 12
spinscale_kube_resource_requests_total{group="metrics.k8s.io",resource="pods",verb="GET"} 30
spinscale_kube_resource_requests_total{group="",resource="events",verb="POST"} 2 1700000000000
weird{a="x\"y, z}",b="\\"} 1.5e+01
process_cpu_seconds_total 3.25

spinscale_tick_duration_seconds_bucket{le="+Inf"} 4
`
	d, err := parseText(text)
	require.NoError(t, err)
	require.Len(t, d, 6)
	assert.Equal(t, `x"y, z}`, d[3].labels["a"])
	assert.Equal(t, `\`, d[3].labels["b"])
	assert.Equal(t, 15.0, d[3].value)
	assert.Equal(t, 3.25, d.sum("process_cpu_seconds_total", nil))
	assert.Equal(t, 44.0, d.sum("spinscale_kube_resource_requests_total", nil))
	assert.Equal(t, 30.0, d.sum("spinscale_kube_resource_requests_total", map[string]string{"group": "metrics.k8s.io"}))
	assert.Equal(t, 2.0, d.sum("spinscale_kube_resource_requests_total", map[string]string{"group": ""}), "an empty label value matches")
	assert.Equal(t, map[string]float64{"PATCH apps deployments/scale": 12, "GET metrics.k8s.io pods": 30, "POST  events": 2},
		d.sumBy("spinscale_kube_resource_requests_total", nil, "verb", "group", "resource"))
	assert.Equal(t, 4.0, d.sum("spinscale_tick_duration_seconds_bucket", map[string]string{"le": "+Inf"}))
	inf, err := parseText("gauge +Inf\n")
	require.NoError(t, err)
	assert.True(t, math.IsInf(inf[0].value, 1))
}

func TestParseTextRejectsBrokenLines(t *testing.T) {
	for name, line := range map[string]string{
		"no value":          "metric_total",
		"unterminated":      `metric_total{a="b} 1`,
		"label not quoted":  `metric_total{a=b} 1`,
		"value not numeric": `metric_total{a="b"} x`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseText(line + "\n")
			assert.Error(t, err)
		})
	}
}

func TestDeltaOf(t *testing.T) {
	assert.Equal(t, map[string]float64{"a": 2, "c": 5},
		deltaOf(map[string]float64{"a": 1, "b": 3}, map[string]float64{"a": 3, "b": 3, "c": 5}))
}

func TestTimeToFraction(t *testing.T) {
	s := time.Second
	reached := []time.Duration{40 * s, 10 * s, 30 * s, 20 * s}
	cases := []struct {
		name  string
		total int
		frac  float64
		want  time.Duration
		ok    bool
	}{
		{"median of four", 4, 0.5, 20 * s, true},
		{"90 % of four needs all four", 4, 0.9, 40 * s, true},
		{"all", 4, 1, 40 * s, true},
		{"all of five: one missing", 5, 1, 0, false},
		{"90 % of five needs five", 5, 0.9, 0, false},
		{"half of five needs three", 5, 0.5, 30 * s, true},
		{"none to reach", 0, 1, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := timeToFraction(reached, tc.total, tc.frac)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
	assert.Equal(t, []time.Duration{40 * s, 10 * s, 30 * s, 20 * s}, reached, "the input is left as it was")
}

func TestPercentile(t *testing.T) {
	ms := time.Millisecond
	ds := []time.Duration{50 * ms, 10 * ms, 40 * ms, 20 * ms, 30 * ms}
	cases := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"median", 0.5, 30 * ms},
		{"p99 of five is the largest", 0.99, 50 * ms},
		{"p20", 0.2, 10 * ms},
		{"p0 is the smallest", 0, 10 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := percentile(ds, tc.q)
			require.True(t, ok)
			assert.Equal(t, tc.want, got)
		})
	}
	_, ok := percentile(nil, 0.5)
	assert.False(t, ok)
}

func TestLinearFit(t *testing.T) {
	a, b, ok := linearFit([]float64{1000, 2000, 4000}, []float64{60, 70, 90})
	require.True(t, ok)
	assert.InDelta(t, 50, a, 1e-9)
	assert.InDelta(t, 0.01, b, 1e-12)
	_, _, ok = linearFit([]float64{1000}, []float64{60})
	assert.False(t, ok, "one point")
	_, _, ok = linearFit([]float64{1000, 1000}, []float64{60, 70})
	assert.False(t, ok, "no spread")
}

func TestExpectedReplicasFollowsHPARules(t *testing.T) {
	base := appSpec{pods: 3, maxReplicas: 10, targetPercent: 50}
	cases := []struct {
		name  string
		edit  func(*appSpec)
		after int64
		want  int32
	}{
		{"the bench's step: ceil(3 × 95 / 50)", nil, 95, 6},
		{"twice the target", nil, 100, 6},
		{"a partial step: ceil(3 × 80 / 50)", nil, 80, 5},
		{"within the tolerance", nil, 54, 3},
		{"scale-up limit max(2×, 4) of one sync", nil, 200, 6},
		{"small apps may reach 4", func(s *appSpec) { s.pods = 1 }, 200, 4},
		{"maxReplicas", func(s *appSpec) { s.maxReplicas = 5 }, 90, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			if tc.edit != nil {
				tc.edit(&s)
			}
			s.afterPercent = tc.after
			assert.Equal(t, tc.want, expectedReplicas(s))
		})
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("100, 250,500")
	require.NoError(t, err)
	assert.Equal(t, []int{100, 250, 500}, got)
	for _, bad := range []string{"", "0", "x", "100,,200", "30000"} {
		_, err := parseSizes(bad)
		assert.Error(t, err, bad)
	}
}

func TestMilliOf(t *testing.T) {
	assert.Equal(t, int64(40), milliOf("40m"))
	assert.Equal(t, int64(0), milliOf("1"), "whole cores are not what the bench writes")
	assert.Equal(t, int64(0), milliOf(""))
}

func TestWriteCallsAreScaleWritesAndEvents(t *testing.T) {
	m := map[string]float64{
		"PATCH apps deployments/scale": 10, "GET apps deployments/scale": 1,
		"POST  events": 10, "PATCH  events": 2, "GET metrics.k8s.io pods": 10,
	}
	assert.Equal(t, 22.0, writeCalls(m))
}

// A new report replaces what the bench wrote and keeps the sections after
// the marker (other benches'), and a file without the marker is replaced
// whole.
func TestWriteDocFileKeepsTheSectionsAfterTheMarker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scale.md")
	tail := keepMarker + "\n\n## The pod cache\n\nmeasured elsewhere\n"
	require.NoError(t, os.WriteFile(path, []byte("# an old report\n\nold figures\n\n"+tail), 0o644))
	require.NoError(t, writeDocFile(path, "", "go run ./bench/scale", options{}, nil))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(got), "old figures")
	assert.Contains(t, string(got), "# Spinscale at scale, beside the real HPA")
	assert.True(t, strings.HasSuffix(string(got), tail), "the kept sections close the file")

	require.NoError(t, os.WriteFile(path, []byte("# no marker\n"), 0o644))
	require.NoError(t, writeDocFile(path, "", "go run ./bench/scale", options{}, nil))
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(got), "no marker")
	assert.NotContains(t, string(got), keepMarker)
}

func TestBucketBound(t *testing.T) {
	// 10 writes: 4 within 10 ms, 9 within 40 ms, all within 80 ms.
	b := map[string]float64{"0.01": 4, "0.02": 4, "0.04": 9, "0.08": 10, "+Inf": 10}
	assert.Equal(t, 0.04, bucketBound(b, 10, 0.5))
	assert.Equal(t, 0.08, bucketBound(b, 10, 0.99))
	assert.Equal(t, 0.01, bucketBound(b, 10, 0.4))
	assert.True(t, math.IsNaN(bucketBound(nil, 0, 0.5)))
	assert.True(t, math.IsInf(bucketBound(map[string]float64{"0.01": 1, "+Inf": 3}, 3, 0.99), 1))
	assert.Equal(t, "≤ 40 ms", fmtBound(0.04))
}

func TestFormatPhases(t *testing.T) {
	assert.Equal(t, "prepare 2 ms, reads 1.50 s, decisions 40 ms", formatPhases(map[string]float64{"decisions": 0.04, "reads": 1.5, "prepare": 0.002}))
	assert.Equal(t, "not reported", formatPhases(nil))
}

func TestPrintMemory(t *testing.T) {
	var b strings.Builder
	printMemory(&b, memoryResult{apps: 5000, podsPerApp: 5, podsCached: 25000, setup: 4 * time.Minute, window: 2 * time.Minute,
		ticks: []time.Duration{time.Second, 3 * time.Second}, rss: []int64{200 << 20, 250 << 20, 210 << 20}, rssPeak: 260 << 20,
		heapInuse: 120 << 20, decisions: 40000, cpu: 3, phases: map[string]float64{"reads": 1.2, "decisions": 0.3}})
	out := b.String()
	assert.Contains(t, out, "5000 Spinscale apps × 5 pods (25000 pods Running and Ready")
	assert.Contains(t, out, "RSS median 210 MiB, highest 250 MiB; peak since start 260 MiB; Go heap in use at the end 120 MiB")
	assert.Contains(t, out, "(2 ticks, 40000 decisions)")
	assert.Contains(t, out, "pass phases, mean: reads 1.20 s, decisions 300 ms; CPU 3.0 s over the window (1.50 s per tick)")
}
