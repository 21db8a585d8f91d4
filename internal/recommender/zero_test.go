package recommender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// zeroSpec is an app with min-replicas 0 scaling on one Prometheus value
// (a queue length, 10 per pod).
func zeroSpec(target TargetType) Spec {
	spec := baseSpec(prom("queue", target, 10_000))
	spec.MinReplicas = 0
	return spec
}

func valueInput(replicas int32, milli int64, scaledToZero bool) Input {
	in := Input{SpecReplicas: replicas, StatusReplicas: replicas, Pods: pods(int(replicas), nil),
		Metrics: []Observation{scalar(milli)}, ScaledToZero: scaledToZero}
	return in
}

// Going to zero is HPA's rule: a value of 0 proposes 0 pods, the scale-down
// window and policies allow it, and the decision records the zero.
func TestScaleToZeroIsRecorded(t *testing.T) {
	for _, target := range []TargetType{TargetValue, TargetAverageValue} {
		t.Run(string(target), func(t *testing.T) {
			spec := zeroSpec(target)
			in := valueInput(1, 0, false)
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, int32(0), d.DesiredReplicas)
			assert.Equal(t, ActionScaleDown, d.Action)
			assert.Equal(t, ZeroSet, d.Zero)
		})
	}
}

// With min-replicas 1 the same value stops at 1 and records nothing.
func TestMinReplicasOneNeverRecordsZero(t *testing.T) {
	spec := zeroSpec(TargetValue)
	spec.MinReplicas = 1
	in := valueInput(3, 0, false)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(1), d.DesiredReplicas)
	assert.Equal(t, ZeroKeep, d.Zero)
}

// At zero, Spinscale's own zero is woken by ceil(value/target) with no
// tolerance and no pods (getUsageRatioReplicaCount), capped by the scale-up
// rate (4 pods from 0 by the default policies); a zero set by hand pauses.
func TestWakeFromZero(t *testing.T) {
	cases := []struct {
		name         string
		target       TargetType
		milli        int64
		scaledToZero bool
		want         int32
		limitedBy    Stage
		zero         ZeroRecord
	}{
		{name: "value 0.5 per target wakes 1 pod", target: TargetValue, milli: 5_000, scaledToZero: true, want: 1, zero: ZeroClear},
		{name: "value 1.05 per target is not tolerated at zero", target: TargetValue, milli: 10_500, scaledToZero: true, want: 2, zero: ZeroClear},
		{name: "average value wakes ceil(value/target)", target: TargetAverageValue, milli: 30_000, scaledToZero: true, want: 3, zero: ZeroClear},
		{name: "a large value is capped by the scale-up rate", target: TargetValue, milli: 100_000, scaledToZero: true, want: 4, limitedBy: StageScaleUpPolicy, zero: ZeroClear},
		{name: "value 0 stays at zero", target: TargetValue, milli: 0, scaledToZero: true, want: 0, zero: ZeroKeep},
		{name: "a zero set by hand pauses", target: TargetValue, milli: 30_000, want: 0, limitedBy: StagePaused, zero: ZeroKeep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := zeroSpec(tc.target)
			spec.Behavior = nil
			in := valueInput(0, tc.milli, tc.scaledToZero)
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, tc.want, d.DesiredReplicas, d.Reason())
			if tc.limitedBy != "" {
				assert.Equal(t, tc.limitedBy, d.LimitedBy)
			}
			assert.Equal(t, tc.zero, d.Zero)
		})
	}
}

// Woken with min-replicas raised while at zero, the count is at least the
// new minimum.
func TestWokenFromZeroAtLeastMinReplicas(t *testing.T) {
	spec := zeroSpec(TargetValue)
	spec.MinReplicas = 3
	in := valueInput(0, 5_000, true)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(3), d.DesiredReplicas)
	assert.Equal(t, StageMinReplicas, d.LimitedBy)
	assert.Equal(t, ZeroClear, d.Zero)
}

// A failed metric at zero holds at zero: nothing to wake on.
func TestFailedMetricAtZeroHolds(t *testing.T) {
	spec := zeroSpec(TargetValue)
	in := valueInput(0, 0, true)
	in.Metrics[0] = Observation{Err: ErrNoData}
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.DesiredReplicas)
	assert.Equal(t, StageMissingMetrics, d.LimitedBy)
	assert.Equal(t, ZeroKeep, d.Zero)
}

// KEDA's activation threshold: at zero the app wakes only above it
// (strictly); running, it goes to zero after scale-to-zero-after of values
// at or below it, and keeps at least one pod before.
func TestActivationThreshold(t *testing.T) {
	spec := zeroSpec(TargetValue)
	spec.ActivationMilli = ptr.To(int64(2_000))
	spec.ScaleToZeroAfter = time.Minute

	in := valueInput(0, 2_000, true)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.DesiredReplicas, "at the threshold: stays at zero")
	assert.Equal(t, StageActivation, d.LimitedBy)

	in = valueInput(0, 2_001, true)
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(1), d.DesiredReplicas, "above it: wakes")
	assert.Equal(t, ZeroClear, d.Zero)

	// Running at 1 pod, idle: HPA's rule alone would go to zero at once.
	st := settled()
	in = valueInput(1, 1_000, false)
	d, _ = Decide(&spec, &in, st, t0)
	assert.Equal(t, int32(1), d.DesiredReplicas, "HPA's rule keeps 1 pod for 0.1 of a target")
	in = valueInput(1, 0, false)
	d, st = Decide(&spec, &in, st, t0)
	assert.Equal(t, int32(1), d.DesiredReplicas, "idle for 0s: at least one pod")
	assert.Equal(t, StageActivation, d.LimitedBy)
	d, st = Decide(&spec, &in, st, t0.Add(59*time.Second))
	assert.Equal(t, int32(1), d.DesiredReplicas, "idle for 59s")
	d, _ = Decide(&spec, &in, st, t0.Add(time.Minute))
	assert.Equal(t, int32(0), d.DesiredReplicas, "idle for scale-to-zero-after: to zero")
	assert.Equal(t, ZeroSet, d.Zero)
	assert.Contains(t, d.Reason(), "scale-to-zero-after 1m0s")
}

// Activity restarts the idle time, and a failed metric is never idleness.
func TestIdleTimeRestartsOnActivityAndFailure(t *testing.T) {
	spec := zeroSpec(TargetValue)
	spec.ActivationMilli = ptr.To(int64(0))
	spec.ScaleToZeroAfter = time.Minute
	st := settled()
	idle := valueInput(1, 0, false)
	_, st = Decide(&spec, &idle, st, t0)
	busy := valueInput(1, 5_000, false)
	_, st = Decide(&spec, &busy, st, t0.Add(30*time.Second))
	assert.True(t, st.IdleSince.IsZero())
	_, st = Decide(&spec, &idle, st, t0.Add(40*time.Second))
	failing := valueInput(1, 0, false)
	failing.Metrics[0] = Observation{Err: ErrNoData}
	_, st = Decide(&spec, &failing, st, t0.Add(50*time.Second))
	d, _ := Decide(&spec, &idle, st, t0.Add(100*time.Second))
	assert.Equal(t, int32(1), d.DesiredReplicas, "idle for 50s since the failure")
}

// The pause annotations apply after the zero rules, and the record follows
// what is written: a blocked scale to zero records nothing, a paused count
// of 0 on a scale-to-zero app is Spinscale's own zero.
func TestPausesAndZero(t *testing.T) {
	spec := zeroSpec(TargetValue)
	spec.Pause.ScaleIn = true
	in := valueInput(1, 0, false)
	d, _ := Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(1), d.DesiredReplicas, "paused-scale-in blocks the scale to zero")
	assert.Equal(t, ZeroKeep, d.Zero)

	spec = zeroSpec(TargetValue)
	spec.Pause.Replicas = ptr.To(int32(0))
	in = valueInput(2, 30_000, false)
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.DesiredReplicas)
	assert.Equal(t, ZeroSet, d.Zero, "woken by its metrics once paused-replicas is removed")

	spec = zeroSpec(TargetValue)
	spec.Pause.ScaleOut = true
	in = valueInput(0, 30_000, true)
	d, _ = Decide(&spec, &in, settled(), t0)
	assert.Equal(t, int32(0), d.DesiredReplicas, "paused-scale-out blocks waking")
	assert.Equal(t, ZeroKeep, d.Zero, "the record stays")
}

// A wake from zero counts against the scale-up policies, as HPA records it:
// 0 → 4 under "4 pods per 60s" leaves no room for more within the minute.
func TestAWakeCountsAgainstTheScaleUpPolicy(t *testing.T) {
	spec := zeroSpec(TargetAverageValue)
	spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 60}}}}
	in := valueInput(0, 100_000, true)
	d, st := Decide(&spec, &in, settled(), t0)
	require.Equal(t, int32(4), d.DesiredReplicas)
	st = Commit(&spec, st, &d, t0)
	in = valueInput(4, 100_000, false)
	d, _ = Decide(&spec, &in, st, t0.Add(15*time.Second))
	assert.Equal(t, int32(4), d.DesiredReplicas, "the wake used the minute's 4 pods")
}

// paused-replicas "0" on an app with min-replicas 1 is a zero of Spinscale's
// own: once lifted, the app returns to its minimum although nothing can be
// measured at zero.
func TestAPausedZeroReturnsToTheMinimum(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.Pause.Replicas = ptr.To(int32(0))
	in := cpuInput(3, 500)
	d, _ := Decide(&spec, &in, settled(), t0)
	require.Equal(t, int32(0), d.DesiredReplicas)
	assert.Equal(t, ZeroSet, d.Zero)

	spec.Pause.Replicas = nil
	at0 := Input{SpecReplicas: 0, ScaledToZero: true, Metrics: []Observation{{Err: ErrNoData}}}
	d, _ = Decide(&spec, &at0, settled(), t0.Add(time.Minute))
	assert.Equal(t, int32(1), d.DesiredReplicas)
	assert.Equal(t, ZeroClear, d.Zero)
}

// A fallback standing in for the only metric does not end the outage: the
// history is reseeded when real data returns, not when the fallback starts.
func TestAFallbackIsNotTheEndOfAnOutage(t *testing.T) {
	spec, in := failingQueue(ProfileHPA, "")
	spec.FallbackReplicas, spec.FallbackAfter = 8, time.Hour
	_, st := Decide(&spec, &in, settled(), t0)
	require.False(t, st.FailingSince.IsZero())
	d, st := Decide(&spec, &in, st, t0.Add(3*time.Minute))
	require.True(t, d.Metrics[0].Fallback)
	assert.Equal(t, t0, st.FailingSince, "still failing")
	ok := in
	ok.Metrics = []Observation{scalar(50_000)}
	_, st = Decide(&spec, &ok, st, t0.Add(4*time.Minute))
	assert.True(t, st.FailingSince.IsZero(), "data is back")
	assert.Equal(t, t0.Add(4*time.Minute), st.SeededAt, "reseeded on the real return")
}
