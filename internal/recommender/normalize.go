package recommender

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// This file ports HPA's normalization (horizontal.go): stabilization over
// the recommendation history, then rate limits and bounds. Each stage
// reports whether it changed the count, so that a decision can name the rule
// that limited it.

// plainStabilize is HPA's stabilizeRecommendation without a behavior: the
// highest recommendation of the scale-down window, the new one included. A
// recommendation exactly at the window's edge still counts (HPA drops only
// those strictly before the cutoff).
func plainStabilize(recs []TimedRecommendation, desired int32, now time.Time, window time.Duration) int32 {
	cutoff := now.Add(-window)
	out := desired
	for _, r := range recs {
		if !r.At.Before(cutoff) {
			out = max(out, r.Replicas)
		}
	}
	return out
}

// plainLimit is HPA's convertDesiredReplicasWithRules: min and max bounds,
// and a scale-up cap of max(factor × current, minimum) per decision that
// protects against bogus usage spikes.
func plainLimit(current, desired, minR, maxR int32, factor float64, minimum int32) (int32, Stage) {
	scaleUpLimit := int32(math.Max(factor*float64(current), float64(minimum)))
	maxAllowed, upStage := maxR, StageMaxReplicas
	if maxR > scaleUpLimit {
		maxAllowed, upStage = scaleUpLimit, StageScaleUpPolicy
	}
	switch {
	case desired < minR:
		return minR, StageMinReplicas
	case desired > maxAllowed:
		return maxAllowed, upStage
	}
	return desired, StageNone
}

// behaviorStabilize is HPA's stabilizeRecommendationWithBehaviors: the
// current count clamped between the lowest recommendation of the scale-up
// window and the highest of the scale-down window (the new one included in
// both). Only recommendations strictly inside a window count.
func behaviorStabilize(recs []TimedRecommendation, current, desired int32, now time.Time, upWindow, downWindow time.Duration) int32 {
	up, down := desired, desired
	upCutoff, downCutoff := now.Add(-upWindow), now.Add(-downWindow)
	for _, r := range recs {
		if r.At.After(upCutoff) {
			up = min(up, r.Replicas)
		}
		if r.At.After(downCutoff) {
			down = max(down, r.Replicas)
		}
	}
	return min(max(current, up), down)
}

// behaviorLimit is HPA's convertDesiredReplicasWithBehaviorRate: the rate
// policies and the bounds. On this path max binds only a scale-up and min
// only a scale-down, and a limit never reverses the direction.
func behaviorLimit(spec *Spec, st *State, current, desired int32, now time.Time) (int32, Stage) {
	switch {
	case desired > current:
		limit := scaleUpLimit(current, st, scaleUpRules(spec), now)
		limit = max(limit, current)
		maxAllowed, stage := spec.MaxReplicas, StageMaxReplicas
		if maxAllowed > limit {
			maxAllowed, stage = limit, StageScaleUpPolicy
		}
		if desired > maxAllowed {
			return maxAllowed, stage
		}
	case desired < current:
		limit := scaleDownLimit(current, st, scaleDownRules(spec), now)
		limit = min(limit, current)
		minAllowed, stage := spec.MinReplicas, StageMinReplicas
		if minAllowed < limit {
			minAllowed, stage = limit, StageScaleDownPolicy
		}
		if desired < minAllowed {
			return minAllowed, stage
		}
	}
	return desired, StageNone
}

// periodStart is the replica count at the start of a policy's period: the
// current count less the scale-ups and plus the scale-downs inside it.
func periodStart(current int32, st *State, now time.Time, period int32) int32 {
	return current - changeInPeriod(st.ScaleUpEvents, now, period) + changeInPeriod(st.ScaleDownEvents, now, period)
}

// scaleUpLimit is calculateScaleUpLimitWithScalingRules.
func scaleUpLimit(current int32, st *State, r rules, now time.Time) int32 {
	return policyLimit(current, st, r, now, true)
}

// scaleDownLimit is calculateScaleDownLimitWithBehaviors.
func scaleDownLimit(current int32, st *State, r rules, now time.Time) int32 {
	return policyLimit(current, st, r, now, false)
}

// policyLimit is the limit the rate policies of one direction set: each
// policy's limit from the count at the start of its period, then the most
// permissive of them with selectPolicy Max (the highest limit up, the lowest
// down) or the least permissive with Min. Disabled holds the current count.
func policyLimit(current int32, st *State, r rules, now time.Time, up bool) int32 {
	if r.selectP == autoscalingv2.DisabledPolicySelect {
		return current
	}
	highest := (r.selectP != autoscalingv2.MinChangePolicySelect) == up
	result := int32(math.MaxInt32)
	if highest {
		result = math.MinInt32
	}
	for _, p := range r.policies {
		start := periodStart(current, st, now, p.PeriodSeconds)
		var limit int32
		switch {
		case p.Type == autoscalingv2.PodsScalingPolicy && up:
			limit = clampInt32(int64(start) + int64(p.Value))
		case p.Type == autoscalingv2.PodsScalingPolicy:
			limit = clampInt32(int64(start) - int64(p.Value))
		case p.Type == autoscalingv2.PercentScalingPolicy && up:
			// Rounds up, so that a small app can always grow.
			limit = ceilInt32(float64(start) * (1 + float64(p.Value)/100))
		case p.Type == autoscalingv2.PercentScalingPolicy:
			// Truncates, as HPA does.
			limit = clampInt32(int64(float64(start) * (1 - float64(p.Value)/100)))
		}
		if highest {
			result = max(result, limit)
		} else {
			result = min(result, limit)
		}
	}
	return result
}

// record appends the raw recommendation and forgets those no window can
// reach any more.
func record(recs []TimedRecommendation, desired int32, now time.Time, keep time.Duration) []TimedRecommendation {
	return since(recs, now.Add(-keep), TimedRecommendation{Replicas: desired, At: now})
}

// clampInt32 saturates at the int32 range: a policy value near MaxInt32
// must not wrap a limit around to a negative count.
func clampInt32(v int64) int32 {
	return int32(min(max(v, math.MinInt32), math.MaxInt32))
}
