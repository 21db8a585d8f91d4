package recommender

import (
	"slices"
	"sync/atomic"
	"time"
)

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
	// IdleSince is when every Prometheus metric last fell to or below the
	// activation threshold while the app ran (zero.go); zero while active.
	IdleSince time.Time
	// MetricFailures are the metrics with a fallback that are failing, and
	// since when (fallback.go).
	MetricFailures []MetricFailure
	// HTTPPanics are the HTTP metrics in panic mode (http.go).
	HTTPPanics []HTTPPanic

	// lease is this State's right to append to its slices in place.
	lease *lease
}

// lease is the right to append past the ends of a State's slices, into the
// room a decision left in arrays it allocated. The first Decide or Commit
// from a State takes it and appends without copying: the controller's
// history then costs no allocation per tick. Any other call from the same
// State (a retry, a comparison, a replay) finds it taken and copies, so that
// it never writes where the first one did. Taking it changes none of a
// State's entries, only whether the next append copies; a State built by
// hand has no lease, as the room in its slices may be its caller's.
type lease struct{ taken atomic.Bool }

// own prepares st, a decision's copy of its input State, to become the
// State the decision returns: it takes the input's lease, or else clips
// the slices so that appending to them copies, and gives st a lease of its
// own.
func (st *State) own() {
	if st.lease == nil || !st.lease.taken.CompareAndSwap(false, true) {
		st.Recommendations = slices.Clip(st.Recommendations)
		st.ScaleUpEvents = slices.Clip(st.ScaleUpEvents)
		st.ScaleDownEvents = slices.Clip(st.ScaleDownEvents)
		st.Loads = slices.Clip(st.Loads)
	}
	st.lease = new(lease)
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

// Clone returns a deep copy. Decide and Commit never change a State's
// entries, so a caller that keeps an old State needs no copy; a caller that
// changes entries itself (to shift their times, say) does. The copy shares
// s's lease: whichever of the two is decided from first appends in place.
func (s State) Clone() State {
	c := s
	c.Recommendations = append([]TimedRecommendation(nil), s.Recommendations...)
	c.ScaleUpEvents = append([]ScaleEvent(nil), s.ScaleUpEvents...)
	c.ScaleDownEvents = append([]ScaleEvent(nil), s.ScaleDownEvents...)
	c.Loads = append([]TimedLoad(nil), s.Loads...)
	c.HTTPPanics = append([]HTTPPanic(nil), s.HTTPPanics...)
	return c
}

// Commit records that the decision was carried out: the replica count went
// from d.CurrentReplicas to d.DesiredReplicas at now. Only the behavior path
// keeps scale events (HPA does not store them without a behavior), pruned to
// the longest policy period in the direction of the change. Call it after the
// scale write succeeded; a dry run never commits. Like Decide, it does not
// write to st's slices.
func Commit(spec *Spec, st State, d *Decision, now time.Time) State {
	// A wake from zero counts against the scale-up policies, as HPA's
	// storeScaleEvent records it.
	if !spec.usesPolicies() || d.DesiredReplicas == d.CurrentReplicas {
		return st
	}
	st.own()
	if d.DesiredReplicas > d.CurrentReplicas {
		st.ScaleUpEvents = since(st.ScaleUpEvents, periodCutoff(now, longestPeriod(scaleUpRules(spec).policies)),
			ScaleEvent{Change: d.DesiredReplicas - d.CurrentReplicas, At: now})
	} else {
		st.ScaleDownEvents = since(st.ScaleDownEvents, periodCutoff(now, longestPeriod(scaleDownRules(spec).policies)),
			ScaleEvent{Change: d.CurrentReplicas - d.DesiredReplicas, At: now})
	}
	return st
}

// periodCutoff is the start of a policy period ending now: events before it
// are outside the period (HPA marks them outdated and reuses their slots).
func periodCutoff(now time.Time, periodSeconds int32) time.Time {
	return now.Add(-time.Duration(periodSeconds) * time.Second)
}

// timed is an entry of the engine's memory: a recommendation, a scale
// event or a load estimate.
type timed interface{ when() time.Time }

func (r TimedRecommendation) when() time.Time { return r.At }
func (e ScaleEvent) when() time.Time          { return e.At }
func (l TimedLoad) when() time.Time           { return l.At }

// since returns the entries at or after cutoff, in order, followed by added.
// It never writes to entries' elements: it appends after the kept entries
// when they are the tail of entries and there is room after them (a State
// whose lease the caller took), and otherwise into a new array with as much
// room again, so that the next decisions append in place.
func since[T timed](entries []T, cutoff time.Time, added ...T) []T {
	// Entries are in time order unless the clock stepped back: skip the
	// expired head, then check that nothing after it expired.
	head := 0
	for head < len(entries) && entries[head].when().Before(cutoff) {
		head++
	}
	kept := entries[head:]
	for i := range kept {
		if kept[i].when().Before(cutoff) {
			out := make([]T, 0, 2*(len(kept)+len(added)))
			for _, e := range kept {
				if !e.when().Before(cutoff) {
					out = append(out, e)
				}
			}
			return append(out, added...)
		}
	}
	if cap(kept)-len(kept) >= len(added) {
		return append(kept, added...)
	}
	out := make([]T, 0, 2*(len(kept)+len(added)))
	return append(append(out, kept...), added...)
}

// changeInPeriod sums the changes strictly newer than now-period, as HPA's
// getReplicasChangePerPeriod does.
func changeInPeriod(events []ScaleEvent, now time.Time, periodSeconds int32) int32 {
	cutoff := periodCutoff(now, periodSeconds)
	var sum int32
	for _, e := range events {
		if e.At.After(cutoff) {
			sum += e.Change
		}
	}
	return sum
}
