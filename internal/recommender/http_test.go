package recommender

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// httpMetric is an HTTP concurrency metric with Knative's defaults: a 60 s
// stable window, a 6 s panic window and a panic threshold of 2 (200%).
func httpMetric(targetMilli int64) MetricSpec {
	return MetricSpec{Name: HTTPConcurrencyName, Source: SourceHTTP, Target: TargetAverageValue, TargetMilli: targetMilli,
		HTTP: HTTPSpec{Metric: HTTPConcurrency, StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2}}
}

// httpInput is an app at replicas ready pods with the given window averages.
func httpInput(replicas int32, stable, panic float64) Input {
	return Input{SpecReplicas: replicas, StatusReplicas: replicas, Pods: pods(int(replicas), nil),
		Metrics: []Observation{{HTTP: &HTTPWindows{Stable: stable, Panic: panic, Idle: stable == 0 && panic == 0}}}}
}

// Stable mode: ceil(stable / target), with no tolerance band.
func TestHTTPStable(t *testing.T) {
	cases := []struct {
		name          string
		replicas      int32
		stable, panic float64
		want          int32
	}{
		{"at target", 5, 50, 50, 5},
		{"45 of 10 per pod needs 5", 5, 45, 48, 5},
		{"61 of 10 per pod needs 7", 5, 61, 61, 7},
		// HPA's 10% tolerance would hold at 2 for a ratio of 1.05.
		{"no tolerance: 21 of 10 per pod needs 3", 2, 21, 21, 3},
		// The panic value is below twice the ready pods' worth: no panic.
		{"a panic value below the threshold is ignored", 4, 20, 70, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(httpMetric(10_000))
			in := httpInput(tc.replicas, tc.stable, tc.panic)
			d, st := Decide(&spec, &in, settled(), t0)
			require.NoError(t, d.Metrics[0].Err)
			assert.Equal(t, tc.want, d.Metrics[0].Proposal, d.Reason())
			assert.Equal(t, tc.want, d.DesiredReplicas, d.Reason())
			assert.False(t, d.Metrics[0].HTTP.Panicking)
			assert.Empty(t, st.HTTPPanics)
			assert.False(t, d.Metrics[0].WithinTolerance)
		})
	}
}

// Panic mode: entered when ceil(panic/target) / ready pods >= the threshold;
// the proposal then never falls until a stable window has passed since the
// threshold was last crossed.
func TestHTTPPanic(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.DownscaleStabilization = 0
	spec.ScaleUpLimitFactor = 4
	st := settled()

	// 2 ready pods, stable 15 (2 pods), panic 45 (5 pods): 5/2 = 2.5 >= 2.
	in := httpInput(2, 15, 45)
	d, st := Decide(&spec, &in, st, t0)
	h := d.Metrics[0].HTTP
	require.NotNil(t, h)
	assert.Equal(t, int32(2), h.DesiredStable)
	assert.Equal(t, int32(5), h.DesiredPanic)
	assert.True(t, h.Panicking)
	assert.Equal(t, int32(5), d.DesiredReplicas, d.Reason())
	assert.Contains(t, d.Reason(), "panic mode on")
	st = Commit(&spec, st, &d, t0)

	// 5 ready pods, the burst gone from the panic window (1 pod's worth)
	// but not from the stable one: 1/5 < 2, still in panic 30 s later.
	in = httpInput(5, 20, 10)
	d, st = Decide(&spec, &in, st, t0.Add(30*time.Second))
	assert.True(t, d.Metrics[0].HTTP.Panicking)
	assert.Equal(t, int32(5), d.Metrics[0].Proposal, "no scale-down in panic: %s", d.Reason())
	assert.Equal(t, int32(5), d.DesiredReplicas)

	// Exactly a stable window after the last crossing: still in panic
	// (Knative ends it strictly after).
	d, st = Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.True(t, d.Metrics[0].HTTP.Panicking)
	assert.Equal(t, int32(5), d.Metrics[0].Proposal)

	// Past it: the panic ends, and the stable value decides.
	d, st = Decide(&spec, &in, st, t0.Add(time.Minute+time.Second))
	assert.False(t, d.Metrics[0].HTTP.Panicking)
	assert.Equal(t, int32(2), d.Metrics[0].Proposal, d.Reason())
	assert.Equal(t, int32(2), d.DesiredReplicas)
	assert.Contains(t, d.Reason(), "panic mode off")
	assert.Empty(t, st.HTTPPanics)
}

// A crossing during the panic extends it, and a higher panic proposal
// raises the floor.
func TestHTTPPanicExtends(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.DownscaleStabilization = 0
	in := httpInput(1, 5, 30) // 3 pods / 1 ready = 3 >= 2
	d, st := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(3), d.Metrics[0].Proposal)
	in = httpInput(3, 10, 70) // 7 / 3 >= 2: extended at t0+40s
	d, st = Decide(&spec, &in, st, t0.Add(40*time.Second))
	assert.Equal(t, int32(7), d.Metrics[0].Proposal)
	assert.Equal(t, t0.Add(40*time.Second), d.Metrics[0].HTTP.PanicSince)
	in = httpInput(7, 10, 10)
	d, st = Decide(&spec, &in, st, t0.Add(90*time.Second))
	assert.Equal(t, int32(7), d.Metrics[0].Proposal, "in panic until t0+100s")
	d, _ = Decide(&spec, &in, st, t0.Add(101*time.Second))
	assert.Equal(t, int32(1), d.Metrics[0].Proposal)
}

// Missing data is a failed metric: the app holds, never scales down, and
// an ongoing panic is neither ended nor extended.
func TestHTTPMissingDataHolds(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.DownscaleStabilization = 0
	in := httpInput(2, 15, 45)
	_, st := Decide(&spec, &in, settled(), t0)
	require.Len(t, st.HTTPPanics, 1)

	in = Input{SpecReplicas: 5, StatusReplicas: 5, Pods: pods(5, nil),
		Metrics: []Observation{{Err: ErrNoData}}}
	d, st := Decide(&spec, &in, st, t0.Add(2*time.Minute))
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.Equal(t, StageMissingMetrics, d.LimitedBy)
	assert.Contains(t, d.Reason(), HTTPConcurrencyName)
	assert.Len(t, st.HTTPPanics, 1, "a failure does not end the panic")

	in.Metrics[0] = Observation{}
	d, _ = Decide(&spec, &in, st, t0.Add(2*time.Minute))
	assert.ErrorIs(t, d.Metrics[0].Err, ErrNoData)
	assert.Equal(t, int32(5), d.DesiredReplicas)
}

// The bounds apply to the KPA's count like to any proposal.
func TestHTTPBounds(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.MaxReplicas = 12
	in := httpInput(10, 1000, 1000)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(100), d.Metrics[0].Proposal)
	assert.Equal(t, int32(12), d.DesiredReplicas)
	assert.Equal(t, StageMaxReplicas, d.LimitedBy)

	spec = baseSpec(httpMetric(10_000))
	spec.MinReplicas = 3
	spec.DownscaleStabilization = 0
	in = httpInput(4, 0, 0)
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.Metrics[0].Proposal)
	assert.Equal(t, int32(3), d.DesiredReplicas)
}

// At zero, a request that arrived or is held in the panic window wakes the
// app; with none it stays at zero. A zero set by hand still pauses.
func TestHTTPWakeFromZero(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.MinReplicas = 0
	cases := []struct {
		name   string
		w      HTTPWindows
		zeroed bool
		want   int32
	}{
		{"a held request wakes", HTTPWindows{PanicHeld: 1}, true, 1},
		{"a request wakes", HTTPWindows{PanicRequests: 1}, true, 1},
		{"concurrency 25 wakes 3", HTTPWindows{Stable: 2, Panic: 25, PanicRequests: 30}, true, 3},
		{"no request stays at zero", HTTPWindows{Idle: true}, true, 0},
		{"a zero set by hand pauses", HTTPWindows{PanicHeld: 1}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			in := Input{Metrics: []Observation{{HTTP: &w}}, ScaledToZero: tc.zeroed}
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, tc.want, d.DesiredReplicas, d.Reason())
			if tc.want > 0 {
				assert.Equal(t, ZeroClear, d.Zero)
			}
		})
	}
}

// Scale to zero: an idle stable window proposes 0; with
// scale-to-zero-after the app keeps a pod until it has been idle that long.
func TestHTTPScaleToZeroAfterIdle(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.MinReplicas = 0
	spec.ScaleToZeroAfter = 30 * time.Second
	in := httpInput(1, 0, 0)
	d, st := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(1), d.DesiredReplicas, d.Reason())
	assert.Equal(t, StageActivation, d.LimitedBy)
	assert.Contains(t, d.Reason(), "idle for 0s")

	// Traffic in between restarts the count.
	busy := httpInput(1, 0.5, 0.5)
	_, st = Decide(&spec, &busy, st, t0.Add(20*time.Second))
	d, st = Decide(&spec, &in, st, t0.Add(40*time.Second))
	assert.Equal(t, int32(1), d.DesiredReplicas)
	d, st = Decide(&spec, &in, st, t0.Add(69*time.Second))
	assert.Equal(t, int32(1), d.DesiredReplicas, "idle for 29s")
	d, _ = Decide(&spec, &in, st, t0.Add(70*time.Second))
	assert.Equal(t, int32(0), d.DesiredReplicas, d.Reason())
	assert.Equal(t, ZeroSet, d.Zero)
	assert.True(t, strings.Contains(d.Reason(), "no HTTP request for 30s (scale-to-zero-after 30s)"), d.Reason())

	// Without scale-to-zero-after, HPA's rule: the idle proposal of 0
	// goes through the scale-down window.
	spec.ScaleToZeroAfter = 0
	spec.DownscaleStabilization = 0
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.DesiredReplicas)
}

// The reason names the metric, both windows' values and panic mode.
func TestHTTPDescribe(t *testing.T) {
	spec := baseSpec(httpMetric(10_000))
	spec.Metrics[0].Name = HTTPRPSName
	spec.Metrics[0].HTTP.Metric = HTTPRPS
	in := httpInput(2, 25.5, 26)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, "2 → 3: http-rps stable 25.5, panic 26 / target 10 per pod → 3 (stable 3, panic 3, panic mode off) above target", d.Reason())
}
