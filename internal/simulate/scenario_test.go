package simulate

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// cpuApp is the annotations block most tests share.
const cpuApp = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-cpu-utilization: "50"
`

func load(t *testing.T, doc string) *Scenario {
	t.Helper()
	sc, err := Load([]byte(doc))
	require.NoError(t, err)
	return sc
}

func problems(t *testing.T, doc string) []string {
	t.Helper()
	_, err := Load([]byte(doc))
	require.Error(t, err)
	var se *Error
	require.True(t, errors.As(err, &se), "want *Error, got %T: %v", err, err)
	out := make([]string, len(se.Errs))
	for i, fe := range se.Errs {
		out[i] = fe.Error()
	}
	return out
}

// TestLoadReportsEveryProblemWithItsPath: one run lists all problems, each
// naming the field it concerns.
func TestLoadReportsEveryProblemWithItsPath(t *testing.T) {
	got := problems(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: 10
  spinscale.dev/target-cpu-utilization: "50"
config:
  tolerence: 0.2
  prometheus: {adress: x}
state:
  scaleEvents: [{secondsAgo: 10, change: 0}]
steps:
  - at: 30
    replicas: -1
    pods:
      - {name: a, redy: true}
      - {name: a, phase: Runing}
  - at: 15
    pods:
      - {name: b, ready: "yes", containers: [{requests: {cpu: 100m, gpu: 1}}]}
  - at: 45
    pods:
      - name: c
        containers:
          - requests: {cpu: abc}
            usage: {memory: -1Mi}
    prometheus:
      rps: .nan
`)
	want := []string{
		`annotations[spinscale.dev/max-replicas]: Invalid value: 10: not a string`,
		`config.tolerence: Forbidden: unknown field`,
		`config.prometheus.adress: Forbidden: unknown field`,
		`state.scaleEvents[0].change: Invalid value: 0: not a change`,
		`steps[0].replicas: Invalid value: -1: out of range`,
		`steps[0].pods[0].redy: Forbidden: unknown field (allowed: name, phase, ready,`,
		`steps[0].pods[1].name: Duplicate value: "a": used by another pod`,
		`steps[0].pods[1].phase: Unsupported value: "Runing": supported values: "Pending", "Running"`,
		`steps[1].at: Invalid value: 15: before the previous step's at (30)`,
		`steps[1].pods[0].ready: Invalid value: "yes": not a boolean`,
		`steps[1].pods[0].containers[0].requests.gpu: Forbidden: unknown field (allowed: cpu, memory)`,
		`steps[2].pods[0].containers[0].requests.cpu: Invalid value: "abc": not a quantity`,
		`steps[2].pods[0].containers[0].usage.memory: Invalid value: "-1Mi": negative`,
		`steps[2].prometheus.rps: Invalid value: NaN: not a finite number`,
	}
	for _, w := range want {
		assert.True(t, containsPrefix(got, w), "missing problem %q in:\n%v", w, got)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

func TestLoadRejectsBadAnnotationsAndConfig(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not enabled", `
annotations: {spinscale.dev/max-replicas: "3", spinscale.dev/target-cpu-utilization: "50"}
state: {replicas: 1}
steps: [{}]`, `annotations[spinscale.dev/enabled]: Required value: must be "true"`},
		{"enabled false", `
annotations: {spinscale.dev/enabled: "false", spinscale.dev/max-replicas: "3", spinscale.dev/target-cpu-utilization: "50"}
state: {replicas: 1}
steps: [{}]`, `annotations[spinscale.dev/enabled]: Invalid value: "false": must be "true"`},
		{"no annotations", `
state: {replicas: 1}
steps: [{}]`, `annotations[spinscale.dev/enabled]: Required value: must be "true"`},
		{"invalid annotation names its key", `
annotations: {spinscale.dev/enabled: "true", spinscale.dev/max-replicas: "many", spinscale.dev/target-cpu-utilization: "50"}
state: {replicas: 1}
steps: [{}]`, `annotations[spinscale.dev/max-replicas]: Invalid value: "many": must be an integer`},
		{"config out of range", cpuApp + `
config: {tolerance: 3}
state: {replicas: 1}
steps: [{}]`, `config.tolerance: Invalid value: 3 is out of range: allowed 0 to 1`},
		{"steps missing", cpuApp, `steps: Required value: a list of at least one step`},
		{"steps empty", cpuApp + `steps: []`, `steps: Required value: must list at least one step`},
		{"first replicas unknown", cpuApp + `steps: [{at: 0}]`, `state.replicas: Required value: when steps[0] does not set replicas`},
		{"prometheus result for an unknown metric", cpuApp + `
state: {replicas: 1}
steps: [{prometheus: {rps: 10}}]`, `steps[0].prometheus.rps: Not found: "rps": the app has no Prometheus metric of this name (its Prometheus metrics: none)`},
		{"prometheus-query results given twice", `
annotations: {spinscale.dev/enabled: "true", spinscale.dev/max-replicas: "10",
  spinscale.dev/prometheus-query: "sum(rate(requests[1m]))", spinscale.dev/prometheus-target-value: "400"}
state: {replicas: 1}
steps: [{prometheus: {requests: 10, default: 10}}]`, `steps[0].prometheus.default: Duplicate value: "default": the results of spinscale.dev/prometheus-query are given twice: as requests and as default`},
		{"prometheus result for an unknown metric names the alias", `
annotations: {spinscale.dev/enabled: "true", spinscale.dev/max-replicas: "10",
  spinscale.dev/prometheus-query: "sum(rate(requests[1m]))", spinscale.dev/prometheus-target-value: "400"}
state: {replicas: 1}
steps: [{prometheus: {rps: 10}}]`, `steps[0].prometheus.rps: Not found: "rps": the app has no Prometheus metric of this name (its Prometheus metrics: requests (or default))`},
		{"unknown top-level field", cpuApp + `
stats: {replicas: 1}
steps: [{replicas: 1}]`, `stats: Forbidden: unknown field (allowed: annotations, config, state, steps)`},
		{"not a mapping", `[1, 2]`, `scenario: Invalid value: [1,2]: not a mapping`},
		{"not YAML", "steps: [", `scenario: Invalid value: not valid YAML or JSON`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.doc)
			assert.True(t, containsPrefix(got, tc.want), "want %q in:\n%v", tc.want, got)
		})
	}
}

// TestLoadTraceKeysSelectTheLoadTraceForm: any of workload, sim, trace or
// traceFile makes the scenario a load-trace one, whose problems are those of
// that form (steps is not one of its fields).
func TestLoadTraceKeysSelectTheLoadTraceForm(t *testing.T) {
	for _, key := range []string{"workload", "sim", "trace", "traceFile"} {
		t.Run(key, func(t *testing.T) {
			got := problems(t, cpuApp+key+": null\nsteps: [{}]\n")
			assert.True(t, containsPrefix(got, "steps: Forbidden: not part of a load-trace scenario"), "%v", got)
		})
	}
}

// TestRecommendationsEmptyVersusAbsent: absent means first sight (the
// engine seeds the history, so no scale-down for one window); present, even
// empty, is exactly the controller's memory.
func TestRecommendationsEmptyVersusAbsent(t *testing.T) {
	idle := `
steps:
  - pods:
      - {name: a, containers: [{requests: {cpu: 100m}, usage: {cpu: 10m}}]}
      - {name: b, containers: [{requests: {cpu: 100m}, usage: {cpu: 10m}}]}
      - {name: c, containers: [{requests: {cpu: 100m}, usage: {cpu: 10m}}]}
      - {name: d, containers: [{requests: {cpu: 100m}, usage: {cpu: 10m}}]}
`
	t.Run("absent", func(t *testing.T) {
		sc := load(t, cpuApp+"state: {replicas: 4}\n"+idle)
		assert.False(t, sc.State.Initialized)
		d := sc.Run()[0].Decision
		assert.Equal(t, int32(1), d.Recommendation)
		assert.Equal(t, int32(4), d.DesiredReplicas, "seeded with 4: held")
		assert.Equal(t, recommender.StageStabilization, d.LimitedBy)
	})
	t.Run("empty", func(t *testing.T) {
		sc := load(t, cpuApp+"state: {replicas: 4, recommendations: []}\n"+idle)
		assert.True(t, sc.State.Initialized)
		assert.Empty(t, sc.State.Recommendations)
		d := sc.Run()[0].Decision
		assert.Equal(t, int32(1), d.DesiredReplicas, "nothing remembered: scale down at once")
		assert.Equal(t, recommender.StageNone, d.LimitedBy)
	})
	t.Run("listed", func(t *testing.T) {
		sc := load(t, cpuApp+`
state:
  replicas: 4
  recommendations: [{secondsAgo: 30, replicas: 3}, {secondsAgo: 400, replicas: 9}, {secondsAgo: 200, replicas: 2}]
`+idle)
		require.True(t, sc.State.Initialized)
		// Oldest first, relative to the first step (at 0 = Epoch).
		assert.Equal(t, []recommender.TimedRecommendation{
			{Replicas: 9, At: Epoch.Add(-400 * time.Second)},
			{Replicas: 2, At: Epoch.Add(-200 * time.Second)},
			{Replicas: 3, At: Epoch.Add(-30 * time.Second)},
		}, sc.State.Recommendations)
		d := sc.Run()[0].Decision
		assert.Equal(t, int32(3), d.DesiredReplicas, "9 is out of the 5m window; 3 is the highest inside")
	})
}

func TestStateScaleEventsAreSigned(t *testing.T) {
	sc := load(t, cpuApp+`
state:
  replicas: 2
  scaleEvents: [{secondsAgo: 10, change: 2}, {secondsAgo: 20, change: -3}]
steps: [{at: 100}]
`)
	t0 := Epoch.Add(100 * time.Second)
	assert.Equal(t, []recommender.ScaleEvent{{Change: 2, At: t0.Add(-10 * time.Second)}}, sc.State.ScaleUpEvents)
	assert.Equal(t, []recommender.ScaleEvent{{Change: 3, At: t0.Add(-20 * time.Second)}}, sc.State.ScaleDownEvents)
	assert.False(t, sc.State.Initialized, "events alone do not replace the recommendation history")
}

func TestStepDefaults(t *testing.T) {
	sc := load(t, cpuApp+`
config: {interval: 30s}
state: {replicas: 2, statusReplicas: 1}
steps:
  - pods:
      - {name: a, containers: [{requests: {cpu: 100m}, usage: {cpu: 100m}}]}
      - {name: b, containers: [{requests: {cpu: 100m}, usage: {cpu: 100m}}]}
  - {}
  - {at: 100, replicas: 7, statusReplicas: 6}
  - {}
`)
	// at: the previous step's plus the controller interval, from 0.
	var ats []float64
	for _, s := range sc.Steps {
		ats = append(ats, s.At)
	}
	assert.Equal(t, []float64{0, 30, 100, 130}, ats)

	pod := sc.Steps[0].Pods[0]
	assert.Equal(t, corev1.PodRunning, pod.Phase)
	assert.True(t, pod.Ready)
	assert.True(t, pod.HasReadyCondition)
	assert.Equal(t, Epoch.Add(-longAgo), pod.StartTime)
	assert.Equal(t, Epoch.Add(-longAgo), pod.ReadyTransition)

	res := sc.Run()
	// Step 0 observes state.replicas; 200% → ceil(4 × 2) = 4.
	assert.Equal(t, int32(2), res[0].Decision.CurrentReplicas)
	assert.Equal(t, int32(4), res[0].Decision.DesiredReplicas)
	// Step 1 observes the previous decision (no pods: the metric fails, hold).
	assert.Equal(t, int32(4), res[1].Decision.CurrentReplicas)
	assert.Equal(t, recommender.StageMissingMetrics, res[1].Decision.LimitedBy)
	assert.Equal(t, int32(7), res[2].Decision.CurrentReplicas)
	assert.Equal(t, int32(7), res[3].Decision.CurrentReplicas)
}

// TestPodSamplesFollowMetricsServer: a pod has a sample for a resource only
// if every container reported it; its value is their sum; requests are
// summed and a container without one is named.
func TestPodSamplesFollowMetricsServer(t *testing.T) {
	sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-cpu-utilization: "50"
  spinscale.dev/target-memory-average-value: 100Mi
state: {replicas: 3}
steps:
  - at: 10
    pods:
      - name: both
        metricsAgeSeconds: 5
        metricsWindowSeconds: 60
        containers:
          - {name: app, requests: {cpu: 100m, memory: 64Mi}, usage: {cpu: 30m, memory: 10Mi}}
          - {name: side, requests: {cpu: 0.05}, usage: {cpu: 20m}}
      - name: none
        containers: []
      - {name: pending, phase: Pending, ready: false, deleting: true, startedSecondsAgo: 3, readySecondsAgo: 2}
`)
	s := sc.Steps[0]
	now := Epoch.Add(10 * time.Second)
	require.Len(t, s.Pods, 3)
	assert.Equal(t, recommender.Request{Milli: 150}, s.Pods[0].CPU)
	assert.Equal(t, recommender.Request{Milli: 64 << 20 * 1000, MissingIn: "side"}, s.Pods[0].Memory)
	assert.Equal(t, recommender.Pod{Name: "pending", Phase: corev1.PodPending, Deleting: true, HasReadyCondition: true,
		StartTime: now.Add(-3 * time.Second), ReadyTransition: now.Add(-2 * time.Second)}, s.Pods[2])

	require.Len(t, s.Metrics, 2)
	assert.Equal(t, recommender.Observation{PerPod: true, Samples: []recommender.Sample{
		{Pod: "both", Value: 50, Timestamp: now.Add(-5 * time.Second), Window: time.Minute},
	}}, s.Metrics[0], "cpu: summed over containers")
	assert.Empty(t, s.Metrics[1].Samples, "memory: one container did not report it, so the pod has no sample")
	assert.ErrorIs(t, s.Metrics[1].Err, recommender.ErrNoData)
	assert.EqualError(t, s.Metrics[1].Err, "no data: metrics.k8s.io has no memory sample for the app's 3 pods", "as the controller's source says it")
}

// TestPodLevelRequests: a pod's `resources.requests` is its request, as in
// the controller (recommender.PodRequests).
func TestPodLevelRequests(t *testing.T) {
	sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-cpu-utilization: "50"
state: {replicas: 1, recommendations: []}
steps:
  - pods:
      - name: web-0
        resources: {requests: {cpu: "1"}}
        containers:
          - {name: app, usage: {cpu: 800m}}
`)
	require.Len(t, sc.Steps[0].Pods, 1)
	assert.Equal(t, recommender.Request{Milli: 1000, PodLevel: true}, sc.Steps[0].Pods[0].CPU)
	d := sc.Run()[0].Decision
	require.NoError(t, d.Metrics[0].Err)
	assert.Equal(t, int32(80), d.Metrics[0].Utilization)
	assert.Equal(t, int32(2), d.DesiredReplicas)
}

func TestPrometheusResults(t *testing.T) {
	sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: sum(rate(requests[1m]))
  spinscale.dev/prometheus-target-average-value: "400"
state: {replicas: 2}
steps:
  - prometheus: {default: 1234.5678}
  - prometheus: {default: 0}
  - prometheus: {default: {a: 300, not-a-pod: 100.5}}
  - prometheus: {default: {error: timeout}}
  - prometheus: {default: null}
  - {}
`)
	obs := func(i int) recommender.Observation { return sc.Steps[i].Metrics[0] }
	assert.Equal(t, int64(1234568), obs(0).Value)
	assert.False(t, obs(0).PerPod)
	assert.True(t, sc.Steps[0].Time.Equal(obs(0).Timestamp), "timestamp %v", obs(0).Timestamp)
	assert.NoError(t, obs(1).Err, "a scalar 0 is data")
	assert.Equal(t, int64(0), obs(1).Value)
	assert.True(t, obs(2).PerPod)
	require.Len(t, obs(2).Samples, 2)
	for i, want := range []recommender.Sample{{Pod: "a", Value: 300000}, {Pod: "not-a-pod", Value: 100500}} {
		got := obs(2).Samples[i]
		assert.Equal(t, want.Pod, got.Pod, "keys that are not pods are passed through")
		assert.Equal(t, want.Value, got.Value)
		assert.True(t, sc.Steps[2].Time.Equal(got.Timestamp), "timestamp %v", got.Timestamp)
	}

	// Failures read as the Prometheus source reports them.
	const q = `query "sum(rate(requests[1m]))"`
	var qe *metrics.QueryError
	require.ErrorAs(t, obs(3).Err, &qe)
	assert.Equal(t, metrics.KindUnavailable, qe.Kind)
	assert.EqualError(t, obs(3).Err, "prometheus unavailable: "+q+": timeout")
	require.ErrorAs(t, obs(4).Err, &qe)
	assert.Equal(t, metrics.KindEmpty, qe.Kind)
	assert.EqualError(t, obs(4).Err, "no data: "+q+": empty result")
	assert.ErrorIs(t, obs(4).Err, recommender.ErrNoData)
	assert.EqualError(t, obs(5).Err, "no data: no result for metric requests in this step")
	assert.ErrorIs(t, obs(5).Err, recommender.ErrNoData, "a query without a result is no data, as in the controller")
}

// The prometheus-query metric is named after the metric its query selects;
// a scenario gives its results under that name, or under "default".
func TestPrometheusQueryMetricName(t *testing.T) {
	for _, key := range []string{"requests", "default"} {
		t.Run(key, func(t *testing.T) {
			sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: sum(rate(requests[1m]))
  spinscale.dev/prometheus-target-average-value: "400"
state: {replicas: 2}
steps:
  - prometheus: {`+key+`: 1200}
`)
			require.Len(t, sc.Spec.Metrics, 1)
			assert.Equal(t, "requests", sc.Spec.Metrics[0].Name)
			require.NoError(t, sc.Steps[0].Metrics[0].Err)
			assert.Equal(t, int64(1200000), sc.Steps[0].Metrics[0].Value)
		})
	}
}

// TestExtremeQuantitiesAreRefusedQuickly: apimachinery takes minutes to parse
// "1e-2147483647" and panics comparing "1e2147483647"; a scenario with them
// is a clear error, not a hang.
func TestExtremeQuantitiesAreRefusedQuickly(t *testing.T) {
	got := problems(t, cpuApp+`
state: {replicas: 1}
steps:
  - pods:
      - name: a
        containers:
          - requests: {cpu: "1e2147483647", memory: "99999999999999999999999999999999999"}
            usage: {cpu: "1e-2147483647"}
`)
	assert.Len(t, got, 3)
	for _, p := range got {
		assert.Contains(t, p, ": not a quantity")
	}
}

// state.scaledToZero starts a scenario at a zero Spinscale made, which the
// first step wakes from.
func TestScenarioStartsAtARecordedZero(t *testing.T) {
	sc, err := Load([]byte(`
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/min-replicas: "0"
  spinscale.dev/max-replicas: "10"
  spinscale.dev/metrics: "- {name: queue, query: q, targetAverageValue: 10}"
state: {replicas: 0, scaledToZero: true}
steps:
  - {at: 0, prometheus: {queue: 35}}
`))
	require.NoError(t, err)
	assert.True(t, sc.ScaledToZero)
	res := sc.Run()
	require.Len(t, res, 1)
	assert.Equal(t, int32(4), res[0].Decision.DesiredReplicas, "ceil(35/10) = 4 from zero")
	assert.Equal(t, recommender.ZeroClear, res[0].Decision.Zero)
}

// simulate replays a metric's own fallback: the failure clock runs across
// steps, and the fallback count applies once it has lasted fallbackAfter.
func TestScenarioReplaysAMetricFallback(t *testing.T) {
	sc, err := Load([]byte(`
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/scale-down-stabilization: 0s
  spinscale.dev/metrics: |
    - {name: queue, query: q, targetAverageValue: 10, fallbackReplicas: 6, fallbackAfter: 30s}
state: {replicas: 2}
steps:
  - {at: 0, prometheus: {queue: 20}}
  - {at: 15, prometheus: {queue: {error: "connection refused"}}}
  - {at: 30, prometheus: {queue: {error: "connection refused"}}}
  - {at: 45, prometheus: {queue: {error: "connection refused"}}}
`))
	require.NoError(t, err)
	res := sc.Run()
	require.Len(t, res, 4)
	assert.Equal(t, int32(2), res[0].Decision.DesiredReplicas)
	assert.Equal(t, recommender.StageMissingMetrics, res[1].Decision.LimitedBy, "failing for 0s")
	assert.Equal(t, recommender.StageMissingMetrics, res[2].Decision.LimitedBy, "failing for 15s")
	assert.True(t, res[3].Decision.Metrics[0].Fallback, "failing for 30s")
	assert.Equal(t, int32(6), res[3].Decision.DesiredReplicas)
}

// A step may change the annotations from that step on: here a pause is set,
// then lifted, as KEDA's paused-replicas is.
func TestStepsChangeTheAnnotations(t *testing.T) {
	sc, err := Load([]byte(`
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/metrics: "- {name: queue, query: q, targetAverageValue: 10}"
state: {replicas: 2}
steps:
  - {at: 0, prometheus: {queue: 50}}
  - {at: 15, prometheus: {queue: 80}, annotations: {spinscale.dev/paused-replicas: "3"}}
  - {at: 30, prometheus: {queue: 80}}
  - {at: 45, prometheus: {queue: 80}, annotations: {spinscale.dev/paused-replicas: null}}
`))
	require.NoError(t, err)
	res := sc.Run()
	require.Len(t, res, 4)
	assert.Equal(t, int32(4), res[0].Decision.DesiredReplicas, "ceil(50/10) = 5, capped at max(2×2, 4)")
	assert.Equal(t, int32(3), res[1].Decision.DesiredReplicas, "paused-replicas 3")
	assert.Equal(t, recommender.StagePaused, res[2].Decision.LimitedBy, "still paused")
	assert.Equal(t, int32(6), res[3].Decision.DesiredReplicas, "lifted: ceil(80/10) = 8, capped at max(2×3, 4)")

	_, err = Load([]byte(`
annotations: {spinscale.dev/enabled: "true", spinscale.dev/max-replicas: "10", spinscale.dev/target-cpu-utilization: "50"}
state: {replicas: 2}
steps:
  - {at: 0, annotations: {spinscale.dev/max-replicas: "lots"}}
`))
	assert.ErrorContains(t, err, `steps[0].annotations[spinscale.dev/max-replicas]: Invalid value: "lots"`)
}
