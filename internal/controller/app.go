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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
	"github.com/spinscale/spinscale/internal/report"
	"github.com/spinscale/spinscale/internal/shadow"
	"github.com/spinscale/spinscale/internal/status"
)

// app is the controller's memory of one opted-in Deployment.
type app struct {
	mu sync.Mutex
	// annotations the spec was parsed from; a change re-parses.
	annotations map[string]string
	parsed      annotations.App
	parseErr    error
	engine      recommender.State
	// sched says when the app is next decided on.
	sched schedule
	// state and limitedBy are the values last exported for the app.
	state, limitedBy string
	// generation and replicas are the Deployment's metadata.generation and
	// spec.replicas when last seen: a new generation with the same replica
	// count is a change of its spec (the pod template), decided on at once.
	generation int64
	replicas   int32
	// shadow compares the decisions with the live count (shadow mode).
	shadow shadow.Tracker
	// status is what /apps publishes of the app (publish.go).
	status status.App
	// cold is a scale-up waiting for its pods (coldstart.go).
	cold coldStart
	// podKey is the selector pair its pods are looked up by (podsOf).
	podKey podKey
}

// interval is how often the app is decided on at least: its own interval
// annotation, or the controller's. The caller holds a.mu.
func (c *Controller) interval(a *app) time.Duration {
	if a.parseErr == nil && a.parsed.Interval > 0 {
		return a.parsed.Interval
	}
	return c.cfg.Interval
}

// noteSpec marks a change of the Deployment's spec other than its replica
// count (a new pod template, say) as an edit, decided on at once, as HPA
// reconciles when its target changes.
func (a *app) noteSpec(d *appsv1.Deployment) {
	replicas := specReplicas(d)
	if a.generation != 0 && d.Generation != a.generation && replicas == a.replicas {
		a.sched.edited = true
	}
	a.generation, a.replicas = d.Generation, replicas
}

// ensureParsed parses the annotations when they changed since last time; a
// change after the first parse is an edit, decided on at once.
func (a *app) ensureParsed(ann map[string]string, d annotations.Defaults) {
	if a.annotations != nil && maps.Equal(a.annotations, ann) {
		return
	}
	if a.annotations != nil {
		a.sched.edited = true
	}
	a.annotations = maps.Clone(ann)
	a.parsed, a.parseErr = annotations.Parse(ann, d)
}

// tick is one pass of the loop: it reads the metric sources for the apps
// that may be decided on now (schedule.go) and decides for those that are.
func (c *Controller) tick(ctx context.Context, now time.Time) {
	start := c.clock.Now()
	deps := c.managed()
	c.parseAll(deps)
	active := c.active(deps, now)
	// The three sources are read at once: a slow one (an adapter, a
	// Prometheus under load) does not delay the others' reads.
	var (
		snap       *metrics.ResourceSnapshot
		results    map[metrics.Query]recommender.Observation
		apiResults map[metrics.APIRead]recommender.Observation
		reads      sync.WaitGroup
	)
	queries, apiReads := c.readsOf(active)
	readFrom := c.clock.Now()
	c.opts.Instruments.TickPhase.WithLabelValues("prepare").Observe(readFrom.Sub(start).Seconds())
	reads.Go(func() { snap = c.resourceSnapshot(ctx, active) })
	reads.Go(func() { results = c.runQueries(ctx, queries) })
	reads.Go(func() { apiResults = c.readAPIs(ctx, apiReads) })
	reads.Wait()
	decideFrom := c.clock.Now()
	c.opts.Instruments.TickPhase.WithLabelValues("reads").Observe(decideFrom.Sub(readFrom).Seconds())

	var done atomic.Int64
	var mu sync.Mutex
	var writes []*write
	workqueue.ParallelizeUntil(ctx, max(1, c.cfg.Workers), len(active), func(i int) {
		if w := c.process(ctx, active[i].d, active[i].a, snap, results, apiResults, now); w != nil {
			mu.Lock()
			writes = append(writes, w)
			mu.Unlock()
		}
		done.Add(1)
	})
	if skipped := len(active) - int(done.Load()); skipped > 0 {
		// The pass ran out of time (a slow API server, a huge cluster):
		// the apps left wait for the next pass, with fresh data.
		c.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline").Add(float64(skipped))
		c.log.Warn("tick deadline passed; apps left for the next tick", zap.Int("skipped", skipped), zap.Int("apps", len(active)))
	}
	c.opts.Instruments.TickPhase.WithLabelValues("decisions").Observe(c.clock.Since(decideFrom).Seconds())
	c.queueWrites(ctx, writes)

	seen := make(map[types.NamespacedName]bool, len(deps))
	for _, d := range deps {
		seen[types.NamespacedName{Namespace: d.Namespace, Name: d.Name}] = true
	}
	c.mu.Lock()
	for key := range c.apps {
		if !seen[key] {
			delete(c.apps, key)
			c.writes.withdraw(key, c.log.With(zap.String("namespace", key.Namespace), zap.String("deployment", key.Name)), "no longer managed")
			c.opts.Instruments.forget(key.Namespace, key.Name)
			c.opts.Events.Forget(key)
		}
	}
	c.mu.Unlock()

	for _, act := range []actuator.Actuator{c.opts.Scaler, c.opts.Printer} {
		if err := act.Flush(); err != nil {
			c.log.Error("complete the tick's actions", zap.Error(err))
		}
	}
	took := c.clock.Since(start)
	c.opts.Instruments.TickDuration.Observe(took.Seconds())
	c.opts.Instruments.Apps.Set(float64(len(deps)))
	c.opts.Instruments.LastTick.Set(float64(c.clock.Now().Unix()))
	c.lastTick.Store(c.clock.Now().UnixNano())
	c.log.Debug("tick", zap.Int("apps", len(deps)), zap.Int("considered", len(active)), zap.Duration("took", took))
}

// candidate is an app that may be decided on in this pass.
type candidate struct {
	d *appsv1.Deployment
	a *app
}

// active returns the apps that may be decided on at now: those whose
// schedule is due, and those that react to fresh data, whose data must be
// read to know.
func (c *Controller) active(deps []*appsv1.Deployment, now time.Time) []candidate {
	out := make([]candidate, 0, len(deps))
	for _, d := range deps {
		a := c.appFor(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		a.mu.Lock()
		ok := a.sched.due(now) || a.parseErr == nil && a.parsed.Spec.ReactsToFreshData()
		a.mu.Unlock()
		if ok {
			out = append(out, candidate{d, a})
		}
	}
	return out
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

// parseAll brings every app's parsed spec up to date.
func (c *Controller) parseAll(deps []*appsv1.Deployment) {
	for _, d := range deps {
		a := c.appFor(types.NamespacedName{Namespace: d.Namespace, Name: d.Name})
		a.mu.Lock()
		a.ensureParsed(d.Annotations, c.defaults)
		a.noteSpec(d)
		a.mu.Unlock()
	}
}

// readsOf returns the distinct Prometheus queries and metrics-API reads of
// the valid apps, so that each is made once per pass however many apps
// share it.
func (c *Controller) readsOf(apps []candidate) (queries []metrics.Query, reads []metrics.APIRead) {
	seenQ := map[metrics.Query]bool{}
	seenR := map[metrics.APIRead]bool{}
	for _, cand := range apps {
		cand.a.mu.Lock()
		if cand.a.parseErr == nil {
			for i := range cand.a.parsed.Spec.Metrics {
				m := &cand.a.parsed.Spec.Metrics[i]
				switch {
				case m.Source == recommender.SourcePrometheus:
					if q := metrics.QueryOf(m); !seenQ[q] {
						seenQ[q] = true
						queries = append(queries, q)
					}
				case metrics.IsAPIMetric(m.Source):
					if r := metrics.APIReadOf(cand.d.Namespace, podSelectorOf(cand.d), m); !seenR[r] {
						seenR[r] = true
						reads = append(reads, r)
					}
				}
			}
		}
		cand.a.mu.Unlock()
	}
	return queries, reads
}

// runQueries runs the tick's distinct queries, or reports for each that no
// Prometheus source is configured.
func (c *Controller) runQueries(ctx context.Context, queries []metrics.Query) map[metrics.Query]recommender.Observation {
	if len(queries) == 0 {
		return nil
	}
	if c.opts.Queries == nil {
		out := make(map[metrics.Query]recommender.Observation, len(queries))
		for _, q := range queries {
			out[q] = recommender.Observation{Err: fmt.Errorf("%w: no Prometheus source is configured (prometheus.address)", recommender.ErrNoData)}
		}
		return out
	}
	results := c.opts.Queries.Query(ctx, queries)
	for _, obs := range results {
		if obs.Err != nil {
			c.opts.Instruments.SourceErrors.WithLabelValues("prometheus").Inc()
		}
	}
	return results
}

// readAPIs makes the tick's distinct reads of the metrics APIs.
func (c *Controller) readAPIs(ctx context.Context, reads []metrics.APIRead) map[metrics.APIRead]recommender.Observation {
	if len(reads) == 0 {
		return nil
	}
	if c.opts.APIs == nil {
		out := make(map[metrics.APIRead]recommender.Observation, len(reads))
		for _, r := range reads {
			out[r] = recommender.Observation{Err: fmt.Errorf("%w: the controller has no client for %s", recommender.ErrNoData, r.API())}
		}
		return out
	}
	results := c.opts.APIs.Read(ctx, reads)
	for r, obs := range results {
		if obs.Err != nil {
			c.opts.Instruments.SourceErrors.WithLabelValues(sourceName(r.Source)).Inc()
		}
	}
	return results
}

// podSelectorOf is the Deployment's pod selector as HPA passes it to the
// custom metrics API; empty when it has none that parses.
func podSelectorOf(d *appsv1.Deployment) string {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || d.Spec.Selector == nil {
		return ""
	}
	return sel.String()
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
func (c *Controller) resourceSnapshot(ctx context.Context, apps []candidate) *metrics.ResourceSnapshot {
	if c.opts.Resources == nil || !c.cfg.MetricsServer.Enabled {
		return metrics.NewResourceSnapshot(nil, map[string]error{"": errors.New("metrics.k8s.io source is disabled (metricsServer.enabled: false)")})
	}
	namespaces := map[string]bool{}
	for _, cand := range apps {
		cand.a.mu.Lock()
		if cand.a.parseErr == nil && cand.a.parsed.UsesResourceMetrics() {
			namespaces[cand.d.Namespace] = true
		}
		cand.a.mu.Unlock()
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
			c.opts.Instruments.SourceErrors.WithLabelValues("metrics-server").Inc()
			c.log.Warn("resource metrics unavailable", zap.String("namespace", ns), zap.Error(err))
			break
		}
	}
	return snap
}

// process decides for one app, and returns the scale write the decision
// asks for, if any: writes are made after every decision of the pass
// (writes.go). A failure here is logged with the app's key and never
// affects other apps.
func (c *Controller) process(ctx context.Context, d *appsv1.Deployment, a *app, snap *metrics.ResourceSnapshot, results map[metrics.Query]recommender.Observation,
	apiResults map[metrics.APIRead]recommender.Observation, now time.Time) (w *write) {
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	log := c.log.With(zap.String("namespace", d.Namespace), zap.String("deployment", d.Name))
	defer func() {
		if r := recover(); r != nil {
			log.Error("deciding for the app panicked; it is skipped this tick", zap.Any("panic", r))
		}
	}()

	a.mu.Lock()
	defer a.mu.Unlock()

	// Apps without a decision to take are looked at on their interval only.
	due := a.sched.due(now)
	refusal := ""
	shadow := a.parseErr == nil && a.parsed.Shadow
	if a.parseErr == nil && !shadow {
		// An app in shadow mode is decided on beside its live autoscaler
		// and never written.
		refusal = c.conflicts.refusal(d)
	}
	if !due && (a.parseErr != nil || refusal != "") {
		// Its queued write, if any, is withdrawn at once: the app is
		// decided on (and held) on its interval.
		c.writes.withdraw(key, log, "invalid annotations or another autoscaler")
		return
	}
	// An app whose annotations do not parse has no dry-run setting of its
	// own: only the global one applies.
	dryRun := c.cfg.DryRun || (a.parseErr == nil && a.parsed.DryRun)
	act := c.opts.Scaler
	if dryRun || shadow {
		act = c.opts.Printer
	}
	if a.parseErr != nil {
		if !c.writes.take(key) {
			a.sched.edited = true
			return nil
		}
		a.sched.decided(now, c.interval(a), true, 0)
		if c.opts.Events.Warning(d, key, actuator.ReasonInvalidConfig, "invalid annotations, app left untouched: "+a.parseErr.Error()) {
			log.Warn("invalid annotations; app left untouched", zap.Error(a.parseErr))
		}
		setOne(c.opts.Instruments.AppState, d.Namespace, d.Name, &a.state, "invalid")
		a.publishHold(d, "invalid", "invalid annotations: "+a.parseErr.Error(), now)
		act.Hold(key, specReplicas(d), "invalid annotations: "+a.parseErr.Error())
		return
	}
	c.opts.Events.Clear(key, actuator.ReasonInvalidConfig)
	if w := a.parsed.Warnings; len(w) > 0 {
		if c.opts.Events.Warning(d, key, actuator.ReasonUnknownAnnotation, strings.Join(w, "; ")) {
			log.Warn("annotation warnings", zap.Strings("warnings", w))
		}
	} else {
		c.opts.Events.Clear(key, actuator.ReasonUnknownAnnotation)
	}
	if why := refusal; why != "" {
		if !c.writes.take(key) {
			a.sched.edited = true
			return nil
		}
		a.sched.decided(now, c.interval(a), true, 0)
		if c.opts.Events.Warning(d, key, actuator.ReasonRefused, "not scaling: "+why) {
			log.Warn("refusing to scale", zap.String("reason", why))
		}
		setOne(c.opts.Instruments.AppState, d.Namespace, d.Name, &a.state, "refused")
		a.publishHold(d, "refused", "not scaling: "+why, now)
		act.Hold(key, specReplicas(d), "not scaling: "+why)
		return
	}
	c.opts.Events.Clear(key, actuator.ReasonRefused)

	spec := &a.parsed.Spec
	in := c.input(d, a, spec, snap, results, apiResults, now)
	if shadow && in.SpecReplicas == 0 && spec.MinReplicas == 0 && spec.WakesFromZero() {
		// Beside a live autoscaler that scales to zero, its zero is the
		// one Spinscale would have made: decide on waking from it.
		in.ScaledToZero = true
	}
	if took, ok := a.readyAfter(in.Pods, now); ok {
		c.opts.Instruments.ColdStart.WithLabelValues(d.Namespace, d.Name).Observe(took.Seconds())
		seconds := took.Seconds()
		a.status.ColdStartSeconds = &seconds
		log.Info("new pods ready", zap.Duration("coldStart", took))
	}
	fresh := spec.ReactsToFreshData()
	seen := fingerprint(spec.Metrics, in.Metrics)
	if !due && (!fresh || seen == a.sched.seen) {
		return
	}
	// A decision replaces the app's queued write, if any; none is made
	// while its write is being made (its next pass decides).
	if !c.writes.take(key) {
		a.sched.edited = true
		return nil
	}
	a.sched.decided(now, c.interval(a), !fresh, seen)
	dec, st := recommender.Decide(spec, &in, a.engine, now)
	if shadow {
		// The live autoscaler, not this decision, sets the count: the
		// engine's memory keeps the recommendations but no scale event.
		c.compare(d, a, &dec, now)
	}
	a.engine = st
	c.observe(d, a, spec, &dec, dryRun || shadow, log)
	a.publishDecision(d, spec, &dec, a.state, now)

	if dryRun || shadow {
		// The printer collects the row; it never writes.
		_, _ = act.Apply(ctx, key, spec, &dec)
		return nil
	}
	if dec.DesiredReplicas == dec.CurrentReplicas {
		return nil
	}
	// The write keeps the spec it was decided with: an edit while it is
	// queued or made replaces a.parsed, not this copy.
	decidedWith := *spec
	return &write{d: d, a: a, key: key, spec: &decidedWith, dec: dec, now: now, log: log}
}

// specReplicas is the Deployment's spec.replicas, 1 when unset as the API
// server defaults it.
func specReplicas(d *appsv1.Deployment) int32 { return ptr.Deref(d.Spec.Replicas, 1) }

// input gathers the engine's input from the caches and the snapshot.
func (c *Controller) input(d *appsv1.Deployment, a *app, spec *recommender.Spec, snap *metrics.ResourceSnapshot, results map[metrics.Query]recommender.Observation,
	apiResults map[metrics.APIRead]recommender.Observation, now time.Time) recommender.Input {
	in := recommender.Input{SpecReplicas: specReplicas(d), StatusReplicas: d.Status.Replicas,
		ScaledToZero: d.Annotations[annotations.KeyScaledToZero] != ""}
	in.Pods = c.podsOf(d, &a.podKey)
	in.Metrics = make([]recommender.Observation, len(spec.Metrics))
	for i, m := range spec.Metrics {
		switch m.Source {
		case recommender.SourceResource:
			in.Metrics[i] = snap.Observation(d.Namespace, in.Pods, m.Resource)
		case recommender.SourcePrometheus:
			obs, ok := results[metrics.QueryOf(&spec.Metrics[i])]
			if !ok {
				obs = recommender.Observation{Err: fmt.Errorf("%w: query %q was not run this tick", recommender.ErrNoData, m.Query)}
			}
			if m.IgnoreNull {
				obs = metrics.NullAsZero(obs)
			}
			in.Metrics[i] = obs
		case recommender.SourcePods, recommender.SourceObject, recommender.SourceExternal:
			read := metrics.APIReadOf(d.Namespace, podSelectorOf(d), &spec.Metrics[i])
			obs, ok := apiResults[read]
			if !ok {
				obs = recommender.Observation{Err: fmt.Errorf("%w: %s was not read this tick", recommender.ErrNoData, read)}
			}
			in.Metrics[i] = obs
		case recommender.SourceHTTP:
			if c.opts.HTTP == nil {
				in.Metrics[i] = recommender.Observation{Err: fmt.Errorf("%w: no activator is configured (activator.addresses, activator.service)", recommender.ErrNoData)}
				continue
			}
			in.Metrics[i] = c.opts.HTTP.Observe(d.Namespace, d.Name, m.HTTP, now)
		}
	}
	return in
}

// podsOf finds the pods matched by the Deployment's selector through the
// label index: the candidates are the pods carrying one of the selector's
// matchLabels pairs (key), then the whole selector is checked. The caller
// holds the app's lock, which guards key.
func (c *Controller) podsOf(d *appsv1.Deployment, key *podKey) []recommender.Pod {
	if d.Spec.Selector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return nil
	}
	var out []recommender.Pod
	for _, obj := range c.candidates(d, key) {
		p, ok := obj.(*cachedPod)
		if ok && p.namespace == d.Namespace && sel.Matches(labels.Set(p.labels)) {
			out = append(out, p.pod)
		}
	}
	return out
}

// podKey is the matchLabels pair an app's pods are looked up by, and the
// number of pods carrying it when it was picked. Any pair of the selector
// finds every pod the selector matches; the pair carried by the fewest pods
// finds the fewest others. A Deployment's selector often holds a pair every
// app of the namespace shares (a group or part-of label) beside the app's
// own: looking its pods up by the shared pair would check every pod of the
// namespace for every app, n² a pass.
type podKey struct {
	label, value string
	size         int
}

// candidates returns the pods carrying the app's lookup pair, or every pod
// of the namespace when the selector has no matchLabels. The pair is picked
// again when the selector no longer holds it, or when the pods carrying it
// have grown well past what they were at the pick.
func (c *Controller) candidates(d *appsv1.Deployment, key *podKey) []any {
	ml := d.Spec.Selector.MatchLabels
	var out []any
	if len(ml) == 0 {
		for _, idx := range c.pods {
			objs, _ := idx.ByIndex(cache.NamespaceIndex, d.Namespace)
			out = append(out, objs...)
		}
		return out
	}
	if v, ok := ml[key.label]; !ok || v != key.value || key.label == "" {
		*key = c.pickPodKey(d.Namespace, ml)
	}
	for _, idx := range c.pods {
		objs, _ := idx.ByIndex(labelIndex, labelKey(d.Namespace, key.label, key.value))
		out = append(out, objs...)
	}
	if len(out) > 4*key.size+16 {
		key.label = "" // grown: pick again next time
	}
	return out
}

// pickPodKey picks the matchLabels pair the fewest cached pods carry (ties:
// the first key in order).
func (c *Controller) pickPodKey(namespace string, ml map[string]string) podKey {
	keys := make([]string, 0, len(ml))
	for k := range ml {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	best := podKey{size: -1}
	for _, k := range keys {
		n := 0
		for _, idx := range c.pods {
			ks, _ := idx.IndexKeys(labelIndex, labelKey(namespace, k, ml[k]))
			n += len(ks)
		}
		if best.size < 0 || n < best.size {
			best = podKey{label: k, value: ml[k], size: n}
		}
	}
	return best
}

// observe exports the decision as metrics and reports degraded metrics once
// per change.
func (c *Controller) observe(d *appsv1.Deployment, a *app, spec *recommender.Spec, dec *recommender.Decision, dryRun bool, log *zap.Logger) {
	inst := c.opts.Instruments // the controller's own metrics, not the app's
	ns, name := d.Namespace, d.Name
	key := types.NamespacedName{Namespace: ns, Name: name}
	inst.Decisions.WithLabelValues(string(dec.Action), string(dec.LimitedBy)).Inc()
	inst.AppReplicas.WithLabelValues(ns, name).Set(float64(dec.CurrentReplicas))
	inst.AppDesired.WithLabelValues(ns, name).Set(float64(dec.DesiredReplicas))
	setOne(inst.AppLimitedBy, ns, name, &a.limitedBy, string(dec.LimitedBy))
	view := report.NewDecision(dec)
	var failed []string
	fallback := dec.LimitedBy == recommender.StageFallback
	blocking := 0 // failed metrics without a fallback: they block a scale-down
	for i, mv := range view.Metrics {
		inst.AppTarget.WithLabelValues(ns, name, mv.Name).Set(mv.Target)
		if mv.Error != "" {
			// A Prometheus metric is named by the annotation that holds its
			// query, so the user knows what to fix; the failure is its
			// tick-stable summary (a parse error in full, the kind otherwise).
			// (The decision's metrics are the spec's, in the same order.)
			source := spec.Metrics[i].Source
			label := mv.Name
			if a := spec.Metrics[i].Annotation; a != "" {
				label = a
			}
			cause := recommender.Cause(dec.Metrics[i].Err)
			if dec.Metrics[i].Fallback {
				fallback = true
				cause += fmt.Sprintf(" (fallback %d active)", dec.Metrics[i].Proposal)
			} else {
				blocking++
			}
			failed = append(failed, label+": "+cause)
			inst.AppMetricValue.DeleteLabelValues(ns, name, mv.Name)
			inst.MetricErrors.WithLabelValues(sourceName(source)).Inc()
			continue
		}
		if mv.Current != nil {
			inst.AppMetricValue.WithLabelValues(ns, name, mv.Name).Set(*mv.Current)
		}
	}
	state := "ok"
	switch {
	case a.parseErr == nil && a.parsed.Shadow:
		state = "shadow"
	case dryRun:
		state = "dry_run"
	case fallback:
		// A fallback count stands in for a failed metric, or for all.
		state = "fallback"
	case len(failed) > 0:
		state = "degraded"
	case dec.CurrentReplicas == 0 && dec.DesiredReplicas == 0 && dec.LimitedBy != recommender.StagePaused:
		// At a zero Spinscale made, waiting for a metric to wake it.
		state = "zero"
	}
	setOne(inst.AppState, ns, name, &a.state, state)
	if len(failed) > 0 {
		prefix := "metrics failing, scale-down blocked: "
		if blocking == 0 {
			prefix = "metrics failing, fallback in use: "
		}
		if c.opts.Events.Warning(d, key, actuator.ReasonMetricsDegraded, prefix+strings.Join(failed, "; ")) {
			log.Warn("metrics degraded", zap.Strings("failed", failed), zap.String("reason", dec.Reason()))
		}
	} else {
		c.opts.Events.Clear(key, actuator.ReasonMetricsDegraded)
	}
	log.Debug("decided", zap.Int32("currentReplicas", dec.CurrentReplicas), zap.Int32("desiredReplicas", dec.DesiredReplicas),
		zap.String("limitedBy", string(dec.LimitedBy)), zap.Bool("dryRun", dryRun), zap.String("reason", dec.Reason()))
}

// sourceName names a metric source in the source label of the
// controller's metrics.
func sourceName(t recommender.SourceType) string {
	switch t {
	case recommender.SourceResource:
		return "metrics-server"
	case recommender.SourcePrometheus:
		return "prometheus"
	case recommender.SourcePods, recommender.SourceObject:
		return "custom-metrics"
	case recommender.SourceExternal:
		return "external-metrics"
	case recommender.SourceHTTP:
		return "activator"
	}
	return string(t)
}

// compare records, for an app in shadow mode, how its decision stands to
// the live replica count.
func (c *Controller) compare(d *appsv1.Deployment, a *app, dec *recommender.Decision, now time.Time) {
	inst := c.opts.Instruments
	live, mine := dec.CurrentReplicas, dec.DesiredReplicas
	comparison := "agree"
	switch {
	case mine > live:
		comparison = "higher"
	case mine < live:
		comparison = "lower"
	}
	inst.ShadowDecisions.WithLabelValues(d.Namespace, d.Name, comparison).Inc()
	if lead, ok := a.shadow.Observe(now, live, mine); ok {
		kind := "later"
		if lead.Sooner {
			kind = "sooner"
		}
		inst.ShadowLead.WithLabelValues(d.Namespace, d.Name, kind, lead.Direction.String()).Observe(lead.By.Seconds())
	}
}

// zeroNote says, in a Rescaled Event, that the write scaled the app to zero
// or woke it.
func zeroNote(z recommender.ZeroRecord) string {
	switch z {
	case recommender.ZeroSet:
		return "; scaled to zero (recorded in " + annotations.KeyScaledToZero + ")"
	case recommender.ZeroClear:
		return "; woken from zero"
	}
	return ""
}
