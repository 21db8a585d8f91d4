package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The JSON contract of `simulate --output json`, spelled out here rather
// than taken from internal/simulate, so that renaming a field fails a test.
type stepJSON struct {
	At                       *float64     `json:"at"`
	CurrentReplicas          *int32       `json:"currentReplicas"`
	DesiredReplicas          *int32       `json:"desiredReplicas"`
	Action                   string       `json:"action"`
	Metrics                  []metricJSON `json:"metrics"`
	Recommendation           *int32       `json:"recommendation"`
	StabilizedRecommendation *int32       `json:"stabilizedRecommendation"`
	LimitedBy                string       `json:"limitedBy"`
	Behavior                 *bool        `json:"behavior"`
	Zero                     string       `json:"zero"`
	Reason                   string       `json:"reason"`
}

type metricJSON struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Current      *float64 `json:"current"`
	Target       *float64 `json:"target"`
	Utilization  *int32   `json:"utilization"`
	AverageValue *float64 `json:"averageValue"`
	Value        *float64 `json:"value"`
	Proposal     *int32   `json:"proposal"`
	ReadyPods    int      `json:"readyPods"`
	IgnoredPods  int      `json:"ignoredPods"`
	MissingPods  int      `json:"missingPods"`
	UnreadyPods  int      `json:"unreadyPods"`
	Error        string   `json:"error"`
}

// wantStep is one step's expected decision.
type wantStep struct {
	at               float64
	current, desired int32
	action           string
	limitedBy        string
	recommendation   int32
	stabilized       int32
	// zero is the change to the scaled-to-zero record: "set", "clear" or "".
	zero string
	// behavior is true on HPA's behavior path (a stabilization shorthand).
	behavior bool
	metrics  []wantMetric
}

// wantMetric is one metric's expected part. For a failed metric, set err (a
// substring of the error); current and proposal are then not checked but
// must be absent.
type wantMetric struct {
	name, typ       string
	current, target float64
	// utilization, averageValue and value are checked when non-nil, and
	// must be absent otherwise.
	utilization                    *int32
	averageValue, value            *float64
	proposal                       int32
	ready, unready, missing, ignor int
	err                            string
}

func util(v int32) *int32    { return &v }
func f64(v float64) *float64 { return &v }

func cpuUtil(current, proposal int32, ready, unready, missing, ignored int) wantMetric {
	return wantMetric{name: "cpu", typ: "resource", current: float64(current), target: 50, utilization: util(current),
		proposal: proposal, ready: ready, unready: unready, missing: missing, ignor: ignored}
}

// exampleWants holds, for every file in examples/, the decisions HPA v1.37
// makes at each step, computed by hand from its rules (the derivations are
// in each example's header). A change in the engine's decisions fails here.
var exampleWants = map[string][]wantStep{
	// Plain path: cap max(2 x current, 4) per tick, 5-minute scale-down
	// stabilization with the window's edge included.
	"cpu-load-gen.yaml": {
		{at: 0, current: 1, desired: 1, action: "none", limitedBy: "none", recommendation: 1, stabilized: 1,
			metrics: []wantMetric{cpuUtil(5, 1, 1, 0, 0, 0)}},
		{at: 15, current: 1, desired: 4, action: "scale-up", limitedBy: "scale-up-policy", recommendation: 10, stabilized: 10,
			metrics: []wantMetric{cpuUtil(480, 10, 1, 0, 0, 0)}},
		{at: 60, current: 4, desired: 8, action: "scale-up", limitedBy: "scale-up-policy", recommendation: 10, stabilized: 10,
			metrics: []wantMetric{cpuUtil(120, 10, 4, 0, 0, 0)}},
		{at: 105, current: 8, desired: 10, action: "scale-up", limitedBy: "none", recommendation: 10, stabilized: 10,
			metrics: []wantMetric{cpuUtil(60, 10, 8, 0, 0, 0)}},
		{at: 150, current: 10, desired: 10, action: "none", limitedBy: "tolerance", recommendation: 10, stabilized: 10,
			metrics: []wantMetric{cpuUtil(48, 10, 10, 0, 0, 0)}},
		{at: 300, current: 10, desired: 10, action: "none", limitedBy: "stabilization", recommendation: 1, stabilized: 10,
			metrics: []wantMetric{cpuUtil(2, 1, 10, 0, 0, 0)}},
		{at: 450, current: 10, desired: 10, action: "none", limitedBy: "stabilization", recommendation: 1, stabilized: 10,
			metrics: []wantMetric{cpuUtil(2, 1, 10, 0, 0, 0)}},
		{at: 465, current: 10, desired: 1, action: "scale-down", limitedBy: "none", recommendation: 1, stabilized: 1,
			metrics: []wantMetric{cpuUtil(2, 1, 10, 0, 0, 0)}},
	},
	// The largest proposal wins; max-replicas caps it.
	"scaffold-defaults.yaml": {
		{at: 0, current: 2, desired: 3, action: "scale-up", limitedBy: "max-replicas", recommendation: 4, stabilized: 4,
			metrics: []wantMetric{
				{name: "cpu", typ: "resource", current: 10, target: 60, utilization: util(10), proposal: 1, ready: 2},
				{name: "memory", typ: "resource", current: 93, target: 60, utilization: util(93), proposal: 4, ready: 2},
			}},
		{at: 60, current: 3, desired: 3, action: "none", limitedBy: "max-replicas", recommendation: 5, stabilized: 5,
			metrics: []wantMetric{
				{name: "cpu", typ: "resource", current: 10, target: 60, utilization: util(10), proposal: 1, ready: 3},
				{name: "memory", typ: "resource", current: 93, target: 60, utilization: util(93), proposal: 5, ready: 3},
			}},
	},
	// Unready pods count as 0 on a scale-up (here the ratio flips: hold)
	// and are left out otherwise.
	"rolling-update-surge.yaml": {
		{at: 0, current: 4, desired: 4, action: "none", limitedBy: "none", recommendation: 4, stabilized: 4,
			metrics: []wantMetric{cpuUtil(80, 4, 3, 3, 0, 1)}},
		{at: 400, current: 4, desired: 2, action: "scale-down", limitedBy: "none", recommendation: 2, stabilized: 2,
			metrics: []wantMetric{cpuUtil(20, 2, 3, 1, 0, 0)}},
	},
	// Missing pods: 100% of request on a scale-down, 0 on a scale-up; stale
	// or absent data holds.
	"missing-metrics.yaml": {
		{at: 0, current: 4, desired: 4, action: "none", limitedBy: "none", recommendation: 4, stabilized: 4,
			metrics: []wantMetric{cpuUtil(20, 4, 3, 0, 1, 0)}},
		{at: 15, current: 4, desired: 5, action: "scale-up", limitedBy: "none", recommendation: 5, stabilized: 5,
			metrics: []wantMetric{cpuUtil(80, 5, 3, 0, 1, 0)}},
		{at: 30, current: 5, desired: 5, action: "none", limitedBy: "missing-metrics",
			metrics: []wantMetric{{name: "cpu", typ: "resource", target: 50, missing: 5, err: "stale"}}},
		{at: 45, current: 5, desired: 5, action: "none", limitedBy: "missing-metrics",
			// As in the controller: metrics.k8s.io's snapshot has no sample
			// for any pod, so the metric fails before its pods are counted.
			metrics: []wantMetric{{name: "cpu", typ: "resource", target: 50, err: "no data: metrics.k8s.io has no cpu sample for the app's 5 pods"}}},
	},
	// A single Prometheus value against a per-pod target: ceil(total /
	// target), tolerance against status replicas.
	"rps-per-pod.yaml": {
		{at: 0, current: 3, desired: 5, action: "scale-up", limitedBy: "none", recommendation: 5, stabilized: 5,
			metrics: []wantMetric{{name: "traefik_service_requests_total", typ: "value", current: 666.667, target: 400,
				averageValue: f64(666.667), value: f64(2000), proposal: 5}}},
		{at: 15, current: 5, desired: 5, action: "none", limitedBy: "missing-metrics",
			metrics: []wantMetric{{name: "traefik_service_requests_total", target: 400, err: "context deadline exceeded"}}},
		{at: 30, current: 5, desired: 5, action: "none", limitedBy: "tolerance", recommendation: 5, stabilized: 5,
			metrics: []wantMetric{{name: "traefik_service_requests_total", typ: "value", current: 420, target: 400,
				averageValue: f64(420), value: f64(2100), proposal: 5}}},
		{at: 45, current: 5, desired: 5, action: "none", limitedBy: "missing-metrics",
			metrics: []wantMetric{{name: "traefik_service_requests_total", target: 400, err: `no data: query "sum(rate(traefik_service_requests_total{service=\"shop-shop-80@kubernetes\"}[1m]))": empty result`}}},
		{at: 60, current: 5, desired: 5, action: "none", limitedBy: "stabilization", recommendation: 0, stabilized: 5,
			metrics: []wantMetric{{name: "traefik_service_requests_total", typ: "value", current: 0, target: 400,
				averageValue: f64(0), value: f64(0), proposal: 0}}},
	},
}

// scaleToZero is the queue metric of scale-to-zero.yaml: one value
// against a per-pod target.
func scaleToZero(queue, average float64, proposal int32) wantMetric {
	return wantMetric{name: "queue", typ: "value", current: average, target: 10,
		averageValue: f64(average), value: f64(queue), proposal: proposal}
}

func init() {
	// Going to zero and back: HPA 1.37's rules, the record in "zero".
	exampleWants["scale-to-zero.yaml"] = []wantStep{
		{behavior: true, at: 0, current: 2, desired: 2, action: "none", limitedBy: "stabilization", recommendation: 0, stabilized: 2,
			metrics: []wantMetric{scaleToZero(0, 0, 0)}},
		{behavior: true, at: 30, current: 2, desired: 0, action: "scale-down", limitedBy: "none", recommendation: 0, stabilized: 0, zero: "set",
			metrics: []wantMetric{scaleToZero(0, 0, 0)}},
		{behavior: true, at: 45, current: 0, desired: 0, action: "none", limitedBy: "none", recommendation: 0, stabilized: 0,
			metrics: []wantMetric{scaleToZero(0, 0, 0)}},
		{behavior: true, at: 60, current: 0, desired: 0, action: "none", limitedBy: "none", recommendation: 0, stabilized: 0,
			metrics: []wantMetric{scaleToZero(0, 0, 0)}},
		{behavior: true, at: 75, current: 0, desired: 3, action: "scale-up", limitedBy: "none", recommendation: 3, stabilized: 3, zero: "clear",
			metrics: []wantMetric{scaleToZero(25, 25, 3)}},
		{behavior: true, at: 90, current: 3, desired: 3, action: "none", limitedBy: "none", recommendation: 3, stabilized: 3,
			metrics: []wantMetric{scaleToZero(25, 8.334, 3)}},
	}
}

func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range exampleWants {
		assert.Contains(t, names, name, "expected example file is missing")
	}

	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, ok := exampleWants[name]
			require.True(t, ok, "every example needs its expected decisions in exampleWants")

			var stdout, stderr bytes.Buffer
			code := runSimulate([]string{"--scenario", file, "--output", "json"}, &stdout, &stderr)
			require.Equal(t, exitOK, code, "stderr: %s", stderr.String())
			assert.Empty(t, stderr.String(), "an example should not warn")

			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			require.Len(t, lines, len(want), "one JSON object per step, nothing else")
			for i, line := range lines {
				// Extra fields are allowed: the contract says "at least".
				var got stepJSON
				require.NoError(t, json.Unmarshal([]byte(line), &got), "line %d: %s", i, line)
				assertStep(t, want[i], got, line)
			}
		})
	}
}

func assertStep(t *testing.T, w wantStep, got stepJSON, line string) {
	t.Helper()
	require.NotNil(t, got.At, line)
	require.NotNil(t, got.CurrentReplicas, line)
	require.NotNil(t, got.DesiredReplicas, line)
	require.NotNil(t, got.Behavior, line)
	assert.Equal(t, w.at, *got.At, "at: %s", line)
	assert.Equal(t, w.current, *got.CurrentReplicas, "currentReplicas at %v", w.at)
	assert.Equal(t, w.zero, got.Zero, "zero at %v", w.at)
	assert.Equal(t, w.desired, *got.DesiredReplicas, "desiredReplicas at %v", w.at)
	assert.Equal(t, w.action, got.Action, "action at %v", w.at)
	assert.Equal(t, w.limitedBy, got.LimitedBy, "limitedBy at %v", w.at)
	assert.Equal(t, w.behavior, *got.Behavior, "behavior path at %v", w.at)
	assert.NotEmpty(t, got.Reason, "reason at %v", w.at)
	if w.limitedBy != "missing-metrics" {
		require.NotNil(t, got.Recommendation, line)
		require.NotNil(t, got.StabilizedRecommendation, line)
		assert.Equal(t, w.recommendation, *got.Recommendation, "recommendation at %v", w.at)
		assert.Equal(t, w.stabilized, *got.StabilizedRecommendation, "stabilizedRecommendation at %v", w.at)
	}
	require.Len(t, got.Metrics, len(w.metrics), line)
	for j, wm := range w.metrics {
		gm := got.Metrics[j]
		at := func(field string) string { return field + " of metric " + wm.name + " at " + line }
		assert.Equal(t, wm.name, gm.Name, at("name"))
		assert.Equal(t, wm.typ, gm.Type, at("type"))
		require.NotNil(t, gm.Target, at("target"))
		assert.Equal(t, wm.target, *gm.Target, at("target"))
		assert.Equal(t, wm.ready, gm.ReadyPods, at("readyPods"))
		assert.Equal(t, wm.unready, gm.UnreadyPods, at("unreadyPods"))
		assert.Equal(t, wm.missing, gm.MissingPods, at("missingPods"))
		assert.Equal(t, wm.ignor, gm.IgnoredPods, at("ignoredPods"))
		if wm.err != "" {
			assert.Contains(t, gm.Error, wm.err, at("error"))
			assert.Nil(t, gm.Current, at("current of a failed metric"))
			assert.Nil(t, gm.Proposal, at("proposal of a failed metric"))
			continue
		}
		assert.Empty(t, gm.Error, at("error"))
		require.NotNil(t, gm.Current, at("current"))
		require.NotNil(t, gm.Proposal, at("proposal"))
		assert.InDelta(t, wm.current, *gm.Current, 1e-9, at("current"))
		assert.Equal(t, wm.proposal, *gm.Proposal, at("proposal"))
		assert.Equal(t, wm.utilization, gm.Utilization, at("utilization"))
		assert.Equal(t, wm.averageValue, gm.AverageValue, at("averageValue"))
		assert.Equal(t, wm.value, gm.Value, at("value"))
	}
}

// TestSimulateUsage covers the exit codes of the command line.
func TestSimulateUsage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"no scenario", nil, exitUsage, "--scenario is required"},
		{"unknown flag", []string{"--bogus"}, exitUsage, "unknown flag"},
		{"bad output", []string{"--scenario", "../../examples/cpu-load-gen.yaml", "--output", "yaml"}, exitUsage, "allowed table, json"},
		{"missing file", []string{"--scenario", "does-not-exist.yaml"}, exitUsage, "does-not-exist.yaml"},
		{"stray argument", []string{"--scenario", "../../examples/cpu-load-gen.yaml", "extra"}, exitUsage, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tc.code, runSimulate(tc.args, &stdout, &stderr))
			assert.Contains(t, stderr.String(), tc.inStderr)
			assert.Empty(t, stdout.String())
		})
	}

	t.Run("help", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, exitOK, runSimulate([]string{"--help"}, &stdout, &stderr))
		assert.Contains(t, stdout.String(), "--scenario")
	})

	t.Run("table", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, runSimulate([]string{"--scenario", "../../examples/scaffold-defaults.yaml"}, &stdout, &stderr))
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		require.Len(t, lines, 3)
		assert.Equal(t, []string{"AT", "REPLICAS", "TARGETS", "DESIRED", "ACTION", "LIMITED-BY", "REASON"}, strings.Fields(lines[0]))
		assert.Contains(t, lines[1], "cpu: 10%/60%, memory: 93%/60%")
		assert.True(t, slices.Contains(strings.Fields(lines[1]), "max-replicas"), lines[1])
	})
}
