package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/spinscale/spinscale/internal/recommender"
)

func readyPod(transition time.Time) recommender.Pod {
	return recommender.Pod{Phase: corev1.PodRunning, HasReadyCondition: true, Ready: true, ReadyTransition: transition}
}

// A scale-up from 2 to 4 at t0 is cold-started when the fourth pod is
// Ready: the latest Ready transition after the write, minus the write.
func TestColdStartIsTheLatestReadyTransition(t *testing.T) {
	a := &app{}
	a.startWaiting(2, 4, t0)
	old := []recommender.Pod{readyPod(t0.Add(-time.Hour)), readyPod(t0.Add(-time.Hour))}
	_, ok := a.readyAfter(append(old, readyPod(t0.Add(5*time.Second))), t0.Add(6*time.Second))
	assert.False(t, ok, "3 of 4 Ready")
	took, ok := a.readyAfter(append(old, readyPod(t0.Add(5*time.Second)), readyPod(t0.Add(8*time.Second))), t0.Add(15*time.Second))
	assert.True(t, ok)
	assert.Equal(t, 8*time.Second, took, "from the pods' transitions, not the pass that saw them")
	_, ok = a.readyAfter(old, t0.Add(20*time.Second))
	assert.False(t, ok, "measured once")
}

// A scale-down drops the wait; so do ten minutes without enough pods.
func TestColdStartWaitEnds(t *testing.T) {
	a := &app{}
	a.startWaiting(2, 4, t0)
	a.startWaiting(4, 3, t0.Add(time.Second))
	_, ok := a.readyAfter([]recommender.Pod{readyPod(t0.Add(2 * time.Second))}, t0.Add(3*time.Second))
	assert.False(t, ok)

	a.startWaiting(1, 2, t0)
	_, ok = a.readyAfter([]recommender.Pod{readyPod(t0.Add(time.Second))}, t0.Add(11*time.Minute))
	assert.False(t, ok)
	assert.True(t, a.cold.at.IsZero(), "given up after ten minutes")
}
