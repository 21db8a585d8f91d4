package recommender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failingQueue is an app on one Prometheus value whose metric fails, with a
// per-metric fallback of 3 after 3 minutes (KEP-5679's default duration).
func failingQueue(profile Profile, behavior FallbackBehavior) (Spec, Input) {
	ms := prom("queue", TargetAverageValue, 10_000)
	ms.FallbackReplicas, ms.FallbackAfter = 3, 3*time.Minute
	spec := baseSpec(ms)
	spec.Profile, spec.FallbackBehavior = profile, behavior
	spec.Behavior = nil
	in := Input{SpecReplicas: 5, StatusReplicas: 5, Pods: pods(5, nil), Metrics: []Observation{{Err: ErrNoData}}}
	return spec, in
}

// A failing metric holds until its fallback duration has passed, then
// proposes its fallback count; in the hpa profile the count applies in
// either direction (KEP-5679), so 5 pods go down to 3 once the scale-down
// window allows.
func TestMetricFallbackAfterItsDuration(t *testing.T) {
	spec, in := failingQueue(ProfileHPA, "")
	st := settled()
	d, st := Decide(&spec, &in, st, t0)
	assert.Equal(t, StageMissingMetrics, d.LimitedBy, "failing for 0s: hold")
	require.Len(t, st.MetricFailures, 1)
	assert.Equal(t, t0, st.MetricFailures[0].Since)

	d, st = Decide(&spec, &in, st, t0.Add(2*time.Minute))
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.Equal(t, StageMissingMetrics, d.LimitedBy, "failing for 2m: hold")

	d, _ = Decide(&spec, &in, st, t0.Add(3*time.Minute))
	assert.True(t, d.Metrics[0].Fallback)
	assert.Equal(t, int32(3), d.Metrics[0].Proposal)
	assert.Equal(t, int32(3), d.Recommendation)
	assert.Contains(t, d.Reason(), "queue: fallback → 3 (failing for 3m0s")
}

// The metric's failure clock restarts when it works again.
func TestMetricFallbackClockRestarts(t *testing.T) {
	spec, in := failingQueue(ProfileHPA, "")
	_, st := Decide(&spec, &in, settled(), t0)
	ok := in
	ok.Metrics = []Observation{scalar(50_000)}
	_, st = Decide(&spec, &ok, st, t0.Add(time.Minute))
	assert.Empty(t, st.MetricFailures)
	d, _ := Decide(&spec, &in, st, t0.Add(3*time.Minute))
	assert.False(t, d.Metrics[0].Fallback, "failing for 0s since it worked")
}

// The behaviors, per metric, from 5 replicas with a fallback of 3 (and of
// 8): static goes to it, currentReplicas holds, IfHigher only goes up,
// IfLower only down. The spinscale profile defaults to IfHigher.
func TestFallbackBehaviors(t *testing.T) {
	cases := []struct {
		profile  Profile
		behavior FallbackBehavior
		fallback int32
		want     int32
	}{
		{ProfileHPA, "", 3, 3},
		{ProfileHPA, FallbackStatic, 8, 8},
		{ProfileHPA, FallbackCurrent, 8, 5},
		{ProfileHPA, FallbackIfHigher, 3, 5},
		{ProfileHPA, FallbackIfHigher, 8, 8},
		{ProfileHPA, FallbackIfLower, 3, 3},
		{ProfileHPA, FallbackIfLower, 8, 5},
		{ProfileSpinscale, "", 3, 5},
		{ProfileSpinscale, "", 8, 8},
	}
	for _, tc := range cases {
		t.Run(string(tc.profile)+"/"+string(tc.behavior), func(t *testing.T) {
			spec, in := failingQueue(tc.profile, tc.behavior)
			spec.Metrics[0].FallbackReplicas = tc.fallback
			_, st := Decide(&spec, &in, settled(), t0)
			d, _ := Decide(&spec, &in, st, t0.Add(3*time.Minute))
			require.True(t, d.Metrics[0].Fallback)
			assert.Equal(t, tc.want, d.Metrics[0].Proposal)
		})
	}
}

// The app's fallback-replicas (every metric failed) follows the behavior
// too: static scales down to it.
func TestAppFallbackBehavior(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.FallbackReplicas, spec.FallbackAfter = 2, time.Minute
	in := Input{SpecReplicas: 5, StatusReplicas: 5, Pods: pods(5, nil), Metrics: []Observation{{Err: ErrNoData}}}
	_, st := Decide(&spec, &in, settled(), t0)
	d, _ := Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.Equal(t, int32(5), d.DesiredReplicas, "by default never down on missing data")

	spec.FallbackBehavior = FallbackStatic
	_, st = Decide(&spec, &in, settled(), t0)
	d, _ = Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.Equal(t, int32(2), d.DesiredReplicas)
	assert.Equal(t, StageFallback, d.LimitedBy)
}
