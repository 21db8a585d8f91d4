package simulate

import (
	"time"

	"github.com/spinscale/spinscale/internal/recommender"
)

// Result is the engine's decision at one step.
type Result struct {
	// At is the step's time in seconds since the scenario's start; Time is
	// Epoch + At.
	At       float64
	Time     time.Time
	Decision recommender.Decision
}

// Run decides every step in order, as the controller would on successive
// ticks, and applies each decision: the engine's memory is committed as if
// the scale write succeeded, and a step without replicas observes the
// previous step's decision. Simulate never writes to a cluster, so the app's
// dry-run annotation has no effect here. Run is deterministic and does not
// modify s.
func (s *Scenario) Run() []Result {
	st := s.State.Clone()
	results := make([]Result, 0, len(s.Steps))
	var previous int32
	if s.Replicas != nil {
		previous = *s.Replicas
	}
	// The record that Spinscale scaled the app to zero follows the
	// decisions, as the controller writes it with the replica count.
	scaledToZero := s.ScaledToZero
	spec := &s.Spec
	for i := range s.Steps {
		step := &s.Steps[i]
		if step.Spec != nil {
			// The step changed the app's annotations: its spec holds from
			// here on.
			spec = step.Spec
		}
		in := recommender.Input{
			SpecReplicas: previous,
			Pods:         step.Pods,
			Metrics:      step.Metrics,
			ScaledToZero: scaledToZero,
		}
		if step.Replicas != nil {
			in.SpecReplicas = *step.Replicas
		}
		in.StatusReplicas = in.SpecReplicas
		switch {
		case step.StatusReplicas != nil:
			in.StatusReplicas = *step.StatusReplicas
		case i == 0 && s.StatusReplicas != nil:
			// state.statusReplicas describes the Deployment before the
			// first step, which observes it unless told otherwise.
			in.StatusReplicas = *s.StatusReplicas
		}
		var d recommender.Decision
		d, st = recommender.Decide(spec, &in, st, step.Time)
		st = recommender.Commit(spec, st, &d, step.Time)
		previous = d.DesiredReplicas
		switch d.Zero {
		case recommender.ZeroSet:
			scaledToZero = true
		case recommender.ZeroClear:
			scaledToZero = false
		}
		results = append(results, Result{At: step.At, Time: step.Time, Decision: d})
	}
	return results
}
