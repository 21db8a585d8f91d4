package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	customapi "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	externalapi "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	cmfake "k8s.io/metrics/pkg/client/custom_metrics/fake"
	emfake "k8s.io/metrics/pkg/client/external_metrics/fake"

	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

func externalApp(extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/metrics": "- {name: queue, type: external, metric: queue_messages_ready, selector: queue=worker_tasks, targetAverageValue: 30}",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// Two apps on the same external metric and selector share one request per
// tick, and each is decided on it as HPA would (ceil(90 / 30) = 3).
func TestExternalMetricSharedAndDecided(t *testing.T) {
	podsA, _ := podsFor("a", 2)
	podsB, _ := podsFor("b", 2)
	em := &emfake.FakeExternalMetricsClient{}
	var h *harness
	em.AddReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &externalapi.ExternalMetricValueList{Items: []externalapi.ExternalMetricValue{
			{MetricName: "queue_messages_ready", Timestamp: metav1.NewTime(h.clock.Now()), Value: resource.MustParse("60")},
			{MetricName: "queue_messages_ready", Timestamp: metav1.NewTime(h.clock.Now()), Value: resource.MustParse("30")},
		}}, nil
	})
	objs := append(append(podsA, podsB...), deployment("a", 2, externalApp()), deployment("b", 2, externalApp()))
	h = build(t, setup{apis: &metrics.MetricsAPIs{External: em, Custom: &cmfake.FakeCustomMetricsClient{}}}, objs...)
	h.ctl.Once(context.Background())
	require.Len(t, em.Actions(), 1, "one request for two apps")
	list := em.Actions()[0].(k8stesting.ListAction)
	assert.Equal(t, "queue=worker_tasks", list.GetListRestrictions().Labels.String())
	assert.ElementsMatch(t, []string{
		`apps/a application/json-patch+json [{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":3}]`,
		`apps/b application/json-patch+json [{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":3}]`,
	}, h.writes())
}

// A Pods metric that fails never lets the app scale down, and the Warning
// is recorded once per change of cause, naming the entry.
func TestPodsMetricFailureHoldsAndWarnsPerCause(t *testing.T) {
	pods, names := podsFor("shop", 4)
	cm := &cmfake.FakeCustomMetricsClient{}
	var fail error
	var h *harness
	cm.AddReactor("get", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fail != nil {
			return true, nil, fail
		}
		list := &customapi.MetricValueList{}
		for _, n := range names {
			// 100 per pod against 1k: a scale-down to 1 if it were data.
			list.Items = append(list.Items, customapi.MetricValue{DescribedObject: corevObjectRef(n), Timestamp: metav1.NewTime(h.clock.Now()),
				Value: resource.MustParse("100")})
		}
		return true, list, nil
	})
	ann := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/metrics": "- {name: packets, type: pods, metric: packets-per-second, targetAverageValue: 1k}",
	}
	h = build(t, setup{apis: &metrics.MetricsAPIs{Custom: cm}}, append(pods, deployment("shop", 4, ann))...)

	gr := schema.GroupResource{Group: "custom.metrics.k8s.io", Resource: "pods/packets-per-second"}
	causes := []error{
		apierrors.NewServiceUnavailable("the adapter is restarting"),
		apierrors.NewServiceUnavailable("still restarting"), // same cause, other details
		apierrors.NewNotFound(gr, "packets-per-second"),
	}
	for _, err := range causes {
		fail = err
		for range 25 { // longer than any stabilization window
			h.ctl.Once(context.Background())
			h.clock.Step(15 * time.Second)
		}
	}
	assert.Empty(t, h.writes(), "a failed metric never scales down")
	var degraded []string
	for _, e := range h.events() {
		if strings.Contains(e, "SpinscaleMetricsDegraded") {
			degraded = append(degraded, e)
		}
	}
	require.Len(t, degraded, 2, "one Warning per cause: %v", degraded)
	assert.Contains(t, degraded[0], "spinscale.dev/metrics[packets]: custom.metrics.k8s.io unavailable: the APIService answers 503")
	assert.Contains(t, degraded[1], "spinscale.dev/metrics[packets]: custom.metrics.k8s.io has no such metric or object")
	assert.Positive(t, counterValue(t, h.inst.MetricErrors.WithLabelValues("custom-metrics")))

	// Data again: the app scales down as HPA would, after its window.
	fail = nil
	for range 25 {
		h.ctl.Once(context.Background())
		h.clock.Step(15 * time.Second)
	}
	require.NotEmpty(t, h.writes())
	assert.Contains(t, h.writes()[len(h.writes())-1], fmt.Sprintf(`"value":%d}]`, 1))
}

func corevObjectRef(pod string) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: pod}
}

// rendezvousUsage is a metrics.k8s.io source whose LIST waits for the
// metrics APIs' read to begin: it returns only if the two are read at once.
type rendezvousUsage struct {
	apiStarted <-chan struct{}
	met        bool
}

func (r *rendezvousUsage) Snapshot(_ context.Context, _ []string) *metrics.ResourceSnapshot {
	select {
	case <-r.apiStarted:
		r.met = true
	case <-time.After(5 * time.Second):
	}
	return metrics.NewResourceSnapshot(nil, nil)
}

type signallingAPIs struct {
	metrics.APISource
	started chan struct{}
	once    sync.Once
}

func (s *signallingAPIs) Read(ctx context.Context, reads []metrics.APIRead) map[metrics.APIRead]recommender.Observation {
	s.once.Do(func() { close(s.started) })
	return s.APISource.Read(ctx, reads)
}

// The sources are read at once in a tick: a slow metrics.k8s.io (or
// Prometheus, or adapter) does not hold the others' reads back.
func TestSourcesAreReadConcurrently(t *testing.T) {
	pods, _ := podsFor("a", 2)
	em := &emfake.FakeExternalMetricsClient{}
	em.AddReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &externalapi.ExternalMetricValueList{}, nil
	})
	apis := &signallingAPIs{APISource: &metrics.MetricsAPIs{External: em, Custom: &cmfake.FakeCustomMetricsClient{}}, started: make(chan struct{})}
	usage := &rendezvousUsage{apiStarted: apis.started}
	ann := externalApp("spinscale.dev/target-cpu-utilization", "50")
	h := build(t, setup{apis: apis, resources: usage}, append(pods, deployment("a", 2, ann))...)
	h.ctl.Once(context.Background())
	assert.True(t, usage.met, "the metrics APIs were read while metrics.k8s.io was being listed")
}
