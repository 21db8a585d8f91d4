package recommender

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// history is a state with entries on both sides of every window, so that a
// decision prunes some and keeps others; each slice has spare capacity, so
// that an append in place would not show in its length.
func history() State {
	st := State{
		Initialized:     true,
		Recommendations: make([]TimedRecommendation, 0, 64),
		ScaleUpEvents:   make([]ScaleEvent, 0, 16),
		ScaleDownEvents: make([]ScaleEvent, 0, 16),
		Loads:           make([]TimedLoad, 0, 16),
		SeededAt:        ago(time.Hour),
	}
	for _, age := range []time.Duration{10 * time.Minute, 6 * time.Minute, 4 * time.Minute, 90 * time.Second, 45 * time.Second, 15 * time.Second} {
		st.Recommendations = append(st.Recommendations, TimedRecommendation{Replicas: 4, At: ago(age)})
	}
	for _, age := range []time.Duration{time.Minute, 30 * time.Second, 20 * time.Second, 10 * time.Second} {
		st.Loads = append(st.Loads, TimedLoad{Pods: 4 - age.Minutes(), At: ago(age)})
	}
	st.ScaleUpEvents = append(st.ScaleUpEvents, ScaleEvent{Change: 1, At: ago(10 * time.Minute)}, ScaleEvent{Change: 2, At: ago(10 * time.Second)})
	st.ScaleDownEvents = append(st.ScaleDownEvents, ScaleEvent{Change: 1, At: ago(20 * time.Minute)}, ScaleEvent{Change: 1, At: ago(5 * time.Second)})
	return st
}

// decided is history after one decision 15 s before t0.
func decided(spec Spec) func() State {
	return func() State {
		in := cpuInput(4, 900)
		_, st := Decide(&spec, &in, history(), ago(15*time.Second))
		return st
	}
}

// TestDecideDoesNotModifyItsInputs: Decide and Commit are pure, so a caller
// may keep the state it passed (to retry a failed scale write, to compare
// profiles, to replay) and deciding again from it gives the same decision
// and the same new state.
func TestDecideDoesNotModifyItsInputs(t *testing.T) {
	behavior := func(s *Spec) { s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{} }
	spinscale := func(s *Spec) { s.Profile, s.Tuning = ProfileSpinscale, DefaultTuning }
	tests := []struct {
		name  string
		spec  func(*Spec)
		state func() State
		milli int64 // cpu per pod of 1000m, against a 50% target
	}{
		{"hpa plain path, scale-down held", func(*Spec) {}, history, 100},
		{"hpa behavior path, scale-up", behavior, history, 900},
		{"hpa behavior path, scale-down", behavior, history, 100},
		{"spinscale, scale-up", spinscale, history, 900},
		{"spinscale, scale-down", spinscale, history, 100},
		{"first sight with a leftover history", spinscale, func() State {
			st := history()
			st.Initialized = false
			return st
		}, 900},
		{"back from a total outage", spinscale, func() State {
			st := history()
			st.FailingSince = ago(3 * time.Minute)
			return st
		}, 900},
		// A State a decision returned has room to append in place.
		{"hpa plain path, from a decided state", func(*Spec) {}, decided(baseSpec(cpuUtil(50))), 100},
		{"spinscale, from a decided state", spinscale, decided(tunedSpec(cpuUtil(50))), 900},
		{"spinscale, from a committed state", spinscale, func() State {
			spec := tunedSpec(cpuUtil(50))
			in := cpuInput(4, 900)
			d, st := Decide(&spec, &in, history(), ago(15*time.Second))
			return Commit(&spec, st, &d, ago(15*time.Second))
		}, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newSpec := func() Spec { s := baseSpec(cpuUtil(50)); tt.spec(&s); return s }
			spec, in, st := newSpec(), cpuInput(4, tt.milli), tt.state()
			kept := st.Clone()

			d1, st1 := Decide(&spec, &in, st, t0)
			require.Equal(t, kept, st, "the state passed in is unchanged")
			first := st1.Clone()
			d2, st2 := Decide(&spec, &in, st, t0)
			assert.Equal(t, d1, d2, "the same decision from the same state")
			assert.Equal(t, st1, st2, "the same new state from the same state")
			other := cpuInput(4, tt.milli+500)
			_, st3 := Decide(&spec, &other, st, t0.Add(time.Second))
			Commit(&spec, st3, &d1, t0.Add(time.Second))
			assert.Equal(t, first, st1, "other decisions from the same state leave the first one's alone")
			assert.Equal(t, newSpec(), spec, "the spec is unchanged")
			assert.Equal(t, cpuInput(4, tt.milli), in, "the input is unchanged")

			committed := st1.Clone()
			Commit(&spec, st1, &d1, t0)
			assert.Equal(t, committed, st1, "Commit leaves the state passed in unchanged")
		})
	}
}
