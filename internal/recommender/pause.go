package recommender

import "fmt"

// Pause holds an app at a given count or in one direction: KEDA's
// paused-replicas, paused-scale-in and paused-scale-out. The zero value
// pauses nothing. (Spec.Paused, which holds the app as it is, is older and
// handled in decide.)
type Pause struct {
	// Replicas, when set, is the count to go to and then hold. It overrides
	// every other rule, paused and the replica bounds included: KEDA scales
	// to exactly that count.
	Replicas *int32
	// ScaleIn blocks any decrease and ScaleOut any increase; both hold.
	ScaleIn  bool
	ScaleOut bool
}

// pause applies the app's Pause to d, the decision made without it, and
// explains any change it makes with StagePaused.
//
// The State returned with d is kept as it is: while paused, the history
// still records every recommendation. An HPA whose scale-down (or scale-up)
// policy is Disabled, which is how KEDA implements paused-scale-in and
// paused-scale-out, does the same, so un-pausing decides as that HPA would:
// from the recommendations of the last window, without waiting for a new
// one to fill. paused-replicas keeps recording too, for the same reason,
// where KEDA removes the HPA and its successor starts from the current count.
// A blocked move was not carried out, so Commit records no scale event and
// the rate policies are not charged for it.
func pause(spec *Spec, d Decision) Decision {
	p := &spec.Pause
	switch {
	case p.Replicas != nil:
		return pausedAt(d, *p.Replicas)
	case p.ScaleIn && d.DesiredReplicas < d.CurrentReplicas:
		return blocked(d, "paused-scale-in", "scale-down")
	case p.ScaleOut && d.DesiredReplicas > d.CurrentReplicas:
		return blocked(d, "paused-scale-out", "scale-up")
	}
	return d
}

// pausedAt goes to n and holds there, whatever the decision without it.
func pausedAt(d Decision, n int32) Decision {
	note := fmt.Sprintf("paused-replicas is %d", n)
	// Say what the app would do unpaused, unless another pause decided it.
	if d.LimitedBy != StagePaused && d.DesiredReplicas != n {
		note += fmt.Sprintf("; unpaused, the decision would be %d", d.DesiredReplicas)
	}
	return bound(d, n, StagePaused, note)
}

// blocked holds the current count against a move in a paused direction.
func blocked(d Decision, key, move string) Decision {
	note := fmt.Sprintf("%s is set: the %s to %d is blocked", key, move, d.DesiredReplicas)
	return bound(d, d.CurrentReplicas, StagePaused, note)
}
