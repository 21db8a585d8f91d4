package report

import (
	"math"
	"strings"
	"time"

	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/recommender"
)

// Decision is the JSON form of one decision: simulate prints it per
// step (with `at`), and the controller's `--output json` per app (with
// namespace and name). Field names are part of the product contract.
type Decision struct {
	CurrentReplicas int32    `json:"currentReplicas"`
	DesiredReplicas int32    `json:"desiredReplicas"`
	Action          string   `json:"action"`
	Metrics         []Metric `json:"metrics"`
	// Recommendation is the largest metric proposal; 0 when none was formed
	// (paused, out of bounds, every metric failed).
	Recommendation int32 `json:"recommendation"`
	// StabilizedRecommendation is the recommendation after the
	// stabilization window, before rate limits and bounds.
	StabilizedRecommendation int32  `json:"stabilizedRecommendation"`
	LimitedBy                string `json:"limitedBy"`
	// Behavior is true when rate policies and per-direction windows apply
	// (a behavior annotation, or the spinscale profile), false on HPA's
	// plain path.
	Behavior bool `json:"behavior"`
	// Projected, Burst and Drop say what the spinscale profile did: the
	// projection of a rising load that raised the recommendation, a burst
	// that asked for as many pods as the scale-up policies allow, a sharp
	// drop let through before the scale-down window. Omitted when unused.
	Projected int32 `json:"projected,omitempty"`
	Burst     bool  `json:"burst,omitempty"`
	Drop      bool  `json:"drop,omitempty"`
	// Zero is "set" when the decision scales the app to zero and records
	// it (so it wakes on its metrics), "clear" when it wakes the app or
	// rescales it while the record was set; omitted otherwise.
	Zero   string `json:"zero,omitempty"`
	Reason string `json:"reason"`
}

// Metric is one metric's part in a decision. Values are in the
// metric's units (cores, bytes, the query's unit) or percent for
// utilization targets. A failed metric has Error set and no current value,
// ratio or proposal (the fields are omitted); its pod counts are those
// gathered before it failed.
type Metric struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Type is how HPA treats the metric: resource, pods (per-pod values
	// against an average target) or value (one value for the app). It is
	// omitted for a failed Prometheus query, whose result shape is unknown.
	Type       string `json:"type,omitempty"`
	TargetType string `json:"targetType"`
	// Current is the first-pass value compared with Target: utilization
	// percent, average per pod, or the value itself.
	Current *float64 `json:"current,omitempty"`
	Target  float64  `json:"target"`
	// Utilization (utilization targets) is the whole-percent first-pass
	// utilization.
	Utilization *int32 `json:"utilization,omitempty"`
	// AverageValue (average-value targets) is the average per pod.
	AverageValue *float64 `json:"averageValue,omitempty"`
	// Value (single-value metrics) is the app's total value.
	Value *float64 `json:"value,omitempty"`
	// Ratio is the first-pass usage ratio current/target.
	Ratio *float64 `json:"ratio,omitempty"`
	// Proposal is the metric's own replica count before stabilization,
	// rate limits and bounds; the current count inside tolerance.
	Proposal        *int32 `json:"proposal,omitempty"`
	WithinTolerance bool   `json:"withinTolerance"`
	ReadyPods       int    `json:"readyPods"`
	IgnoredPods     int    `json:"ignoredPods"`
	MissingPods     int    `json:"missingPods"`
	UnreadyPods     int    `json:"unreadyPods"`
	StalePods       int    `json:"stalePods"`
	Error           string `json:"error,omitempty"`
	// FailingSeconds is how long a metric with a fallback has failed, and
	// Fallback whether its fallback applies: Proposal is then the fallback
	// count.
	FailingSeconds float64 `json:"failingSeconds,omitempty"`
	Fallback       bool    `json:"fallback,omitempty"`
	// HTTP holds an HTTP metric's windows and the KPA's counts.
	HTTP *HTTPMetric `json:"http,omitempty"`
}

// HTTPMetric is an HTTP metric's part of a decision: the per-second
// averages over the stable and panic windows, the counts each asks for,
// and panic mode.
type HTTPMetric struct {
	Stable        float64 `json:"stable"`
	Panic         float64 `json:"panic"`
	DesiredStable int32   `json:"desiredStable"`
	DesiredPanic  int32   `json:"desiredPanic"`
	PanicMode     bool    `json:"panicMode"`
	PanicSince    string  `json:"panicSince,omitempty"`
}

// NewDecision renders a decision for JSON output.
func NewDecision(d *recommender.Decision) Decision {
	out := Decision{
		CurrentReplicas:          d.CurrentReplicas,
		DesiredReplicas:          d.DesiredReplicas,
		Action:                   string(d.Action),
		Metrics:                  make([]Metric, len(d.Metrics)),
		Recommendation:           d.Recommendation,
		StabilizedRecommendation: d.Stabilized,
		LimitedBy:                string(d.LimitedBy),
		Behavior:                 d.Behavior,
		Projected:                d.Projected,
		Burst:                    d.Burst,
		Drop:                     d.Drop,
		Zero:                     string(d.Zero),
		Reason:                   d.Reason(),
	}
	for i := range d.Metrics {
		out.Metrics[i] = newMetric(&d.Metrics[i])
	}
	return out
}

func newMetric(m *recommender.MetricResult) Metric {
	out := Metric{
		Name:            m.Name,
		Source:          string(m.Source),
		Type:            m.Kind,
		TargetType:      string(m.Target),
		WithinTolerance: m.WithinTolerance,
		ReadyPods:       m.ReadyPods,
		IgnoredPods:     m.IgnoredPods,
		MissingPods:     m.MissingPods,
		UnreadyPods:     m.UnreadyPods,
		StalePods:       m.StalePods,
	}
	if out.Type == "" && m.Source == recommender.SourceResource {
		out.Type = "resource"
	}
	if m.Target == recommender.TargetUtilization {
		out.Target = float64(m.TargetUtilization)
	} else {
		out.Target = units(m.TargetMilli)
	}
	if m.FailingFor > 0 || m.Fallback {
		out.FailingSeconds = m.FailingFor.Seconds()
	}
	if m.Err != nil {
		out.Error = m.Err.Error()
		if m.Fallback {
			out.Fallback, out.Proposal = true, ptr.To(m.Proposal)
		}
		return out
	}
	switch {
	case m.HTTP != nil:
		h := m.HTTP
		out.Current, out.Value = ptr.To(h.Stable), ptr.To(h.Stable)
		out.HTTP = &HTTPMetric{Stable: h.Stable, Panic: h.Panic, DesiredStable: h.DesiredStable, DesiredPanic: h.DesiredPanic, PanicMode: h.Panicking}
		if h.Panicking {
			out.HTTP.PanicSince = h.PanicSince.UTC().Format(time.RFC3339)
		}
	case m.Target == recommender.TargetUtilization:
		u := m.Utilization
		out.Utilization = &u
		out.Current = ptr.To(float64(u))
	case m.Target == recommender.TargetAverageValue && m.Kind == "value":
		// One value for the app against a per-pod target: the average is
		// the value's share per status replica.
		out.Current = ptr.To(units(m.AverageMilli))
		out.AverageValue = ptr.To(units(m.AverageMilli))
		out.Value = ptr.To(units(m.CurrentMilli))
	case m.Target == recommender.TargetAverageValue:
		out.Current = ptr.To(units(m.CurrentMilli))
		out.AverageValue = ptr.To(units(m.CurrentMilli))
	default:
		out.Current = ptr.To(units(m.CurrentMilli))
		out.Value = ptr.To(units(m.CurrentMilli))
	}
	// A ratio against zero status replicas is infinite; JSON has no
	// infinity, and the proposal tells the story.
	if !math.IsNaN(m.Ratio) && !math.IsInf(m.Ratio, 0) {
		out.Ratio = ptr.To(m.Ratio)
	}
	p := m.Proposal
	out.Proposal = &p
	return out
}

func units(milli int64) float64 { return float64(milli) / 1000 }

// Targets renders every metric as "name: current/target", joined by ", ",
// as kubectl's TARGETS column ("cpu: 63%/50%, rps: 310/400"); a failed
// metric's current value is <unknown>.
func Targets(d *recommender.Decision) string {
	if len(d.Metrics) == 0 {
		return "<none>"
	}
	parts := make([]string, len(d.Metrics))
	for i := range d.Metrics {
		m := &d.Metrics[i]
		parts[i] = m.Name + ": " + m.CurrentString() + "/" + m.TargetString()
	}
	return strings.Join(parts, ", ")
}
