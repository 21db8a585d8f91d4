package recommender

import (
	"time"
)

// Decide computes the decision for one app. It is pure: the result depends
// only on its arguments, and it changes none of them, st's entries
// included, so deciding twice from one State gives the same decision and the
// same new State. The returned State replaces st. It never panics on any
// input.
func Decide(spec *Spec, in *Input, st State, now time.Time) (Decision, State) {
	d, st := decide(spec, in, st, now)
	// The pause annotations come last, so that they block any move, a
	// move to or from zero included, and the zero record follows what is
	// actually written.
	d = pause(spec, d)
	d.Zero = zeroRecordOf(spec, in, &d)
	return d, st
}

// decide is Decide before the pause annotations other than paused
// (pause.go) and the zero record (zero.go).
func decide(spec *Spec, in *Input, st State, now time.Time) (Decision, State) {
	current := in.SpecReplicas
	d := Decision{
		CurrentReplicas: current,
		DesiredReplicas: current,
		Action:          ActionNone,
		LimitedBy:       StageNone,
		Behavior:        spec.usesPolicies(),
	}
	st.own()
	// seeded is true on the decision that seeds the history: there is no
	// earlier decision to compare this one's load with.
	seeded := false
	// First sight: seed the history with the current count, so that no
	// scale-down happens before a full scale-down window has been observed.
	if !st.Initialized {
		seeded = true
		st.Initialized = true
		st.Recommendations = since(nil, now, TimedRecommendation{Replicas: current, At: now})
		st.SeededAt = now
	}
	if current <= 0 && !in.ScaledToZero {
		// A user scaled the app to zero: HPA disables scaling until they
		// scale it up again. Only a zero Spinscale made is woken from.
		d.DesiredReplicas = 0
		d.LimitedBy = StagePaused
		d.note = handZero
		return d, st
	}

	d.Metrics = make([]MetricResult, len(spec.Metrics))
	failed, working := 0, 0
	proposal := int32(0)
	var failing []MetricFailure
	var panics []HTTPPanic
	for i := range spec.Metrics {
		r := &d.Metrics[i]
		computeMetric(spec, &spec.Metrics[i], in, i, now, r)
		if spec.Metrics[i].Source == SourceHTTP && r.Err == nil {
			computeHTTP(&spec.Metrics[i], in, &in.Metrics[i], st.HTTPPanics, &panics, now, r)
		}
		metricFallback(spec, &spec.Metrics[i], st.MetricFailures, &failing, current, now, r)
		if r.Err != nil && !r.Fallback {
			failed++
			continue
		}
		if r.Err == nil {
			working++
		}
		proposal = max(proposal, r.Proposal)
	}
	st.MetricFailures = failing
	st.HTTPPanics = keepPanics(spec, st.HTTPPanics, panics, d.Metrics)
	if failed > 0 {
		// A failed metric is never idleness (zero.go).
		st.IdleSince = time.Time{}
	}

	if spec.Paused {
		d.LimitedBy = StagePaused
		d.note = "the paused annotation is set"
		return d, st
	}
	// Out of bounds: go straight to the bound, as HPA does, without
	// recording a recommendation.
	if current > spec.MaxReplicas {
		return bound(d, spec.MaxReplicas, StageMaxReplicas, "current replicas above max-replicas"), st
	}
	// At zero the metrics decide first, and min-replicas applies after
	// (HPA: "scale to at least minReplicas when scaling from zero").
	if current < spec.MinReplicas && current > 0 {
		return bound(d, spec.MinReplicas, StageMinReplicas, "current replicas below min-replicas"), st
	}

	if failed == len(spec.Metrics) {
		if current == 0 && spec.MinReplicas > 0 {
			// A zero of Spinscale's own (paused-replicas "0", now lifted)
			// with min-replicas above 0 and nothing to measure at zero:
			// back to the minimum, as KEDA returns to minReplicaCount.
			return bound(d, spec.MinReplicas, StageMinReplicas, "woken from zero: at least min-replicas"), st
		}
		return allFailed(spec, d, st, now)
	}
	// Data is back only when a metric works: a fallback standing in for a
	// failed metric is not the end of an outage.
	if !st.FailingSince.IsZero() && working > 0 {
		// Back from a total outage: rates computed over a window that
		// spans the gap read low, so the app is treated as newly seen and
		// not scaled down until one scale-down window of fresh data.
		st.FailingSince = time.Time{}
		st.Recommendations = since(st.Recommendations, time.Time{}, TimedRecommendation{Replicas: current, At: now})
		st.SeededAt = now
		seeded = true
	}
	// A failed metric might have asked for more: it blocks a scale-down but
	// not a scale-up.
	if failed > 0 && proposal < current {
		d.LimitedBy = StageMissingMetrics
		return d, st
	}

	d.Recommendation = proposal
	var desired int32
	var stage Stage
	if !spec.usesPolicies() {
		d.Window = spec.DownscaleStabilization
		d.Stabilized = plainStabilize(st.Recommendations, proposal, now, d.Window)
		st.Recommendations = record(st.Recommendations, proposal, now, d.Window)
		desired, stage = plainLimit(current, d.Stabilized, spec.MinReplicas, spec.MaxReplicas, spec.ScaleUpLimitFactor, spec.ScaleUpLimitMinimum)
	} else {
		rec := proposal
		if spec.Profile == ProfileSpinscale {
			rec = tunedRecommend(spec, &st, &d, current, proposal, now, seeded)
		}
		up, down := scaleUpRules(spec).window, scaleDownRules(spec).window
		d.Stabilized = behaviorStabilize(st.Recommendations, current, rec, now, up, down)
		// A recommendation held up is the scale-down window's doing; one
		// held down, the scale-up window's.
		d.Window = down
		if d.Stabilized < rec {
			d.Window = up
		}
		keep := max(up, down)
		if spec.Profile == ProfileSpinscale {
			keep = max(keep, spec.Tuning.DropWindow)
			tunedDrop(spec, &st, &d, current, rec, now, up, down)
		}
		st.Recommendations = record(st.Recommendations, rec, now, keep)
		desired, stage = behaviorLimit(spec, &st, current, d.Stabilized, now)
		proposal = rec
	}
	d.windowed = proposal
	d.DesiredReplicas = desired
	d.Action = actionOf(current, desired)
	switch {
	case stage != StageNone:
		d.LimitedBy, d.Limit = stage, desired
	case d.Stabilized != proposal:
		d.LimitedBy = StageStabilization
	case desired == current && proposal == current && anyTolerated(d.Metrics):
		d.LimitedBy = StageTolerance
	}
	if current == 0 && d.DesiredReplicas < spec.MinReplicas {
		d = bound(d, spec.MinReplicas, StageMinReplicas, "woken from zero: at least min-replicas")
	}
	activate(spec, &st, &d, now)
	return d, st
}

func computeMetric(spec *Spec, ms *MetricSpec, in *Input, i int, now time.Time, r *MetricResult) {
	r.Name, r.Source, r.Target = ms.Name, ms.Source, ms.Target
	r.TargetUtilization, r.TargetMilli = ms.TargetUtilization, ms.TargetMilli
	if i >= len(in.Metrics) {
		r.Err = ErrNoData
		return
	}
	obs := &in.Metrics[i]
	if obs.Err != nil {
		r.Err = obs.Err
		return
	}
	switch {
	case ms.Source == SourceHTTP:
		// computeHTTP, with the app's panic state, in decide.
		r.Kind = "http"
	case ms.Source == SourceResource:
		r.Kind = "resource"
		computePerPod(spec, ms, in, obs, now, r)
	case obs.PerPod && ms.Target == TargetAverageValue:
		r.Kind = "pods"
		computePerPod(spec, ms, in, obs, now, r)
	default:
		computeValue(spec, ms, in, obs, now, r)
	}
}

func bound(d Decision, to int32, stage Stage, note string) Decision {
	d.DesiredReplicas, d.LimitedBy, d.Limit, d.note = to, stage, to, note
	d.Action = actionOf(d.CurrentReplicas, to)
	return d
}

// allFailed holds when no metric gave a proposal, or applies
// fallback-replicas, by the fallback behavior (upward only by default), once
// the failure has lasted fallbackAfter.
func allFailed(spec *Spec, d Decision, st State, now time.Time) (Decision, State) {
	if st.FailingSince.IsZero() {
		st.FailingSince = now
	}
	d.LimitedBy = StageMissingMetrics
	if spec.FallbackReplicas > 0 && now.Sub(st.FailingSince) >= spec.FallbackAfter {
		to := applyFallback(spec.appFallbackBehavior(), min(spec.FallbackReplicas, spec.MaxReplicas), d.CurrentReplicas)
		if to != d.CurrentReplicas {
			d.DesiredReplicas, d.LimitedBy, d.Limit = to, StageFallback, to
			d.Action = actionOf(d.CurrentReplicas, to)
		}
	}
	return d, st
}

func actionOf(current, desired int32) Action {
	switch {
	case desired > current:
		return ActionScaleUp
	case desired < current:
		return ActionScaleDown
	}
	return ActionNone
}

func anyTolerated(ms []MetricResult) bool {
	for i := range ms {
		if ms[i].Err == nil && ms[i].WithinTolerance && ms[i].Ratio != 1 {
			return true
		}
	}
	return false
}

// keepPanics is the HTTP panics after a decision: those the decision's
// metrics kept, and those of metrics that failed, which a failure neither
// ends nor extends.
func keepPanics(spec *Spec, prev, kept []HTTPPanic, results []MetricResult) []HTTPPanic {
	for i := range spec.Metrics {
		if spec.Metrics[i].Source != SourceHTTP || results[i].Err == nil {
			continue
		}
		for _, p := range prev {
			if p.Name == spec.Metrics[i].Name {
				kept = append(kept, p)
			}
		}
	}
	return kept
}
