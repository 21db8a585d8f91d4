package recommender

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Action is what the decision does to the replica count.
type Action string

const (
	ActionNone      Action = "none"
	ActionScaleUp   Action = "scale-up"
	ActionScaleDown Action = "scale-down"
)

// Stage names the rule that limited a decision (its `limitedBy`).
type Stage string

const (
	StageNone            Stage = "none"
	StageTolerance       Stage = "tolerance"
	StageStabilization   Stage = "stabilization"
	StageScaleUpPolicy   Stage = "scale-up-policy"
	StageScaleDownPolicy Stage = "scale-down-policy"
	StageMinReplicas     Stage = "min-replicas"
	StageMaxReplicas     Stage = "max-replicas"
	StagePaused          Stage = "paused"
	StageMissingMetrics  Stage = "missing-metrics"
	StageFallback        Stage = "fallback"
	// StageActivation: KEDA's activation rule kept the app at zero, or
	// took it there after its idle time (zero.go).
	StageActivation Stage = "activation"
)

// MetricResult explains one metric's part in a decision.
type MetricResult struct {
	Name   string
	Source SourceType
	// Kind is how HPA treats the metric: "resource", "pods" (per-pod
	// values) or "value" (one value for the app); "http" for the KPA's
	// rules (http.go).
	Kind   string
	Target TargetType
	// TargetUtilization (percent) or TargetMilli, as in the spec.
	TargetUtilization int32
	TargetMilli       int64
	// Utilization is the first-pass whole percent (utilization targets).
	Utilization int32
	// CurrentMilli is the first-pass average per pod (utilization and
	// average-value targets on per-pod data) or the app's total value
	// (value targets, and average-value targets on a single value, where
	// AverageMilli holds the per-pod share).
	CurrentMilli int64
	AverageMilli int64
	// Ratio is current / target, the usage ratio of the first pass.
	Ratio float64
	// Proposal is the metric's replica count before stabilization, policies
	// and bounds; the current count when inside tolerance.
	Proposal        int32
	WithinTolerance bool
	ReadyPods       int
	UnreadyPods     int
	MissingPods     int
	IgnoredPods     int
	StalePods       int
	// Err is set when the metric failed; Proposal is then meaningless,
	// unless Fallback is set.
	Err error
	// Fallback is true when the failed metric's fallback applies: Proposal
	// is then its fallback count. FailingFor is how long a metric with a
	// fallback has failed.
	Fallback   bool
	FailingFor time.Duration
	// HTTP explains an HTTP metric (SourceHTTP): its windows, the KPA's
	// desired counts and panic mode.
	HTTP *HTTPResult
	// load is the pods the measured load needs at the target, unrounded
	// (the spinscale profile's load estimate).
	load float64
}

// Decision is the engine's verdict for one app at one moment, with what is
// needed to explain it.
type Decision struct {
	CurrentReplicas int32
	// DesiredReplicas is the count the app has after the decision: the new
	// count when it scales, the current count on any hold.
	DesiredReplicas int32
	// Recommendation is the largest metric proposal (HPA's raw desired
	// count); zero when no proposal was formed.
	Recommendation int32
	// Stabilized is the recommendation after the stabilization window.
	Stabilized int32
	Action     Action
	LimitedBy  Stage
	Metrics    []MetricResult
	// Behavior is true when rate policies and per-direction windows apply
	// (HPA's behavior path, and always the spinscale profile), false on
	// HPA's plain path.
	Behavior bool
	// Limit is the bound the limiting stage applied (a window's extreme, a
	// policy's limit, min or max, the fallback count).
	Limit int32
	// Window is the stabilization window that applied, if any.
	Window time.Duration
	// Projected is the spinscale profile's projection of a rising load,
	// when it raised the recommendation; 0 otherwise.
	Projected int32
	// Burst is true when the spinscale profile read a burst and asked for
	// as many pods as the scale-up policies allow.
	Burst bool
	// Drop is true when the spinscale profile let a sharp drop through
	// after its drop window rather than the scale-down window.
	Drop bool
	// Zero says how the decision changes Spinscale's record that it scaled
	// the app to zero (HPA's ScaledToZero condition): the actuator writes
	// it with the replica count.
	Zero ZeroRecord
	// note carries a fixed explanation for holds decided before the metrics.
	note string
	// windowed is the recommendation the stabilization windows saw: the
	// largest proposal, or the spinscale profile's projection or burst.
	windowed int32
}

// Reason says in one sentence why the decision is what it is.
func (d *Decision) Reason() string {
	var b strings.Builder
	move := fmt.Sprintf("%d → %d", d.CurrentReplicas, d.DesiredReplicas)
	switch d.LimitedBy {
	case StagePaused:
		if d.Action != ActionNone {
			// paused-replicas moving the app to its count.
			fmt.Fprintf(&b, "%s: %s", move, d.note)
		} else {
			b.WriteString("hold: " + d.note)
		}
		return b.String()
	case StageMissingMetrics:
		fmt.Fprintf(&b, "hold at %d: %s", d.CurrentReplicas, d.failureSummary())
		return b.String()
	case StageFallback:
		fmt.Fprintf(&b, "%s: every metric failed (%s); fallback-replicas %d", move, d.failureSummary(), d.Limit)
		return b.String()
	}
	if d.note != "" {
		fmt.Fprintf(&b, "%s: %s", move, d.note)
		return b.String()
	}
	driver := d.driver()
	switch d.Action {
	case ActionScaleUp:
		fmt.Fprintf(&b, "%s: %s above target", move, driver)
	case ActionScaleDown:
		fmt.Fprintf(&b, "%s: all metrics below target (%s)", move, driver)
	default:
		fmt.Fprintf(&b, "hold at %d: %s", d.CurrentReplicas, driver)
	}
	switch d.LimitedBy {
	case StageTolerance:
		b.WriteString("; within tolerance")
	case StageStabilization:
		if d.windowed < d.CurrentReplicas || d.Stabilized > d.windowed {
			fmt.Fprintf(&b, "; recommendation %d held at %d by the highest recommendation of the last %s", d.windowed, d.Stabilized, d.Window)
		} else {
			fmt.Fprintf(&b, "; recommendation %d held at %d by the lowest recommendation of the last %s", d.windowed, d.Stabilized, d.Window)
		}
	case StageScaleUpPolicy:
		fmt.Fprintf(&b, "; recommendation %d capped at %d by the scale-up rate limit", d.Stabilized, d.Limit)
	case StageScaleDownPolicy:
		fmt.Fprintf(&b, "; recommendation %d capped at %d by the scale-down rate limit", d.Stabilized, d.Limit)
	case StageMinReplicas:
		fmt.Fprintf(&b, "; recommendation %d raised to min-replicas %d", d.Stabilized, d.Limit)
	case StageMaxReplicas:
		fmt.Fprintf(&b, "; recommendation %d capped at max-replicas %d", d.Stabilized, d.Limit)
	}
	switch {
	case d.Burst:
		b.WriteString("; burst: a metric at or above the burst threshold, so as many pods as the scale-up rate allows")
	case d.Projected > 0:
		fmt.Fprintf(&b, "; the load is rising: %d pods projected", d.Projected)
	}
	if d.Drop {
		fmt.Fprintf(&b, "; sharp drop: every recommendation of the last %s far below the current count", d.Window)
	}
	if failed := d.failureSummary(); failed != "" {
		b.WriteString("; failed: " + failed)
	}
	switch d.Zero {
	case ZeroSet:
		b.WriteString("; scaled to zero, recorded so that its metrics wake it")
	case ZeroClear:
		b.WriteString("; woken from zero")
	}
	return b.String()
}

// driver describes the metric that set the recommendation, or every metric.
func (d *Decision) driver() string {
	var parts []string
	for i := range d.Metrics {
		m := &d.Metrics[i]
		if m.Err != nil && !m.Fallback {
			continue
		}
		parts = append(parts, m.Describe())
	}
	if len(parts) == 0 {
		return "no metric"
	}
	return strings.Join(parts, ", ")
}

func (d *Decision) failureSummary() string {
	var parts []string
	for i := range d.Metrics {
		if err := d.Metrics[i].Err; err != nil && !d.Metrics[i].Fallback {
			parts = append(parts, fmt.Sprintf("%s: %v", d.Metrics[i].Name, err))
		}
	}
	return strings.Join(parts, "; ")
}

// Describe renders "cpu 63%/50% → 5" style text for one metric.
func (m *MetricResult) Describe() string {
	if m.Fallback {
		return fmt.Sprintf("%s: fallback → %d (failing for %s: %v)", m.Name, m.Proposal, m.FailingFor, m.Err)
	}
	if m.Err != nil {
		return fmt.Sprintf("%s: %v", m.Name, m.Err)
	}
	if m.HTTP != nil {
		return m.describeHTTP()
	}
	s := fmt.Sprintf("%s %s/%s → %d", m.Name, m.CurrentString(), m.TargetString(), m.Proposal)
	// Pods the first pass could not use explain a proposal that looks
	// smaller than the ratio: they were counted conservatively.
	if m.MissingPods > 0 || m.UnreadyPods > 0 {
		s += fmt.Sprintf(" (%d without a sample, %d unready)", m.MissingPods, m.UnreadyPods)
	}
	return s
}

// CurrentString renders the metric's current value as kubectl shows it.
func (m *MetricResult) CurrentString() string {
	if m.Err != nil {
		return "<unknown>"
	}
	if m.Target == TargetUtilization {
		return fmt.Sprintf("%d%%", m.Utilization)
	}
	if m.Kind == "value" && m.Target == TargetAverageValue {
		return m.quantity(m.AverageMilli)
	}
	return m.quantity(m.CurrentMilli)
}

// TargetString renders the target as kubectl shows it.
func (m *MetricResult) TargetString() string {
	if m.Target == TargetUtilization {
		return fmt.Sprintf("%d%%", m.TargetUtilization)
	}
	s := m.quantity(m.TargetMilli)
	switch {
	case m.Source == SourceHTTP:
		// The stable value is the app's; the target a pod's.
		return s + " per pod"
	case m.Target == TargetAverageValue:
		return s + " (avg)"
	}
	return s
}

func (m *MetricResult) quantity(milli int64) string {
	if m.Source != SourceResource {
		// Query results are plain numbers: 666.667, not 666667m.
		return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
	}
	format := resource.DecimalSI
	if m.Name == "memory" && m.Source == SourceResource {
		format = resource.BinarySI
	}
	q := resource.NewMilliQuantity(milli, format)
	return q.String()
}
