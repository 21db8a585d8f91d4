package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
)

// app is the controller's memory of one opted-in Deployment.
type app struct {
	mu sync.Mutex
	// annotations the spec was parsed from; a change re-parses.
	annotations map[string]string
	parsed      annotations.App
	parseErr    error
	engine      recommender.State
	// state and limitedBy are the values last exported for the app.
	state, limitedBy string
}

// ensureParsed parses the annotations when they changed since last time.
func (a *app) ensureParsed(ann map[string]string, d annotations.Defaults) {
	if a.annotations != nil && maps.Equal(a.annotations, ann) {
		return
	}
	a.annotations = maps.Clone(ann)
	a.parsed, a.parseErr = annotations.Parse(ann, d)
}

// tick decides for every managed app once, on a pool of cfg.Workers
// goroutines. Apps whose turn comes after ctx has ended (the tick's deadline
// passed, or the controller is stopping) are skipped until the next tick,
// counted, and logged once for the tick.
func (c *Controller) tick(ctx context.Context, now time.Time) {
	start := c.clock.Now()
	deps := c.managed()
	plan := c.parseAll(deps)
	snap := c.resourceSnapshot(ctx, plan.resourceNamespaces)
	results := c.runQueries(ctx, plan.queries)

	// ParallelizeUntil hands out no app once ctx has ended, so that none is
	// decided on a tick that is over; they are counted as skipped with the
	// ones whose decision process did not carry out.
	var visited, skipped atomic.Int64
	workqueue.ParallelizeUntil(ctx, max(1, c.cfg.Workers), len(deps), func(i int) {
		visited.Add(1)
		if c.process(ctx, deps[i], snap, results, now) {
			skipped.Add(1)
		}
	})
	if n := skipped.Load() + int64(len(deps)) - visited.Load(); n > 0 {
		reason := skipCanceled
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = skipTickDeadline
		}
		c.opts.Instruments.AppsSkipped.WithLabelValues(reason).Add(float64(n))
		c.log.Warn("apps skipped this tick; the next tick decides for them",
			zap.Int64("skipped", n), zap.Int("apps", len(deps)), zap.String("reason", reason))
	}
	c.forgetGone(deps)

	for _, act := range []actuator.Actuator{c.opts.Scaler, c.opts.Printer} {
		if err := act.Flush(); err != nil {
			c.log.Error("flush decisions", zap.Error(err))
		}
	}
	took := c.clock.Since(start)
	c.opts.Instruments.TickDuration.Observe(took.Seconds())
	c.opts.Instruments.Apps.Set(float64(len(deps)))
	c.opts.Instruments.LastTick.Set(float64(c.clock.Now().Unix()))
	c.lastTick.Store(c.clock.Now().UnixNano())
	c.log.Debug("tick", zap.Int("apps", len(deps)), zap.Duration("took", took))
}

// forgetGone drops the memory, series and warnings of apps that are no
// longer managed.
func (c *Controller) forgetGone(deps []*appsv1.Deployment) {
	seen := make(map[types.NamespacedName]bool, len(deps))
	for _, d := range deps {
		seen[types.NamespacedName{Namespace: d.Namespace, Name: d.Name}] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.apps {
		if !seen[key] {
			delete(c.apps, key)
			c.opts.Instruments.forget(key.Namespace, key.Name)
			c.opts.Events.Forget(key)
		}
	}
}

// appFor returns the controller's memory of an app, creating it.
func (c *Controller) appFor(key types.NamespacedName) *app {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.apps[key]
	if a == nil {
		a = &app{}
		c.apps[key] = a
	}
	return a
}

// fetchPlan is what a tick fetches, read from the apps' parsed specs.
type fetchPlan struct {
	// queries are the distinct PromQL queries, so that each runs once per
	// tick however many apps share it.
	queries []string
	// resourceNamespaces are the namespaces of apps with a cpu or memory
	// metric.
	resourceNamespaces map[string]bool
}

// parseAll brings every app's parsed spec up to date (the only parse of the
// tick: process reads the result) and plans the tick's fetches from the
// valid ones.
func (c *Controller) parseAll(deps []*appsv1.Deployment) fetchPlan {
	plan := fetchPlan{resourceNamespaces: map[string]bool{}}
	seen := map[string]bool{}
	for _, d := range deps {
		a := c.appFor(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		a.mu.Lock()
		a.ensureParsed(d.Annotations, c.defaults)
		if a.parseErr == nil {
			for _, m := range a.parsed.Spec.Metrics {
				switch m.Source {
				case recommender.SourceResource:
					plan.resourceNamespaces[d.Namespace] = true
				case recommender.SourcePrometheus:
					if !seen[m.Query] {
						seen[m.Query] = true
						plan.queries = append(plan.queries, m.Query)
					}
				}
			}
		}
		a.mu.Unlock()
	}
	sort.Strings(plan.queries)
	return plan
}

// runQueries runs the tick's distinct queries, or reports for each that no
// Prometheus source is configured.
func (c *Controller) runQueries(ctx context.Context, queries []string) map[string]recommender.Observation {
	if len(queries) == 0 {
		return nil
	}
	if c.opts.Queries == nil {
		out := make(map[string]recommender.Observation, len(queries))
		for _, q := range queries {
			out[q] = recommender.Observation{Err: fmt.Errorf("%w: no Prometheus source is configured (prometheus.address)", recommender.ErrNoData)}
		}
		return out
	}
	results := c.opts.Queries.Query(ctx, queries)
	for _, obs := range results {
		if obs.Err != nil {
			c.opts.Instruments.FetchErrors.WithLabelValues(sourcePrometheus).Inc()
			break
		}
	}
	return results
}

// managed lists the opted-in Deployments from the caches.
func (c *Controller) managed() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, l := range c.deployments {
		all, err := l.List(labels.Everything())
		if err != nil {
			continue
		}
		for _, d := range all {
			if annotations.Enabled(d.Annotations) && d.DeletionTimestamp == nil {
				out = append(out, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// maxNamespaceLists is how many per-namespace LISTs of pod metrics a tick
// makes before one cluster-wide LIST is cheaper.
const maxNamespaceLists = 8

// resourceSnapshot fetches pod usage once for the tick, only from the
// namespaces of apps that scale on cpu or memory.
func (c *Controller) resourceSnapshot(ctx context.Context, namespaces map[string]bool) *metrics.ResourceSnapshot {
	if c.opts.Resources == nil || !c.cfg.MetricsServer.Enabled {
		return metrics.NewResourceSnapshot(nil, map[string]error{"": errors.New("metrics.k8s.io source is disabled (metricsServer.enabled: false)")})
	}
	if len(namespaces) == 0 {
		return metrics.NewResourceSnapshot(nil, nil)
	}
	var list []string
	if len(namespaces) <= maxNamespaceLists || len(c.cfg.Namespaces) > 0 {
		for ns := range namespaces {
			list = append(list, ns)
		}
		sort.Strings(list)
	}
	snap := c.opts.Resources.Snapshot(ctx, list)
	for _, ns := range append(list, "") {
		if err := snap.Err(ns); err != nil {
			c.opts.Instruments.FetchErrors.WithLabelValues(sourceMetricsServer).Inc()
			c.log.Warn("resource metrics unavailable", zap.String("namespace", ns), zap.Error(err))
			break
		}
	}
	return snap
}

// process decides for one app and has the decision carried out: by the
// Printer when the app is in dry-run, by the Scaler otherwise. It reads the
// spec parseAll brought up to date this tick. A failure here, a panic
// included, is logged with the app's key and never affects other apps. It
// reports whether the decision was skipped because ctx ended before it was
// carried out: a write then could only fail, and the next tick decides
// again.
func (c *Controller) process(ctx context.Context, d *appsv1.Deployment, snap *metrics.ResourceSnapshot, results map[string]recommender.Observation, now time.Time) (skipped bool) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	log := c.log.With(zap.String("namespace", d.Namespace), zap.String("deployment", d.Name))
	defer func() {
		if r := recover(); r != nil {
			c.opts.Instruments.AppsSkipped.WithLabelValues(skipPanic).Inc()
			log.Error("processing the app panicked; it is skipped this tick", zap.Any("panic", r), zap.Stack("stack"))
		}
	}()

	a := c.appFor(key)
	a.mu.Lock()
	defer a.mu.Unlock()

	// An app whose annotations do not parse has no dry-run setting of its
	// own: only the global one applies.
	dryRun := c.cfg.DryRun || (a.parseErr == nil && a.parsed.DryRun)
	act := c.opts.Scaler
	if dryRun {
		act = c.opts.Printer
	}
	if a.parseErr != nil {
		if c.opts.Events.Warning(d, key, actuator.ReasonInvalidConfig, "invalid annotations, app left untouched: "+a.parseErr.Error()) {
			log.Warn("invalid annotations; app left untouched", zap.Error(a.parseErr))
		}
		setOne(c.opts.Instruments.AppState, d.Namespace, d.Name, &a.state, "invalid")
		act.Hold(key, specReplicas(d), "invalid annotations: "+a.parseErr.Error())
		return false
	}
	c.opts.Events.Clear(key, actuator.ReasonInvalidConfig)
	if w := a.parsed.Warnings; len(w) > 0 {
		if c.opts.Events.Warning(d, key, actuator.ReasonUnknownAnnotation, strings.Join(w, "; ")) {
			log.Warn("annotation warnings", zap.Strings("warnings", w))
		}
	} else {
		c.opts.Events.Clear(key, actuator.ReasonUnknownAnnotation)
	}
	if why := c.conflicts.refusal(d); why != "" {
		if c.opts.Events.Warning(d, key, actuator.ReasonRefused, "not scaling: "+why) {
			log.Warn("refusing to scale", zap.String("reason", why))
		}
		setOne(c.opts.Instruments.AppState, d.Namespace, d.Name, &a.state, "refused")
		act.Hold(key, specReplicas(d), "not scaling: "+why)
		return false
	}
	c.opts.Events.Clear(key, actuator.ReasonRefused)

	spec := &a.parsed.Spec
	in := c.input(d, spec, snap, results)
	dec, st := recommender.Decide(spec, &in, a.engine, now)
	a.engine = st
	c.observe(d, a, &dec, dryRun, log)
	if ctx.Err() != nil {
		return true
	}

	scaled, err := act.Apply(ctx, key, spec, &dec)
	switch {
	case err == nil && !scaled:
	case err == nil:
		a.engine = recommender.Commit(spec, a.engine, &dec, now)
		c.opts.Instruments.ScaleWrites.WithLabelValues("ok").Inc()
		c.opts.Events.Clear(key, actuator.ReasonRescaleFailed)
		c.opts.Events.Normal(d, actuator.ReasonRescaled, fmt.Sprintf("%d → %d (%s; limitedBy %s)", dec.CurrentReplicas, dec.DesiredReplicas, report.Targets(&dec), dec.LimitedBy))
		log.Info("scaled", zap.Int32("currentReplicas", dec.CurrentReplicas), zap.Int32("desiredReplicas", dec.DesiredReplicas),
			zap.String("limitedBy", string(dec.LimitedBy)), zap.String("reason", dec.Reason()))
	case errors.Is(err, actuator.ErrConflict), errors.Is(err, actuator.ErrNotFound):
		c.opts.Instruments.ScaleWrites.WithLabelValues("conflict").Inc()
		log.Info("not scaled; deciding again next tick", zap.Error(err))
	default:
		c.opts.Instruments.ScaleWrites.WithLabelValues("error").Inc()
		if c.opts.Events.Warning(d, key, actuator.ReasonRescaleFailed, fmt.Sprintf("scaling %d → %d failed: %v", dec.CurrentReplicas, dec.DesiredReplicas, err)) {
			log.Error("scale failed", zap.Error(err))
		}
	}
	return false
}

// specReplicas is the Deployment's spec.replicas, 1 when unset as the API
// server defaults it.
func specReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas != nil {
		return *d.Spec.Replicas
	}
	return 1
}

// input gathers the engine's input from the caches and the snapshot.
func (c *Controller) input(d *appsv1.Deployment, spec *recommender.Spec, snap *metrics.ResourceSnapshot, results map[string]recommender.Observation) recommender.Input {
	in := recommender.Input{SpecReplicas: specReplicas(d), StatusReplicas: d.Status.Replicas}
	for _, p := range c.podsOf(d) {
		in.Pods = append(in.Pods, enginePod(p))
	}
	in.Metrics = make([]recommender.Observation, len(spec.Metrics))
	for i, m := range spec.Metrics {
		switch m.Source {
		case recommender.SourceResource:
			in.Metrics[i] = snap.Observation(d.Namespace, in.Pods, m.Resource)
		case recommender.SourcePrometheus:
			obs, ok := results[m.Query]
			if !ok {
				obs = recommender.Observation{Err: fmt.Errorf("%w: query %q was not run this tick", recommender.ErrNoData, m.Query)}
			}
			in.Metrics[i] = obs
		}
	}
	return in
}

// podsOf finds the pods matched by the Deployment's selector through the
// label index: candidates share the selector's first label, then the whole
// selector is checked.
func (c *Controller) podsOf(d *appsv1.Deployment) []*corev1.Pod {
	if d.Spec.Selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil
	}
	var out []*corev1.Pod
	for _, idx := range c.pods {
		for _, obj := range candidates(idx, d) {
			p := obj.(*corev1.Pod)
			if p.Namespace == d.Namespace && sel.Matches(labels.Set(p.Labels)) {
				out = append(out, p)
			}
		}
	}
	return out
}

func candidates(idx cache.Indexer, d *appsv1.Deployment) []any {
	keys := make([]string, 0, len(d.Spec.Selector.MatchLabels))
	for k := range d.Spec.Selector.MatchLabels {
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		objs, _ := idx.ByIndex(labelIndex, labelKey(d.Namespace, keys[0], d.Spec.Selector.MatchLabels[keys[0]]))
		return objs
	}
	objs, _ := idx.ByIndex(cache.NamespaceIndex, d.Namespace)
	return objs
}

// observe exports the decision as the controller's metrics and reports
// degraded app metrics once per change.
func (c *Controller) observe(d *appsv1.Deployment, a *app, dec *recommender.Decision, dryRun bool, log *zap.Logger) {
	inst := c.opts.Instruments
	ns, name := d.Namespace, d.Name
	key := types.NamespacedName{Namespace: ns, Name: name}
	inst.Decisions.WithLabelValues(string(dec.Action), string(dec.LimitedBy)).Inc()
	inst.AppReplicas.WithLabelValues(ns, name).Set(float64(dec.CurrentReplicas))
	inst.AppDesired.WithLabelValues(ns, name).Set(float64(dec.DesiredReplicas))
	setOne(inst.AppLimitedBy, ns, name, &a.limitedBy, string(dec.LimitedBy))
	view := report.NewDecision(dec)
	var failed []string
	for i, mv := range view.Metrics {
		inst.AppTarget.WithLabelValues(ns, name, mv.Name).Set(mv.Target)
		if mv.Error != "" {
			// A Prometheus metric is named by the annotation that holds its
			// query, so the user knows what to fix; the failure is its
			// tick-stable summary (a parse error in full, the kind otherwise).
			label, class := mv.Name, errorClass(mv.Error)
			source := dec.Metrics[i].Source
			if source == recommender.SourcePrometheus {
				label = annotations.KeyMetrics + "[" + mv.Name + "]"
				if mv.Name == "default" {
					label = annotations.KeyPrometheusQuery
				}
				var qe *metrics.QueryError
				if errors.As(dec.Metrics[i].Err, &qe) {
					class = qe.Summary()
				}
			}
			failed = append(failed, label+": "+class)
			inst.AppMetricValue.DeleteLabelValues(ns, name, mv.Name)
			inst.MetricErrors.WithLabelValues(sourceLabel(source)).Inc()
			continue
		}
		if mv.Current != nil {
			inst.AppMetricValue.WithLabelValues(ns, name, mv.Name).Set(*mv.Current)
		}
	}
	state := "ok"
	switch {
	case dryRun:
		state = "dry_run"
	case len(failed) > 0:
		state = "degraded"
	}
	setOne(inst.AppState, ns, name, &a.state, state)
	if len(failed) > 0 {
		if c.opts.Events.Warning(d, key, actuator.ReasonMetricsDegraded, "metrics failing, scale-down blocked: "+strings.Join(failed, "; ")) {
			log.Warn("metrics degraded", zap.Strings("failed", failed), zap.String("reason", dec.Reason()))
		}
	} else {
		c.opts.Events.Clear(key, actuator.ReasonMetricsDegraded)
	}
	log.Debug("decided", zap.Int32("currentReplicas", dec.CurrentReplicas), zap.Int32("desiredReplicas", dec.DesiredReplicas),
		zap.String("limitedBy", string(dec.LimitedBy)), zap.Bool("dryRun", dryRun), zap.String("reason", dec.Reason()))
}

// errorClass shortens a metric error to its stable first clause, so that a
// Warning is not re-emitted because a count in the message changed.
func errorClass(msg string) string {
	if i := strings.Index(msg, ":"); i > 0 {
		return msg[:i]
	}
	return msg
}
