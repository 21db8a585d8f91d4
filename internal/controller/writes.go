package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
	"github.com/spinscale/spinscale/internal/status"
)

// Writes never hold decisions back.
//
// A pass first decides for every app it considers, then makes the scale
// writes those decisions ask for, on the same pool of workers: a write
// throttled by the client's rate limit (config kube.qps, kube.burst) or a
// slow API server delays other writes, never a decision. When writes must
// queue, scale-ups go first, the most under-provisioned app (the largest
// desired/current) first, then scale-downs. A write the pass has no time
// left for is not dropped: its app is decided on again at the next pass,
// with fresher data, and counted in spinscale_scale_writes_deferred_total.

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

// writeAll makes the pass's writes, most urgent first, until ctx ends.
func (c *Controller) writeAll(ctx context.Context, writes []*write) {
	c.opts.Instruments.WritesQueued.Set(float64(len(writes)))
	if len(writes) == 0 {
		return
	}
	sort.SliceStable(writes, func(i, j int) bool { return writes[i].urgency() > writes[j].urgency() })
	ran := make([]atomic.Bool, len(writes))
	workqueue.ParallelizeUntil(ctx, max(1, c.cfg.Workers), len(writes), func(i int) {
		ran[i].Store(true)
		c.carryOut(ctx, writes[i])
	})
	deferred := 0
	for i, w := range writes {
		if ran[i].Load() {
			continue
		}
		deferred++
		w.a.mu.Lock()
		w.a.sched.edited = true
		w.a.mu.Unlock()
	}
	if deferred > 0 {
		c.opts.Instruments.WritesDeferred.Add(float64(deferred))
		c.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline").Add(float64(deferred))
		c.log.Warn("tick deadline passed; scale writes left for the next tick, decided again on fresh data",
			zap.Int("deferred", deferred), zap.Int("writes", len(writes)))
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
		// The pass is past its deadline: a write now would fail and raise a
		// Warning for nothing. The app is decided on again next pass.
		a.mu.Lock()
		a.sched.edited = true
		a.mu.Unlock()
		c.opts.Instruments.WritesDeferred.Inc()
		c.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline").Inc()
		return
	}
	// The write runs without the app's lock, so that /apps answers while a
	// write waits for the rate limit or a slow API server; no decision runs
	// during the pass's writes, and the outcome is recorded under the lock.
	scaled, err := c.opts.Scaler.Apply(ctx, key, w.spec, dec)
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
