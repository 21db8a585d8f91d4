package recommender

import (
	"time"
)

// Fallbacks: what a failed metric, or an app whose metrics all failed,
// proposes once the failure has lasted long enough.
//
// Per metric, the fallback follows KEP-5679 (HPA fallback for External
// metrics): once the metric has failed continuously for FallbackAfter, its
// proposal is FallbackReplicas instead of a failure, and the decision goes
// on with it like any other proposal. Per app, fallback-replicas applies
// once every metric has failed for the app's FallbackAfter. How the count
// meets the current one is KEDA's fallback behavior (FallbackBehavior).

// FallbackBehavior is how a fallback count meets the current count (KEDA's
// spec.fallback.behavior).
type FallbackBehavior string

const (
	// FallbackStatic goes to the fallback count, up or down (KEDA's
	// default, and KEP-5679's per-metric rule).
	FallbackStatic FallbackBehavior = "static"
	// FallbackCurrent keeps the current count.
	FallbackCurrent FallbackBehavior = "currentReplicas"
	// FallbackIfHigher goes up to the fallback count, never down:
	// Spinscale's default, as it never scales down on missing data.
	FallbackIfHigher FallbackBehavior = "currentReplicasIfHigher"
	// FallbackIfLower goes down to the fallback count, never up.
	FallbackIfLower FallbackBehavior = "currentReplicasIfLower"
)

// FallbackBehaviors lists the behaviors in documentation order.
var FallbackBehaviors = []FallbackBehavior{FallbackStatic, FallbackCurrent, FallbackIfHigher, FallbackIfLower}

// MetricFailure is when a metric with a fallback started failing.
type MetricFailure struct {
	Name  string
	Since time.Time
}

// metricFallbackBehavior is the behavior of per-metric fallbacks: the app's,
// or by default KEP-5679's (static) in the hpa profile and "never down on
// missing data" (currentReplicasIfHigher) in the spinscale profile.
func (s *Spec) metricFallbackBehavior() FallbackBehavior {
	switch {
	case s.FallbackBehavior != "":
		return s.FallbackBehavior
	case s.Profile == ProfileHPA:
		return FallbackStatic
	}
	return FallbackIfHigher
}

// appFallbackBehavior is the behavior of fallback-replicas: the app's, or
// currentReplicasIfHigher in both profiles.
func (s *Spec) appFallbackBehavior() FallbackBehavior {
	if s.FallbackBehavior != "" {
		return s.FallbackBehavior
	}
	return FallbackIfHigher
}

// applyFallback is the count a fallback of `fallback` replicas gives from
// `current` under behavior b.
func applyFallback(b FallbackBehavior, fallback, current int32) int32 {
	switch b {
	case FallbackCurrent:
		return current
	case FallbackIfHigher:
		return max(current, fallback)
	case FallbackIfLower:
		return min(current, fallback)
	}
	return fallback
}

// metricFallback turns a failed metric with a fallback into a proposal once
// it has failed for FallbackAfter, and records the failure in failing.
func metricFallback(spec *Spec, ms *MetricSpec, prev []MetricFailure, failing *[]MetricFailure, current int32, now time.Time, r *MetricResult) {
	if r.Err == nil || ms.FallbackReplicas <= 0 {
		return
	}
	since := now
	for _, f := range prev {
		if f.Name == ms.Name {
			since = f.Since
			break
		}
	}
	*failing = append(*failing, MetricFailure{Name: ms.Name, Since: since})
	r.FailingFor = now.Sub(since)
	if r.FailingFor >= ms.FallbackAfter {
		r.Fallback = true
		r.Proposal = applyFallback(spec.metricFallbackBehavior(), ms.FallbackReplicas, current)
	}
}
