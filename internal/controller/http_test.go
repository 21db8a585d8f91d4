package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// fakeHTTP is an activator source: Observe answers from windows (or err),
// announcing each call on observed; Run announces its start and end.
type fakeHTTP struct {
	mu       sync.Mutex
	windows  recommender.HTTPWindows
	err      error
	observed chan struct{}
	started  chan struct{}
	ended    chan struct{}
}

func newFakeHTTP() *fakeHTTP {
	return &fakeHTTP{observed: make(chan struct{}, 16), started: make(chan struct{}, 1), ended: make(chan struct{}, 1)}
}

func (f *fakeHTTP) Run(ctx context.Context) {
	f.started <- struct{}{}
	<-ctx.Done()
	f.ended <- struct{}{}
}

func (f *fakeHTTP) Observe(_, _ string, _ recommender.HTTPSpec, _ time.Time) recommender.Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case f.observed <- struct{}{}:
	default:
	}
	if f.err != nil {
		return recommender.Observation{Err: f.err}
	}
	w := f.windows
	return recommender.Observation{HTTP: &w}
}

func (f *fakeHTTP) set(w recommender.HTTPWindows, err error) {
	f.mu.Lock()
	f.windows, f.err = w, err
	f.mu.Unlock()
}

func waitFor(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

func httpApp(extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/enabled":                 "true",
		"spinscale.dev/min-replicas":            "0",
		"spinscale.dev/max-replicas":            "10",
		"spinscale.dev/http-target-concurrency": "10",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// zeroDeployment is an app Spinscale scaled to zero.
func zeroDeployment(name string) *appsv1.Deployment {
	d := deployment(name, 0, httpApp(annotations.KeyScaledToZero, "2026-01-01T11:00:00Z"))
	return d
}

// A wake asks for a pass at once: the app at zero is scaled to one pod
// without the clock moving, neither by a poll nor by an interval.
func TestWakeDecidesWithoutWaitingForThePoll(t *testing.T) {
	src := newFakeHTTP()
	src.set(recommender.HTTPWindows{Idle: true}, nil)
	h := build(t, setup{http: src}, zeroDeployment("shop"))
	stop := runLoop(h)
	defer stop()
	waitFor(t, src.started, "the loop never started the activator source")
	waitFor(t, src.observed, "the first pass never read the app's counts")

	// A request is held for the app: the activator's wake.
	src.set(recommender.HTTPWindows{PanicHeld: 1}, nil)
	h.ctl.Wake("apps", "shop")
	waitFor(t, src.observed, "the wake never led to a pass")
	// The next wake's pass starts only once the woken pass has ended.
	h.ctl.Wake("apps", "shop")
	waitFor(t, src.observed, "the second wake never led to a pass")
	// The write is made beside the passes.
	var events []string
	require.Eventually(t, func() bool {
		events = append(events, h.events()...)
		return strings.Contains(strings.Join(events, "\n"), "0 → 1")
	}, 5*time.Second, time.Millisecond, "the wake's scale-up was never written")

	assert.Equal(t, t0, h.clock.Now(), "the clock never moved")
	// A write from a recorded zero patches the count and the record at once.
	var patches []string
	for _, a := range h.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			patches = append(patches, string(p.GetPatch()))
		}
	}
	// (The second wake's pass may see the count before the informer does,
	// and write it again under the same test op.)
	require.NotEmpty(t, patches)
	assert.Contains(t, patches[0], `{"op":"replace","path":"/spec/replicas","value":1}`)
}

// A wake for an app with ready pods, or not managed, asks for nothing.
func TestWakeIgnoresAppsWithReadyPods(t *testing.T) {
	pods, _ := podsFor("shop", 2)
	running := deployment("shop", 2, httpApp())
	running.Status.ReadyReplicas = 2
	h := build(t, setup{http: newFakeHTTP()}, append(pods, running, deployment("other", 0, nil))...)
	h.ctl.Wake("apps", "shop")
	h.ctl.Wake("apps", "other")
	h.ctl.Wake("apps", "absent")
	assert.Empty(t, h.ctl.nudge)
	h.ctl.Wake("apps", "shop")
	assert.False(t, h.ctl.appFor(types.NamespacedName{Namespace: "apps", Name: "shop"}).sched.woken)
}

// Missing counts are a failed metric: no scale-down, and the Warning names
// the HTTP metric.
func TestHTTPMissingDataBlocksScaleDown(t *testing.T) {
	src := newFakeHTTP()
	src.set(recommender.HTTPWindows{}, errNoStream)
	pods, _ := podsFor("shop", 3)
	h := build(t, setup{http: src}, append(pods, deployment("shop", 3, httpApp()))...)
	h.ctl.Once(context.Background())
	assert.Empty(t, h.writes())
	events := strings.Join(h.events(), "\n")
	assert.Contains(t, events, "MetricsDegraded")
	assert.Contains(t, events, "http-concurrency: no data")
}

// With the spinscale profile, each new second the activators count is
// fresh data, decided on at the next poll; the same second is not.
func TestHTTPFreshSecondsAreFreshData(t *testing.T) {
	src := newFakeHTTP()
	pods, _ := podsFor("shop", 2)
	h := build(t, setup{http: src, config: func(c *config.Config) { c.Profile = "spinscale" }}, append(pods, deployment("shop", 2, httpApp()))...)
	src.set(recommender.HTTPWindows{Stable: 15, Panic: 15, Latest: t0}, nil)
	h.ctl.Once(context.Background())
	first := decisions(t, h.inst)
	require.Equal(t, 1.0, first)

	h.clock.Step(time.Second)
	h.ctl.Once(context.Background())
	assert.Equal(t, first, decisions(t, h.inst), "the same second again: no decision")

	src.set(recommender.HTTPWindows{Stable: 15, Panic: 15, Latest: t0.Add(time.Second)}, nil)
	h.clock.Step(time.Second)
	h.ctl.Once(context.Background())
	assert.Equal(t, first+1, decisions(t, h.inst), "a new second: decided")
}

// The activator source runs only while the loop runs, that is while the
// controller leads.
func TestHTTPSourceRunsWhileLeading(t *testing.T) {
	src := newFakeHTTP()
	h := build(t, setup{http: src}, []runtime.Object{}...)
	select {
	case <-src.started:
		t.Fatal("the source ran before the loop")
	default:
	}
	stop := runLoop(h)
	waitFor(t, src.started, "the loop never started the source")
	stop()
	waitFor(t, src.ended, "the source outlived the loop")
}

// errNoStream is the activator source's missing data.
var errNoStream = fmt.Errorf("%w: no activator stream connected (of 1)", recommender.ErrNoData)

// decisions is the total of the decisions counter.
func decisions(t *testing.T, inst *Instruments) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	inst.Decisions.Collect(ch)
	close(ch)
	total := 0.0
	for m := range ch {
		var d dto.Metric
		require.NoError(t, m.Write(&d))
		total += d.GetCounter().GetValue()
	}
	return total
}
