package recommender

import (
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// HTTP metrics follow Knative Serving's KPA (pkg/autoscaler/scaling,
// autoscaler.go, Scale): the activator's per-second counts are averaged
// over a stable and a panic window, and
//
//   - desiredStable = ceil(stable / target), desiredPanic = ceil(panic /
//     target), the target being per pod;
//   - the app panics when desiredPanic / max(1, ready pods) >= the panic
//     threshold; each decision over the threshold extends the panic;
//   - in panic the proposal is max(desiredStable, desiredPanic), and never
//     lower than the highest proposal since the panic began: the app does
//     not scale down until a stable window has passed since the panic was
//     last triggered, when the panic ends;
//   - otherwise the proposal is desiredStable.
//
// The proposal then goes through the bounds, the stabilization windows and
// the rate policies like any metric's. Knative's own rate limits
// (max-scale-up-rate, max-scale-down-rate) are not applied: the rate
// policies take their place. There is no tolerance: Knative has none.
//
// At zero, any request that arrived or is held in the panic window
// proposes at least one pod. An app whose stable window saw no request, no
// request in flight and none held proposes zero pods.

// HTTPMetric is what an HTTP metric measures.
type HTTPMetric string

const (
	// HTTPConcurrency is the requests in flight, time-averaged per second.
	HTTPConcurrency HTTPMetric = "concurrency"
	// HTTPRPS is the requests that arrived per second.
	HTTPRPS HTTPMetric = "rps"
)

// Metric names of the HTTP metrics, as decisions and instruments show them.
const (
	HTTPConcurrencyName = "http-concurrency"
	HTTPRPSName         = "http-rps"
)

// HTTPSpec is the KPA parameters of one HTTP metric.
type HTTPSpec struct {
	Metric         HTTPMetric
	StableWindow   time.Duration
	PanicWindow    time.Duration
	PanicThreshold float64
}

// HTTPWindows is what the activators counted for one app and one HTTP
// metric, over the metric's windows.
type HTTPWindows struct {
	// Stable and Panic are the per-second averages of the metric over the
	// stable and the panic window.
	Stable, Panic float64
	// PanicRequests are the requests that arrived in the panic window, and
	// PanicHeld the most requests held waiting for a ready pod in it.
	PanicRequests, PanicHeld int64
	// Idle is true when the stable window saw no request, none in flight
	// and none held.
	Idle bool
	// Latest is the end of the newest second counted.
	Latest time.Time
	// Covered is how much of the stable window the counts cover: less
	// than the window right after the controller starts or the counts come
	// back, when the averages cover only the seconds counted since.
	Covered time.Duration
}

// HTTPResult explains an HTTP metric's part in a decision.
type HTTPResult struct {
	HTTPWindows
	DesiredStable, DesiredPanic int32
	// Panicking is true when the metric is in panic mode, and PanicSince
	// when it last crossed the panic threshold.
	Panicking  bool
	PanicSince time.Time
	// Partial is true when the counts covered less than a stable window
	// and a scale-down was held back for it.
	Partial bool
}

// HTTPPanic is one HTTP metric in panic mode: when it last crossed the
// panic threshold, and the highest proposal since the panic began.
type HTTPPanic struct {
	Name    string
	Since   time.Time
	MaxPods int32
}

// UsesHTTP reports whether any metric comes from the activators.
func (s *Spec) UsesHTTP() bool {
	return s.usesSource(func(t SourceType) bool { return t == SourceHTTP })
}

// computeHTTP is KPA's Scale for one HTTP metric; prev is the app's panics
// of the last decision, and the metric's panic, if it goes on, is appended
// to next.
func computeHTTP(ms *MetricSpec, in *Input, obs *Observation, prev []HTTPPanic, next *[]HTTPPanic, now time.Time, r *MetricResult) {
	r.Kind = "http"
	w := obs.HTTP
	if w == nil {
		r.Err = fmt.Errorf("%w: no activator counts", ErrNoData)
		return
	}
	if ms.TargetMilli <= 0 {
		r.Err = fmt.Errorf("%w: %dm", ErrInvalidTarget, ms.TargetMilli)
		return
	}
	if !finite(w.Stable) || !finite(w.Panic) || w.Stable < 0 || w.Panic < 0 {
		r.Err = fmt.Errorf("%w: counts stable %v, panic %v", ErrNoData, w.Stable, w.Panic)
		return
	}
	target := float64(ms.TargetMilli) / 1000
	ready := 0
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Phase == corev1.PodRunning && p.HasReadyCondition && p.Ready && !p.Deleting {
			ready++
		}
	}
	r.ReadyPods = ready
	dspc := math.Ceil(w.Stable/target - 1e-9)
	dppc := math.Ceil(w.Panic/target - 1e-9)
	res := &HTTPResult{HTTPWindows: *w, DesiredStable: ceilInt32(dspc), DesiredPanic: ceilInt32(dppc)}
	r.HTTP = res
	r.CurrentMilli = milliOf(w.Stable)
	r.load = max(w.Stable, w.Panic) / target
	readyForRatio := float64(max(1, ready))
	r.Ratio = dppc / readyForRatio

	over := dppc/readyForRatio >= ms.HTTP.PanicThreshold
	var panic HTTPPanic
	for _, p := range prev {
		if p.Name == ms.Name {
			panic = p
		}
	}
	switch {
	case over:
		// Begin or extend the panic.
		panic.Name, panic.Since = ms.Name, now
	case !panic.Since.IsZero() && panic.Since.Add(ms.HTTP.StableWindow).Before(now):
		// The surge has made its way into the stable window.
		panic = HTTPPanic{}
	}
	desired := res.DesiredStable
	if !panic.Since.IsZero() {
		desired = max(desired, res.DesiredPanic)
		panic.MaxPods = max(panic.MaxPods, desired)
		desired = panic.MaxPods
		res.Panicking, res.PanicSince = true, panic.Since
		*next = append(*next, panic)
	}
	if w.Covered < ms.HTTP.StableWindow && desired < in.SpecReplicas {
		// A part of a window is not enough to scale down on (to zero
		// least of all): hold until the counts cover a whole one.
		desired = in.SpecReplicas
		res.Partial = true
	}
	if in.SpecReplicas == 0 && (w.PanicRequests > 0 || w.PanicHeld > 0) {
		// A request arrived, or waits, for an app at zero: wake it.
		desired = max(desired, 1)
	}
	r.Proposal = desired
}

// milliOf converts a per-second average to milli-units, saturating.
func milliOf(v float64) int64 {
	m := math.Round(v * 1000)
	if m >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(m)
}

// describeHTTP renders an HTTP metric's values.
func (m *MetricResult) describeHTTP() string {
	h := m.HTTP
	mode := "off"
	if h.Panicking {
		mode = "on since " + h.PanicSince.UTC().Format(time.RFC3339)
	}
	partial := ""
	if h.Partial {
		partial = fmt.Sprintf("; counts cover %s of the stable window: no scale-down before a whole one", h.Covered.String())
	}
	return fmt.Sprintf("%s stable %s, panic %s / target %s per pod → %d (stable %d, panic %d, panic mode %s%s)",
		m.Name, formatCount(h.Stable), formatCount(h.Panic), m.quantity(m.TargetMilli), m.Proposal, h.DesiredStable, h.DesiredPanic, mode, partial)
}

// formatCount renders a per-second average with at most three decimals.
func formatCount(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
