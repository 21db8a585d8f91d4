package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// fakeUsage is a hand-written ResourceSource: every pod uses the same cpu.
type fakeUsage struct {
	cpuMilli int64
	err      error
	calls    int
	pods     []string
	// stamp is the samples' timestamp; zero means t0.
	stamp time.Time
	// perPod overrides cpuMilli for the pods it names.
	perPod map[string]int64
}

func (f *fakeUsage) Snapshot(_ context.Context, namespaces []string) *metrics.ResourceSnapshot {
	f.calls++
	if f.err != nil {
		return metrics.NewResourceSnapshot(nil, map[string]error{"": f.err})
	}
	pods := map[types.NamespacedName]metrics.PodUsage{}
	stamp := f.stamp
	if stamp.IsZero() {
		stamp = t0
	}
	for _, p := range f.pods {
		cpu := f.cpuMilli
		if v, ok := f.perPod[p]; ok {
			cpu = v
		}
		pods[types.NamespacedName{Namespace: "apps", Name: p}] = metrics.PodUsage{CPU: cpu, HasCPU: true, Timestamp: stamp, Window: 15 * time.Second}
	}
	return metrics.NewResourceSnapshot(pods, nil)
}

func deployment(name string, replicas int32, ann map[string]string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"core.spinkube.dev/app-name": name}},
		},
		Status: appsv1.DeploymentStatus{Replicas: replicas},
	}
}

func podsFor(app string, n int) ([]runtime.Object, []string) {
	var objs []runtime.Object
	var names []string
	for i := range n {
		name := app + "-" + string(rune('a'+i))
		names = append(names, name)
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", Labels: map[string]string{"core.spinkube.dev/app-name": app}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: t0.Add(-time.Hour)},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: t0.Add(-time.Hour)}}}},
		})
	}
	return objs, names
}

var cpuApp = map[string]string{
	"spinscale.dev/enabled":                "true",
	"spinscale.dev/max-replicas":           "10",
	"spinscale.dev/target-cpu-utilization": "50",
}

// fakeQueries is a hand-written QuerySource that records each call.
type fakeQueries struct {
	// results are by PromQL, whatever the server and parameters.
	results map[string]recommender.Observation
	calls   [][]string
}

func (f *fakeQueries) Query(_ context.Context, queries []metrics.Query) map[metrics.Query]recommender.Observation {
	var call []string
	out := map[metrics.Query]recommender.Observation{}
	for _, q := range queries {
		call = append(call, q.String())
		out[q] = f.results[q.PromQL]
	}
	f.calls = append(f.calls, call)
	return out
}

type harness struct {
	queries  *fakeQueries
	client   *fake.Clientset
	usage    *fakeUsage
	recorder *record.FakeRecorder
	ctl      *Controller
	clock    *clocktesting.FakeClock
	out      *strings.Builder
	inst     *Instruments
}

// setup varies the harness.
type setup struct {
	config func(*config.Config)
	// custom are custom resources (KEDA ScaledObjects, SpinApps) served
	// through a fake dynamic client and discovery.
	custom []runtime.Object
	// resources replaces the harness's fakeUsage as the metrics.k8s.io
	// source.
	resources metrics.ResourceSource
	// apis reads the custom and external metrics APIs.
	apis metrics.APISource
}

func newHarness(t *testing.T, mutate func(*config.Config), objs ...runtime.Object) *harness {
	t.Helper()
	return build(t, setup{config: mutate}, objs...)
}

func newHarnessWithDynamic(t *testing.T, mutate func(*config.Config), custom []runtime.Object, objs ...runtime.Object) *harness {
	t.Helper()
	return build(t, setup{config: mutate, custom: custom}, objs...)
}

func build(t *testing.T, s setup, objs ...runtime.Object) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.LeaderElection.Enabled = false
	// The harness's expected counts are HPA's; the spinscale profile's
	// own decisions are pinned in internal/recommender.
	cfg.Profile = config.ProfileHPA
	if s.config != nil {
		s.config(&cfg)
	}
	h := &harness{
		queries:  &fakeQueries{results: map[string]recommender.Observation{}},
		client:   fake.NewClientset(objs...),
		usage:    &fakeUsage{},
		recorder: record.NewFakeRecorder(100),
		clock:    clocktesting.NewFakeClock(t0),
		out:      &strings.Builder{},
		inst:     NewInstruments(prometheus.NewRegistry()),
	}
	var resources metrics.ResourceSource = h.usage
	if s.resources != nil {
		resources = s.resources
	}
	// The tracker cannot patch the scale subresource: record the write
	// and answer as the API server would.
	h.client.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		return true, &appsv1.Deployment{}, nil
	})
	var dyn dynamic.Interface
	if s.custom != nil {
		h.client.Resources = []*metav1.APIResourceList{
			{GroupVersion: "keda.sh/v1alpha1", APIResources: []metav1.APIResource{{Name: "scaledobjects", Namespaced: true, Kind: "ScaledObject"}}},
			{GroupVersion: "core.spinkube.dev/v1alpha1", APIResources: []metav1.APIResource{{Name: "spinapps", Namespaced: true, Kind: "SpinApp"}}},
		}
		dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
			scaledObjectGVR: "ScaledObjectList", spinAppGVR: "SpinAppList",
		}, s.custom...)
	}
	ctl, err := New(Options{
		Config: cfg, Logger: zap.NewNop(), Client: h.client, Dynamic: dyn, Queries: h.queries,
		APIs: s.apis, Resources: resources, Scaler: actuator.Scaler{Client: h.client, Now: h.clock.Now},
		Events:      &actuator.Events{Recorder: h.recorder},
		Printer:     &actuator.Printer{Out: h.out},
		Instruments: h.inst, Clock: h.clock, Identity: "test",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, ctl.Start(ctx, time.Minute))
	h.ctl = ctl
	return h
}

// writes returns the scale patches sent to the API server.
func (h *harness) writes() []string {
	var out []string
	for _, a := range h.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetSubresource() == "scale" {
			out = append(out, p.GetNamespace()+"/"+p.GetName()+" "+string(p.GetPatchType())+" "+string(p.GetPatch()))
		}
	}
	return out
}

func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestScaleUpPatchesScaleSubresourceOnce(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // 100% of a 100m request: 2 → 4
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{`apps/shop application/json-patch+json [{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":4}]`}, h.writes())
	ev := h.events()
	require.Len(t, ev, 1)
	assert.Contains(t, ev[0], "Normal SpinscaleRescaled 2 → 4")
	assert.Equal(t, 1, h.usage.calls, "one metrics snapshot per tick")
}

func TestDryRunNeverWrites(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, func(c *config.Config) { c.DryRun = true }, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	assert.Contains(t, h.out.String(), "NAMESPACE")
	assert.Contains(t, h.out.String(), "shop")
	assert.Contains(t, h.out.String(), "scale-up")
}

func TestPerAppDryRunAnnotation(t *testing.T) {
	pods, names := podsFor("shop", 2)
	ann := map[string]string{"spinscale.dev/dry-run": "true"}
	for k, v := range cpuApp {
		ann[k] = v
	}
	h := newHarness(t, nil, append(pods, deployment("shop", 2, ann))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	assert.Contains(t, h.out.String(), "2 → 4")
}

func TestInvalidAnnotationsWarnOncePerChangeAndNeverWrite(t *testing.T) {
	pods, names := podsFor("shop", 2)
	bad := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "zero", "spinscale.dev/target-cpu-utilization": "50"}
	h := newHarness(t, nil, append(pods, deployment("shop", 2, bad))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	ev := h.events()
	require.Len(t, ev, 1, "one Warning for two ticks")
	assert.Contains(t, ev[0], "Warning SpinscaleInvalidAnnotations")
	assert.Contains(t, ev[0], `spinscale.dev/max-replicas: "zero"`)
}

func TestRefusesWhenAnHPATargetsTheDeployment(t *testing.T) {
	pods, names := podsFor("shop", 2)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps"},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "shop", APIVersion: "apps/v1"}, MaxReplicas: 3},
	}
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp), hpa)...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	ev := h.events()
	require.Len(t, ev, 1)
	assert.Contains(t, ev[0], "Warning SpinscaleRefused")
	assert.Contains(t, ev[0], "HorizontalPodAutoscaler shop")
}

func TestNoScaleDownWhenMetricsAreUnavailable(t *testing.T) {
	pods, _ := podsFor("shop", 4)
	h := newHarness(t, nil, append(pods, deployment("shop", 4, cpuApp))...)
	h.usage.err = metrics.ErrUnavailable
	for range 30 { // 7.5 minutes of ticks: longer than any window
		h.ctl.Once(context.Background())
		h.clock.Step(15 * time.Second)
	}
	assert.Empty(t, h.writes())
	ev := h.events()
	require.Len(t, ev, 1, "degraded is reported once")
	assert.Contains(t, ev[0], "Warning SpinscaleMetricsDegraded")
}

// A failed Prometheus metric is named in the Warning by the annotation that
// holds its query, so the user knows what to fix; elsewhere it goes by its
// name, for the prometheus-query annotation the metric its query selects.
func TestDegradedNamesTheQueryAnnotation(t *testing.T) {
	pods, _ := podsFor("shop", 2)
	ann := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/prometheus-query":                `sum(rate(traefik_service_requests_total[1m]))`,
		"spinscale.dev/prometheus-target-average-value": "400",
		"spinscale.dev/metrics":                         "- {name: queue, query: max(queue_depth), targetValue: 10}",
	}
	h := newHarness(t, nil, append(pods, deployment("shop", 2, ann))...)
	failed := recommender.Observation{Err: fmt.Errorf("%w: empty result", recommender.ErrNoData)}
	h.queries.results[`sum(rate(traefik_service_requests_total[1m]))`] = failed
	h.queries.results[`max(queue_depth)`] = failed
	h.ctl.Once(context.Background())
	ev := h.events()
	require.Len(t, ev, 1)
	assert.Contains(t, ev[0], "Warning SpinscaleMetricsDegraded")
	assert.Contains(t, ev[0], "spinscale.dev/prometheus-query: no data")
	assert.Contains(t, ev[0], "spinscale.dev/metrics[queue]: no data")
	assert.Equal(t, 400.0, gaugeValue(t, h.inst.AppTarget.WithLabelValues("apps", "shop", "traefik_service_requests_total")),
		"the app's metrics name the metric as decisions do")
}

func TestOneAppsFailureDoesNotStopOthers(t *testing.T) {
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	bad := map[string]string{"spinscale.dev/enabled": "true"}
	objs := append(append(podsA, podsB...), deployment("shop", 2, bad), deployment("cart", 2, cpuApp))
	h := newHarness(t, nil, objs...)
	h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
	h.ctl.Once(context.Background())
	writes := h.writes()
	require.Len(t, writes, 1)
	assert.Contains(t, writes[0], "apps/cart")
}

func TestScaleToZeroByHandPausesScaling(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 0, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
}

func TestHealthFailsWhenTicksStop(t *testing.T) {
	h := newHarness(t, nil)
	assert.NoError(t, h.ctl.Healthy(), "a standby is healthy")
	h.ctl.Once(context.Background())
	assert.NoError(t, h.ctl.Healthy())
	h.clock.Step(46 * time.Second)
	assert.ErrorContains(t, h.ctl.Healthy(), "no tick completed")
	assert.True(t, h.ctl.Ready())
}

func TestRefusesWhenAScaledObjectTargetsTheDeployment(t *testing.T) {
	pods, names := podsFor("shop", 2)
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "shop-so", "namespace": "apps"},
		"spec":     map[string]any{"scaleTargetRef": map[string]any{"name": "shop"}},
	}}
	h := newHarnessWithDynamic(t, nil, []runtime.Object{so}, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	ev := h.events()
	require.Len(t, ev, 1)
	assert.Contains(t, ev[0], "Warning SpinscaleRefused")
	assert.Contains(t, ev[0], "KEDA ScaledObject shop-so")
}

func TestSpinAppEnableAutoscaling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		writes  int
	}{{"refused while enableAutoscaling is false", false, 0}, {"scaled once it is true", true, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			pods, names := podsFor("shop", 2)
			app := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp",
				"metadata": map[string]any{"name": "shop", "namespace": "apps"},
				"spec":     map[string]any{"enableAutoscaling": tc.enabled},
			}}
			d := deployment("shop", 2, cpuApp)
			d.OwnerReferences = []metav1.OwnerReference{{APIVersion: "core.spinkube.dev/v1alpha1", Kind: "SpinApp", Name: "shop"}}
			h := newHarnessWithDynamic(t, nil, []runtime.Object{app}, append(pods, d)...)
			h.usage.pods, h.usage.cpuMilli = names, 100
			h.ctl.Once(context.Background())
			assert.Len(t, h.writes(), tc.writes)
			if !tc.enabled {
				ev := h.events()
				require.Len(t, ev, 1)
				assert.Contains(t, ev[0], "spec.enableAutoscaling false")
			}
		})
	}
}

// Apps sharing a PromQL query share one execution per tick.
func TestOneQueryPerDistinctPromQLPerTick(t *testing.T) {
	rps := func(target string) map[string]string {
		return map[string]string{
			"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
			"spinscale.dev/prometheus-query":                `sum(rate(spin_request_count_total[1m]))`,
			"spinscale.dev/prometheus-target-average-value": target,
		}
	}
	podsA, _ := podsFor("shop", 2)
	podsB, _ := podsFor("cart", 2)
	h := newHarness(t, nil, append(append(podsA, podsB...), deployment("shop", 2, rps("400")), deployment("cart", 2, rps("1000")))...)
	h.queries.results[`sum(rate(spin_request_count_total[1m]))`] = recommender.Observation{Value: 2000000, Timestamp: t0}
	h.ctl.Once(context.Background())
	assert.Equal(t, [][]string{{`sum(rate(spin_request_count_total[1m]))`}}, h.queries.calls)
	assert.ElementsMatch(t, []string{
		`apps/shop application/json-patch+json [{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":4}]`,
	}, h.writes(), "shop: ceil(2000/400) = 5 capped at 4; cart: ceil(2000/1000) = 2 holds")
}

// The sync timeout bounds only the wait: the caches keep following the API
// server after Start has returned (and its wait has ended).
func TestCachesKeepUpdatingAfterTheSyncTimeout(t *testing.T) {
	client := fake.NewClientset(deployment("shop", 2, cpuApp))
	ctl, err := New(Options{Config: config.Default(), Logger: zap.NewNop(), Client: client, Scaler: nopScaler{}, Printer: nopScaler{},
		Events: &actuator.Events{}, Instruments: NewInstruments(prometheus.NewRegistry()), Clock: clocktesting.NewFakeClock(t0)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, ctl.Start(ctx, time.Second))

	_, err = client.AppsV1().Deployments("apps").Create(ctx, deployment("cart", 1, cpuApp), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ctl.managed()) == 2 }, 5*time.Second, 10*time.Millisecond,
		"a Deployment created after Start reaches the cache")
}

// Dry-run lists every opted-in app, also those left alone without a decision.
func TestDryRunListsAppsLeftAlone(t *testing.T) {
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "apps"},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "cart"}, MaxReplicas: 3},
	}
	bad := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "lots", "spinscale.dev/target-cpu-utilization": "50"}
	h := newHarness(t, func(c *config.Config) { c.DryRun = true }, append(append(podsA, podsB...), deployment("shop", 2, bad), deployment("cart", 2, cpuApp), hpa)...)
	h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
	h.ctl.Once(context.Background())
	out := h.out.String()
	assert.Regexp(t, `apps\s+cart\s+<unknown>\s+-\s+-\s+2\s+2\s+none\s+hold: not scaling: HorizontalPodAutoscaler cart`, out)
	assert.Regexp(t, `apps\s+shop\s+<unknown>\s+-\s+-\s+2\s+2\s+none\s+hold: invalid annotations: spinscale.dev/max-replicas: "lots"`, out)
	assert.Empty(t, h.writes())
}
