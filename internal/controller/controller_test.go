package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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
}

func (f *fakeUsage) Snapshot(_ context.Context, namespaces []string) *metrics.ResourceSnapshot {
	f.calls++
	if f.err != nil {
		return metrics.NewResourceSnapshot(nil, map[string]error{"": f.err})
	}
	pods := map[types.NamespacedName]metrics.PodUsage{}
	for _, p := range f.pods {
		pods[types.NamespacedName{Namespace: "apps", Name: p}] = metrics.PodUsage{CPU: f.cpuMilli, HasCPU: true, Timestamp: t0, Window: 15 * time.Second}
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
	results map[string]recommender.Observation
	calls   [][]string
}

func (f *fakeQueries) Query(_ context.Context, queries []string) map[string]recommender.Observation {
	f.calls = append(f.calls, queries)
	out := map[string]recommender.Observation{}
	for _, q := range queries {
		out[q] = f.results[q]
	}
	return out
}

type harness struct {
	queries  *fakeQueries
	client   *fake.Clientset
	dynamic  *dynamicfake.FakeDynamicClient
	usage    *fakeUsage
	recorder *record.FakeRecorder
	inst     *Instruments
	logs     *observer.ObservedLogs
	ctl      *Controller
	clock    *clocktesting.FakeClock
	out      *strings.Builder
}

// setup varies the harness.
type setup struct {
	config func(*config.Config)
	// custom are custom resources (KEDA ScaledObjects, SpinApps) served
	// through a fake dynamic client and discovery.
	custom []runtime.Object
	// scaler wraps the Scaler that writes through the fake clientset.
	scaler func(actuator.Scaler) actuator.Actuator
	// resources replaces the harness's fakeUsage.
	resources metrics.ResourceSource
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
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{
		queries:  &fakeQueries{results: map[string]recommender.Observation{}},
		client:   fake.NewClientset(objs...),
		usage:    &fakeUsage{},
		recorder: record.NewFakeRecorder(100),
		inst:     NewInstruments(prometheus.NewRegistry()),
		logs:     logs,
		clock:    clocktesting.NewFakeClock(t0),
		out:      &strings.Builder{},
	}
	// The tracker cannot patch the scale subresource: answer as the API
	// server would. The action is recorded all the same.
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
		h.dynamic = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
			scaledObjectGVR: "ScaledObjectList", spinAppGVR: "SpinAppList",
		}, s.custom...)
		dyn = h.dynamic
	}
	var scaler actuator.Actuator = actuator.Scaler{Client: h.client}
	if s.scaler != nil {
		scaler = s.scaler(actuator.Scaler{Client: h.client})
	}
	var resources metrics.ResourceSource = h.usage
	if s.resources != nil {
		resources = s.resources
	}
	ctl, err := New(Options{
		Config: cfg, Logger: zap.New(core), Client: h.client, Dynamic: dyn, Queries: h.queries,
		Resources: resources, Scaler: scaler, Printer: &actuator.Printer{Out: h.out},
		Events:      &actuator.Events{Recorder: h.recorder},
		Instruments: h.inst, Clock: h.clock, Identity: "test",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, ctl.Start(ctx, time.Minute))
	h.ctl = ctl
	return h
}

// writes renders, in order, every request the controller sent to the API
// server except reads (list, watch, get): tests compare it with the whole
// list of writes they expect, as sample-controller's tests compare actions.
func (h *harness) writes() []string {
	actions := h.client.Actions()
	if h.dynamic != nil {
		actions = append(actions, h.dynamic.Actions()...)
	}
	var out []string
	for _, a := range actions {
		switch a.GetVerb() {
		case "list", "watch", "get":
			continue
		}
		w := a.GetVerb() + " " + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			w += "/" + sub
		}
		w += " " + a.GetNamespace() + "/"
		switch a := a.(type) {
		case k8stesting.PatchAction:
			w += a.GetName() + " " + string(a.GetPatchType()) + " " + string(a.GetPatch())
		case k8stesting.CreateAction: // an UpdateAction too
			w += objectName(a.GetObject())
		case k8stesting.DeleteAction:
			w += a.GetName()
		}
		out = append(out, w)
	}
	return out
}

func objectName(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return "?"
	}
	return m.GetName()
}

// scalePatch is the write that scales apps/name from one count to another.
func scalePatch(name string, from, to int32) string {
	return fmt.Sprintf(`patch deployments/scale apps/%s application/json-patch+json [{"op":"test","path":"/spec/replicas","value":%d},{"op":"replace","path":"/spec/replicas","value":%d}]`,
		name, from, to)
}

// events drains the Events recorded so far, as "type reason message".
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

// reasons keeps the type and reason of each Event, for apps decided in any
// order whose messages are pinned elsewhere.
func reasons(events []string) []string {
	out := make([]string, len(events))
	for i, e := range events {
		f := strings.Fields(e)
		out[i] = strings.Join(f[:min(2, len(f))], " ")
	}
	return out
}

func counterValue(t *testing.T, v *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, v.WithLabelValues(labels...).Write(&m))
	return m.GetCounter().GetValue()
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

func TestScaleUpPatchesScaleSubresourceOnce(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // 100% of a 100m request: 2 → 4
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{scalePatch("shop", 2, 4)}, h.writes())
	assert.Equal(t, []string{"Normal SpinscaleRescaled 2 → 4 (cpu: 100%/50%; limitedBy none)"}, h.events())
	assert.Equal(t, 1, h.usage.calls, "one metrics snapshot per tick")
	assert.Equal(t, 1.0, counterValue(t, h.inst.ScaleWrites, "ok"))
}

// A global dry run writes nothing at all: no scale, no Event (not even the
// Warnings of invalid or refused apps), no Lease; it lists every app.
func TestGlobalDryRunWritesNothing(t *testing.T) {
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "cart", Namespace: "apps"},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "cart"}, MaxReplicas: 3},
	}
	bad := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "lots", "spinscale.dev/target-cpu-utilization": "50"}
	gate := newGatedUsage()
	gate.pods, gate.cpuMilli = append(namesA, namesB...), 100
	h := build(t, setup{resources: gate, config: func(c *config.Config) {
		c.DryRun = true
		c.LeaderElection.Enabled = true // a dry run takes no Lease all the same
		c.LeaderElection.Namespace = "spinscale"
	}}, append(append(podsA, podsB...), deployment("shop", 2, cpuApp), deployment("cart", 2, cpuApp), deployment("web", 2, bad), hpa)...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.ctl.Run(ctx) }()
	<-gate.entered
	gate.release <- struct{}{}
	h.clock.Step(15 * time.Second)
	<-gate.entered // the second tick started: the first is complete
	cancel()
	require.NoError(t, <-done)

	assert.Empty(t, h.writes())
	assert.Empty(t, h.events())
	out := h.out.String()
	assert.Regexp(t, `apps\s+shop\s+cpu: 100%/50%\s+1\s+10\s+2\s+4\s+scale-up\s+2 → 4`, out)
	assert.Regexp(t, `apps\s+cart\s+<unknown>\s+-\s+-\s+2\s+2\s+none\s+hold: not scaling: HorizontalPodAutoscaler cart`, out)
	assert.Regexp(t, `apps\s+web\s+<unknown>\s+-\s+-\s+2\s+2\s+none\s+hold: invalid annotations: spinscale.dev/max-replicas: "lots"`, out)
	assert.Equal(t, 1.0, gaugeValue(t, h.inst.Leader))
}

// The dry-run annotation sends one app's decisions to the printer: no scale
// and no Rescaled Event for it, while its annotation problems are still
// reported and the other apps are scaled.
func TestPerAppDryRunAnnotation(t *testing.T) {
	with := func(extra map[string]string) map[string]string {
		ann := map[string]string{"spinscale.dev/dry-run": "true"}
		maps.Copy(ann, cpuApp)
		maps.Copy(ann, extra)
		return ann
	}
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	podsC, namesC := podsFor("web", 2)
	h := newHarness(t, nil, append(append(append(podsA, podsB...), podsC...),
		deployment("shop", 2, with(map[string]string{"spinscale.dev/max-replica": "5"})),
		deployment("web", 2, with(map[string]string{"spinscale.dev/max-replicas": "lots"})),
		deployment("cart", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = append(append(namesA, namesB...), namesC...), 100
	h.ctl.Once(context.Background())

	assert.Equal(t, []string{scalePatch("cart", 2, 4)}, h.writes(), "only the app without the annotation is scaled")
	ev := h.events()
	assert.ElementsMatch(t, []string{"Normal SpinscaleRescaled", "Warning SpinscaleUnknownAnnotation", "Warning SpinscaleInvalidAnnotations"},
		reasons(ev), "a Rescaled Event for the app without the annotation only")
	assert.Contains(t, strings.Join(ev, "\n"), "Warning SpinscaleUnknownAnnotation spinscale.dev/max-replica: ")
	assert.Contains(t, strings.Join(ev, "\n"), `Warning SpinscaleInvalidAnnotations invalid annotations, app left untouched: spinscale.dev/max-replicas: "lots": `)
	assert.Contains(t, h.out.String(), "2 → 4")
	assert.Equal(t, 1.0, counterValue(t, h.inst.ScaleWrites, "ok"))
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
	assert.Contains(t, ev[0], `Warning SpinscaleInvalidAnnotations invalid annotations, app left untouched: spinscale.dev/max-replicas: "zero": `)
	assert.Zero(t, h.usage.calls, "no usage is fetched for an app without a valid spec")
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
	assert.Equal(t, []string{
		"Warning SpinscaleRefused not scaling: HorizontalPodAutoscaler shop also targets this Deployment; delete it or remove spinscale.dev/enabled",
	}, h.events())
}

// No scale-down while a metric fails: the app holds, and the outage counts
// once per tick under one source, as a fetch and as the app's metric.
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
	assert.Contains(t, ev[0], "Warning SpinscaleMetricsDegraded metrics failing, scale-down blocked: cpu: ")
	assert.Equal(t, 30.0, counterValue(t, h.inst.FetchErrors, "metrics-server"))
	assert.Equal(t, 30.0, counterValue(t, h.inst.MetricErrors, "metrics-server"))
	assert.Zero(t, counterValue(t, h.inst.FetchErrors, "prometheus"))
	assert.Zero(t, counterValue(t, h.inst.MetricErrors, "prometheus"))
}

// A failed query counts once per tick as a Prometheus fetch, and once per
// app whose metric it is.
func TestFailedQueryCountsOneFetchAndEachAppsMetric(t *testing.T) {
	query := `sum(rate(spin_http_requests_total[1m]))`
	rps := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/prometheus-query": query, "spinscale.dev/prometheus-target-average-value": "400",
	}
	podsA, _ := podsFor("shop", 2)
	podsB, _ := podsFor("cart", 2)
	h := newHarness(t, nil, append(append(podsA, podsB...), deployment("shop", 2, rps), deployment("cart", 2, rps))...)
	h.queries.results[query] = recommender.Observation{Err: fmt.Errorf("%w: connection refused", recommender.ErrNoData)}
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	assert.Equal(t, []string{"Warning SpinscaleMetricsDegraded", "Warning SpinscaleMetricsDegraded"}, reasons(h.events()),
		"each app reports its degraded metric")
	assert.Equal(t, 1.0, counterValue(t, h.inst.FetchErrors, "prometheus"))
	assert.Equal(t, 2.0, counterValue(t, h.inst.MetricErrors, "prometheus"))
	assert.Zero(t, counterValue(t, h.inst.FetchErrors, "metrics-server"))
	assert.Zero(t, h.usage.calls, "no app scales on cpu or memory: no usage is fetched")
}

func TestOneAppsFailureDoesNotStopOthers(t *testing.T) {
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	bad := map[string]string{"spinscale.dev/enabled": "true"}
	objs := append(append(podsA, podsB...), deployment("shop", 2, bad), deployment("cart", 2, cpuApp))
	h := newHarness(t, nil, objs...)
	h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{scalePatch("cart", 2, 4)}, h.writes())
	assert.ElementsMatch(t, []string{"Normal SpinscaleRescaled", "Warning SpinscaleInvalidAnnotations"}, reasons(h.events()))
}

// panicking is the Scaler, except that carrying out one app's decision
// panics.
type panicking struct {
	actuator.Scaler
	app string
}

func (p panicking) Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	if app.Name == p.app {
		panic("index out of range")
	}
	return p.Scaler.Apply(ctx, app, spec, d)
}

// An app whose processing panics is logged with its key and counted; the
// same worker goes on with the next app and the tick completes.
func TestPanicInOneAppDoesNotStopTheTick(t *testing.T) {
	podsA, namesA := podsFor("cart", 2)
	podsB, namesB := podsFor("shop", 2)
	h := build(t, setup{
		config: func(c *config.Config) { c.Workers = 1 },
		scaler: func(s actuator.Scaler) actuator.Actuator { return panicking{Scaler: s, app: "cart"} },
	}, append(append(podsA, podsB...), deployment("cart", 2, cpuApp), deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
	h.ctl.Once(context.Background())

	assert.Equal(t, []string{scalePatch("shop", 2, 4)}, h.writes(), "the app after the panicking one is scaled")
	assert.Equal(t, []string{"Normal SpinscaleRescaled 2 → 4 (cpu: 100%/50%; limitedBy none)"}, h.events())
	assert.Equal(t, 1.0, counterValue(t, h.inst.AppsSkipped, "panic"))
	panics := h.logs.FilterMessage("processing the app panicked; it is skipped this tick").All()
	require.Len(t, panics, 1)
	fields := panics[0].ContextMap()
	assert.Equal(t, "apps", fields["namespace"])
	assert.Equal(t, "cart", fields["deployment"])
	assert.Equal(t, "index out of range", fields["panic"])
	assert.Equal(t, t0.UnixNano(), h.ctl.lastTick.Load(), "the tick completed")
}

// A failed scale write is a Warning once, however many ticks it fails, and
// a write error each time.
func TestFailedScaleWriteWarnsOnceAndCountsErrors(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.client.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcdserver: request timed out"))
	})
	h.ctl.Once(context.Background())
	h.clock.Step(15 * time.Second)
	h.ctl.Once(context.Background())

	assert.Equal(t, []string{scalePatch("shop", 2, 4), scalePatch("shop", 2, 4)}, h.writes(), "each tick tries again")
	ev := h.events()
	require.Len(t, ev, 1, "one Warning for two failed writes")
	assert.Contains(t, ev[0], "Warning SpinscaleRescaleFailed scaling 2 → 4 failed: scale apps/shop from 2 to 4: ")
	assert.Contains(t, ev[0], "etcdserver: request timed out")
	assert.Equal(t, 2.0, counterValue(t, h.inst.ScaleWrites, "error"))
	assert.Zero(t, counterValue(t, h.inst.ScaleWrites, "ok"))
}

// contextScaler fails a write once its context has ended, as client-go does
// (the fake clientset ignores the context).
type contextScaler struct{ actuator.Scaler }

func (s contextScaler) Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("scale %s: %w", app, err)
	}
	return s.Scaler.Apply(ctx, app, spec, d)
}

// Apps still queued when the tick's deadline passes, or when the controller
// stops, are skipped: no write that could only fail, no RescaleFailed
// Warning, no write error; they are counted, and logged once for the tick.
func TestLateTickSkipsRemainingApps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ctx    func() context.Context
		reason string
	}{
		{name: "deadline passed", reason: "tick_deadline", ctx: func() context.Context {
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "stopping", reason: "canceled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podsA, namesA := podsFor("shop", 2)
			podsB, namesB := podsFor("cart", 2)
			h := build(t, setup{scaler: func(s actuator.Scaler) actuator.Actuator { return contextScaler{s} }},
				append(append(podsA, podsB...), deployment("shop", 2, cpuApp), deployment("cart", 2, cpuApp))...)
			h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
			ctx := tc.ctx()
			require.Error(t, ctx.Err())

			h.ctl.Once(ctx)
			assert.Empty(t, h.writes())
			assert.Empty(t, h.events(), "no RescaleFailed Warning")
			assert.Zero(t, counterValue(t, h.inst.ScaleWrites, "error"))
			assert.Equal(t, 2.0, counterValue(t, h.inst.AppsSkipped, tc.reason))
			logged := h.logs.FilterMessage("apps skipped this tick; the next tick decides for them").All()
			require.Len(t, logged, 1, "one line for the tick")
			assert.Equal(t, int64(2), logged[0].ContextMap()["skipped"])
			assert.Equal(t, tc.reason, logged[0].ContextMap()["reason"])
		})
	}
}

// An app whose decision is made when the deadline passes is not carried out.
func TestDecisionIsNotCarriedOutAfterTheDeadline(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := build(t, setup{scaler: func(s actuator.Scaler) actuator.Actuator { return contextScaler{s} }},
		append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	deps := h.ctl.managed()
	require.Len(t, deps, 1)
	plan := h.ctl.parseAll(deps)
	snap := h.ctl.resourceSnapshot(context.Background(), plan.resourceNamespaces)
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()

	assert.True(t, h.ctl.process(ctx, deps[0], snap, nil, t0), "skipped")
	assert.Empty(t, h.writes())
	assert.Empty(t, h.events())
	assert.Zero(t, counterValue(t, h.inst.ScaleWrites, "error"))
	assert.Equal(t, 4.0, gaugeValue(t, h.inst.AppDesired.WithLabelValues("apps", "shop")), "decided")
}

func TestScaleToZeroByHandPausesScaling(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 0, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	assert.Empty(t, h.events())
}

// gatedUsage is a ResourceSource whose Snapshot, the first fetch of every
// tick, announces the tick on entered and waits for release, so that a test
// holds a tick open while it moves the clock.
type gatedUsage struct {
	fakeUsage
	entered, release chan struct{}
	// inFlight and maxInFlight count the ticks fetching at once.
	inFlight, maxInFlight atomic.Int32
}

func newGatedUsage() *gatedUsage {
	return &gatedUsage{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedUsage) Snapshot(ctx context.Context, namespaces []string) *metrics.ResourceSnapshot {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxInFlight.Load()
		if n <= m || g.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case g.entered <- struct{}{}:
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	return g.fakeUsage.Snapshot(ctx, namespaces)
}

// runLoop runs the tick loop until the returned stop is called.
func runLoop(h *harness) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.ctl.loop(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// The loop ticks at once, then every interval; a tick due while another runs
// waits for it, ticks missed meanwhile are not made up, and the delay is
// recorded as lag.
func TestLoopTicksNeverOverlapAndRecordLag(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage()
	gate.pods, gate.cpuMilli = names, 50 // on target: no write
	h := build(t, setup{resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	stop := runLoop(h)

	<-gate.entered // the first tick, at once
	assert.Zero(t, gaugeValue(t, h.inst.TickLag))
	h.clock.Step(15 * time.Second) // the second tick is due ...
	h.clock.Step(10 * time.Second)
	gate.release <- struct{}{} // ... and starts 10 s late, when the first ends
	<-gate.entered
	assert.Equal(t, 10.0, gaugeValue(t, h.inst.TickLag))

	h.clock.Step(45 * time.Second) // three intervals pass during the second tick
	h.clock.Step(time.Second)
	gate.release <- struct{}{}
	<-gate.entered // one tick follows, 1 s late
	assert.Equal(t, 1.0, gaugeValue(t, h.inst.TickLag))
	gate.release <- struct{}{}
	stop()

	assert.Equal(t, 3, gate.calls, "missed ticks are not made up")
	assert.Equal(t, int32(1), gate.maxInFlight.Load(), "ticks never overlap")
}

// Liveness fails once three intervals pass without a completed tick, be it
// the first tick or a later one that hangs.
func TestHealthFailsAfterThreeMissedIntervals(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage()
	gate.pods, gate.cpuMilli = names, 50
	h := build(t, setup{resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	assert.NoError(t, h.ctl.Healthy(), "a standby is healthy")
	stop := runLoop(h)

	<-gate.entered // the first tick hangs
	h.clock.Step(45 * time.Second)
	assert.NoError(t, h.ctl.Healthy(), "three intervals are allowed")
	h.clock.Step(time.Second)
	assert.EqualError(t, h.ctl.Healthy(), "no tick completed for 46s (interval 15s)")

	gate.release <- struct{}{}
	<-gate.entered // the first tick completed; the second hangs
	assert.NoError(t, h.ctl.Healthy())
	h.clock.Step(45 * time.Second)
	assert.NoError(t, h.ctl.Healthy())
	h.clock.Step(time.Second)
	assert.EqualError(t, h.ctl.Healthy(), "no tick completed for 46s (interval 15s)")
	assert.True(t, h.ctl.Ready())

	stop() // the hanging tick ends with the loop
	assert.NoError(t, h.ctl.Healthy(), "a replica that no longer leads is healthy")
}

// Losing the leadership ends the context the loop runs with: the loop
// returns and no tick follows. (Run's leader election itself runs on real
// time; its callbacks only start and stop this loop.)
func TestLoopStopsTickingWhenLeadershipEnds(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage()
	gate.pods, gate.cpuMilli = names, 100
	h := build(t, setup{resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	stop := runLoop(h)
	<-gate.entered
	gate.release <- struct{}{}
	stop()
	require.False(t, h.ctl.leading.Load())
	writes := h.writes()

	h.clock.Step(10 * 15 * time.Second)
	assert.Equal(t, 1, gate.calls, "no tick after the leadership ended")
	assert.Equal(t, writes, h.writes())
	assert.NoError(t, h.ctl.Healthy())
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
	assert.Equal(t, []string{
		"Warning SpinscaleRefused not scaling: KEDA ScaledObject shop-so also targets this Deployment; delete it or remove spinscale.dev/enabled",
	}, h.events())
}

func TestSpinAppEnableAutoscaling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enabled bool
		writes  []string
		events  []string
	}{
		{name: "refused while enableAutoscaling is false", events: []string{
			"Warning SpinscaleRefused not scaling: the owning SpinApp shop has spec.enableAutoscaling false, so spin-operator writes replicas back on every reconcile; set it to true",
		}},
		{name: "scaled once it is true", enabled: true, writes: []string{scalePatch("shop", 2, 4)},
			events: []string{"Normal SpinscaleRescaled 2 → 4 (cpu: 100%/50%; limitedBy none)"}},
	} {
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
			assert.Equal(t, tc.writes, h.writes())
			assert.Equal(t, tc.events, h.events())
		})
	}
}

// Apps sharing a PromQL query share one execution per tick.
func TestOneQueryPerDistinctPromQLPerTick(t *testing.T) {
	rps := func(target string) map[string]string {
		return map[string]string{
			"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
			"spinscale.dev/prometheus-query":                `sum(rate(spin_http_requests_total[1m]))`,
			"spinscale.dev/prometheus-target-average-value": target,
		}
	}
	podsA, _ := podsFor("shop", 2)
	podsB, _ := podsFor("cart", 2)
	h := newHarness(t, nil, append(append(podsA, podsB...), deployment("shop", 2, rps("400")), deployment("cart", 2, rps("1000")))...)
	h.queries.results[`sum(rate(spin_http_requests_total[1m]))`] = recommender.Observation{Value: 2000000, Timestamp: t0}
	h.ctl.Once(context.Background())
	assert.Equal(t, [][]string{{`sum(rate(spin_http_requests_total[1m]))`}}, h.queries.calls)
	assert.Equal(t, []string{scalePatch("shop", 2, 4)}, h.writes(), "shop: ceil(2000/400) = 5 capped at 4; cart: ceil(2000/1000) = 2 holds")
	assert.Equal(t, []string{"Normal SpinscaleRescaled 2 → 4 (default: 1000/400 (avg); limitedBy scale-up-policy)"}, h.events())
}

// The sync timeout bounds only the wait: the caches keep following the API
// server after Start has returned (and its wait has ended).
func TestCachesKeepUpdatingAfterTheSyncTimeout(t *testing.T) {
	client := fake.NewClientset(deployment("shop", 2, cpuApp))
	ctl, err := New(Options{Config: config.Default(), Logger: zap.NewNop(), Client: client, Scaler: nopScaler{},
		Printer: &actuator.Printer{Out: io.Discard}, Events: &actuator.Events{},
		Instruments: NewInstruments(prometheus.NewRegistry()), Clock: clocktesting.NewFakeClock(t0)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, ctl.Start(ctx, time.Second))

	_, err = client.AppsV1().Deployments("apps").Create(ctx, deployment("cart", 1, cpuApp), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(ctl.managed()) == 2 }, 5*time.Second, 10*time.Millisecond,
		"a Deployment created after Start reaches the cache")
}

// With leader election, Run takes the Lease before its first tick and
// releases it when it stops, so that a standby takes over at once. (Losing
// the Lease is driven by real-time renewals; the loop's side of it is
// TestLoopStopsTickingWhenLeadershipEnds.)
func TestRunTicksWhileHoldingTheLease(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage()
	gate.pods, gate.cpuMilli = names, 100
	h := build(t, setup{resources: gate, config: func(c *config.Config) {
		c.LeaderElection.Enabled = true
		c.LeaderElection.Namespace = "spinscale"
	}}, append(pods, deployment("shop", 2, cpuApp))...)
	lease := "spinscale/" + h.ctl.cfg.LeaderElection.LeaseName

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.ctl.Run(ctx) }()
	<-gate.entered
	held, err := h.client.CoordinationV1().Leases("spinscale").Get(ctx, h.ctl.cfg.LeaderElection.LeaseName, metav1.GetOptions{})
	require.NoError(t, err, "the Lease is taken before the first tick")
	assert.Equal(t, "test", ptr.Deref(held.Spec.HolderIdentity, ""))
	assert.Equal(t, 1.0, gaugeValue(t, h.inst.Leader))
	gate.release <- struct{}{}
	h.clock.Step(15 * time.Second)
	<-gate.entered // the first tick is complete
	cancel()
	require.NoError(t, <-done, "stopping is not a loss of leadership")

	writes := h.writes()
	require.NotEmpty(t, writes)
	assert.Equal(t, "create leases "+lease, writes[0])
	assert.Contains(t, writes, scalePatch("shop", 2, 4))
	assert.Equal(t, "update leases "+lease, writes[len(writes)-1], "released on the way out")
	for _, w := range writes {
		if w != scalePatch("shop", 2, 4) {
			assert.Regexp(t, `^(create|update) leases `, w, "the Lease and the scale are all that is written")
		}
	}
	released, err := h.client.CoordinationV1().Leases("spinscale").Get(context.Background(), h.ctl.cfg.LeaderElection.LeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, ptr.Deref(released.Spec.HolderIdentity, ""))
	assert.Zero(t, gaugeValue(t, h.inst.Leader))
}
