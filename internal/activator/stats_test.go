package activator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/spinscale/spinscale/internal/httpstats"
)

// streamReader reads the stats stream of a harness.
type streamReader struct {
	reports chan httpstats.Report
	errs    chan error
}

// openStream opens the stats stream and waits until the activator counts
// it as a reader.
func (h *harness) openStream() *streamReader {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.admin+httpstats.StreamPath, nil)
	require.NoError(h.t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(h.t, err)
	require.Equal(h.t, http.StatusOK, res.StatusCode)
	require.Equal(h.t, httpstats.ContentType, res.Header.Get("Content-Type"))
	s := &streamReader{reports: make(chan httpstats.Report, 100), errs: make(chan error, 1)}
	go func() {
		defer res.Body.Close()
		dec := httpstats.NewDecoder(res.Body)
		for {
			r, err := dec.Decode()
			if err != nil {
				s.errs <- err
				return
			}
			s.reports <- r
		}
	}()
	return s
}

func (s *streamReader) next(t *testing.T) httpstats.Report {
	t.Helper()
	select {
	case r := <-s.reports:
		return r
	case err := <-s.errs:
		t.Fatalf("stats stream ended: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("no stats report")
	}
	return httpstats.Report{}
}

func TestStatsStreamTicksToEveryReader(t *testing.T) {
	h := newHarness(t)
	first, second := h.openStream(), h.openStream()
	h.create(backendSlice("ns", "web", "web", named(t, "web")))
	h.create(deployment("ns", "web", epoch, "http-hosts", "web"))
	h.ready("ns", "web", 1)
	for range 3 {
		res, _ := h.get("web", "/")
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	h.get("unknown", "/")

	h.clock.Step(time.Second)
	for _, s := range []*streamReader{first, second} {
		r := s.next(t)
		assert.Equal(t, httpstats.KindTick, r.Kind)
		assert.Equal(t, "activator-0", r.Activator)
		assert.Equal(t, epoch.Add(time.Second), r.Time)
		require.Len(t, r.Apps, 1)
		assert.Equal(t, httpstats.AppStats{App: httpstats.App{Namespace: "ns", Name: "web"}, Requests: 3, MaxConcurrency: 1, Endpoints: 1}, r.Apps[0])
	}
	// A quiet second still ticks, with no app.
	h.clock.Step(time.Second)
	r := first.next(t)
	assert.Equal(t, httpstats.KindTick, r.Kind)
	assert.Empty(t, r.Apps)
	assert.Contains(t, h.metrics(), "spinscale_activator_stream_readers 2")
	assert.Contains(t, h.metrics(), `spinscale_activator_requests_total{app="web",code="200",namespace="ns"} 3`)
	assert.Contains(t, h.metrics(), `spinscale_activator_requests_total{app="",code="404",namespace=""} 1`)
}

func TestStatsStreamRefusesOtherMethods(t *testing.T) {
	h := newHarness(t)
	res, err := http.Post(h.admin+httpstats.StreamPath, "text/plain", nil)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

// Concurrency is the time average of the requests in flight, held ones
// included, over the second; the peak and the held count at its end too.
func TestSnapshotAveragesInFlightOverTheSecond(t *testing.T) {
	key := httpstats.App{Namespace: "ns", Name: "web"}
	a := newApp(key, epoch)
	at := func(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }
	a.begin(at(0))
	a.begin(at(250))
	a.begin(at(250))
	a.end(at(500))
	a.end(at(750))
	// in flight: 1 for 250ms, 3 for 250ms, 2 for 250ms, 1 for 250ms = 1.75
	s, ok := a.snapshot(at(1000))
	require.True(t, ok)
	assert.Equal(t, httpstats.AppStats{App: key, Requests: 3, Concurrency: 1.75, MaxConcurrency: 3}, s)

	// The next second starts from the request still in flight.
	a.end(at(1500))
	s, ok = a.snapshot(at(2000))
	require.True(t, ok, "a request in flight is activity")
	assert.Equal(t, httpstats.AppStats{App: key, Concurrency: 0.5, MaxConcurrency: 1}, s)
	s, ok = a.snapshot(at(3000))
	assert.False(t, ok, "an idle app is left out of the tick")
	assert.Zero(t, s.Concurrency)
}

func TestSlowReaderIsDroppedWithoutBlocking(t *testing.T) {
	counts := []int{}
	h := newHub(func(n int) { counts = append(counts, n) })
	slow, fast := h.add(), h.add()
	for i := range readerBuffer + 1 {
		h.publish(httpstats.Report{Kind: httpstats.KindTick, Activator: "a"})
		if i < readerBuffer {
			<-fast.reports
		}
	}
	select {
	case <-slow.dropped:
	default:
		t.Fatal("the reader that fell behind is still served")
	}
	select {
	case <-fast.dropped:
		t.Fatal("the reader that kept up was dropped")
	default:
	}
	assert.Equal(t, []int{1, 2, 1}, counts)
}

func TestWakesAreAtMostOnePer500ms(t *testing.T) {
	var wakes []httpstats.AppStats
	clk := epoch
	h := &holder{
		now:   func() time.Time { return clk },
		timer: clocktesting.NewFakeClock(epoch).NewTimer,
		size:  10, timeout: time.Second,
		wake:        func(_ *app, s httpstats.AppStats) { wakes = append(wakes, s) },
		heldChanged: func(*app, float64) {},
	}
	a := newApp(httpstats.App{Namespace: "ns", Name: "idle"}, epoch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // each acquire holds, wakes if due, and returns at once
	for _, ms := range []int{0, 100, 499, 500, 900, 1000} {
		clk = epoch.Add(time.Duration(ms) * time.Millisecond)
		_, err := a.acquire(ctx, h)
		require.ErrorIs(t, err, context.Canceled)
	}
	assert.Len(t, wakes, 3, "wakes at 0, 500 and 1000 ms")
}

func TestReadyzIsFalseBeforeTheCachesSync(t *testing.T) {
	x, err := New(Options{Name: "a"})
	require.NoError(t, err)
	srv := httptest.NewServer(x.AdminHandler())
	t.Cleanup(srv.Close)
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable, "/metrics": http.StatusOK} {
		res, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.StatusCode, path)
	}
}

func TestRemovedAppReleasesItsHeldRequestsWith404(t *testing.T) {
	h := newHarness(t)
	h.create(deployment("ns", "idle", epoch, "http-hosts", "idle"))
	h.routed("idle", "/", "ns", "idle")
	done := make(chan int, 1)
	go func() { res, _ := h.get("idle", "/"); done <- res.StatusCode }()
	h.awaitHold("ns", "idle")
	require.NoError(t, h.client.AppsV1().Deployments("ns").Delete(context.Background(), "idle", metav1.DeleteOptions{}))
	assert.Equal(t, http.StatusNotFound, <-done)
}
