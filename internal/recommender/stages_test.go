package recommender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// rulesOf builds scaling rules like HPA's tests do: a Pods and/or a Percent
// policy (0 = absent), selectPolicy Max, and a window.
func rulesOf(pods, podsPeriod, percent, percentPeriod, window int32) *autoscalingv2.HPAScalingRules {
	r := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(window), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect)}
	if pods != 0 {
		r.Policies = append(r.Policies, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: pods, PeriodSeconds: podsPeriod})
	}
	if percent != 0 {
		r.Policies = append(r.Policies, autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: percent, PeriodSeconds: percentPeriod})
	}
	return r
}

// events spreads changes like HPA's generateEventsUniformDistribution over
// the last 120s: three events land 100s, 60s and 20s ago, one lands 60s ago.
func events(changes ...int32) []ScaleEvent {
	out := make([]ScaleEvent, len(changes))
	seg := 120.0 / float64(len(changes))
	for i, c := range changes {
		secondsAgo := 120 - seg*float64(i+1) + seg/2
		out[i] = ScaleEvent{Change: c, At: ago(time.Duration(secondsAgo * float64(time.Second)))}
	}
	return out
}

// The rate policies and bounds of the behavior path (HPA's
// convertDesiredReplicasWithBehaviorRate), cases from TestScalingWithRules.
func TestBehaviorLimit(t *testing.T) {
	cases := []struct {
		name             string
		up, down         *autoscalingv2.HPAScalingRules
		upEvents         []ScaleEvent
		downEvents       []ScaleEvent
		minR, maxR       int32
		current, desired int32
		want             int32
		stage            Stage
	}{
		{name: "within range", minR: 3, maxR: 8, current: 5, desired: 7, want: 7, stage: StageNone},
		{name: "min binds a scale-down", minR: 2, maxR: 8, current: 3, desired: 1, want: 2, stage: StageMinReplicas},
		{name: "max binds a scale-up", minR: 1, maxR: 10, current: 20, desired: 1000, want: 10, stage: StageMaxReplicas},
		{name: "max equal to the policy limit is reported as max", minR: 100, maxR: 150, current: 100, desired: 1000, want: 150, stage: StageMaxReplicas},
		{name: "percent scale-up rounds up", up: rulesOf(0, 0, 1, 60, 0), minR: 1, maxR: 2000, current: 3, desired: 1000, want: 4, stage: StageScaleUpPolicy},
		{name: "default scale-up: max(4 pods, 100%)", minR: 1, maxR: 1000, current: 10, desired: 50, want: 20, stage: StageScaleUpPolicy},
		{name: "default scale-up on a small app: 4 pods", minR: 1, maxR: 1000, current: 1, desired: 50, want: 5, stage: StageScaleUpPolicy},
		{name: "Max select: pods policy larger", up: rulesOf(100, 60, 100, 60, 0), minR: 1, maxR: 1000, current: 10, desired: 500, want: 110, stage: StageScaleUpPolicy},
		{name: "Max select: percent policy larger", up: rulesOf(2, 60, 100, 60, 0), minR: 1, maxR: 1000, current: 10, desired: 500, want: 20, stage: StageScaleUpPolicy},
		{name: "Min select picks the least permissive scale-up",
			up:   &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect), Policies: rulesOf(2, 60, 50, 60, 0).Policies},
			minR: 1, maxR: 100, current: 1, desired: 10, want: 2, stage: StageScaleUpPolicy},
		{name: "Disabled scale-up holds",
			up:   &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.DisabledPolicySelect)},
			minR: 1, maxR: 100, current: 5, desired: 10, want: 5, stage: StageScaleUpPolicy},
		{name: "pod policy limitation", up: rulesOf(30, 60, 0, 0, 0), minR: 1, maxR: 1000, current: 10, desired: 50, want: 40, stage: StageScaleUpPolicy},
		{name: "percent policy limitation", up: rulesOf(0, 0, 200, 60, 0), minR: 1, maxR: 1000, current: 10, desired: 50, want: 30, stage: StageScaleUpPolicy},
		{name: "scale-up limit counts from the period's start", up: rulesOf(150, 120, 0, 0, 0), upEvents: events(1, 5, 9),
			minR: 1, maxR: 1000, current: 100, desired: 500, want: 235, stage: StageScaleUpPolicy},
		{name: "percent scale-up counts from the period's start", up: rulesOf(0, 0, 200, 120, 0), upEvents: events(1, 5, 9),
			minR: 1, maxR: 1000, current: 100, desired: 500, want: 255, stage: StageScaleUpPolicy},
		{name: "period start subtracts ups and adds downs", up: rulesOf(0, 0, 300, 300, 0), upEvents: events(4), downEvents: events(2),
			minR: 1, maxR: 1000, current: 6, desired: 24, want: 16, stage: StageScaleUpPolicy},
		{name: "a limit never reverses a scale-up", up: rulesOf(5, 120, 0, 0, 0), upEvents: events(1, 5, 9),
			minR: 1, maxR: 1000, current: 100, desired: 500, want: 100, stage: StageScaleUpPolicy},
		{name: "only events inside the period count", up: rulesOf(15, 30, 0, 0, 0), upEvents: events(1, 5, 9),
			minR: 1, maxR: 1000, current: 100, desired: 500, want: 106, stage: StageScaleUpPolicy},
		{name: "default scale-down: 100% per 15s", minR: 1, maxR: 1000, downEvents: events(1, 5, 9), current: 10, desired: 5, want: 5, stage: StageNone},
		{name: "scale-down percent truncates", down: rulesOf(0, 0, 50, 120, 300), downEvents: events(2, 4, 6),
			minR: 1, maxR: 1000, current: 100, desired: 0, want: 56, stage: StageScaleDownPolicy},
		{name: "Max select: percent scale-down larger", down: rulesOf(20, 60, 1, 60, 300), minR: 1, maxR: 1000, current: 100, desired: 2, want: 80, stage: StageScaleDownPolicy},
		{name: "Max select: pods scale-down larger", down: rulesOf(2, 60, 1, 60, 300), minR: 1, maxR: 1000, current: 100, desired: 2, want: 98, stage: StageScaleDownPolicy},
		{name: "Min select picks the least permissive scale-down",
			down: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect), Policies: rulesOf(2, 60, 50, 60, 0).Policies},
			minR: 1, maxR: 100, current: 5, desired: 1, want: 3, stage: StageScaleDownPolicy},
		{name: "Disabled scale-down holds",
			down: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.DisabledPolicySelect)},
			minR: 1, maxR: 100, current: 5, desired: 1, want: 5, stage: StageScaleDownPolicy},
		{name: "min binds over a permissive scale-down policy", down: rulesOf(0, 0, 100, 60, 300), minR: 5, maxR: 1000, current: 10, desired: 2, want: 5, stage: StageMinReplicas},
		{name: "a limit never reverses a scale-down", down: rulesOf(0, 0, 10, 120, 300), downEvents: events(10, 10, 10),
			minR: 1, maxR: 1000, current: 100, desired: 0, want: 100, stage: StageScaleDownPolicy},
		{name: "max does not bind a scale-down", minR: 1, maxR: 5, current: 5, desired: 3, want: 3, stage: StageNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec()
			spec.MinReplicas, spec.MaxReplicas = tc.minR, tc.maxR
			spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: tc.up, ScaleDown: tc.down}
			st := State{Initialized: true, ScaleUpEvents: tc.upEvents, ScaleDownEvents: tc.downEvents}
			got, stage := behaviorLimit(&spec, &st, tc.current, tc.desired, t0)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.stage, stage)
		})
	}
}

// The plain path's bounds and per-decision scale-up cap (HPA's
// convertDesiredReplicasWithRules).
func TestPlainLimit(t *testing.T) {
	cases := []struct {
		name                         string
		current, desired, minR, maxR int32
		factor                       float64
		minimum                      int32
		want                         int32
		stage                        Stage
	}{
		{name: "within range", current: 5, desired: 7, minR: 1, maxR: 10, factor: 2, minimum: 4, want: 7, stage: StageNone},
		{name: "scale-up capped at 2x current", current: 5, desired: 40, minR: 1, maxR: 100, factor: 2, minimum: 4, want: 10, stage: StageScaleUpPolicy},
		{name: "scale-up capped at the minimum of 4 for a small app", current: 1, desired: 40, minR: 1, maxR: 100, factor: 2, minimum: 4, want: 4, stage: StageScaleUpPolicy},
		{name: "max below the cap binds", current: 5, desired: 40, minR: 1, maxR: 8, factor: 2, minimum: 4, want: 8, stage: StageMaxReplicas},
		{name: "max equal to the cap is reported as max", current: 5, desired: 40, minR: 1, maxR: 10, factor: 2, minimum: 4, want: 10, stage: StageMaxReplicas},
		{name: "min binds", current: 5, desired: 1, minR: 3, maxR: 10, factor: 2, minimum: 4, want: 3, stage: StageMinReplicas},
		{name: "no scale-down rate limit", current: 50, desired: 1, minR: 1, maxR: 100, factor: 2, minimum: 4, want: 1, stage: StageNone},
		{name: "configured factor and minimum", current: 10, desired: 100, minR: 1, maxR: 100, factor: 3, minimum: 2, want: 30, stage: StageScaleUpPolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, stage := plainLimit(tc.current, tc.desired, tc.minR, tc.maxR, tc.factor, tc.minimum)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.stage, stage)
		})
	}
}

func TestPlainStabilize(t *testing.T) {
	recs := []TimedRecommendation{{Replicas: 9, At: ago(6 * time.Minute)}, {Replicas: 7, At: ago(5 * time.Minute)}, {Replicas: 4, At: ago(time.Minute)}}
	assert.Equal(t, int32(7), plainStabilize(recs, 2, t0, 5*time.Minute), "max over the window, edge included, older ignored")
	assert.Equal(t, int32(8), plainStabilize(recs, 8, t0, 5*time.Minute), "a higher new recommendation wins")
	assert.Equal(t, int32(2), plainStabilize(recs, 2, t0, 0), "a zero window keeps only the new recommendation")
}

func TestBehaviorStabilize(t *testing.T) {
	recs := []TimedRecommendation{{Replicas: 3, At: ago(90 * time.Second)}, {Replicas: 8, At: ago(30 * time.Second)}, {Replicas: 6, At: ago(5 * time.Minute)}}
	cases := []struct {
		name               string
		current, desired   int32
		upWindow, dnWindow time.Duration
		want               int32
	}{
		{name: "scale-down held at the highest of the down window", current: 10, desired: 2, dnWindow: time.Minute, want: 8},
		{name: "edge of the window excluded on this path", current: 10, desired: 2, dnWindow: 5 * time.Minute, want: 8},
		{name: "scale-up held at the lowest of the up window", current: 1, desired: 9, upWindow: 2 * time.Minute, want: 3},
		{name: "zero up window: the new recommendation", current: 1, desired: 9, want: 9},
		{name: "current inside the band stays", current: 5, desired: 9, upWindow: 2 * time.Minute, dnWindow: time.Minute, want: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, behaviorStabilize(recs, tc.current, tc.desired, t0, tc.upWindow, tc.dnWindow))
		})
	}
}
