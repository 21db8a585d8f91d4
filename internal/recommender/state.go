package recommender

import "time"

// State is the engine's memory of one app between decisions: what HPA keeps in
// its recommendations and scale-event maps, plus the failure clock used by
// fallback-replicas.
type State struct {
	// Initialized is false on first sight; the next decision seeds the
	// history with (current replicas, now), as HPA does, so that nothing is
	// scaled down before one scale-down window has passed.
	Initialized bool
	// Recommendations are past raw recommendations (the largest metric
	// proposal of each decision), oldest first.
	Recommendations []TimedRecommendation
	// ScaleUpEvents and ScaleDownEvents record applied scale changes (as
	// positive counts) for the behavior path's rate policies.
	ScaleUpEvents   []ScaleEvent
	ScaleDownEvents []ScaleEvent
	// FailingSince is when every metric started failing; zero while any
	// metric works.
	FailingSince time.Time
	// SeededAt is when the history was last seeded with the current count:
	// at first sight and when data came back after every metric failed.
	// Nothing scales down before one scale-down window has passed since.
	SeededAt time.Time
	// Loads are the spinscale profile's recent load estimates, oldest
	// first, from which it projects the load's rise.
	Loads []TimedLoad
}

// TimedLoad is one load estimate: the pods the load needed at the target.
type TimedLoad struct {
	Pods float64
	At   time.Time
}

// TimedRecommendation is one past recommendation.
type TimedRecommendation struct {
	Replicas int32
	At       time.Time
}

// ScaleEvent is one applied scale change; Change is positive in both lists.
type ScaleEvent struct {
	Change int32
	At     time.Time
}

// Clone returns a deep copy, for callers that keep the old state.
func (s State) Clone() State {
	c := s
	c.Recommendations = append([]TimedRecommendation(nil), s.Recommendations...)
	c.ScaleUpEvents = append([]ScaleEvent(nil), s.ScaleUpEvents...)
	c.ScaleDownEvents = append([]ScaleEvent(nil), s.ScaleDownEvents...)
	c.Loads = append([]TimedLoad(nil), s.Loads...)
	return c
}

// Commit records that the decision was carried out: the replica count went
// from d.CurrentReplicas to d.DesiredReplicas at now. Only the behavior path
// keeps scale events (HPA does not store them without a behavior), pruned to
// the longest policy period in the direction of the change. Call it after the
// scale write succeeded; a dry run never commits.
func Commit(spec *Spec, st State, d *Decision, now time.Time) State {
	if !spec.usesPolicies() || d.DesiredReplicas == d.CurrentReplicas || d.CurrentReplicas == 0 {
		return st
	}
	if d.DesiredReplicas > d.CurrentReplicas {
		longest := longestPeriod(scaleUpRules(spec).policies)
		st.ScaleUpEvents = append(pruneEvents(st.ScaleUpEvents, now, longest),
			ScaleEvent{Change: d.DesiredReplicas - d.CurrentReplicas, At: now})
	} else {
		longest := longestPeriod(scaleDownRules(spec).policies)
		st.ScaleDownEvents = append(pruneEvents(st.ScaleDownEvents, now, longest),
			ScaleEvent{Change: d.CurrentReplicas - d.DesiredReplicas, At: now})
	}
	return st
}

// pruneEvents drops events older than the longest policy period: no policy
// counts them any more (HPA marks them outdated and reuses their slots).
func pruneEvents(events []ScaleEvent, now time.Time, longestSeconds int32) []ScaleEvent {
	return keepSince(events, now.Add(-time.Duration(longestSeconds)*time.Second))
}

// timed is an entry of the engine's memory: a recommendation, a scale
// event or a load estimate.
type timed interface{ when() time.Time }

func (r TimedRecommendation) when() time.Time { return r.At }
func (e ScaleEvent) when() time.Time          { return e.At }
func (l TimedLoad) when() time.Time           { return l.At }

// keepSince keeps, in place and in order, the entries at or after cutoff.
func keepSince[T timed](entries []T, cutoff time.Time) []T {
	kept := entries[:0]
	for _, e := range entries {
		if !e.when().Before(cutoff) {
			kept = append(kept, e)
		}
	}
	return kept
}

// changeInPeriod sums the changes strictly newer than now-period, as HPA's
// getReplicasChangePerPeriod does.
func changeInPeriod(events []ScaleEvent, now time.Time, periodSeconds int32) int32 {
	cutoff := now.Add(-time.Duration(periodSeconds) * time.Second)
	var sum int32
	for _, e := range events {
		if e.At.After(cutoff) {
			sum += e.Change
		}
	}
	return sum
}
