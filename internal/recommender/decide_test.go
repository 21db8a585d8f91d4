package recommender

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// cpuInput is n pods each using milli of 1000m requested.
func cpuInput(replicas int32, milli int64) Input {
	vals := make([]int64, replicas)
	for i := range vals {
		vals[i] = milli
	}
	return Input{SpecReplicas: replicas, StatusReplicas: replicas, Pods: pods(int(replicas), nil), Metrics: []Observation{samples(vals...)}}
}

func TestSeveralMetrics(t *testing.T) {
	failed := Observation{Err: errors.New("prometheus: timeout")}
	cases := []struct {
		name      string
		obs       []Observation
		want      int32
		limitedBy Stage
	}{
		{name: "the largest proposal wins", obs: []Observation{samples(900, 900, 900, 900), scalar(3000000)}, want: 8, limitedBy: StageNone},
		{name: "the largest proposal wins even when it is a scale-down", obs: []Observation{samples(100, 100, 100, 100), scalar(3000000)}, want: 3, limitedBy: StageNone},
		{name: "a failed metric blocks a scale-down", obs: []Observation{samples(100, 100, 100, 100), failed}, want: 4, limitedBy: StageMissingMetrics},
		{name: "a failed metric does not block a scale-up", obs: []Observation{samples(900, 900, 900, 900), failed}, want: 8, limitedBy: StageNone},
		{name: "a failed metric does not block a hold", obs: []Observation{samples(500, 500, 500, 500), failed}, want: 4, limitedBy: StageNone},
		{name: "all failed: no action", obs: []Observation{failed, failed}, want: 4, limitedBy: StageMissingMetrics},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(cpuUtil(50), prom("default", TargetAverageValue, 1000000))
			in := Input{SpecReplicas: 4, StatusReplicas: 4, Pods: pods(4, nil), Metrics: tc.obs}
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, tc.want, d.DesiredReplicas)
			assert.Equal(t, tc.limitedBy, d.LimitedBy)
			assert.NotEmpty(t, d.Reason())
		})
	}
}

func TestFailedMetricBlocksScaleDownWithoutRecording(t *testing.T) {
	spec := baseSpec(cpuUtil(50), prom("default", TargetValue, 1000))
	in := cpuInput(4, 100)
	in.Metrics = append(in.Metrics, Observation{Err: ErrNoData})
	_, st := Decide(&spec, &in, settled(), t0)
	assert.Empty(t, st.Recommendations, "HPA records no recommendation when metrics fail")
}

func TestPlainPathStabilization(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 8, At: ago(4 * time.Minute)}, {Replicas: 9, At: ago(6 * time.Minute)}}}
	in := cpuInput(8, 100) // 10%: proposal 2
	d, st := Decide(&spec, &in, st, t0)
	assert.Equal(t, int32(2), d.Recommendation)
	assert.Equal(t, int32(8), d.DesiredReplicas, "held by the highest recommendation of the last 5m")
	assert.Equal(t, StageStabilization, d.LimitedBy)
	assert.Contains(t, d.Reason(), "highest recommendation of the last 5m0s")
	assert.Equal(t, []TimedRecommendation{{Replicas: 8, At: ago(4 * time.Minute)}, {Replicas: 2, At: t0}}, st.Recommendations,
		"the new recommendation is recorded; ones outside every window are forgotten")

	// One minute later the 8 has left the window: scale down at once, no rate limit.
	d, _ = Decide(&spec, &in, st, t0.Add(61*time.Second))
	assert.Equal(t, int32(2), d.DesiredReplicas)
	assert.Equal(t, ActionScaleDown, d.Action)
	assert.Equal(t, StageNone, d.LimitedBy)
}

func TestFirstSightSeedsHistory(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	in := cpuInput(6, 100)
	d, st := Decide(&spec, &in, State{}, t0)
	assert.Equal(t, int32(6), d.DesiredReplicas, "no scale-down right after a restart")
	assert.Equal(t, StageStabilization, d.LimitedBy)
	require.True(t, st.Initialized)

	for s := 15; s < 300; s += 15 {
		d, st = Decide(&spec, &in, st, t0.Add(time.Duration(s)*time.Second))
		require.Equal(t, int32(6), d.DesiredReplicas, "still inside the window at %ds", s)
	}
	d, _ = Decide(&spec, &in, st, t0.Add(301*time.Second))
	assert.Equal(t, int32(2), d.DesiredReplicas, "a full window after first sight")

	// Present but empty history (state known) does not seed.
	d, _ = Decide(&spec, &in, State{Initialized: true, Recommendations: []TimedRecommendation{}}, t0)
	assert.Equal(t, int32(2), d.DesiredReplicas)
}

func TestBounds(t *testing.T) {
	cases := []struct {
		name      string
		replicas  int32
		paused    bool
		want      int32
		limitedBy Stage
		action    Action
	}{
		{name: "above max goes straight to max", replicas: 15, want: 10, limitedBy: StageMaxReplicas, action: ActionScaleDown},
		{name: "below min goes straight to min", replicas: 1, want: 2, limitedBy: StageMinReplicas, action: ActionScaleUp},
		{name: "spec replicas 0 pauses scaling", replicas: 0, want: 0, limitedBy: StagePaused, action: ActionNone},
		{name: "the paused annotation holds", replicas: 4, paused: true, want: 4, limitedBy: StagePaused, action: ActionNone},
		{name: "paused wins over out of bounds", replicas: 15, paused: true, want: 15, limitedBy: StagePaused, action: ActionNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(cpuUtil(50))
			spec.MinReplicas, spec.MaxReplicas, spec.Paused = 2, 10, tc.paused
			in := cpuInput(tc.replicas, 900)
			d, st := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, tc.want, d.DesiredReplicas)
			assert.Equal(t, tc.limitedBy, d.LimitedBy)
			assert.Equal(t, tc.action, d.Action)
			assert.Empty(t, st.Recommendations, "no recommendation recorded")
			assert.NotEmpty(t, d.Reason())
		})
	}
}

func TestMinMaxOnPlainPath(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.MinReplicas, spec.MaxReplicas = 3, 5
	in := cpuInput(4, 1000)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(5), d.DesiredReplicas)
	assert.Equal(t, StageMaxReplicas, d.LimitedBy)

	in = cpuInput(4, 10)
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(3), d.DesiredReplicas)
	assert.Equal(t, StageMinReplicas, d.LimitedBy)
}

func TestToleranceIsReported(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	in := cpuInput(4, 540)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(4), d.DesiredReplicas)
	assert.Equal(t, StageTolerance, d.LimitedBy)
	assert.Contains(t, d.Reason(), "within tolerance")
}

func TestBehaviorPath(t *testing.T) {
	t.Run("empty behavior takes v2 defaults: 100% down per 15s after 5m", func(t *testing.T) {
		spec := baseSpec(cpuUtil(50))
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		st := settled()
		in := cpuInput(10, 50) // 5%: proposal 1
		d, st := Decide(&spec, &in, st, t0)
		assert.Equal(t, int32(1), d.DesiredReplicas, "no history: nothing holds it")
		st = Commit(&spec, st, &d, t0)
		assert.Equal(t, []ScaleEvent{{Change: 9, At: t0}}, st.ScaleDownEvents)
	})
	t.Run("scale-up is capped at max(4 pods, 100%) per 15s", func(t *testing.T) {
		spec := baseSpec(cpuUtil(25))
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		in := cpuInput(3, 1000) // 100% of a 25% target: proposal 12
		d, st := Decide(&spec, &in, settled(), t0)
		assert.Equal(t, int32(7), d.DesiredReplicas)
		assert.Equal(t, StageScaleUpPolicy, d.LimitedBy)
		st = Commit(&spec, st, &d, t0)

		// 10s later the 4 pods added are still inside the 15s period: the
		// period started at 3, so the limit is still 7.
		in = cpuInput(7, 1000)
		d, st = Decide(&spec, &in, st, t0.Add(10*time.Second))
		assert.Equal(t, int32(7), d.DesiredReplicas)
		assert.Equal(t, StageScaleUpPolicy, d.LimitedBy)
		st = Commit(&spec, st, &d, t0.Add(10*time.Second))

		d, _ = Decide(&spec, &in, st, t0.Add(15*time.Second))
		assert.Equal(t, int32(14), d.DesiredReplicas, "a new period: 100% of 7")
	})
	t.Run("scale-down window from the behavior", func(t *testing.T) {
		spec := baseSpec(cpuUtil(50))
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rulesOf(0, 0, 100, 15, 60)}
		st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 6, At: ago(59 * time.Second)}}}
		in := cpuInput(8, 50)
		d, st := Decide(&spec, &in, st, t0)
		assert.Equal(t, int32(6), d.DesiredReplicas)
		assert.Equal(t, StageStabilization, d.LimitedBy)
		assert.Contains(t, d.Reason(), "highest recommendation of the last 1m0s", "the scale-down window held it")
		d, _ = Decide(&spec, &in, st, t0.Add(time.Second))
		assert.Equal(t, int32(1), d.DesiredReplicas, "60s after the 6 it has left the window")
	})
	t.Run("scale-up window holds at the lowest recent recommendation", func(t *testing.T) {
		spec := baseSpec(cpuUtil(50))
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: rulesOf(100, 15, 0, 0, 120)}
		st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 5, At: ago(time.Minute)}}}
		in := cpuInput(4, 1000)
		d, _ := Decide(&spec, &in, st, t0)
		assert.Equal(t, int32(5), d.DesiredReplicas)
		assert.Equal(t, StageStabilization, d.LimitedBy)
		assert.Contains(t, d.Reason(), "lowest recommendation of the last 2m0s", "the scale-up window held it")
	})
	t.Run("plain path keeps no scale events", func(t *testing.T) {
		spec := baseSpec(cpuUtil(50))
		in := cpuInput(3, 1000)
		d, st := Decide(&spec, &in, settled(), t0)
		st = Commit(&spec, st, &d, t0)
		assert.Empty(t, st.ScaleUpEvents)
	})
	t.Run("commit prunes events older than the longest period", func(t *testing.T) {
		spec := baseSpec(cpuUtil(50))
		spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		st := State{Initialized: true, ScaleUpEvents: []ScaleEvent{{Change: 1, At: ago(16 * time.Second)}, {Change: 2, At: ago(15 * time.Second)}}}
		d := Decision{CurrentReplicas: 2, DesiredReplicas: 3}
		st = Commit(&spec, st, &d, t0)
		assert.Equal(t, []ScaleEvent{{Change: 2, At: ago(15 * time.Second)}, {Change: 1, At: t0}}, st.ScaleUpEvents)
	})
}

func TestFallbackReplicas(t *testing.T) {
	spec := baseSpec(prom("default", TargetValue, 1000))
	spec.FallbackReplicas, spec.FallbackAfter = 6, time.Minute
	in := Input{SpecReplicas: 3, StatusReplicas: 3, Pods: pods(3, nil), Metrics: []Observation{{Err: ErrNoData}}}

	d, st := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(3), d.DesiredReplicas, "hold while the failure is young")
	assert.Equal(t, StageMissingMetrics, d.LimitedBy)
	assert.Equal(t, t0, st.FailingSince)

	d, st = Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.Equal(t, int32(6), d.DesiredReplicas, "fallback after fallbackAfter")
	assert.Equal(t, StageFallback, d.LimitedBy)

	in.SpecReplicas = 8
	d, st = Decide(&spec, &in, st, t0.Add(2*time.Minute))
	assert.Equal(t, int32(8), d.DesiredReplicas, "fallback never scales down")
	assert.Equal(t, StageMissingMetrics, d.LimitedBy)

	in.Metrics = []Observation{scalar(8000)}
	_, st = Decide(&spec, &in, st, t0.Add(3*time.Minute))
	assert.True(t, st.FailingSince.IsZero(), "a working metric resets the failure clock")
}

func TestNeverScaleDownOnMissingData(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	for name, obs := range map[string]Observation{
		"source error": {Err: errors.New("metrics.k8s.io unavailable")},
		"empty":        {PerPod: true},
		"stale":        {PerPod: true, Samples: []Sample{{Pod: "pod-0", Value: 1, Timestamp: ago(time.Hour)}}},
		"all zero":     samples(0, 0, 0, 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			in := Input{SpecReplicas: 6, StatusReplicas: 6, Pods: pods(6, nil), Metrics: []Observation{obs}}
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, int32(6), d.DesiredReplicas)
			assert.Equal(t, StageMissingMetrics, d.LimitedBy)
			assert.Error(t, d.Metrics[0].Err)
			assert.Contains(t, d.Reason(), "hold at 6")
		})
	}
}

// A load step on SpinKube's cpu-load-gen sample (1-10 replicas at 50%):
// scale-up capped at 2x per decision, then settled, then held for the
// scale-down window after the load goes.
func TestLoadStepSequence(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.MaxReplicas = 10
	st := State{}
	replicas := int32(1)
	total := int64(450) // millicores of demand spread over the pods
	step := func(at time.Duration) Decision {
		in := cpuInput(replicas, total/int64(replicas))
		d, next := Decide(&spec, &in, st, t0.Add(at))
		st = Commit(&spec, next, &d, t0.Add(at))
		replicas = d.DesiredReplicas
		return d
	}
	assert.Equal(t, int32(1), step(0).DesiredReplicas, "45%: inside tolerance")
	total = 4000
	assert.Equal(t, int32(4), step(15*time.Second).DesiredReplicas, "400%: proposal 8 capped at max(2x1, 4)")
	assert.Equal(t, int32(8), step(30*time.Second).DesiredReplicas, "100% over 4 pods: 8")
	assert.Equal(t, int32(8), step(45*time.Second).DesiredReplicas, "50%: steady")
	total = 400
	d := step(60 * time.Second)
	assert.Equal(t, int32(8), d.DesiredReplicas, "load gone: held by the window")
	assert.Equal(t, StageStabilization, d.LimitedBy)
	assert.Equal(t, int32(8), step(5*time.Minute+44*time.Second).DesiredReplicas, "the 8 of t=45s is still in the window")
	assert.Equal(t, int32(1), step(5*time.Minute+46*time.Second).DesiredReplicas, "every high recommendation has left")
}

func TestInputWithFewerObservationsThanMetrics(t *testing.T) {
	spec := baseSpec(cpuUtil(50), memUtil(50))
	in := cpuInput(2, 500)
	d, _ := Decide(&spec, &in, settled(), t0)
	require.Len(t, d.Metrics, 2)
	assert.ErrorIs(t, d.Metrics[1].Err, ErrNoData)
	assert.Equal(t, int32(2), d.DesiredReplicas)
}

// After every metric failed, the first fresh data may be read over a window
// spanning the gap (a rate() right after Prometheus returns reads low): no
// scale-down until one scale-down window of fresh data has passed.
func TestRecoveryFromTotalOutageActsLikeFirstSight(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	in := cpuInput(6, 100)
	in.Metrics = []Observation{{Err: ErrNoData}}
	d, st := Decide(&spec, &in, settled(), t0)
	require.Equal(t, StageMissingMetrics, d.LimitedBy)

	in = cpuInput(6, 100) // 10%: proposal 2
	d, st = Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.Equal(t, int32(6), d.DesiredReplicas, "held right after the outage")
	assert.Equal(t, StageStabilization, d.LimitedBy)
	d, _ = Decide(&spec, &in, st, t0.Add(6*time.Minute+time.Second))
	assert.Equal(t, int32(2), d.DesiredReplicas, "a full window of fresh data later")

	in = cpuInput(6, 900)
	d, _ = Decide(&spec, &in, st, t0.Add(2*time.Minute))
	assert.Equal(t, int32(11), d.DesiredReplicas, "scale-up is not held on the plain path")
}

// Sums saturate instead of wrapping: two pods reporting the largest value
// are far above target, never below it.
func TestHugeSamplesDoNotWrap(t *testing.T) {
	spec := baseSpec(prom("rps", TargetAverageValue, 1000))
	in := Input{SpecReplicas: 5, StatusReplicas: 5, Pods: pods(5, nil), Metrics: []Observation{samples(math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64)}}
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.GreaterOrEqual(t, d.DesiredReplicas, int32(5))
	assert.Equal(t, ActionScaleUp, d.Action)
}

// A policy value near the int32 limit allows everything, it does not wrap
// to a negative limit that blocks the scale-up.
func TestHugePolicyValueDoesNotWrap(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: math.MaxInt32, PeriodSeconds: 15}},
	}}
	in := cpuInput(2, 1000) // 100% of a 50% target: 4
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(4), d.DesiredReplicas)
}
