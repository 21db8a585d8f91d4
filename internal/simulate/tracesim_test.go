package simulate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/recommender"
)

func loadTraceScenario(t *testing.T, doc string) *TraceScenario {
	t.Helper()
	sc := load(t, doc)
	require.NotNil(t, sc.Trace, "a load-trace scenario")
	require.Empty(t, sc.Steps)
	return sc.Trace
}

// wantTick is one tick's expected decision.
type wantTick struct {
	at          float64
	pods, ready int32
	desired     int32
	limitedBy   recommender.Stage
	// metricMissing and metricReady are the first metric's pod counts;
	// metricMissing -1 skips them.
	metricMissing, metricReady int
}

func assertTicks(t *testing.T, want []wantTick, got []Tick) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		g := got[i]
		assert.Equal(t, w.at, g.At, "tick %d", i)
		assert.Equal(t, w.pods, g.Pods, "pods at %v", w.at)
		assert.Equal(t, w.ready, g.Ready, "ready at %v", w.at)
		assert.Equal(t, w.desired, g.Decision.DesiredReplicas, "desired at %v: %s", w.at, g.Decision.Reason())
		assert.Equal(t, w.limitedBy, g.Decision.LimitedBy, "limitedBy at %v: %s", w.at, g.Decision.Reason())
		if w.metricMissing >= 0 {
			require.NotEmpty(t, g.Decision.Metrics)
			assert.Equal(t, w.metricMissing, g.Decision.Metrics[0].MissingPods, "missing pods at %v", w.at)
			assert.Equal(t, w.metricReady, g.Decision.Metrics[0].ReadyPods, "ready pods of the metric at %v", w.at)
		}
	}
}

// promStep is a 10× step (100 → 1000 at t = 30) against a Prometheus
// request rate with a per-pod target of 100; a pod serves at most 150.
const promStep = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: "sum(rate(requests_total[15s]))"
  spinscale.dev/prometheus-target-average-value: "100"
workload:
  targetLoadPerPod: 100
  capacityPerPod: 150
  startupSeconds: 10
  initialReplicas: 1
sim:
  tickSeconds: 15
  metricResolutionSeconds: 15
  durationSeconds: 120
trace:
  - {at: 0, load: 100}
  - {at: 30, load: 100}
  - {at: 30, load: 1000}
`

// TestTraceStepSaturatedPrometheus pins the accounting on a 10× step
// computed by hand. The query reports served load, and a saturated pod
// serves 150: the metric under-reads demand, so the app climbs one pod at a
// time.
//
//	t=0..30  window average 100 over 1 pod: ratio 1, hold
//	t=45     [30,45): 1 pod serves 150: ceil(150/100) = 2; pod 2 Ready at 55
//	t=60     [45,60): 150×10 + 300×5 = 3000/15 = 200 over 2: ratio 1, hold
//	t=75     [60,75): 300: 3; Ready at 85
//	t=90     [75,90): (300×10 + 450×5)/15 = 350: ceil(3.5) = 4; Ready at 100
//	t=105    [90,105): (450×10 + 600×5)/15 = 500: 5; Ready at 115
//
// podSeconds: 120 + 75 + 45 + 30 + 15 = 285. Oracle: 30×1 + 90×10 = 930.
// Under-provisioned (load 1000 above ready × 150) from 30 to 120: 90 s,
// missing (850×25 + 700×30 + 550×15 + 400×15 + 250×5) / 150 = 385 pod-s.
func TestTraceStepSaturatedPrometheus(t *testing.T) {
	ts := loadTraceScenario(t, promStep)
	res := ts.Simulate()
	none := recommender.StageNone
	assertTicks(t, []wantTick{
		{0, 1, 1, 1, none, -1, 0},
		{15, 1, 1, 1, none, -1, 0},
		{30, 1, 1, 1, none, -1, 0},
		{45, 1, 1, 2, none, -1, 0},
		{60, 2, 2, 2, none, -1, 0},
		{75, 2, 2, 3, none, -1, 0},
		{90, 3, 3, 4, none, -1, 0},
		{105, 4, 4, 5, none, -1, 0},
	}, res.Ticks)
	assert.Equal(t, int64(150), res.Ticks[3].Decision.Metrics[0].CurrentMilli/1000)
	assert.Equal(t, int64(200_000), res.Ticks[4].Decision.Metrics[0].CurrentMilli, "the total served load")
	assert.Equal(t, int64(350_000), res.Ticks[6].Decision.Metrics[0].CurrentMilli)

	s := res.Summary
	assert.Equal(t, 285.0, s.PodSeconds)
	assert.Equal(t, 930.0, s.OraclePodSeconds)
	assert.Equal(t, round6(285.0/930), s.CostRatio)
	assert.Equal(t, 90.0, s.UnderProvisionedSeconds)
	assert.Equal(t, 385.0, s.UnderProvisionedPodSeconds)
	assert.Equal(t, 0.0, s.OverProvisionedPodSeconds)
	assert.Equal(t, 4, s.ScaleActions)
	assert.Equal(t, 0, s.Reversals)
	require.NotNil(t, s.FirstScaleUpSeconds)
	assert.Equal(t, 45.0, *s.FirstScaleUpSeconds)

	assert.Equal(t, OracleFigures{ScaleActions: 1, FirstScaleUpSeconds: ptr.To(30.0)}, res.Oracle)

	// The timeline: one second each, pods counted from their decision,
	// Ready after start-up.
	require.Len(t, res.Timeline, 120)
	assert.Equal(t, Second{T: 45, Load: 1000, Served: 150, Replicas: 2, Running: 1, Ready: 1, Oracle: 10}, res.Timeline[45])
	assert.Equal(t, Second{T: 55, Load: 1000, Served: 300, Replicas: 2, Running: 2, Ready: 2, Oracle: 10}, res.Timeline[55])
}

// TestTraceMetricLagDelaysTheReaction: with 15 s of lag the tick at 45
// still sees the window [15, 30), so the first scale-up waits for 60.
func TestTraceMetricLagDelaysTheReaction(t *testing.T) {
	ts := loadTraceScenario(t, promStep+"\n")
	ts.Sim.MetricLagSeconds = 15
	res := ts.Simulate()
	assert.Equal(t, int32(1), res.Ticks[3].Decision.DesiredReplicas, "t=45 sees [15,30)")
	require.NotNil(t, res.Summary.FirstScaleUpSeconds)
	assert.Equal(t, 60.0, *res.Summary.FirstScaleUpSeconds)
	// At t=0 the lagged samples come from before the start: the first load.
	assert.Equal(t, int64(100_000), res.Ticks[0].Decision.Metrics[0].CurrentMilli)
}

// cpuStep is a step from 0 to 900 at t = 10 against a cpu target of 50% of
// a 200m request, 1m per unit of load: a pod is at target at 100 and
// serves at most 300. New pods start in 5 s and are Ready 5 s later.
// targetLoadPerPod is derived: 200m × 50% / 1m = 100.
const cpuStep = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-cpu-utilization: "50"
workload:
  capacityPerPod: 300
  cpuPerUnit: 1m
  requests: {cpu: 200m}
  startupSeconds: 5
  readinessDelaySeconds: 5
  initialReplicas: 2
sim: {tickSeconds: 10, metricResolutionSeconds: 10, durationSeconds: 60}
trace:
  - {at: 0, load: 0}
  - {at: 10, load: 0}
  - {at: 10, load: 900}
`

// TestTraceCPUStep pins the cpu model by hand:
//
//	t=0,10  idle pods use the 1m floor: 2m/400m = 0% → 0, held at 2 by the
//	        first-sight seed (the floor keeps the all-zero guard out of it)
//	t=20    [10,20): 2 saturated pods at 300m: 150% → 6, capped at 4
//	t=30    [20,30): the 2 new pods are Ready but have no sample (missing,
//	        counted at 0 on a scale-up): 600/800 = 75% → ceil(1.5 × 4) = 6
//	t=40    [30,40): 4 pods at 225m: 112%; with 2 missing 900/1200 = 75%
//	        → ceil(1.5 × 6) = 9
//	t=50    [40,50): 6 pods at 150m; 3 missing: 900/1800 = 50%: tolerance
//
// podSeconds: 2×20 + 4×10 + 6×10 + 9×20 = 320; oracle 1×10 + 9×50 = 460.
// Under-provisioned from 10 to 30 (900 > 2 × 300): 20 s, 1 pod each.
// Over-provisioned from 0 to 10: 2 ready, the oracle 1.
func TestTraceCPUStep(t *testing.T) {
	ts := loadTraceScenario(t, cpuStep)
	assert.Equal(t, 100.0, ts.Workload.TargetLoadPerPod, "derived from the target")
	res := ts.Simulate()
	assertTicks(t, []wantTick{
		{0, 2, 2, 2, recommender.StageStabilization, 0, 2},
		{10, 2, 2, 2, recommender.StageStabilization, 0, 2},
		{20, 2, 2, 4, recommender.StageScaleUpPolicy, 0, 2},
		{30, 4, 4, 6, recommender.StageNone, 2, 2},
		{40, 6, 6, 9, recommender.StageNone, 2, 4},
		{50, 9, 9, 9, recommender.StageTolerance, 3, 6},
	}, res.Ticks)
	assert.Equal(t, int32(0), res.Ticks[0].Decision.Metrics[0].Utilization)
	assert.Equal(t, int32(150), res.Ticks[2].Decision.Metrics[0].Utilization)
	assert.Equal(t, int32(112), res.Ticks[4].Decision.Metrics[0].Utilization)

	s := res.Summary
	assert.Equal(t, 320.0, s.PodSeconds)
	assert.Equal(t, 460.0, s.OraclePodSeconds)
	assert.Equal(t, round6(320.0/460), s.CostRatio)
	assert.Equal(t, 20.0, s.UnderProvisionedSeconds)
	assert.Equal(t, 20.0, s.UnderProvisionedPodSeconds)
	assert.Equal(t, 10.0, s.OverProvisionedPodSeconds)
	assert.Equal(t, 3, s.ScaleActions)
	assert.Equal(t, 0, s.Reversals)
	require.NotNil(t, s.FirstScaleUpSeconds)
	assert.Equal(t, 20.0, *s.FirstScaleUpSeconds)
	// Pods created at 20: Running at 25, Ready at 30.
	assert.Equal(t, Second{T: 27, Load: 900, Served: 600, Replicas: 4, Running: 4, Ready: 2, Oracle: 9}, res.Timeline[27])
}

// TestTraceCPUStepSpinscale is cpuStep with the spinscale profile, by hand:
//
//	t=0,10  as with hpa: 0% → 0, held at 2 by the first-sight seed
//	t=20    150% → 6: a burst (ratio 3, on a load never measured before)
//	        asks for the scale-up policy's max(2 + 4, 2 × 200%) = 6, which
//	        is the proposal itself. A jump after a flat stretch is a step,
//	        not a ramp: no projection
//	t=30    the 2 old pods still read 150% and the 4 new ones have no
//	        sample: ceil(3 × 2) = 6 = current, no rise beyond the 6 already
//	        measured, so no burst: hold
//	t=40    6 pods at 75% → 9, above the 6 measured: a burst, max(6 + 4,
//	        6 × 200%) = 12, capped at max-replicas 10
//	t=50    6 sampled pods at 75% → 9 with 4 without a sample: never below
//	        the current count on a scale-up, hold at 10
//
// podSeconds: 2×20 + 6×20 + 10×20 = 360; under-provisioned as with hpa
// (the first window of the step is seen only at t=20); over-provisioned
// 10 (t<10: 2 against 1) + 10 (t≥50: 10 against 9).
func TestTraceCPUStepSpinscale(t *testing.T) {
	ts := loadTraceScenario(t, strings.Replace(cpuStep, "profile: hpa", "profile: spinscale", 1))
	res := ts.Simulate()
	assertTicks(t, []wantTick{
		{0, 2, 2, 2, recommender.StageStabilization, 0, 2},
		{10, 2, 2, 2, recommender.StageStabilization, 0, 2},
		{20, 2, 2, 6, recommender.StageNone, 0, 2},
		{30, 6, 6, 6, recommender.StageNone, 4, 2},
		{40, 6, 6, 10, recommender.StageMaxReplicas, 0, 6},
		{50, 10, 10, 10, recommender.StageNone, 4, 6},
	}, res.Ticks)
	for _, tick := range res.Ticks {
		assert.Zero(t, tick.Decision.Projected, "a step is not projected (t=%v)", tick.At)
	}
	assert.False(t, res.Ticks[3].Decision.Burst)
	assert.True(t, res.Ticks[4].Decision.Burst)

	s := res.Summary
	assert.Equal(t, 360.0, s.PodSeconds)
	assert.Equal(t, 20.0, s.UnderProvisionedPodSeconds)
	assert.Equal(t, 20.0, s.OverProvisionedPodSeconds)
	assert.Equal(t, 2, s.ScaleActions)
	assert.Equal(t, 0, s.Reversals)
}

// TestTraceReversalsAndScaleDown: without a scale-down window the app
// follows a square wave, and every turn is a reversal; removed pods stop
// counting at the decision that removed them.
//
//	load 100, 400 from 10, 100 from 30, 400 from 50; target 100 per pod.
//	t=20 → 4, t=40 → 1, t=60 → 4. podSeconds 20 + 4×20 + 20 + 4×10 = 160.
func TestTraceReversalsAndScaleDown(t *testing.T) {
	ts := loadTraceScenario(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: "sum(rate(requests_total[10s]))"
  spinscale.dev/prometheus-target-average-value: "100"
config: {downscaleStabilization: 0s}
workload: {capacityPerPod: 1000, initialReplicas: 1}
sim: {tickSeconds: 10, metricResolutionSeconds: 10, durationSeconds: 70}
trace:
  - {at: 0, load: 100}
  - {at: 10, load: 100}
  - {at: 10, load: 400}
  - {at: 30, load: 400}
  - {at: 30, load: 100}
  - {at: 50, load: 100}
  - {at: 50, load: 400}
`)
	res := ts.Simulate()
	var desired []int32
	for _, tk := range res.Ticks {
		desired = append(desired, tk.Decision.DesiredReplicas)
	}
	assert.Equal(t, []int32{1, 1, 4, 4, 1, 1, 4}, desired)
	s := res.Summary
	assert.Equal(t, 3, s.ScaleActions)
	assert.Equal(t, 2, s.Reversals)
	assert.Equal(t, 160.0, s.PodSeconds)
	assert.Equal(t, 10+4*20+1*20+4*20.0, s.OraclePodSeconds)
	// Ready above the oracle: 3 pods over [30, 40) before the scale-down
	// at 40.
	assert.Equal(t, 30.0, s.OverProvisionedPodSeconds)
	assert.Equal(t, OracleFigures{ScaleActions: 3, Reversals: 2, FirstScaleUpSeconds: ptr.To(10.0)}, res.Oracle)
}

// TestScaleDownRemovesNotReadyPodsFirstThenTheYoungest pins the order in
// which a scale-down removes pods.
func TestScaleDownRemovesNotReadyPodsFirstThenTheYoungest(t *testing.T) {
	ts := &TraceScenario{}
	const now = 100
	pods := []simPod{
		{name: "old", created: -longAgoSeconds, running: -longAgoSeconds, ready: -longAgoSeconds},
		{name: "ready-late", created: 50, running: 60, ready: 90},
		{name: "ready-early", created: 55, running: 60, ready: 70},
		{name: "running", created: 80, running: 90, ready: 120},
		{name: "pending-old", created: 85, running: 110, ready: 110},
		{name: "pending-new", created: 95, running: 110, ready: 110},
	}
	names := func(ps []simPod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.name)
		}
		return out
	}
	for _, tc := range []struct {
		desired int32
		want    []string
	}{
		{5, []string{"old", "ready-late", "ready-early", "running", "pending-old"}},
		{4, []string{"old", "ready-late", "ready-early", "running"}},
		{3, []string{"old", "ready-late", "ready-early"}},
		{2, []string{"old", "ready-early"}},
		{1, []string{"old"}},
	} {
		got, next := ts.apply(append([]simPod(nil), pods...), 6, tc.desired, now)
		assert.Equal(t, tc.want, names(got), "down to %d", tc.desired)
		assert.Equal(t, 6, next)
	}
	got, next := ts.apply(append([]simPod(nil), pods...), 6, 8, now)
	assert.Equal(t, 8, next)
	assert.Equal(t, simPod{name: "app-7", created: now, running: now, ready: now}, got[7])
}

// TestTraceSimulateIsDeterministic: the same scenario gives the same run.
func TestTraceSimulateIsDeterministic(t *testing.T) {
	ts := loadTraceScenario(t, cpuStep)
	assert.Equal(t, ts.Simulate(), ts.Simulate())
}

func TestLoadAtIsLinearBetweenPoints(t *testing.T) {
	ts := &TraceScenario{Trace: []TracePoint{{At: 10, Load: 100}, {At: 20, Load: 200}, {At: 20, Load: 50}, {At: 30, Load: 150}}}
	for _, tc := range []struct{ at, want float64 }{
		{0, 100}, {10, 100}, {15, 150}, {19, 190}, {20, 50}, {25, 100}, {30, 150}, {99, 150},
	} {
		assert.InDelta(t, tc.want, ts.loadAt(tc.at), 1e-9, "at %v", tc.at)
	}
}

func TestFloorDiv(t *testing.T) {
	for _, tc := range []struct{ a, b, want int64 }{{0, 15, 0}, {14, 15, 0}, {15, 15, 1}, {-1, 15, -1}, {-15, 15, -1}, {-16, 15, -2}} {
		assert.Equal(t, tc.want, floorDiv(tc.a, tc.b), "%d/%d", tc.a, tc.b)
	}
}

// decisionTimes lists when the engine decided.
func decisionTimes(ticks []Tick) []float64 {
	var out []float64
	for _, tk := range ticks {
		out = append(out, tk.At)
	}
	return out
}

// TestTraceDecisionsFollowFreshSamples: the spinscale profile decides at
// the first second a new sample is visible, the hpa profile on its fixed
// interval, whatever the samples do.
func TestTraceDecisionsFollowFreshSamples(t *testing.T) {
	for _, tc := range []struct {
		name            string
		profile         string
		res, lag, phase int64
		want            []float64
	}{
		{"hpa keeps its 15 s sync", "hpa", 5, 0, 0, []float64{0, 15, 30, 45}},
		{"hpa with samples out of phase", "hpa", 15, 0, 7, []float64{0, 15, 30, 45}},
		{"spinscale on every 5 s sample", "spinscale", 5, 0, 0, []float64{0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55}},
		{"spinscale on samples 7 s into the tick", "spinscale", 15, 0, 7, []float64{0, 7, 22, 37, 52}},
		{"spinscale sees them after the lag", "spinscale", 15, 2, 7, []float64{0, 9, 24, 39, 54}},
		{"spinscale at most one interval apart when samples are rare", "spinscale", 20, 0, 0, []float64{0, 15, 20, 35, 40, 55}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := loadTraceScenario(t, strings.Replace(promStep, "profile: hpa", "profile: "+tc.profile, 1))
			ts.Sim.DurationSeconds = 60
			ts.Sim.MetricResolutionSeconds, ts.Sim.MetricLagSeconds, ts.Sim.MetricPhaseSeconds = tc.res, tc.lag, tc.phase
			assert.Equal(t, tc.want, decisionTimes(ts.Simulate().Ticks))
		})
	}
}

// TestTraceFreshSamplesSpeedTheFirstScaleUp: on the 10× step at 30, a 5 s
// sample ending at 35 already shows it; spinscale scales up then, hpa at
// its next sync (45).
func TestTraceFreshSamplesSpeedTheFirstScaleUp(t *testing.T) {
	for profile, want := range map[string]float64{"hpa": 45, "spinscale": 35} {
		ts := loadTraceScenario(t, strings.Replace(promStep, "profile: hpa", "profile: "+profile, 1))
		ts.Sim.MetricResolutionSeconds = 5
		res := ts.Simulate()
		require.NotNil(t, res.Summary.FirstScaleUpSeconds, profile)
		assert.Equal(t, want, *res.Summary.FirstScaleUpSeconds, profile)
	}
}

func TestTraceMetricPhaseIsBelowTheResolution(t *testing.T) {
	_, err := Load([]byte(strings.Replace(promStep, "metricResolutionSeconds: 15", "metricResolutionSeconds: 15\n  metricPhaseSeconds: 15", 1)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sim.metricPhaseSeconds")
}
