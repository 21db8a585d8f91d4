package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	core "k8s.io/client-go/testing"
	customapi "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	externalapi "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	cmfake "k8s.io/metrics/pkg/client/custom_metrics/fake"
	emfake "k8s.io/metrics/pkg/client/external_metrics/fake"

	"github.com/spinscale/spinscale/internal/recommender"
)

var apiNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// hpaSpec is the hpa profile with kube-controller-manager's defaults.
func hpaSpec(ms recommender.MetricSpec) *recommender.Spec {
	return &recommender.Spec{
		Profile: recommender.ProfileHPA, MinReplicas: 1, MaxReplicas: math.MaxInt32, Metrics: []recommender.MetricSpec{ms},
		Tolerance:              recommender.Tolerances{Up: 0.1, Down: 0.1},
		DownscaleStabilization: 5 * time.Minute, ScaleUpLimitFactor: 2, ScaleUpLimitMinimum: 4,
		CPUInitializationPeriod: 5 * time.Minute, InitialReadinessDelay: 30 * time.Second, MaxSampleAge: 2 * time.Minute,
	}
}

// readyPods are n Running and Ready pods, pod-0 to pod-(n-1); ready[i]
// false makes pod i Running but not Ready.
func readyPods(n int, unready ...int) []recommender.Pod {
	out := make([]recommender.Pod, n)
	for i := range out {
		out[i] = recommender.Pod{Name: fmt.Sprintf("pod-%d", i), Phase: corev1.PodRunning, HasReadyCondition: true, Ready: true,
			StartTime: apiNow.Add(-time.Hour), ReadyTransition: apiNow.Add(-time.Hour)}
	}
	for _, i := range unready {
		out[i].Ready = false
	}
	return out
}

// podValues are a Pods metric's values for pod-0, pod-1..., in milli-units,
// as an adapter returns them.
func podValues(levels ...int64) *customapi.MetricValueList {
	list := &customapi.MetricValueList{}
	for i, l := range levels {
		list.Items = append(list.Items, customapi.MetricValue{
			DescribedObject: corev1.ObjectReference{Kind: "Pod", Name: fmt.Sprintf("pod-%d", i), Namespace: "apps"},
			Metric:          customapi.MetricIdentifier{Name: "qps"},
			Timestamp:       metav1.NewTime(apiNow.Add(-10 * time.Second)),
			Value:           *resource.NewMilliQuantity(l, resource.DecimalSI),
		})
	}
	return list
}

func objectValue(level int64) *customapi.MetricValueList {
	return &customapi.MetricValueList{Items: []customapi.MetricValue{{
		DescribedObject: corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Name: "web", Namespace: "apps"},
		Metric:          customapi.MetricIdentifier{Name: "qps"},
		Timestamp:       metav1.NewTime(apiNow.Add(-10 * time.Second)),
		Value:           *resource.NewMilliQuantity(level, resource.DecimalSI),
	}}}
}

func externalValues(levels ...int64) *externalapi.ExternalMetricValueList {
	list := &externalapi.ExternalMetricValueList{}
	for _, l := range levels {
		list.Items = append(list.Items, externalapi.ExternalMetricValue{MetricName: "qps", Timestamp: metav1.NewTime(apiNow.Add(-10 * time.Second)),
			Value: *resource.NewMilliQuantity(l, resource.DecimalSI)})
	}
	return list
}

// fakeAPIs answers every custom metrics request with custom and every
// external one with external, and counts the requests.
func fakeAPIs(custom runtime.Object, external runtime.Object, customErr, externalErr error) (*MetricsAPIs, *cmfake.FakeCustomMetricsClient, *emfake.FakeExternalMetricsClient) {
	cm := &cmfake.FakeCustomMetricsClient{}
	cm.AddReactor("get", "*", func(core.Action) (bool, runtime.Object, error) { return true, custom, customErr })
	em := &emfake.FakeExternalMetricsClient{}
	em.AddReactor("list", "*", func(core.Action) (bool, runtime.Object, error) { return true, external, externalErr })
	return &MetricsAPIs{Custom: cm, External: em}, cm, em
}

// proposal runs the read through the engine as the controller does and
// returns the metric's result: HPA's replica calculator's output.
func proposal(t *testing.T, m *MetricsAPIs, ms recommender.MetricSpec, in recommender.Input) recommender.MetricResult {
	t.Helper()
	read := APIReadOf("apps", "app=web", &ms)
	obs := m.Read(context.Background(), []APIRead{read})
	require.Contains(t, obs, read)
	in.Metrics = []recommender.Observation{obs[read]}
	d, _ := recommender.Decide(hpaSpec(ms), &in, recommender.State{Initialized: true}, apiNow)
	require.Len(t, d.Metrics, 1)
	return d.Metrics[0]
}

// Cases copied from HPA's replica_calculator_test.go (TestReplicaCalcPodMetric):
// GetMetricReplicas, the AverageValue target of a Pods metric.
func TestPodsMetricAsHPA(t *testing.T) {
	for _, tc := range []struct {
		name     string
		current  int32
		pods     []recommender.Pod
		levels   []int64
		target   int64
		replicas int32
		usage    int64
	}{
		{"scale up", 3, readyPods(3), []int64{20000, 10000, 30000}, 15000, 4, 20000},
		// Readiness does not matter to Pods metrics (cpu only).
		{"scale up: unready hot-CPU pod scales less", 3, readyPods(3, 2), []int64{50000, 10000, 30000}, 15000, 6, 30000},
		{"scale down", 5, readyPods(5), []int64{12000, 12000, 12000, 12000, 12000}, 20000, 3, 12000},
		{"within default tolerance", 3, readyPods(3), []int64{20000, 21000, 21000}, 20000, 3, 20666},
		{"no change: missing metrics", 5, readyPods(5), []int64{20000, 19000, 21000}, 20000, 5, 20000},
		{"rolling update with maxSurge: extra pod missing metric", 2, readyPods(3), []int64{10000, 10000}, 17000, 2, 10000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, cm, _ := fakeAPIs(podValues(tc.levels...), nil, nil, nil)
			ms := recommender.MetricSpec{Name: "qps", Source: recommender.SourcePods, Metric: "qps", Selector: "verb=GET",
				Target: recommender.TargetAverageValue, TargetMilli: tc.target}
			r := proposal(t, m, ms, recommender.Input{SpecReplicas: tc.current, StatusReplicas: tc.current, Pods: tc.pods})
			require.NoError(t, r.Err)
			assert.Equal(t, tc.replicas, r.Proposal)
			assert.Equal(t, tc.usage, r.CurrentMilli)
			// HPA's request: the pods of the app's selector.
			require.Len(t, cm.Actions(), 1)
			get := cm.Actions()[0].(cmfake.GetForAction)
			assert.Equal(t, "qps", get.GetMetricName())
			assert.Equal(t, "app=web", get.GetLabelSelector().String())
			assert.Equal(t, "apps", get.GetNamespace())
			assert.Equal(t, "pods", get.GetResource().Resource)
		})
	}
}

// TestReplicaCalcObjectMetric and TestReplicaCalcObjectPerPodMetric.
func TestObjectMetricAsHPA(t *testing.T) {
	ref := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	for _, tc := range []struct {
		name     string
		target   recommender.TargetType
		current  int32
		pods     []recommender.Pod
		level    int64
		usage    int64
		replicas int32
	}{
		{"value: scale up", recommender.TargetValue, 3, readyPods(3), 20000, 15000, 4},
		{"value: scale up ignores unready pods", recommender.TargetValue, 3, readyPods(3, 0, 2), 50000, 10000, 5},
		{"value: scale down", recommender.TargetValue, 5, readyPods(5), 12000, 20000, 3},
		{"value: within default tolerance", recommender.TargetValue, 3, readyPods(3), 20666, 20000, 3},
		{"value: saturates", recommender.TargetValue, 3, readyPods(3), math.MaxInt64, 1, math.MaxInt32},
		{"average value: scale up", recommender.TargetAverageValue, 3, readyPods(3), 20000, 5000, 4},
		{"average value: scale down", recommender.TargetAverageValue, 5, readyPods(5), 6000, 2000, 3},
		{"average value: within tolerance", recommender.TargetAverageValue, 3, readyPods(3), 20666, 7000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, cm, _ := fakeAPIs(objectValue(tc.level), nil, nil, nil)
			ms := recommender.MetricSpec{Name: "qps", Source: recommender.SourceObject, Metric: "qps", Object: ref, Target: tc.target, TargetMilli: tc.usage}
			r := proposal(t, m, ms, recommender.Input{SpecReplicas: tc.current, StatusReplicas: tc.current, Pods: tc.pods})
			require.NoError(t, r.Err)
			assert.Equal(t, tc.replicas, r.Proposal)
			require.Len(t, cm.Actions(), 1)
			get := cm.Actions()[0].(cmfake.GetForAction)
			assert.Equal(t, "web", get.GetName())
			assert.Equal(t, "deployments.apps.custom.metrics.k8s.io", get.GetResource().GroupResource().String())
		})
	}
}

// TestReplicaCalcExternalMetric and TestReplicaCalcExternalPerPodMetric:
// the values the selector matches are summed.
func TestExternalMetricAsHPA(t *testing.T) {
	for _, tc := range []struct {
		name     string
		target   recommender.TargetType
		current  int32
		pods     []recommender.Pod
		levels   []int64
		usage    int64
		replicas int32
	}{
		{"value: scale up", recommender.TargetValue, 3, readyPods(3), []int64{8600}, 4400, 6},
		{"value: scale up ignores unready pods", recommender.TargetValue, 3, readyPods(3, 0, 1), []int64{8000, 600}, 4400, 2},
		{"value: scale down", recommender.TargetValue, 5, readyPods(5), []int64{8600}, 14334, 3},
		{"average value: scale up", recommender.TargetAverageValue, 3, readyPods(3), []int64{8600}, 2150, 4},
		{"average value: scale down", recommender.TargetAverageValue, 5, readyPods(5), []int64{8000, 600}, 2867, 3},
		{"average value: within tolerance", recommender.TargetAverageValue, 3, readyPods(3), []int64{8600}, 2900, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, em := fakeAPIs(nil, externalValues(tc.levels...), nil, nil)
			ms := recommender.MetricSpec{Name: "qps", Source: recommender.SourceExternal, Metric: "qps", Selector: "label=value",
				Target: tc.target, TargetMilli: tc.usage}
			r := proposal(t, m, ms, recommender.Input{SpecReplicas: tc.current, StatusReplicas: tc.current, Pods: tc.pods})
			require.NoError(t, r.Err)
			assert.Equal(t, tc.replicas, r.Proposal)
			require.Len(t, em.Actions(), 1)
			list := em.Actions()[0].(core.ListAction)
			assert.Equal(t, "label=value", list.GetListRestrictions().Labels.String())
			assert.Equal(t, "qps", list.GetResource().Resource)
		})
	}
}

// Two apps asking for the same metric with the same selector share one
// request; a different selector is another request.
func TestAPIReadsShared(t *testing.T) {
	m, _, em := fakeAPIs(nil, externalValues(1000), nil, nil)
	ms := recommender.MetricSpec{Source: recommender.SourceExternal, Metric: "queue", Selector: "queue=worker_tasks"}
	other := ms
	other.Selector = "queue=mail"
	a, b, c := APIReadOf("apps", "app=a", &ms), APIReadOf("apps", "app=b", &ms), APIReadOf("apps", "app=c", &other)
	assert.Equal(t, a, b, "an external read does not depend on the app's pods")
	got := m.Read(context.Background(), []APIRead{a, b, c})
	assert.Len(t, got, 2)
	assert.Len(t, em.Actions(), 2)

	// Pods reads are per pod selector.
	pm, cm, _ := fakeAPIs(podValues(1000), nil, nil, nil)
	pods := recommender.MetricSpec{Source: recommender.SourcePods, Metric: "qps"}
	pm.Read(context.Background(), []APIRead{APIReadOf("apps", "app=a", &pods), APIReadOf("apps", "app=a", &pods), APIReadOf("apps", "app=b", &pods)})
	assert.Len(t, cm.Actions(), 2)
}

// Failures are failed metrics with a stable summary: no proposal, so no
// scale-down.
func TestAPIFailures(t *testing.T) {
	gr := schema.GroupResource{Group: "custom.metrics.k8s.io", Resource: "pods/qps"}
	for _, tc := range []struct {
		name    string
		custom  runtime.Object
		err     error
		summary string
		noData  bool
	}{
		{"not served", nil, apierrors.NewNotFound(gr, "qps"), "custom.metrics.k8s.io has no such metric or object: is the metric served by the adapter, and its name and selector right?", false},
		{"adapter down", nil, apierrors.NewServiceUnavailable("service unavailable"), "custom.metrics.k8s.io unavailable: the APIService answers 503 or discovery lists no version of it: is its adapter running?", false},
		{"adapter down, seen by discovery", nil, errors.New("no known available metric versions found"), "custom.metrics.k8s.io unavailable: the APIService answers 503 or discovery lists no version of it: is its adapter running?", false},
		{"no API registered", nil, errors.New("no custom metrics API (custom.metrics.k8s.io) registered"), "custom.metrics.k8s.io unavailable: no custom metrics API (custom.metrics.k8s.io) registered", false},
		{"forbidden", nil, apierrors.NewForbidden(gr, "qps", errors.New("no")), "custom.metrics.k8s.io refused the request: Forbidden: Spinscale's ClusterRole needs get and list on custom.metrics.k8s.io", false},
		{"timeout", nil, apierrors.NewTimeoutError("slow", 1), "custom.metrics.k8s.io timed out", false},
		{"empty", podValues(), nil, "custom.metrics.k8s.io no data", true},
		{"group not served", nil, &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound,
			Message: "the server could not find the requested resource"}}, "custom.metrics.k8s.io unavailable: custom.metrics.k8s.io is not served: is an APIService registered for it?", false},
		{"adapter refuses the selector", nil, apierrors.NewBadRequest("bad selector"), "custom.metrics.k8s.io unavailable: the API answered 400 BadRequest", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := fakeAPIs(tc.custom, nil, tc.err, nil)
			ms := recommender.MetricSpec{Name: "qps", Source: recommender.SourcePods, Metric: "qps", Target: recommender.TargetAverageValue, TargetMilli: 1000}
			r := proposal(t, m, ms, recommender.Input{SpecReplicas: 5, StatusReplicas: 5, Pods: readyPods(5)})
			require.Error(t, r.Err)
			assert.Equal(t, tc.summary, recommender.Cause(r.Err))
			assert.Equal(t, tc.noData, errors.Is(r.Err, recommender.ErrNoData))
			assert.Contains(t, r.Err.Error(), `pods "qps" of pods "app=web" in namespace apps`)
		})
	}
}

// A stale value fails the metric: the app is held, never scaled down.
func TestAPIStaleHolds(t *testing.T) {
	old := externalValues(100)
	old.Items[0].Timestamp = metav1.NewTime(apiNow.Add(-10 * time.Minute))
	m, _, _ := fakeAPIs(nil, old, nil, nil)
	ms := recommender.MetricSpec{Name: "q", Source: recommender.SourceExternal, Metric: "q", Target: recommender.TargetValue, TargetMilli: 1000}
	in := recommender.Input{SpecReplicas: 5, StatusReplicas: 5, Pods: readyPods(5)}
	read := APIReadOf("apps", "", &ms)
	in.Metrics = []recommender.Observation{m.Read(context.Background(), []APIRead{read})[read]}
	d, _ := recommender.Decide(hpaSpec(ms), &in, recommender.State{Initialized: true}, apiNow)
	require.ErrorIs(t, d.Metrics[0].Err, recommender.ErrStale)
	assert.Equal(t, int32(5), d.DesiredReplicas)
}

// A read whose turn comes after the tick's end is a timeout, not data.
func TestAPIReadAfterDeadline(t *testing.T) {
	m, _, em := fakeAPIs(nil, externalValues(1), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ms := recommender.MetricSpec{Source: recommender.SourceExternal, Metric: "q"}
	read := APIReadOf("apps", "", &ms)
	obs := m.Read(ctx, []APIRead{read})[read]
	var ae *APIError
	require.ErrorAs(t, obs.Err, &ae)
	assert.Equal(t, KindTimeout, ae.Kind)
	assert.Empty(t, em.Actions())
}

// A value past int64 milli-units (about 9.2e15) saturates: it must never
// wrap to zero or a negative number and turn a scale-up into a scale-down.
func TestHugeAPIValuesSaturate(t *testing.T) {
	for _, s := range []string{"1e16", "18446744073709551", "9.3e15"} {
		q := resource.MustParse(s)
		assert.Equal(t, int64(math.MaxInt64), quantityMilli(q), s)
	}
	for _, s := range []string{"-1e16"} {
		assert.Equal(t, int64(math.MinInt64), quantityMilli(resource.MustParse(s)), s)
	}
	assert.Equal(t, int64(1500), quantityMilli(resource.MustParse("1.5")))
	assert.Equal(t, int64(9e17), quantityMilli(resource.MustParse("9e14")))
}
