package recommender

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// metricCase is one metric's proposal under HPA's replica calculator rules.
type metricCase struct {
	name        string
	metric      MetricSpec
	replicas    int32
	status      int32 // status.replicas; default = replicas
	pods        []Pod
	obs         Observation
	tolerance   *Tolerances
	want        int32
	utilization int32
	current     int64
	counts      [4]int // ready, unready, missing, ignored
	err         error
}

func runMetricCases(t *testing.T, cases []metricCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(tc.metric)
			if tc.tolerance != nil {
				spec.Tolerance = *tc.tolerance
			}
			status := tc.status
			if status == 0 {
				status = tc.replicas
			}
			in := Input{SpecReplicas: tc.replicas, StatusReplicas: status, Pods: tc.pods, Metrics: []Observation{tc.obs}}
			d, _ := Decide(&spec, &in, settled(), t0)
			require.Len(t, d.Metrics, 1)
			m := d.Metrics[0]
			if tc.err != nil {
				assert.ErrorIs(t, m.Err, tc.err)
				assert.Equal(t, tc.replicas, d.DesiredReplicas, "a failed metric never moves the app")
				return
			}
			require.NoError(t, m.Err)
			assert.Equal(t, tc.want, m.Proposal, "proposal")
			if tc.metric.Target == TargetUtilization {
				assert.Equal(t, tc.utilization, m.Utilization, "utilization")
			}
			if tc.current != 0 {
				assert.Equal(t, tc.current, m.CurrentMilli, "current")
			}
			if tc.counts != [4]int{} {
				assert.Equal(t, tc.counts, [4]int{m.ReadyPods, m.UnreadyPods, m.MissingPods, m.IgnoredPods}, "ready, unready, missing, ignored")
			}
		})
	}
}

// The cases below mirror HPA v1.37's replica_calculator_test.go (one
// container per pod instead of two: the same ratios).
func TestResourceUtilization(t *testing.T) {
	neverReadyAt := func(i ...int) map[int][]func(*Pod) {
		m := map[int][]func(*Pod){}
		for _, k := range i {
			m[k] = []func(*Pod){neverReady}
		}
		return m
	}
	runMetricCases(t, []metricCase{
		{name: "scale up: ceil(ratio x ready pods)", metric: cpuUtil(30), replicas: 3, pods: pods(3, nil),
			obs: samples(300, 500, 700), want: 5, utilization: 50, current: 500, counts: [4]int{3, 0, 0, 0}},
		{name: "utilization is a whole percent before the ratio", metric: cpuUtil(50), replicas: 2, pods: pods(2, nil),
			// 1119m of 2000m is 55.95%, truncated to 55: ratio 1.1 is inside tolerance.
			obs: samples(560, 559), want: 2, utilization: 55},
		{name: "scale down", metric: cpuUtil(50), replicas: 5, pods: pods(5, nil),
			obs: samples(100, 300, 500, 250, 250), want: 3, utilization: 28},
		{name: "unready pod counts as 0 on a scale-up", metric: cpuUtil(30), replicas: 3, pods: pods(3, neverReadyAt(0)),
			obs: samples(300, 500, 700), want: 4, utilization: 60, counts: [4]int{2, 1, 0, 0}},
		{name: "hot cpu pod inside initialization counts as 0 on a scale-up", metric: cpuUtil(30), replicas: 3,
			pods: pods(3, map[int][]func(*Pod){0: {hot}}), obs: samples(300, 500, 700), want: 4, utilization: 60},
		{name: "unready pods that would reverse the direction: hold", metric: cpuUtil(30), replicas: 3, pods: pods(3, neverReadyAt(1, 2)),
			obs: samples(400, 500, 700), want: 3, utilization: 40},
		{name: "unready pods excluded on a scale-down", metric: cpuUtil(50), replicas: 5, pods: pods(5, neverReadyAt(3, 4)),
			obs: samples(100, 300, 500, 250, 250), want: 2, utilization: 30},
		{name: "failed pods ignored", metric: cpuUtil(30), replicas: 2,
			pods: pods(4, map[int][]func(*Pod){2: {phase(corev1.PodFailed)}, 3: {phase(corev1.PodFailed)}}),
			obs:  samples(500, 700), want: 4, utilization: 60, counts: [4]int{2, 0, 0, 2}},
		{name: "deleting pods ignored", metric: cpuUtil(30), replicas: 2,
			pods: pods(4, map[int][]func(*Pod){2: {deleting}, 3: {deleting}}),
			obs:  samples(500, 700), want: 4, utilization: 60, counts: [4]int{2, 0, 0, 2}},
		{name: "pending pods are unready even with a sample", metric: cpuUtil(30), replicas: 3,
			pods: pods(3, map[int][]func(*Pod){2: {phase(corev1.PodPending)}}), obs: samples(600, 600, 600),
			// 60% over two pods: ratio 2 with an unready pod: 1200/3000 = 40%, ratio 1.33 x 3 = 4.
			want: 4, utilization: 60, counts: [4]int{2, 1, 0, 0}},
		{name: "samples of unknown pods count in the re-computation", metric: cpuUtil(100), replicas: 4,
			pods: pods(4, nil), obs: samples(4000, 9500, 3000, 7000, 3200, 2000), want: 24, utilization: 587},
		{name: "missing pods count as 100% on a scale-down", metric: cpuUtil(100), replicas: 4,
			pods: pods(4, nil), obs: samples(400, 95), want: 3, utilization: 24, counts: [4]int{2, 0, 2, 0}},
		{name: "missing pods count as the target when it is above 100%", metric: cpuUtil(300), replicas: 4,
			pods: pods(4, nil), obs: samples(200, 100, 100), want: 2, utilization: 13},
		{name: "missing pods count as 0 on a scale-up", metric: cpuUtil(50), replicas: 3,
			pods: pods(3, nil), obs: samples(1000, 1000), want: 4, utilization: 100},
		{name: "missing metric that would reverse the direction: hold", metric: cpuUtil(100), replicas: 2,
			pods: pods(2, nil), obs: samples(600), want: 2, utilization: 60},
		{name: "rolling update surge: extra pod without metric holds", metric: cpuUtil(50), replicas: 2,
			pods: pods(3, nil), obs: samples(100, 100), want: 2, utilization: 10},
		{name: "metric equal to target with a missing pod: hold", metric: cpuUtil(100), replicas: 2,
			pods: pods(2, nil), obs: samples(1000), want: 2, utilization: 100},
		{name: "cpu: pod ready again after being ready counts", metric: cpuUtil(50), replicas: 2,
			pods: pods(2, map[int][]func(*Pod){1: {func(p *Pod) { p.Ready = false; p.ReadyTransition = ago(time.Minute) }}}),
			obs:  samples(1000, 1000), want: 4, utilization: 100, counts: [4]int{2, 0, 0, 0}},
		{name: "cpu: sample taken before a full window since readiness is ignored", metric: cpuUtil(50), replicas: 2,
			pods: pods(2, map[int][]func(*Pod){1: {func(p *Pod) { p.StartTime = ago(time.Minute); p.ReadyTransition = ago(20 * time.Second) }}}),
			obs:  samples(1500, 1500), want: 3, utilization: 150, counts: [4]int{1, 1, 0, 0}},
		{name: "cpu: pod without a ready condition is unready", metric: cpuUtil(50), replicas: 2,
			pods: pods(2, map[int][]func(*Pod){1: {func(p *Pod) { p.HasReadyCondition = false }}}),
			obs:  samples(1500, 1500), want: 3, utilization: 150, counts: [4]int{1, 1, 0, 0}},
		{name: "memory: a NotReady running pod counts as is", metric: memUtil(50), replicas: 2,
			pods: pods(2, neverReadyAt(1)), obs: samples(1<<30*1000, 1<<30*1000), want: 4, utilization: 100, counts: [4]int{2, 0, 0, 0}},
		{name: "container without a request fails a utilization metric", metric: cpuUtil(50), replicas: 2,
			pods: pods(2, map[int][]func(*Pod){1: {func(p *Pod) { p.CPU.MissingIn = "sidecar" }}}),
			obs:  samples(500, 500), err: ErrMissingRequest},
		{name: "even an ignored pod without a request fails it", metric: cpuUtil(50), replicas: 2,
			pods: pods(3, map[int][]func(*Pod){2: {phase(corev1.PodFailed), func(p *Pod) { p.CPU.MissingIn = "app" }}}),
			obs:  samples(500, 500), err: ErrMissingRequest},
		{name: "no pod has a sample: no data", metric: cpuUtil(50), replicas: 2, pods: pods(2, nil),
			obs: Observation{PerPod: true}, err: ErrNoData},
		{name: "no pods: no data", metric: cpuUtil(50), replicas: 2, obs: samples(100), err: ErrNoPods},
		{name: "only unknown pods' samples: no data", metric: cpuUtil(50), replicas: 1, pods: []Pod{pod("other")},
			obs: samples(100), err: ErrNoData},
		{name: "all-zero usage from every pod: hold, not scale to minimum", metric: cpuUtil(50), replicas: 4, pods: pods(4, nil),
			obs: samples(0, 0, 0, 0), err: ErrAllZero},
		{name: "stale samples are dropped: every sample stale fails the metric", metric: cpuUtil(50), replicas: 2, pods: pods(2, nil),
			obs: Observation{PerPod: true, Samples: []Sample{{Pod: "pod-0", Value: 1, Timestamp: ago(3 * time.Minute)}, {Pod: "pod-1", Value: 1, Timestamp: ago(3 * time.Minute)}}},
			err: ErrStale},
		{name: "a stale sample makes its pod missing", metric: cpuUtil(50), replicas: 2, pods: pods(2, nil),
			obs: Observation{PerPod: true, Samples: []Sample{{Pod: "pod-0", Value: 100, Timestamp: t0}, {Pod: "pod-1", Value: 100, Timestamp: ago(3 * time.Minute)}}},
			// 10% on one pod, the stale one assumed at 100%: 1100/2000 = 55%, ratio 1.1: hold.
			want: 2, utilization: 10, counts: [4]int{1, 0, 1, 0}},
	})
}

func TestResourceAverageValue(t *testing.T) {
	runMetricCases(t, []metricCase{
		{name: "average in integer milli-units", metric: cpuAverage(300), replicas: 3, pods: pods(3, nil),
			obs: samples(300, 500, 701), want: 5, current: 500},
		{name: "missing pods count as exactly the target on a scale-down", metric: cpuAverage(1000), replicas: 4, pods: pods(4, nil),
			obs: samples(100, 100), want: 3, current: 100},
		{name: "cpu start-up rules apply to average value too", metric: cpuAverage(300), replicas: 3,
			pods: pods(3, map[int][]func(*Pod){0: {neverReady}}), obs: samples(300, 500, 700), want: 4, current: 600},
	})
}

// Per-pod Prometheus results follow HPA's Pods-metric rules.
func TestPodsMetric(t *testing.T) {
	rps := prom("rps", TargetAverageValue, 15000)
	runMetricCases(t, []metricCase{
		{name: "scale up", metric: rps, replicas: 3, pods: pods(3, nil), obs: samples(20000, 10000, 30000), want: 4, current: 20000},
		{name: "scale down", metric: prom("rps", TargetAverageValue, 20000), replicas: 5, pods: pods(5, nil),
			obs: samples(12000, 12000, 12000, 12000, 12000), want: 3, current: 12000},
		{name: "within default tolerance", metric: prom("rps", TargetAverageValue, 20000), replicas: 3, pods: pods(3, nil),
			obs: samples(20000, 21000, 21000), want: 3, current: 20666},
		{name: "outside a 1% tolerance", metric: prom("rps", TargetAverageValue, 20000), replicas: 3, pods: pods(3, nil),
			tolerance: &Tolerances{Up: 0.01, Down: 0.01}, obs: samples(20000, 21000, 21000), want: 4},
		{name: "missing metrics: hold", metric: prom("rps", TargetAverageValue, 20000), replicas: 5, pods: pods(5, nil),
			obs: samples(20000, 19000, 21000), want: 5, current: 20000},
		{name: "a NotReady running pod counts as is (no cpu rules)", metric: rps, replicas: 3,
			pods: pods(3, map[int][]func(*Pod){2: {neverReady}}), obs: samples(50000, 10000, 30000), want: 6, counts: [4]int{3, 0, 0, 0}},
		{name: "a Pending pod is unready and counts as 0 on a scale-up", metric: rps, replicas: 3,
			// 30000 avg over 2 ready pods, ratio 2: (60000+0)/3 = 20000, ratio 1.33 x 3 = 4.
			pods: pods(3, map[int][]func(*Pod){2: {phase(corev1.PodPending)}}), obs: samples(30000, 30000), want: 4},
		{name: "keys that are not pods still count", metric: rps, replicas: 2, pods: pods(2, nil),
			obs: Observation{PerPod: true, Samples: []Sample{{Pod: "pod-0", Value: 30000}, {Pod: "pod-1", Value: 30000}, {Pod: "gone", Value: 30000}}},
			// Fast path: ratio 2 x 2 ready pods = 4 (the extra sample is in the average).
			want: 4, current: 30000},
		{name: "duplicate samples for one pod: the last wins", metric: rps, replicas: 1, pods: pods(1, nil),
			obs: Observation{PerPod: true, Samples: []Sample{{Pod: "pod-0", Value: 90000}, {Pod: "pod-0", Value: 15000}}}, want: 1, current: 15000},
	})
}

// Single values (scalar Prometheus results) follow HPA's External rules.
func TestValueMetrics(t *testing.T) {
	runMetricCases(t, []metricCase{
		{name: "average value: ceil(total / target)", metric: prom("default", TargetAverageValue, 400000), replicas: 2,
			pods: pods(2, nil), obs: scalar(2000000), want: 5, current: 2000000},
		{name: "average value: tolerance against status replicas", metric: prom("default", TargetAverageValue, 2900000), replicas: 3,
			pods: pods(3, nil), obs: scalar(8600000), want: 3},
		{name: "average value: proposal is status replicas inside tolerance", metric: prom("default", TargetAverageValue, 2150000), replicas: 3,
			status: 4, pods: pods(4, nil), obs: scalar(8600000), want: 4},
		{name: "average value: scale down", metric: prom("default", TargetAverageValue, 2867000), replicas: 5,
			pods: pods(5, nil), obs: scalar(8600000), want: 3},
		{name: "average value: overflow saturates at MaxInt32", metric: prom("default", TargetAverageValue, 1), replicas: 1,
			pods: pods(1, nil), obs: scalar(math.MaxInt64), want: math.MaxInt32},
		{name: "value: ceil(ratio x ready pods)", metric: prom("default", TargetValue, 10000), replicas: 2,
			pods: pods(2, nil), obs: scalar(30000), want: 6, current: 30000},
		{name: "value: only Running and Ready pods count", metric: prom("default", TargetValue, 10000), replicas: 3,
			pods: pods(3, map[int][]func(*Pod){2: {neverReady}}), obs: scalar(30000), want: 6},
		{name: "value: tolerance against spec replicas", metric: prom("default", TargetValue, 10000), replicas: 3,
			pods: pods(2, nil), obs: scalar(10500), want: 3},
		{name: "value: no ready pod fails instead of scaling to zero", metric: prom("default", TargetValue, 10000), replicas: 3,
			pods: pods(3, map[int][]func(*Pod){0: {neverReady}, 1: {neverReady}, 2: {neverReady}}), obs: scalar(30000), err: ErrNoReadyPods},
		{name: "value: a scalar zero is data", metric: prom("default", TargetValue, 10000), replicas: 3,
			pods: pods(3, nil), obs: scalar(0), want: 0},
		{name: "value: a per-pod result is summed", metric: prom("default", TargetValue, 10000), replicas: 2,
			pods: pods(2, nil), obs: samples(10000, 20000), want: 6, current: 30000},
		{name: "value: a stale scalar fails", metric: prom("default", TargetValue, 10000), replicas: 2,
			pods: pods(2, nil), obs: Observation{Value: 1, Timestamp: ago(5 * time.Minute)}, err: ErrStale},
		{name: "value: an empty per-pod result fails", metric: prom("default", TargetValue, 10000), replicas: 2,
			pods: pods(2, nil), obs: Observation{PerPod: true}, err: ErrNoData},
	})
}

func TestTolerance(t *testing.T) {
	cases := []struct {
		name string
		tol  Tolerances
		util int64 // per pod of 1000m, target 50%
		want int32
	}{
		{name: "upper edge 1.1 is inside (inclusive)", tol: Tolerances{Up: 0.1, Down: 0.1}, util: 550, want: 4},
		{name: "just above the upper edge scales", tol: Tolerances{Up: 0.1, Down: 0.1}, util: 560, want: 5},
		{name: "lower edge 0.9 is inside (inclusive)", tol: Tolerances{Up: 0.1, Down: 0.1}, util: 450, want: 4},
		{name: "just below the lower edge scales", tol: Tolerances{Up: 0.1, Down: 0.1}, util: 440, want: 4},
		{name: "separate widths: wide down band holds", tol: Tolerances{Up: 0.05, Down: 0.5}, util: 300, want: 4},
		{name: "separate widths: narrow up band scales", tol: Tolerances{Up: 0.05, Down: 0.5}, util: 530, want: 5},
		{name: "zero tolerance scales on any difference", tol: Tolerances{}, util: 510, want: 5},
		{name: "zero tolerance holds exactly at target", tol: Tolerances{}, util: 500, want: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(cpuUtil(50))
			spec.Tolerance = tc.tol
			in := Input{SpecReplicas: 4, StatusReplicas: 4, Pods: pods(4, nil), Metrics: []Observation{samples(tc.util, tc.util, tc.util, tc.util)}}
			d, _ := Decide(&spec, &in, settled(), t0)
			require.NoError(t, d.Metrics[0].Err)
			assert.Equal(t, tc.want, d.Metrics[0].Proposal)
		})
	}
}

func TestCeilReplicas(t *testing.T) {
	// 0.1 + 0.2 is 0.30000000000000004 at run time.
	tenth, fifth := 0.1, 0.2
	tests := []struct {
		name string
		pods float64
		want int32
	}{
		{"whole", 4, 4},
		{"a fraction more needs one pod more", 4.01, 5},
		{"float noise above a whole number is forgiven", (tenth + fifth) * 10, 3},
		{"zero", 0, 0},
		{"negative", -3, 0},
		{"NaN", math.NaN(), 0},
		{"saturates", 1e12, math.MaxInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, CeilReplicas(tt.pods))
		})
	}
}
