package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/spinscale/spinscale/internal/recommender"
)

// Cold starts: the time from a scale-up write to the new pods being Ready.
//
// After a successful scale-up to n replicas at time T, the app waits for n
// Running and Ready pods; the cold start is then the latest Ready
// transition among the pods that became Ready after T, minus T. The pods'
// own transition times are used, not the time of the pass that sees them,
// so the figure does not depend on the interval. A new scale-up restarts
// the wait; a scale-down, or ten minutes without enough Ready pods, drops it.

// maxColdStart bounds the wait for the new pods.
const maxColdStart = 10 * time.Minute

// coldStart is a scale-up waiting for its pods.
type coldStart struct {
	at time.Time
	to int32
}

// startWaiting records a successful write from `from` to `to` at now.
func (a *app) startWaiting(from, to int32, now time.Time) {
	if to > from {
		a.cold = coldStart{at: now, to: to}
		return
	}
	a.cold = coldStart{}
}

// readyAfter returns the cold start, once the pods of a pending scale-up are
// Ready; ok is false while they are not (or nothing is pending).
func (a *app) readyAfter(pods []recommender.Pod, now time.Time) (took time.Duration, ok bool) {
	if a.cold.at.IsZero() {
		return 0, false
	}
	if now.Sub(a.cold.at) > maxColdStart {
		a.cold = coldStart{}
		return 0, false
	}
	ready := int32(0)
	var latest time.Time
	for i := range pods {
		p := &pods[i]
		if p.Phase != corev1.PodRunning || !p.Ready || p.Deleting {
			continue
		}
		ready++
		if p.ReadyTransition.After(a.cold.at) && p.ReadyTransition.After(latest) {
			latest = p.ReadyTransition
		}
	}
	if ready < a.cold.to || latest.IsZero() {
		return 0, false
	}
	took = latest.Sub(a.cold.at)
	a.cold = coldStart{}
	return took, true
}
