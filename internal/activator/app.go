package activator

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/httpstats"
)

// backend is one ready pod's address, with the requests this activator has
// in flight to it.
type backend struct {
	addr     string // host:port, dialed as is
	inFlight atomic.Int64
	// quarantined is set for a while after the pod refused a connection:
	// pick skips it. strikes counts its refusals in a row, refusedAt is
	// the last. Guarded by its app's mu.
	quarantined bool
	strikes     int
	refusedAt   time.Time
	// pool is the fast loop's idle connections to it (upstream.go),
	// closed when it stops being a backend.
	pool upPool
}

// A pod that refused a connection is not picked for quarantineFirst,
// doubled at each refusal in a row up to quarantineFor: the EndpointSlice
// may still list a pod just scaled away, or one that turned Ready a moment
// before it listened (the first wait is short so that a request held at
// zero is not kept a second for that). A refusal more than quarantineFor
// after the last one starts again from quarantineFirst.
const (
	quarantineFirst = 50 * time.Millisecond
	quarantineFor   = time.Second
)

// quarantineAfter is the quarantine of a pod refused strikes times in a row.
func quarantineAfter(strikes int) time.Duration {
	d := quarantineFirst
	for i := 1; i < strikes && d < quarantineFor; i++ {
		d *= 2
	}
	return min(d, quarantineFor)
}

// app is one routed Deployment: its route, its ready backends, its held
// requests and its counts for the current second.
type app struct {
	key     httpstats.App
	created time.Time // the Deployment's creation, for conflicts
	// metrics are its Prometheus series, made at the first request.
	metrics atomic.Pointer[appMetrics]

	mu       sync.Mutex
	route    annotations.Route
	backends []*backend // ready, in no particular order
	// ready is closed while a backend can be picked (one not quarantined)
	// or the app is removed; held requests wait on it. A new one is made
	// each time the app falls to no backend to pick.
	ready       chan struct{}
	readyClosed bool
	removed     bool
	held        int64
	// parked are the held requests waiting without a handler (park.go),
	// woken when ready closes.
	parked map[*parked]struct{}

	// The counts of the current second.
	inFlight   int64
	requests   int64
	peak       int64
	area       float64 // in-flight × seconds since periodStart
	lastChange time.Time
	periodFrom time.Time
	lastWake   time.Time
}

func newApp(key httpstats.App, now time.Time) *app {
	return &app{key: key, ready: make(chan struct{}), parked: map[*parked]struct{}{}, lastChange: now, periodFrom: now}
}

// Errors of acquire.
var (
	errOverflow = errors.New("queue full")
	errTimeout  = errors.New("no ready pod in time")
	errRemoved  = errors.New("app no longer routed")
)

// advance integrates in-flight over time up to now. a.mu is held.
func (a *app) advance(now time.Time) {
	if d := now.Sub(a.lastChange); d > 0 {
		a.area += float64(a.inFlight) * d.Seconds()
		a.lastChange = now
	}
}

// begin counts a request that arrived.
func (a *app) begin(now time.Time) {
	a.mu.Lock()
	a.advance(now)
	a.requests++
	a.inFlight++
	a.peak = max(a.peak, a.inFlight)
	a.mu.Unlock()
}

// end counts a request that finished.
func (a *app) end(now time.Time) {
	a.mu.Lock()
	a.advance(now)
	a.inFlight--
	a.mu.Unlock()
}

// unbegin takes back a begin: the request went to ServeHTTP, which counts
// it again.
func (a *app) unbegin(now time.Time) {
	a.mu.Lock()
	a.advance(now)
	a.requests--
	a.inFlight--
	a.mu.Unlock()
}

// backendList returns the ready backends.
func (a *app) backendList() []*backend {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*backend(nil), a.backends...)
}

// snapshot returns the counts of the second ending at now and starts the
// next; ok is false when the app had no activity and holds nothing.
func (a *app) snapshot(now time.Time) (s httpstats.AppStats, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advance(now)
	s = httpstats.AppStats{
		App: a.key, Requests: a.requests, MaxConcurrency: a.peak,
		Held: a.held, Endpoints: len(a.backends),
	}
	if d := now.Sub(a.periodFrom).Seconds(); d > 0 {
		s.Concurrency = a.area / d
	}
	ok = a.requests > 0 || a.peak > 0 || a.held > 0
	a.requests, a.peak, a.area, a.periodFrom = 0, a.inFlight, 0, now
	return s, ok
}

// pick returns the ready backend with the fewest requests in flight from
// this activator, ties broken at random, or nil. a.mu is held.
func (a *app) pick(exclude *backend) *backend {
	n := len(a.backends)
	if n == 0 {
		return nil
	}
	start := rand.IntN(n)
	var best *backend
	var bestLoad int64
	for i := range n {
		b := a.backends[(start+i)%n]
		if b == exclude || b.quarantined {
			continue
		}
		if load := b.inFlight.Load(); best == nil || load < bestLoad {
			best, bestLoad = b, load
		}
	}
	return best
}

// holder is what acquire needs around it: the clock, the limits, and the
// wake to send when a request is held for an app at zero.
type holder struct {
	now       func() time.Time
	timer     func(time.Duration) clock.Timer
	afterFunc func(time.Duration, func()) clock.Timer
	size      int
	timeout   time.Duration
	wake      func(*app, httpstats.AppStats)
	onHold    func(httpstats.App) // test hook; nil in production
	// heldChanged is told of each request held (+1) and let go (-1).
	heldChanged func(a *app, delta float64)
}

// wakeEvery bounds the wakes sent for one app.
const wakeEvery = 500 * time.Millisecond

// acquire returns a ready backend with one more request in flight, holding
// the request while the app has none: until one turns ready, the request's
// context ends, or the queue timeout. A full queue fails at once.
func (a *app) acquire(ctx context.Context, h *holder) (*backend, error) {
	if b := a.pickNow(); b != nil {
		return b, nil
	}
	return a.hold(ctx, h, 0)
}

// pickNow returns a ready backend with one more request in flight, or nil.
func (a *app) pickNow() *backend {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.pick(nil)
	if b != nil {
		b.inFlight.Add(1)
	}
	return b
}

// hold is acquire for an app that had no ready backend; spent is the time
// the request was already held, deducted from its queue timeout.
func (a *app) hold(ctx context.Context, h *holder, spent time.Duration) (*backend, error) {
	ready, timeout, b, err := a.enter(h)
	if b != nil || err != nil {
		return b, err
	}
	defer a.leave(h)
	return a.wait(ctx, h, ready, max(timeout-spent, 0))
}

// wait holds a request that entered the queue until a backend can be
// picked, ctx ends, or timeout. A request held in its handler waits here,
// in small frames, with one timer and nothing else of its own beyond the
// select's wait records: the rest of its cost is its connection's in
// net/http (buffers, two goroutines). Parked requests (park.go) cost less.
func (a *app) wait(ctx context.Context, h *holder, ready <-chan struct{}, timeout time.Duration) (*backend, error) {
	t := h.timer(timeout)
	defer t.Stop()
	if h.onHold != nil {
		// Told once the timeout runs, so that a test that then moves the
		// clock moves it for this request.
		h.onHold(a.key)
	}
	for {
		select {
		case <-ready:
		case <-t.C():
			return nil, errTimeout
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		b, next, err := a.retry()
		if b != nil || err != nil {
			return b, err
		}
		ready = next
	}
}

// enter queues a request, or returns a backend that turned ready since
// acquire looked, or the reason it cannot be held. It sends a wake when
// one is due.
func (a *app) enter(h *holder) (ready <-chan struct{}, timeout time.Duration, b *backend, err error) {
	a.mu.Lock()
	if b := a.pick(nil); b != nil {
		b.inFlight.Add(1)
		a.mu.Unlock()
		return nil, 0, b, nil
	}
	if a.removed {
		a.mu.Unlock()
		return nil, 0, nil, errRemoved
	}
	size, timeout := h.size, h.timeout
	if a.route.QueueSize > 0 {
		size = a.route.QueueSize
	}
	if a.route.QueueTimeout > 0 {
		timeout = a.route.QueueTimeout
	}
	if a.held >= int64(size) {
		a.mu.Unlock()
		return nil, 0, nil, errOverflow
	}
	a.held++
	now := h.now()
	wake := a.lastWake.IsZero() || now.Sub(a.lastWake) >= wakeEvery
	var s httpstats.AppStats
	if wake {
		a.lastWake = now
		s = httpstats.AppStats{App: a.key, Requests: a.requests, MaxConcurrency: a.peak, Held: a.held}
	}
	ready = a.ready
	a.mu.Unlock()
	h.heldChanged(a, 1)
	if wake {
		h.wake(a, s)
	}
	return ready, timeout, nil, nil
}

// leave counts a held request let go.
func (a *app) leave(h *holder) {
	a.mu.Lock()
	a.held--
	a.mu.Unlock()
	h.heldChanged(a, -1)
}

// retry picks a backend after ready closed; when the pods went again, it
// returns the channel to wait on next.
func (a *app) retry() (*backend, <-chan struct{}, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b := a.pick(nil); b != nil {
		b.inFlight.Add(1)
		return b, nil, nil
	}
	if a.removed {
		return nil, nil, errRemoved
	}
	return nil, a.ready, nil
}

// setRoute replaces the app's route.
func (a *app) setRoute(r annotations.Route) {
	a.mu.Lock()
	a.route = r
	a.mu.Unlock()
}

// getRoute returns the app's route.
func (a *app) getRoute() annotations.Route {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.route
}

// setBackends replaces the ready backends, keeping the in-flight counts of
// the addresses that stay, and releases the held requests when the first
// turns ready.
func (a *app) setBackends(addrs []string) (before, after int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.removed {
		return len(a.backends), len(a.backends)
	}
	old := make(map[string]*backend, len(a.backends))
	for _, b := range a.backends {
		old[b.addr] = b
	}
	next := make([]*backend, 0, len(addrs))
	for _, addr := range addrs {
		b := old[addr]
		if b == nil {
			b = &backend{addr: addr}
		}
		next = append(next, b)
	}
	for _, b := range next {
		delete(old, b.addr)
	}
	for _, b := range old {
		b.pool.close() // no longer a backend
	}
	before, after = len(a.backends), len(next)
	a.backends = next
	a.syncReady()
	return before, after
}

// syncReady closes ready when a backend can be picked and makes a new one
// when none can. a.mu is held.
func (a *app) syncReady() {
	if a.removed {
		return
	}
	usable := false
	for _, b := range a.backends {
		if !b.quarantined {
			usable = true
			break
		}
	}
	switch {
	case usable && !a.readyClosed:
		close(a.ready)
		a.readyClosed = true
		a.wakeAllParked()
	case !usable && a.readyClosed:
		a.ready = make(chan struct{})
		a.readyClosed = false
	}
}

// quarantine stops picking b, which refused a connection, for
// quarantineAfter its refusals in a row; the requests held meanwhile are
// released when it ends and b is still listed, or as soon as another
// backend turns ready.
func (a *app) quarantine(b *backend, h *holder) {
	now := h.now()
	a.mu.Lock()
	if b.quarantined {
		a.mu.Unlock()
		return
	}
	if !b.refusedAt.IsZero() && now.Sub(b.refusedAt) > quarantineFor+quarantineAfter(b.strikes) {
		b.strikes = 0
	}
	b.strikes++
	b.refusedAt = now
	d := quarantineAfter(b.strikes)
	b.quarantined = true
	a.syncReady()
	a.mu.Unlock()
	// The callback runs on its own goroutine, as the clock's contract says
	// (a fake clock calls it with its own lock held, and a.mu is taken
	// before the clock's elsewhere).
	h.afterFunc(d, func() { go a.release(b) })
}

// release ends b's quarantine.
func (a *app) release(b *backend) {
	a.mu.Lock()
	b.quarantined = false
	a.syncReady()
	a.mu.Unlock()
}

// remove releases the held requests of an app no longer routed.
func (a *app) remove() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.removed {
		return
	}
	a.removed = true
	for _, b := range a.backends {
		b.pool.close()
	}
	if !a.readyClosed {
		close(a.ready)
		a.readyClosed = true
	}
	a.wakeAllParked()
}

// wakeAllParked wakes the parked requests to look for a backend. a.mu is
// held.
func (a *app) wakeAllParked() {
	for p := range a.parked {
		p.wake()
	}
}

// readyCount is the number of ready backends.
func (a *app) readyCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.backends)
}
