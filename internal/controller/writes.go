package controller

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
	"github.com/spinscale/spinscale/internal/status"
)

// Writes never hold decisions back.
//
// A pass decides for every app it considers and hands the scale writes
// those decisions ask for to a queue; it does not wait for them. Workers
// (config workers) make the queued writes while the loop runs: a write
// throttled by the client's rate limit (config kube.qps, kube.burst) or a
// slow API server delays other writes, never a decision nor the next pass.
// The most urgent write goes first: scale-ups before scale-downs, an app
// at zero first of all, then the most under-provisioned app (the largest
// desired/current). A queued write is never dropped silently: a newer
// decision for its app replaces it (counted in
// spinscale_scale_writes_superseded_total), so what is written is always
// the freshest decision; an app whose write is being made is not decided on
// until it is done (its next pass decides on it). When the loop is not
// running (a single pass, `run --once`), the pass makes its own writes
// before it ends, until its deadline; those it has no time for are counted
// in spinscale_scale_writes_deferred_total and their apps decided on again.

// write is a scale write a decision asks for.
type write struct {
	d   *appsv1.Deployment
	a   *app
	key types.NamespacedName
	// spec is the app's parsed spec the decision was made with.
	spec *recommender.Spec
	dec  recommender.Decision
	now  time.Time
	log  *zap.Logger
	// queued is when it was queued; seq orders writes of equal urgency.
	queued time.Time
	seq    uint64
	// index is the write's place in the queue's heap while it is queued.
	index int
}

// urgency orders writes: scale-ups before scale-downs, an app at zero
// first of all, then the largest desired/current.
func (w *write) urgency() float64 {
	cur, want := float64(w.dec.CurrentReplicas), float64(w.dec.DesiredReplicas)
	switch {
	case want <= cur:
		return 0
	case cur == 0:
		return math.Inf(1)
	}
	return want / cur
}

// before tells whether w goes before o.
func (w *write) before(o *write) bool {
	if uw, uo := w.urgency(), o.urgency(); uw != uo {
		return uw > uo
	}
	return w.seq < o.seq
}

// writeHeap orders the queued writes, most urgent first (container/heap).
type writeHeap []*write

func (h writeHeap) Len() int           { return len(h) }
func (h writeHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h writeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *writeHeap) Push(x any) {
	w := x.(*write)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *writeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// writeQueue holds the scale writes decided and not yet made, one per app,
// and the apps whose write is being made. pending and order hold the same
// writes: by app, and most urgent first, so that taking the next write
// costs O(log n) when a surge queues one for each of thousands of apps.
type writeQueue struct {
	mu      sync.Mutex
	pending map[types.NamespacedName]*write
	order   writeHeap
	running map[types.NamespacedName]bool
	seq     uint64
	// signal wakes a waiting worker; a worker that takes a write while
	// others remain wakes the next.
	signal chan struct{}
	// background is set while the loop's workers run.
	background bool
	queued     prometheus.Gauge
	superseded prometheus.Counter
}

func newWriteQueue(in *Instruments) *writeQueue {
	return &writeQueue{
		pending: map[types.NamespacedName]*write{}, running: map[types.NamespacedName]bool{},
		signal: make(chan struct{}, 1), queued: in.WritesQueued, superseded: in.WritesSuperseded,
	}
}

func (q *writeQueue) poke() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take readies key for a new decision: its queued write, if any, is
// dropped (the new decision replaces it). It returns false while key's
// write is being made: the app is not decided on until it is done.
func (q *writeQueue) take(key types.NamespacedName) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[key] {
		return false
	}
	if _, ok := q.pending[key]; ok {
		q.removeLocked(key)
		q.superseded.Inc()
		q.queued.Set(float64(len(q.pending)))
	}
	return true
}

// removeLocked drops key's queued write, which must exist.
func (q *writeQueue) removeLocked(key types.NamespacedName) {
	heap.Remove(&q.order, q.pending[key].index)
	delete(q.pending, key)
}

// withdraw drops key's queued write, if any, because its app may no longer
// be written (why); a write being made is not stopped.
func (q *writeQueue) withdraw(key types.NamespacedName, log *zap.Logger, why string) {
	q.mu.Lock()
	w, ok := q.pending[key]
	if ok {
		q.removeLocked(key)
		q.queued.Set(float64(len(q.pending)))
	}
	q.mu.Unlock()
	if ok {
		w.logWithdrawn(log, why)
	}
}

// logWithdrawn says why w is not made.
func (w *write) logWithdrawn(log *zap.Logger, why string) {
	log.Info("queued scale write withdrawn", zap.String("why", why),
		zap.Int32("currentReplicas", w.dec.CurrentReplicas), zap.Int32("desiredReplicas", w.dec.DesiredReplicas))
}

// submit queues a pass's writes.
func (q *writeQueue) submit(ws []*write, now time.Time) {
	if len(ws) == 0 {
		return
	}
	q.mu.Lock()
	for _, w := range ws {
		q.seq++
		w.seq, w.queued = q.seq, now
		if _, ok := q.pending[w.key]; ok {
			q.removeLocked(w.key)
			q.superseded.Inc()
		}
		q.pending[w.key] = w
		heap.Push(&q.order, w)
	}
	q.queued.Set(float64(len(q.pending)))
	q.mu.Unlock()
	q.poke()
}

// next takes the most urgent queued write and marks its app as being
// written, or returns nil.
func (q *writeQueue) next() *write {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return nil
	}
	best := heap.Pop(&q.order).(*write)
	delete(q.pending, best.key)
	q.running[best.key] = true
	q.queued.Set(float64(len(q.pending)))
	if len(q.pending) > 0 {
		q.poke()
	}
	return best
}

// done ends key's write.
func (q *writeQueue) done(key types.NamespacedName) {
	q.mu.Lock()
	delete(q.running, key)
	q.mu.Unlock()
}

// clear drops the queued writes (the loop stopped: leadership is lost) and
// returns them.
func (q *writeQueue) clear() []*write {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]*write, 0, len(q.pending))
	for _, w := range q.pending {
		out = append(out, w)
	}
	clear(q.pending)
	clear(q.order)
	q.order = q.order[:0]
	q.queued.Set(0)
	return out
}

func (q *writeQueue) setBackground(on bool) {
	q.mu.Lock()
	q.background = on
	q.mu.Unlock()
}

func (q *writeQueue) inBackground() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.background
}

// queueWrites hands a pass's writes to the loop's workers, or, when they do
// not run, makes them before the pass ends (until ctx ends).
func (c *Controller) queueWrites(ctx context.Context, writes []*write) {
	c.writes.submit(writes, c.clock.Now())
	if len(writes) == 0 || c.writes.inBackground() {
		// Nothing new; what a single pass queues it makes before it
		// ends, so nothing waits from an earlier one.
		return
	}
	var wg sync.WaitGroup
	for range max(1, c.cfg.Workers) {
		wg.Go(func() { c.writeWorker(ctx, false) })
	}
	wg.Wait()
}

// runWriters makes queued writes until ctx ends, on the configured number
// of workers; the writes still queued then are dropped (their apps are
// decided on again by whoever leads next).
func (c *Controller) runWriters(ctx context.Context) (stop func()) {
	c.writes.setBackground(true)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range max(1, c.cfg.Workers) {
		wg.Go(func() { c.writeWorker(wctx, true) })
	}
	return func() {
		cancel()
		wg.Wait()
		c.writes.setBackground(false)
		if dropped := c.writes.clear(); len(dropped) > 0 {
			for _, w := range dropped {
				w.a.mu.Lock()
				w.a.sched.edited = true
				w.a.mu.Unlock()
			}
			c.opts.Instruments.WritesDeferred.Add(float64(len(dropped)))
			c.log.Info("loop stopped; queued scale writes dropped", zap.Int("dropped", len(dropped)))
		}
	}
}

// writeWorker makes queued writes, most urgent first. A background worker
// waits for more until ctx ends; a pass's own worker returns when the
// queue is empty, and past ctx's end defers what is left.
func (c *Controller) writeWorker(ctx context.Context, background bool) {
	for {
		if background && ctx.Err() != nil {
			// The loop stopped: what is queued is dropped (runWriters).
			return
		}
		w := c.writes.next()
		if w == nil {
			if !background {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-c.writes.signal:
			}
			continue
		}
		if background {
			wctx, cancel := context.WithTimeout(ctx, c.cfg.Interval)
			c.carryOut(wctx, w)
			cancel()
		} else {
			c.carryOut(ctx, w)
		}
		c.writes.done(w.key)
	}
}

// carryOut makes one write and records its outcome. A panic here is logged
// with the app's key and never affects other apps.
func (c *Controller) carryOut(ctx context.Context, w *write) {
	a, d, dec, key, log := w.a, w.d, &w.dec, w.key, w.log
	defer func() {
		if r := recover(); r != nil {
			log.Error("scaling the app panicked; it is skipped this tick", zap.Any("panic", r))
		}
	}()
	if ctx.Err() != nil {
		// The pass is past its deadline, or the loop stopped: a write now
		// would fail and raise a Warning for nothing. The app is decided on
		// again next pass.
		a.mu.Lock()
		c.deferWriteLocked(ctx, a)
		a.mu.Unlock()
		return
	}
	// A write that waited in the queue is made only if the app is still
	// Spinscale's to write: another autoscaler may have taken it meanwhile,
	// or its annotations changed (an opted-out app's write is withdrawn by
	// the pass that no longer sees it).
	a.mu.Lock()
	why := ""
	switch {
	case a.parseErr != nil:
		why = "invalid annotations"
	case a.parsed.Shadow || a.parsed.DryRun:
		why = "now in shadow or dry-run mode"
	}
	a.mu.Unlock()
	if why == "" && d != nil {
		why = c.conflicts.refusal(d)
	}
	if why != "" {
		w.logWithdrawn(log, why)
		return
	}
	// The write runs without the app's lock, so that /apps answers while a
	// write waits for the rate limit or a slow API server; no decision for
	// the app runs while it is made (writeQueue.take), and the outcome is
	// recorded under the lock.
	scaled, err := c.opts.Scaler.Apply(ctx, key, w.spec, dec)
	if !w.queued.IsZero() {
		c.opts.Instruments.WriteLatency.Observe(c.clock.Since(w.queued).Seconds())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err == nil && !scaled:
	case err == nil:
		a.engine = recommender.Commit(w.spec, a.engine, dec, w.now)
		scaledAt := w.now.UTC()
		a.status.LastScale = &scaledAt
		a.startWaiting(dec.CurrentReplicas, dec.DesiredReplicas, c.clock.Now())
		c.opts.Instruments.ScaleWrites.WithLabelValues("ok").Inc()
		c.opts.Events.Clear(key, actuator.ReasonRescaleFailed)
		c.opts.Events.Normal(d, actuator.ReasonRescaled, fmt.Sprintf("%d → %d (%s; limitedBy %s)%s", dec.CurrentReplicas, dec.DesiredReplicas, report.Targets(dec), dec.LimitedBy, zeroNote(dec.Zero)))
		log.Info("scaled", zap.Int32("currentReplicas", dec.CurrentReplicas), zap.Int32("desiredReplicas", dec.DesiredReplicas),
			zap.String("limitedBy", string(dec.LimitedBy)), zap.String("reason", dec.Reason()))
	case ctx.Err() != nil:
		// Cut by the pass's deadline or the loop's end, not refused by the
		// API server: deferred, without a Warning.
		c.deferWriteLocked(ctx, a)
	case errors.Is(err, actuator.ErrConflict), errors.Is(err, actuator.ErrNotFound):
		c.opts.Instruments.ScaleWrites.WithLabelValues("conflict").Inc()
		a.sched.edited = true
		log.Info("not scaled; deciding again next tick", zap.Error(err))
	default:
		c.opts.Instruments.ScaleWrites.WithLabelValues("error").Inc()
		if len(a.status.Conditions) > 0 {
			a.status.Conditions[0] = status.Condition{Type: "AbleToScale", Status: "False", Reason: "FailedUpdateScale",
				Message: fmt.Sprintf("the scale write failed: %v", err)}
		}
		if c.opts.Events.Warning(d, key, actuator.ReasonRescaleFailed, fmt.Sprintf("scaling %d → %d failed: %v", dec.CurrentReplicas, dec.DesiredReplicas, err)) {
			log.Error("scale failed", zap.Error(err))
		}
	}
}

// deferWriteLocked counts a write not made because ctx ended, and has its
// app decided on again at the next pass. a.mu is held.
func (c *Controller) deferWriteLocked(ctx context.Context, a *app) {
	a.sched.edited = true
	c.opts.Instruments.WritesDeferred.Inc()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		c.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline").Inc()
	}
}
