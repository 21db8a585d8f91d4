package recommender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// tunedSpec is the spinscale profile with its default tuning over baseSpec.
func tunedSpec(metrics ...MetricSpec) Spec {
	s := baseSpec(metrics...)
	s.Profile = ProfileSpinscale
	s.Tuning = DefaultTuning
	return s
}

// TestTunedLeavesPodsWithoutSamplesOut: 4 pods, two just created without a
// sample, the two others at 105% against a 50% target (ratio 2.1). HPA
// counts the two at 0: 2100m / 4000m = 52%, a ratio of 1.04 inside the
// tolerance, so it holds. The spinscale profile sizes the scale-up on the
// pods with a sample: ceil(2.1 × 2) = 5.
func TestTunedLeavesPodsWithoutSamplesOut(t *testing.T) {
	in := Input{SpecReplicas: 4, StatusReplicas: 4, Pods: pods(4, nil), Metrics: []Observation{samples(1050, 1050)}}
	spec := baseSpec(cpuUtil(50))
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(4), d.DesiredReplicas)
	assert.True(t, d.Metrics[0].WithinTolerance)

	tuned := tunedSpec(cpuUtil(50))
	tuned.Tuning = Tuning{} // the rule alone
	d, _ = Decide(&tuned, &in, settled(), t0)
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.Equal(t, 2, d.Metrics[0].MissingPods)

	// At 80% (ratio 1.6) the two sampled pods' load fits in the 4 pods:
	// ceil(1.6 × 2) = 4, and a scale-up never proposes fewer than current.
	in.Metrics = []Observation{samples(800, 800)}
	d, _ = Decide(&tuned, &in, settled(), t0)
	assert.Equal(t, int32(4), d.DesiredReplicas)
	assert.Equal(t, ActionNone, d.Action)
}

// TestTunedBurst: one pod at 100% of its request against a 70% target reads
// a ratio of 1.43, at or above the 1.3 threshold: the scale-up goes to the
// rate limit, max(1 + 4 pods, 1 × 200%) = 5, where HPA goes to ceil(1.43) = 2.
func TestTunedBurst(t *testing.T) {
	in := cpuInput(1, 1000)
	spec := baseSpec(cpuUtil(70))
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(2), d.DesiredReplicas)

	tuned := tunedSpec(cpuUtil(70))
	tuned.Tuning.Lookahead = 0 // bursts alone
	d, st := Decide(&tuned, &in, settled(), t0)
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.True(t, d.Burst)
	assert.Equal(t, int32(2), d.Recommendation, "the metric's own proposal is kept for the record")
	assert.Contains(t, d.Reason(), "burst")
	st = Commit(&tuned, st, &d, t0)
	require.Len(t, st.ScaleUpEvents, 1, "the profile's rate policies need the scale events")

	// 15 s later the 4 new pods have no sample yet: the one pod still reads
	// the load already seen (1.43 pods' worth), which is no burst: its
	// proposal, 2, is below the current 5, so the app holds.
	in = Input{SpecReplicas: 5, StatusReplicas: 5, Pods: pods(5, nil), Metrics: []Observation{samples(1000)}}
	d, st2 := Decide(&tuned, &in, st, t0.Add(15*time.Second))
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.False(t, d.Burst, "no burst on a load already measured")

	// Then the 5 pods are saturated too: the load measured grew (7.1 pods'
	// worth), so it is a burst again; the period of the last scale-up has
	// passed, so the limit is max(5 + 4, 5 × 200%) = 10.
	in = cpuInput(5, 1000)
	d, _ = Decide(&tuned, &in, st2, t0.Add(30*time.Second))
	assert.Equal(t, int32(10), d.DesiredReplicas)
	assert.True(t, d.Burst)

	// Below the threshold (ratio 1.14) it is HPA's proposal: ceil(1.14 × 5) = 6.
	in = cpuInput(5, 800)
	d, _ = Decide(&tuned, &in, settled(), t0)
	assert.Equal(t, int32(6), d.DesiredReplicas)
	assert.False(t, d.Burst)

	// burst-threshold 0 turns it off.
	tuned.Tuning.BurstThreshold = 0
	d, _ = Decide(&tuned, &in, settled(), t0)
	assert.Equal(t, int32(6), d.DesiredReplicas)
}

// TestTunedProjection: the load (pods needed at target) rises 10 → 11 → 12
// over 30 s, one estimate every 15 s, while a scale-up is due: 2/30 pods per
// second, projected 30 s ahead = 12 + 2 = 14, where the proposal alone is 12.
func TestTunedProjection(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000)) // 100 per pod
	tuned.Tuning.BurstThreshold = 0
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	in := func(n int32, total int64) *Input {
		return &Input{SpecReplicas: n, StatusReplicas: n, Pods: pods(int(n), nil), Metrics: []Observation{scalar(total)}}
	}
	// decideAll feeds the totals 15 s apart to an app of 10 pods and
	// returns the last decision.
	decideAll := func(totals ...int64) Decision {
		st := settled()
		var d Decision
		for i, v := range totals {
			d, st = Decide(&tuned, in(10, v), st, at(15*i))
		}
		return d
	}
	d := decideAll(1000000, 1100000, 1200000)
	assert.Equal(t, int32(12), d.Recommendation)
	assert.Equal(t, int32(14), d.Projected)
	assert.Equal(t, int32(14), d.DesiredReplicas)
	assert.Contains(t, d.Reason(), "14 pods projected")

	// A step is not a ramp: flat, then a jump, is not projected.
	d = decideAll(1000000, 1000000, 1200000)
	assert.Zero(t, d.Projected)
	assert.Equal(t, int32(12), d.DesiredReplicas)

	// A rise within the tolerance is noise: 10.5 → 11 → 11.5 with a
	// proposal of 12 is not projected.
	d = decideAll(1050000, 1100000, 1150000)
	assert.Zero(t, d.Projected)
	assert.Equal(t, int32(12), d.DesiredReplicas)

	// The projection never starts a scale-up: inside the tolerance band
	// (ratio 1.05 on 20 pods) the app holds, however fast the load rose.
	st := settled()
	for i, v := range []int64{1000000, 1500000, 2100000} {
		d, st = Decide(&tuned, in(20, v), st, at(15*i))
	}
	assert.Equal(t, int32(20), d.DesiredReplicas)
	assert.Zero(t, d.Projected)
}

// TestTunedScaleDown: after a burst to 20 pods the load falls to what 2
// pods need. HPA's window would hold 20 pods for 5 minutes; the spinscale
// profile waits for its 60 s drop window, then goes down by max(20%, 1 pod)
// per 15 s. A small drop (20 → 15, 25% below) waits the full window.
func TestTunedScaleDown(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000))
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	in := func(n int32, total int64) *Input {
		return &Input{SpecReplicas: n, StatusReplicas: n, Pods: pods(int(n), nil), Metrics: []Observation{scalar(total)}}
	}
	st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 20, At: at(-1)}}}
	var d Decision
	for s := 0; s < 60; s += 15 {
		d, st = Decide(&tuned, in(20, 200000), st, at(s))
		require.Equal(t, int32(20), d.DesiredReplicas, "inside the drop window at %ds", s)
		st = Commit(&tuned, st, &d, at(s))
	}
	d, st = Decide(&tuned, in(20, 200000), st, at(60))
	assert.True(t, d.Drop)
	assert.Equal(t, int32(16), d.DesiredReplicas, "20 - 20% per 15 s")
	assert.Equal(t, StageScaleDownPolicy, d.LimitedBy)
	assert.Contains(t, d.Reason(), "sharp drop")
	st = Commit(&tuned, st, &d, at(60))
	d, _ = Decide(&tuned, in(16, 200000), st, at(75))
	assert.Equal(t, int32(12), d.DesiredReplicas, "16 × (1 - 20%) = 12.8, truncated as HPA truncates a scale-down percent")

	// A small drop waits for the scale-down window.
	st = State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 20, At: at(-1)}}}
	for s := 0; s <= 120; s += 15 {
		d, st = Decide(&tuned, in(20, 1500000), st, at(s))
		require.Equal(t, int32(20), d.DesiredReplicas, "a 25%% drop at %ds", s)
		assert.False(t, d.Drop)
	}
	d, _ = Decide(&tuned, in(20, 1500000), st, at(300))
	assert.Equal(t, int32(16), d.DesiredReplicas, "after the 5-minute window: down at the profile's rate")
}

// TestTunedBehaviorOverrides: the behavior annotation replaces the
// profile's scale-down policies field by field.
func TestTunedBehaviorOverrides(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000))
	tuned.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 5, PeriodSeconds: 15}},
	}}
	in := &Input{SpecReplicas: 20, StatusReplicas: 20, Pods: pods(20, nil), Metrics: []Observation{scalar(200000)}}
	d, _ := Decide(&tuned, in, settled(), t0)
	assert.Equal(t, int32(15), d.DesiredReplicas, "5 pods per 15 s instead of 20%%")
	assert.Equal(t, 5*time.Minute, scaleDownRules(&tuned).window, "the window left unset stays the scale-down window")
}

// A newly seen app waits one whole scale-down window before any scale-down,
// the sharp-drop path included, as with HPA.
func TestTunedDropWaitsAWindowAfterFirstSight(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000))
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	in := &Input{SpecReplicas: 20, StatusReplicas: 20, Pods: pods(20, nil), Metrics: []Observation{scalar(200000)}}
	var st State // first sight
	var d Decision
	for s := 0; s < 300; s += 15 {
		d, st = Decide(&tuned, in, st, at(s))
		require.Equal(t, int32(20), d.DesiredReplicas, "seeded at first sight, at %ds", s)
		assert.False(t, d.Drop)
	}
	d, _ = Decide(&tuned, in, st, at(300))
	assert.Equal(t, int32(16), d.DesiredReplicas, "one window later: down at the profile's rate")
}

// A drop must have lasted the drop window: one low reading after a gap (a
// hold, or a tick longer than the window) is not one.
func TestTunedDropNeedsReadingsInsideItsWindow(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000))
	st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 10, At: ago(90 * time.Second)}}}
	in := &Input{SpecReplicas: 10, StatusReplicas: 10, Pods: pods(10, nil), Metrics: []Observation{scalar(50000)}}
	d, _ := Decide(&tuned, in, st, t0)
	assert.Equal(t, int32(10), d.DesiredReplicas, "held by the 5-minute window")
	assert.False(t, d.Drop)
}

// A metric with no status replicas has no ratio to report (HPA's would be
// infinite): it must neither reach the JSON as Inf nor spoil the burst
// check of the other metrics.
func TestTunedIgnoresAnUndefinedRatio(t *testing.T) {
	tuned := tunedSpec(cpuUtil(70), prom("rps", TargetAverageValue, 100000))
	tuned.Tuning.Lookahead = 0
	in := cpuInput(1, 1000)
	in.StatusReplicas = 0
	in.Metrics = append(in.Metrics, scalar(0))
	d, _ := Decide(&tuned, &in, settled(), t0)
	require.NoError(t, d.Metrics[1].Err)
	assert.Zero(t, d.Metrics[1].Ratio)
	assert.True(t, d.Burst, "the cpu burst still counts")
	assert.Equal(t, int32(5), d.DesiredReplicas)
}

// The reason quotes the recommendation the windows held, the projection
// when there is one, not the bare proposal.
func TestTunedReasonQuotesTheHeldRecommendation(t *testing.T) {
	tuned := tunedSpec(prom("rps", TargetAverageValue, 100000))
	tuned.Tuning.BurstThreshold = 0
	tuned.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(60))}}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 10, At: at(-1)}}}
	var d Decision
	for i, v := range []int64{1000000, 1100000, 1200000} {
		d, st = Decide(&tuned, &Input{SpecReplicas: 10, StatusReplicas: 10, Pods: pods(10, nil), Metrics: []Observation{scalar(v)}}, st, at(15*i))
	}
	require.Equal(t, int32(14), d.Projected)
	assert.Equal(t, StageStabilization, d.LimitedBy)
	assert.Contains(t, d.Reason(), "recommendation 14 held at 10")
}

// TestTunedStartIsNotABurst: 2 pods at 90% of a 50% target (ratio 1.8,
// above the burst threshold). On the first decision after a start, or
// right after the data returns from a total outage, nothing says the load
// just rose: the profile takes HPA's proposal, ceil(1.8 × 2) = 4, not the
// burst's max(2 + 4, 2 × 200%) = 6. The same load measured again on the
// next decision is no burst either; a higher one is.
func TestTunedStartIsNotABurst(t *testing.T) {
	spec := tunedSpec(cpuUtil(50))
	tests := []struct {
		name  string
		state func(t *testing.T) State
	}{
		{"first sight", func(*testing.T) State { return State{} }},
		{"data back after a total outage", func(t *testing.T) State {
			in := cpuInput(2, 900)
			in.Metrics = []Observation{{Err: ErrNoData}}
			d, st := Decide(&spec, &in, settled(), ago(time.Minute))
			require.Equal(t, StageMissingMetrics, d.LimitedBy)
			return st
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := cpuInput(2, 900)
			d, st := Decide(&spec, &in, tt.state(t), t0)
			assert.Equal(t, int32(4), d.DesiredReplicas, "HPA's answer")
			assert.False(t, d.Burst)
			assert.Zero(t, d.Projected)

			in = cpuInput(2, 900)
			d, _ = Decide(&spec, &in, st, t0.Add(15*time.Second))
			assert.False(t, d.Burst, "a load measured before is no burst")

			in = cpuInput(2, 1000) // 100%: ratio 2, a load not seen before
			d, _ = Decide(&spec, &in, st, t0.Add(15*time.Second))
			assert.True(t, d.Burst, "a higher load after the first decision is a burst")
			assert.Equal(t, int32(6), d.DesiredReplicas)
		})
	}
}
