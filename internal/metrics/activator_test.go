package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/httpstats"
	"github.com/spinscale/spinscale/internal/recommender"
)

// fakeActivator serves the stats stream on loopback: each connection
// streams the reports sent on its channel; a value on end ends the current
// connection.
type fakeActivator struct {
	srv     *httptest.Server
	reports chan httpstats.Report
	end     chan struct{}
	dialed  chan struct{}
	conns   atomic.Int32
}

func newFakeActivator(t *testing.T) *fakeActivator {
	f := &fakeActivator{reports: make(chan httpstats.Report), end: make(chan struct{}), dialed: make(chan struct{}, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != httpstats.StreamPath {
			http.NotFound(w, r)
			return
		}
		f.conns.Add(1)
		w.Header().Set("Content-Type", httpstats.ContentType)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		f.dialed <- struct{}{}
		enc := httpstats.NewEncoder(w)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-f.end:
				return
			case rep := <-f.reports:
				if err := enc.Encode(rep); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

var (
	appA = httpstats.App{Namespace: "web", Name: "a"}
	appB = httpstats.App{Namespace: "web", Name: "b"}
	// tStats is the fake clock's start and the activators' current second.
	tStats = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
)

func tick(at time.Time, apps ...httpstats.AppStats) httpstats.Report {
	return httpstats.Report{Kind: httpstats.KindTick, Activator: "act", Time: at, Apps: apps}
}

// rig runs an Activators source against the given addresses until the test
// ends; got receives a value after each report is recorded.
type rig struct {
	a     *Activators
	clk   *clocktesting.FakeClock
	got   chan struct{}
	wakes chan httpstats.App
}

func newRig(t *testing.T, opts ActivatorOptions) *rig {
	r := &rig{clk: clocktesting.NewFakeClock(tStats), got: make(chan struct{}, 64), wakes: make(chan httpstats.App, 8)}
	opts.Clock, opts.Logger = r.clk, zap.NewNop()
	opts.Wake = func(app httpstats.App) { r.wakes <- app }
	opts.Jitter = func() float64 { return 0.999 }
	a, err := NewActivators(opts)
	require.NoError(t, err)
	a.afterReport = func() { r.got <- struct{}{} }
	r.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// send streams rep from f and waits until the source recorded it.
func (r *rig) send(t *testing.T, f *fakeActivator, rep httpstats.Report) {
	t.Helper()
	select {
	case f.reports <- rep:
	case <-time.After(5 * time.Second):
		t.Fatal("the source never read the stream")
	}
	select {
	case <-r.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the report was never recorded")
	}
}

func waitDial(t *testing.T, f *fakeActivator) {
	t.Helper()
	select {
	case <-f.dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("the source never dialled the activator")
	}
}

var (
	rpsSpec  = recommender.HTTPSpec{Metric: recommender.HTTPRPS, StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2}
	concSpec = recommender.HTTPSpec{Metric: recommender.HTTPConcurrency, StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2}
)

// Two activators: per app and second, requests and concurrency are summed
// and held is the largest; an app absent from the ticks has zero traffic,
// which is data, not a failure.
func TestActivatorsAggregate(t *testing.T) {
	f1, f2 := newFakeActivator(t), newFakeActivator(t)
	r := newRig(t, ActivatorOptions{Addresses: []string{f1.srv.URL, f2.srv.URL}})
	waitDial(t, f1)
	waitDial(t, f2)

	s1, s2 := tStats.Add(-time.Second), tStats
	r.send(t, f1, tick(s1, httpstats.AppStats{App: appA, Requests: 4, Concurrency: 2}))
	r.send(t, f1, tick(s2, httpstats.AppStats{App: appA, Requests: 10, Concurrency: 4, Held: 1}))
	// The other activator's report of the same second, 20 ms off.
	r.send(t, f2, tick(s2.Add(20*time.Millisecond), httpstats.AppStats{App: appA, Requests: 6, Concurrency: 2, Held: 3}))

	now := r.clk.Now()
	obs := r.a.Observe("web", "a", rpsSpec, now)
	require.NoError(t, obs.Err)
	require.NotNil(t, obs.HTTP)
	// Two seconds covered so far: (4 + 16) / 2.
	assert.InDelta(t, 10.0, obs.HTTP.Stable, 1e-9)
	assert.InDelta(t, 10.0, obs.HTTP.Panic, 1e-9)
	assert.Equal(t, int64(20), obs.HTTP.PanicRequests)
	assert.Equal(t, int64(3), obs.HTTP.PanicHeld)
	assert.False(t, obs.HTTP.Idle)
	assert.Equal(t, s2, obs.HTTP.Latest)

	obs = r.a.Observe("web", "a", concSpec, now)
	require.NoError(t, obs.Err)
	assert.InDelta(t, 4.0, obs.HTTP.Stable, 1e-9, "(2 + 6) / 2")

	obs = r.a.Observe("web", "b", concSpec, now)
	require.NoError(t, obs.Err, "no traffic is zero traffic")
	assert.Zero(t, obs.HTTP.Stable)
	assert.True(t, obs.HTTP.Idle)

	// Past the panic window, only the stable window remembers.
	for i := 1; i <= 6; i++ {
		r.send(t, f1, tick(s2.Add(time.Duration(i)*time.Second)))
	}
	obs = r.a.Observe("web", "a", rpsSpec, now)
	require.NoError(t, obs.Err)
	assert.InDelta(t, 20.0/8, obs.HTTP.Stable, 1e-9)
	assert.Zero(t, obs.HTTP.Panic)
	assert.Zero(t, obs.HTTP.PanicRequests)
	assert.False(t, obs.HTTP.Idle)
}

// Missing data: before any stream, and when every stream is silent for
// more than StreamSilence, the observation fails.
func TestActivatorsMissingData(t *testing.T) {
	f := newFakeActivator(t)
	r := newRig(t, ActivatorOptions{Addresses: []string{f.srv.URL}})
	obs := r.a.Observe("web", "a", rpsSpec, r.clk.Now())
	assert.ErrorIs(t, obs.Err, recommender.ErrNoData)

	waitDial(t, f)
	r.send(t, f, tick(tStats, httpstats.AppStats{App: appA, Requests: 1}))
	require.NoError(t, r.a.Observe("web", "a", rpsSpec, r.clk.Now()).Err)

	obs = r.a.Observe("web", "a", rpsSpec, r.clk.Now().Add(StreamSilence+time.Second))
	assert.ErrorIs(t, obs.Err, recommender.ErrStale)
	assert.ErrorContains(t, obs.Err, "silent for more than 3s")
}

// No activator configured or reachable is missing data too.
func TestActivatorsNoStream(t *testing.T) {
	r := newRig(t, ActivatorOptions{})
	obs := r.a.Observe("web", "a", rpsSpec, r.clk.Now())
	assert.ErrorIs(t, obs.Err, recommender.ErrNoData)
	assert.ErrorContains(t, obs.Err, "no activator to stream")

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	r = newRig(t, ActivatorOptions{Addresses: []string{dead.URL}})
	obs = r.a.Observe("web", "a", rpsSpec, r.clk.Now())
	assert.ErrorIs(t, obs.Err, recommender.ErrNoData)
}

// A stream that ends is dialled again after a backoff on the clock, and its
// counts go on.
func TestActivatorsReconnect(t *testing.T) {
	f := newFakeActivator(t)
	r := newRig(t, ActivatorOptions{Addresses: []string{f.srv.URL}})
	waitDial(t, f)
	r.send(t, f, tick(tStats, httpstats.AppStats{App: appA, Requests: 3}))
	f.end <- struct{}{}

	// The backoff waits on the fake clock: step it until the source dials.
	deadline := time.After(5 * time.Second)
	for redialled := false; !redialled; {
		select {
		case <-f.dialed:
			redialled = true
		case <-deadline:
			t.Fatal("the source never dialled again")
		case <-time.After(10 * time.Millisecond):
			r.clk.Step(minBackoff)
		}
	}
	assert.Equal(t, int32(2), f.conns.Load())
	r.send(t, f, tick(tStats.Add(time.Second), httpstats.AppStats{App: appA, Requests: 5}))
	obs := r.a.Observe("web", "a", rpsSpec, r.clk.Now())
	require.NoError(t, obs.Err)
	// The windows start again at the first second after the gap: the
	// seconds the gap lost are not read as zero traffic.
	assert.Equal(t, int64(5), obs.HTTP.PanicRequests)
	assert.InDelta(t, 5.0, obs.HTTP.Stable, 1e-9)
}

// A wake report calls Wake at once and counts as a held request for the
// panic window, before any tick counts it.
func TestActivatorsWake(t *testing.T) {
	f := newFakeActivator(t)
	r := newRig(t, ActivatorOptions{Addresses: []string{f.srv.URL}})
	waitDial(t, f)
	r.send(t, f, tick(tStats))
	r.send(t, f, httpstats.Report{Kind: httpstats.KindWake, Activator: "act", Time: tStats,
		Apps: []httpstats.AppStats{{App: appA, Held: 1}}})
	select {
	case app := <-r.wakes:
		assert.Equal(t, appA, app)
	default:
		t.Fatal("no wake")
	}
	obs := r.a.Observe("web", "a", concSpec, r.clk.Now())
	require.NoError(t, obs.Err)
	assert.Equal(t, int64(1), obs.HTTP.PanicHeld)
	assert.False(t, obs.HTTP.Idle)
	r.clk.Step(7 * time.Second)
	r.send(t, f, tick(tStats.Add(7*time.Second)))
	obs = r.a.Observe("web", "a", concSpec, r.clk.Now())
	require.NoError(t, obs.Err)
	assert.Zero(t, obs.HTTP.PanicHeld, "the wake is out of the panic window")
	assert.True(t, obs.HTTP.Idle)
}

// An app that has had no report for longer than the longest window is
// forgotten.
func TestActivatorsForgetIdleApps(t *testing.T) {
	a, err := NewActivators(ActivatorOptions{Clock: clocktesting.NewFakeClock(tStats), Logger: zap.NewNop()})
	require.NoError(t, err)
	s := &streamState{connected: true}
	a.add(s, tick(tStats, httpstats.AppStats{App: appA, Requests: 1}))
	require.Len(t, a.apps, 1)
	// A minute boundary 2 minutes later: appA's second is out of the
	// one-minute window.
	a.add(s, tick(tStats.Add(2*time.Minute), httpstats.AppStats{App: appB, Requests: 1}))
	assert.NotContains(t, a.apps, appA)
	assert.Contains(t, a.apps, appB)
}

// The activator Service's ready endpoints, on the port named admin or the
// only port, are streamed.
func TestActivatorsService(t *testing.T) {
	f := newFakeActivator(t)
	host, port, ok := strings.Cut(strings.TrimPrefix(f.srv.URL, "http://"), ":")
	require.True(t, ok)
	var portN int32
	for _, c := range port {
		portN = portN*10 + int32(c-'0')
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "spinscale", Name: "activator-admin-1", Labels: map[string]string{discoveryv1.LabelServiceName: "activator-admin"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}, {Name: ptr.To("admin"), Port: ptr.To(portN)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"127.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	r := newRig(t, ActivatorOptions{Service: "spinscale/activator-admin", Client: fake.NewClientset(slice)})
	waitDial(t, f)
	r.send(t, f, tick(tStats, httpstats.AppStats{App: appA, Requests: 2}))
	assert.NoError(t, r.a.Observe("web", "a", rpsSpec, r.clk.Now()).Err)
}

func TestEndpointURLs(t *testing.T) {
	slices := []discoveryv1.EndpointSlice{
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To(""), Port: ptr.To(int32(9090))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}}},
		{Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(80))}, {Name: ptr.To("metrics"), Port: ptr.To(int32(81))}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.9"}}}},
	}
	assert.Equal(t, []string{"http://[fd00::1]:9090"}, endpointURLs(slices), "no admin port among several: skipped")
}

func TestNewActivatorsErrors(t *testing.T) {
	_, err := NewActivators(ActivatorOptions{Clock: clocktesting.NewFakeClock(tStats), Logger: zap.NewNop(), Service: "nons", Client: fake.NewClientset()})
	assert.ErrorContains(t, err, `service "nons" is not namespace/name`)
	_, err = NewActivators(ActivatorOptions{Clock: clocktesting.NewFakeClock(tStats), Logger: zap.NewNop(), Service: "a/b"})
	assert.ErrorContains(t, err, "needs a Kubernetes client")
}
