package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// mutations lists every action the controller sent to the API server other
// than a read (get, list, watch), as "verb resource[/subresource]
// namespace/name": the whole of what it wrote, as sample-controller's tests
// check it.
func (h *harness) mutations() []string {
	var out []string
	for _, a := range h.client.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		res := a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		name := ""
		switch a := a.(type) {
		case interface{ GetName() string }:
			name = a.GetName()
		case interface{ GetObject() runtime.Object }:
			if m, err := meta.Accessor(a.GetObject()); err == nil {
				name = m.GetName()
			}
		}
		out = append(out, fmt.Sprintf("%s %s %s/%s", a.GetVerb(), res, a.GetNamespace(), name))
	}
	return out
}

func TestEveryWriteOfAScaleUpIsTheScalePatch(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // 2 → 4
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{"patch deployments/scale apps/shop"}, h.mutations())
}

func TestDryRunWritesNothingAtAll(t *testing.T) {
	pods, names := podsFor("shop", 2)
	objs := append(pods, deployment("shop", 2, cpuApp))
	h := newHarness(t, func(c *config.Config) { c.DryRun = true }, objs...)
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	h.ctl.Once(context.Background())
	assert.Empty(t, h.mutations(), "no write of any kind to the API server")
	// (Events are not sent either: in global dry-run cmd wires no event
	// sink, which the dry-run integration test checks on a real cluster.)
	assert.Contains(t, h.out.String(), "scale-up", "the decision is printed instead")
}

// A scale write that fails raises one Warning, however many ticks it keeps
// failing, and is counted as an error; nothing else is written.
func TestAFailingScaleWriteWarnsOnce(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.client.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		return true, nil, errors.New("etcdserver: request timed out")
	})
	h.usage.pods, h.usage.cpuMilli = names, 100
	h.ctl.Once(context.Background())
	h.clock.Step(h.ctl.cfg.Interval)
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{"patch deployments/scale apps/shop", "patch deployments/scale apps/shop"}, h.mutations(), "tried again on the next tick")
	ev := h.events()
	require.Len(t, ev, 1, "one Warning for two failures")
	assert.Contains(t, ev[0], "Warning "+actuator.ReasonRescaleFailed)
	assert.Contains(t, ev[0], "request timed out")
	assert.Equal(t, 2.0, counterValue(t, h.ctl.opts.Instruments.ScaleWrites.WithLabelValues("error")))
}

// panickyScaler panics for one app and scales the others.
type panickyScaler struct {
	actuator.Scaler
	panicFor string
}

func (p panickyScaler) Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	if app.Name == p.panicFor {
		panic("scaler bug")
	}
	return p.Scaler.Apply(ctx, app, spec, d)
}

// An app whose processing panics is skipped for the tick: the others are
// decided and written, and the tick completes.
func TestAPanicInOneAppSparesTheOthers(t *testing.T) {
	podsA, namesA := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	h := newHarness(t, nil, append(append(podsA, podsB...), deployment("shop", 2, cpuApp), deployment("cart", 2, cpuApp))...)
	h.ctl.opts.Scaler = panickyScaler{Scaler: actuator.Scaler{Client: h.client}, panicFor: "shop"}
	h.usage.pods, h.usage.cpuMilli = append(namesA, namesB...), 100
	require.NotPanics(t, func() { h.ctl.Once(context.Background()) })
	assert.Equal(t, []string{"patch deployments/scale apps/cart"}, h.mutations())
	assert.NoError(t, h.ctl.Healthy(), "the tick completed")
	assert.NotZero(t, h.ctl.lastTick.Load())
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// A queue app with min-replicas 0 goes to zero and back. Both writes patch
// the Deployment itself, replica count and record together, conditional on
// the count the decision saw.
func TestScaleToZeroWritesTheRecordWithTheCount(t *testing.T) {
	queue := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "0", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/prometheus-query": "sum(queue_length)", "spinscale.dev/prometheus-target-value": "10",
		"spinscale.dev/scale-down-stabilization": "0s",
	}
	pods, _ := podsFor("shop", 1)
	h := newHarness(t, nil, append(pods, deployment("shop", 1, queue))...)
	h.queries.results["sum(queue_length)"] = recommender.Observation{Value: 0, Timestamp: t0}
	h.ctl.Once(context.Background())
	require.Equal(t, []string{"patch deployments apps/shop"}, h.mutations())
	patch := string(h.client.Actions()[len(h.client.Actions())-1].(k8stesting.PatchAction).GetPatch())
	assert.JSONEq(t, `[{"op":"test","path":"/spec/replicas","value":1},{"op":"replace","path":"/spec/replicas","value":0},`+
		`{"op":"add","path":"/metadata/annotations/spinscale.dev~1scaled-to-zero","value":"2026-01-01T12:00:00Z"}]`, patch)

	// At zero with the record, a queue of 25 wakes 3 pods and clears it.
	woken := maps.Clone(queue)
	woken["spinscale.dev/scaled-to-zero"] = "2026-01-01T12:00:00Z"
	h = newHarness(t, nil, deployment("shop", 0, woken))
	h.queries.results["sum(queue_length)"] = recommender.Observation{Value: 25_000, Timestamp: t0}
	h.ctl.Once(context.Background())
	require.Equal(t, []string{"patch deployments apps/shop"}, h.mutations())
	patch = string(h.client.Actions()[len(h.client.Actions())-1].(k8stesting.PatchAction).GetPatch())
	assert.JSONEq(t, `[{"op":"test","path":"/spec/replicas","value":0},{"op":"replace","path":"/spec/replicas","value":3},`+
		`{"op":"remove","path":"/metadata/annotations/spinscale.dev~1scaled-to-zero"}]`, patch)

	// At zero without the record (set by hand), nothing is written.
	h = newHarness(t, nil, deployment("shop", 0, queue))
	h.queries.results["sum(queue_length)"] = recommender.Observation{Value: 25_000, Timestamp: t0}
	h.ctl.Once(context.Background())
	assert.Empty(t, h.mutations())
}

// An app in shadow mode beside an HPA is decided on, printed, compared with
// the live count, and never written: no scale, no refusal.
func TestShadowModeDecidesBesideAnHPAAndWritesNothing(t *testing.T) {
	pods, names := podsFor("shop", 2)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps"},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "shop", APIVersion: "apps/v1"}, MaxReplicas: 3},
	}
	ann := maps.Clone(cpuApp)
	ann["spinscale.dev/shadow"] = "true"
	h := newHarness(t, nil, append(pods, deployment("shop", 2, ann), hpa)...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // Spinscale would go 2 → 4
	h.ctl.Once(context.Background())
	h.clock.Step(15 * time.Second)
	h.ctl.Once(context.Background())
	assert.Empty(t, h.mutations(), "nothing written")
	assert.Empty(t, h.events(), "no refusal")
	assert.Equal(t, 2.0, counterValue(t, h.ctl.opts.Instruments.ShadowDecisions.WithLabelValues("apps", "shop", "higher")))
	assert.Regexp(t, `apps\s+shop\s+cpu: 100%/50%\s+1\s+10\s+2\s+4\s+scale-up`, h.out.String(), "the decision is printed")
	s := h.ctl.appFor(types.NamespacedName{Namespace: "apps", Name: "shop"}).shadow.Summary()
	assert.Equal(t, 2, s.Higher)
	assert.Equal(t, int32(4), s.LastShadow)
	st := h.ctl.Status().Apps[0]
	assert.Equal(t, "shadow", st.State)
	require.NotNil(t, st.Shadow)
	assert.Equal(t, 2, st.Shadow.Decisions)
	assert.Equal(t, 2.0, st.Shadow.MeanHigher)
}

// /apps publishes every app's last decision or hold with HPA's conditions.
func TestStatusPublishesDecisionsAndHolds(t *testing.T) {
	pods, names := podsFor("shop", 2)
	bad := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "lots", "spinscale.dev/target-cpu-utilization": "50"}
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp), deployment("cart", 3, bad))...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // 2 → 4
	h.ctl.Once(context.Background())
	list := h.ctl.Status()
	assert.True(t, list.Leading)
	require.Len(t, list.Apps, 2)
	cart, shop := list.Apps[0], list.Apps[1]
	assert.Equal(t, "cart", cart.Name)
	assert.Equal(t, "invalid", cart.State)
	assert.Equal(t, int32(3), cart.Replicas)
	assert.Equal(t, "ScalingActive", cart.Conditions[1].Type)
	assert.Equal(t, "InvalidAnnotations", cart.Conditions[1].Reason)

	assert.Equal(t, "shop", shop.Name)
	assert.Equal(t, "ok", shop.State)
	assert.Equal(t, "cpu: 100%/50%", shop.Targets)
	assert.Equal(t, int32(2), shop.Replicas)
	assert.Equal(t, int32(4), shop.Desired)
	assert.Equal(t, int32(10), shop.MaxReplicas)
	require.NotNil(t, shop.LastScale)
	assert.Equal(t, t0, *shop.LastScale)
	assert.Equal(t, []string{"AbleToScale", "ScalingActive", "ScalingLimited"}, []string{shop.Conditions[0].Type, shop.Conditions[1].Type, shop.Conditions[2].Type})
	assert.Equal(t, "ValidMetricFound", shop.Conditions[1].Reason)
}

// orderScaler records the order of the writes it is asked for.
type orderScaler struct {
	actuator.Scaler
	mu    sync.Mutex
	order []string
}

func (o *orderScaler) Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	o.mu.Lock()
	o.order = append(o.order, fmt.Sprintf("%s %d→%d", app.Name, d.CurrentReplicas, d.DesiredReplicas))
	o.mu.Unlock()
	return o.Scaler.Apply(ctx, app, spec, d)
}

// Writes come after every decision of the pass, scale-ups first, the most
// under-provisioned first, then scale-downs.
func TestWritesGoMostUrgentFirst(t *testing.T) {
	podsA, namesA := podsFor("shop", 2) // 2 → 4: ×2
	podsB, namesB := podsFor("cart", 1) // 1 → 4: ×4
	podsC, namesC := podsFor("web", 6)  // 6 → 3: down
	h := newHarness(t, func(c *config.Config) { c.Workers = 1; c.DownscaleStabilization = 0 },
		append(append(append(podsA, podsB...), podsC...), deployment("shop", 2, cpuApp), deployment("cart", 1, cpuApp), deployment("web", 6, cpuApp))...)
	rec := &orderScaler{Scaler: actuator.Scaler{Client: h.client}}
	h.ctl.opts.Scaler = rec
	h.usage.pods = append(append(namesA, namesB...), namesC...)
	h.usage.cpuMilli = 100 // 100% of a 50% target: ×2 for every app ...
	h.usage.perPod = map[string]int64{"cart-a": 200, "web-a": 25, "web-b": 25, "web-c": 25, "web-d": 25, "web-e": 25, "web-f": 25}
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{"cart 1→4", "shop 2→4"}, rec.order, "web is new: no scale-down yet")
	// The fake API server keeps the counts: the next pass asks again, and
	// web may now go down.
	rec.order = nil
	h.clock.Step(15 * time.Second)
	h.ctl.Once(context.Background())
	assert.Equal(t, []string{"cart 1→4", "shop 2→4", "web 6→3"}, rec.order)
	assert.Equal(t, 0.0, gaugeValue(t, h.ctl.opts.Instruments.WritesQueued), "a single pass makes its writes before it ends")
	assert.Equal(t, uint64(5), histogramCount(t, h.ctl.opts.Instruments.WriteLatency))
}

func histogramCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

// Writes a pass that makes its own (run --once) has no time left for are
// deferred, counted, and their apps decided on again at the next pass:
// never dropped silently.
func TestWritesPastTheDeadlineAreDeferred(t *testing.T) {
	h := newHarness(t, nil)
	a, b := &app{}, &app{}
	ws := []*write{
		{a: a, key: types.NamespacedName{Namespace: "apps", Name: "shop"}, dec: recommender.Decision{CurrentReplicas: 1, DesiredReplicas: 3}, log: zap.NewNop()},
		{a: b, key: types.NamespacedName{Namespace: "apps", Name: "cart"}, dec: recommender.Decision{CurrentReplicas: 4, DesiredReplicas: 2}, log: zap.NewNop()},
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ctl.queueWrites(ctx, ws)
	assert.Empty(t, h.mutations())
	assert.Equal(t, 2.0, counterValue(t, h.ctl.opts.Instruments.WritesDeferred))
	assert.True(t, a.sched.edited && b.sched.edited, "decided on again at the next pass")
}

// In shadow mode beside an autoscaler that scales to zero, its zero is the
// one Spinscale would have made: the shadow decision wakes from it.
func TestShadowDecidesOnWakingFromTheLiveZero(t *testing.T) {
	queue := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/shadow": "true", "spinscale.dev/min-replicas": "0", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/prometheus-query": "sum(queue_length)", "spinscale.dev/prometheus-target-average-value": "10",
	}
	h := newHarness(t, nil, deployment("worker", 0, queue))
	h.queries.results["sum(queue_length)"] = recommender.Observation{Value: 25_000, Timestamp: t0}
	h.ctl.Once(context.Background())
	assert.Empty(t, h.mutations())
	s := h.ctl.appFor(types.NamespacedName{Namespace: "apps", Name: "worker"}).shadow.Summary()
	assert.Equal(t, int32(3), s.LastShadow, "ceil(25/10) from zero")
}

// gateScaler blocks each write until it is let through, and counts them.
type gateScaler struct {
	actuator.Scaler
	started chan string
	gate    chan struct{}
}

func (g *gateScaler) Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (bool, error) {
	g.started <- fmt.Sprintf("%s %d→%d", app.Name, d.CurrentReplicas, d.DesiredReplicas)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return g.Scaler.Apply(ctx, app, spec, d)
}

// While the loop runs, a pass queues its writes and ends without waiting
// for them; the app whose write is being made is not decided on again
// until it is done.
func TestPassesDoNotWaitForWritesAndSkipTheAppBeingWritten(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, func(c *config.Config) { c.Workers = 1 }, append(pods, deployment("shop", 2, cpuApp))...)
	g := &gateScaler{Scaler: actuator.Scaler{Client: h.client}, started: make(chan string, 10), gate: make(chan struct{})}
	h.ctl.opts.Scaler = g
	h.usage.pods = names
	h.usage.cpuMilli = 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := h.ctl.runWriters(ctx)
	defer stop()

	h.ctl.Once(ctx) // returns with the write still blocked
	assert.Equal(t, "shop 2→4", <-g.started)
	before := decisions(t, h.ctl.opts.Instruments)
	h.clock.Step(15 * time.Second)
	h.ctl.Once(ctx)
	assert.Equal(t, before, decisions(t, h.ctl.opts.Instruments), "not decided on while its write is made")
	a := h.ctl.appFor(types.NamespacedName{Namespace: "apps", Name: "shop"})
	a.mu.Lock()
	assert.True(t, a.sched.edited, "decided on at its next pass")
	a.mu.Unlock()

	close(g.gate)
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.status.LastScale != nil
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"patch deployments/scale apps/shop"}, h.mutations())
}

func TestAQueuedWriteIsReplacedByTheNewerDecision(t *testing.T) {
	in := NewInstruments(prometheus.NewRegistry())
	q := newWriteQueue(in)
	key := types.NamespacedName{Namespace: "apps", Name: "shop"}
	old := &write{key: key, dec: recommender.Decision{CurrentReplicas: 2, DesiredReplicas: 4}}
	q.submit([]*write{old}, t0)
	assert.Equal(t, 1.0, gaugeValue(t, in.WritesQueued))
	// A new decision for the app takes its queued write out...
	require.True(t, q.take(key))
	assert.Equal(t, 0.0, gaugeValue(t, in.WritesQueued))
	assert.Equal(t, 1.0, counterValue(t, in.WritesSuperseded))
	// ...and queues its own, if it asks for one.
	fresh := &write{key: key, dec: recommender.Decision{CurrentReplicas: 2, DesiredReplicas: 6}}
	q.submit([]*write{fresh}, t0)
	assert.Same(t, fresh, q.next())
	assert.Nil(t, q.next())
	assert.False(t, q.take(key), "its write is being made")
	q.done(key)
	assert.True(t, q.take(key))
}

func TestQueuedWritesGoMostUrgentFirst(t *testing.T) {
	q := newWriteQueue(NewInstruments(prometheus.NewRegistry()))
	w := func(name string, from, to int32) *write {
		return &write{key: types.NamespacedName{Namespace: "apps", Name: name}, dec: recommender.Decision{CurrentReplicas: from, DesiredReplicas: to}}
	}
	q.submit([]*write{w("down", 6, 3), w("x2", 2, 4), w("x1.5", 2, 3)}, t0)
	q.submit([]*write{w("zero", 0, 1), w("x2-later", 3, 6)}, t0)
	var order []string
	for x := q.next(); x != nil; x = q.next() {
		order = append(order, x.key.Name)
	}
	assert.Equal(t, []string{"zero", "x2", "x2-later", "x1.5", "down"}, order)
}

// The queue's heap against a plain sort: writes for 300 apps queued in
// several passes, some superseded by a newer decision, some taken back for
// a new decision or withdrawn, come out in the order before() gives the
// writes left.
func TestQueuedWritesOrderMatchesASortAfterReplacements(t *testing.T) {
	q := newWriteQueue(NewInstruments(prometheus.NewRegistry()))
	rng := rand.New(rand.NewPCG(7, 12))
	live := map[types.NamespacedName]*write{}
	for pass := range 5 {
		var ws []*write
		for range 120 {
			key := types.NamespacedName{Namespace: "apps", Name: fmt.Sprintf("app-%d", rng.IntN(300))}
			if slices.ContainsFunc(ws, func(w *write) bool { return w.key == key }) {
				continue // a pass queues one write per app
			}
			cur := int32(rng.IntN(6))
			w := &write{key: key, dec: recommender.Decision{CurrentReplicas: cur, DesiredReplicas: int32(rng.IntN(12))}}
			ws = append(ws, w)
			live[key] = w
		}
		q.submit(ws, t0.Add(time.Duration(pass)*time.Second))
		for range 15 {
			key := types.NamespacedName{Namespace: "apps", Name: fmt.Sprintf("app-%d", rng.IntN(300))}
			if rng.IntN(2) == 0 {
				require.True(t, q.take(key))
			} else {
				q.withdraw(key, zap.NewNop(), "test")
			}
			delete(live, key)
		}
	}
	want := slices.Collect(maps.Values(live))
	slices.SortFunc(want, func(a, b *write) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	var got []*write
	for x := q.next(); x != nil; x = q.next() {
		got = append(got, x)
		q.done(x.key)
	}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Same(t, want[i], got[i], "write %d: %s", i, got[i].key.Name)
	}
	assert.Empty(t, q.pending)
}

// When the loop stops (leadership lost), the write being made is cut and
// the queued ones dropped: all counted as deferred, their apps decided on
// again by whoever leads next, and no Warning: nothing failed.
func TestQueuedWritesAreDroppedWhenTheLoopStops(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Workers = 1 })
	g := &gateScaler{Scaler: actuator.Scaler{Client: h.client}, started: make(chan string, 10), gate: make(chan struct{})}
	h.ctl.opts.Scaler = g
	stop := h.ctl.runWriters(context.Background())
	first, second := &app{}, &app{}
	h.ctl.writes.submit([]*write{
		{a: first, key: types.NamespacedName{Namespace: "apps", Name: "first"}, dec: recommender.Decision{CurrentReplicas: 0, DesiredReplicas: 1}, log: zap.NewNop()},
		{a: second, key: types.NamespacedName{Namespace: "apps", Name: "second"}, dec: recommender.Decision{CurrentReplicas: 1, DesiredReplicas: 3}, log: zap.NewNop()},
	}, t0)
	assert.Equal(t, "first 0→1", <-g.started, "the one worker is held by the first write")
	stop()
	select {
	case w := <-g.started:
		t.Fatalf("%s written after the loop stopped", w)
	default:
	}
	assert.Equal(t, 2.0, counterValue(t, h.ctl.opts.Instruments.WritesDeferred), "the cut write and the queued one")
	assert.Equal(t, 0.0, gaugeValue(t, h.ctl.opts.Instruments.WritesQueued))
	assert.Equal(t, 0.0, counterValue(t, h.ctl.opts.Instruments.ScaleWrites.WithLabelValues("error")))
	assert.Equal(t, 0.0, counterValue(t, h.ctl.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline")))
	assert.Empty(t, h.events(), "no Warning: nothing failed")
	for _, a := range []*app{first, second} {
		a.mu.Lock()
		assert.True(t, a.sched.edited, "decided on again")
		a.mu.Unlock()
	}
	assert.Empty(t, h.mutations())
}

// A queued write is withdrawn when its app may no longer be written: it
// left Spinscale (annotation removed) or another autoscaler took it, even
// before the app is due again.
func TestQueuedWriteIsWithdrawnWhenTheAppIsNoLongerOurs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(h *harness)
	}{
		{"opted out", func(h *harness) {
			d, err := h.client.AppsV1().Deployments("apps").Get(context.Background(), "shop", metav1.GetOptions{})
			require.NoError(t, err)
			delete(d.Annotations, "spinscale.dev/enabled")
			_, err = h.client.AppsV1().Deployments("apps").Update(context.Background(), d, metav1.UpdateOptions{})
			require.NoError(t, err)
			require.Eventually(t, func() bool { return len(h.ctl.managed()) == 1 }, 5*time.Second, time.Millisecond)
		}},
		{"an HPA took it", func(h *harness) {
			_, err := h.client.AutoscalingV2().HorizontalPodAutoscalers("apps").Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps"},
				Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
					ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"},
					MaxReplicas:    5,
				},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				d, err := h.ctl.deployments[0].Deployments("apps").Get("shop")
				return err == nil && h.ctl.conflicts.refusal(d) != ""
			}, 5*time.Second, time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podsA, namesA := podsFor("shop", 2)
			podsB, namesB := podsFor("cart", 1)
			h := newHarness(t, func(c *config.Config) { c.Workers = 1; c.Poll = time.Second },
				append(append(podsA, podsB...), deployment("shop", 2, cpuApp), deployment("cart", 1, cpuApp))...)
			g := &gateScaler{Scaler: actuator.Scaler{Client: h.client}, started: make(chan string, 10), gate: make(chan struct{})}
			h.ctl.opts.Scaler = g
			h.usage.pods = append(namesA, namesB...)
			h.usage.cpuMilli = 100
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := h.ctl.runWriters(ctx)
			defer stop()

			h.ctl.Once(ctx) // cart 1→2 (×2 from one pod, the more urgent) first, shop 2→4 queued behind it
			assert.Equal(t, "cart 1→2", <-g.started)
			require.Equal(t, 1.0, gaugeValue(t, h.ctl.opts.Instruments.WritesQueued), "shop waits")
			tc.change(h)
			h.clock.Step(time.Second) // a poll: shop is not due
			h.ctl.Once(ctx)
			close(g.gate)
			require.Eventually(t, func() bool {
				h.ctl.writes.mu.Lock()
				defer h.ctl.writes.mu.Unlock()
				return len(h.ctl.writes.pending) == 0 && len(h.ctl.writes.running) == 0
			}, 5*time.Second, time.Millisecond)
			assert.Equal(t, 1.0, counterValue(t, h.ctl.opts.Instruments.ScaleWrites.WithLabelValues("ok")), "cart's write only")
			select {
			case w := <-g.started:
				t.Fatalf("%s written", w)
			default:
			}
			assert.NotContains(t, h.mutations(), "patch deployments/scale apps/shop")
			assert.Contains(t, h.mutations(), "patch deployments/scale apps/cart")
		})
	}
}
