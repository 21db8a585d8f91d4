package recommender

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPause(t *testing.T) {
	n := func(v int32) *int32 { return &v }
	// cpuInput's pods request 1 cpu each and the target is 50%: 900m per
	// pod asks for 1.8 × the pods, 300m for 0.6 ×.
	const high, low = 900, 300
	cases := []struct {
		name     string
		pause    Pause
		paused   bool
		replicas int32
		usage    int64
		want     int32
		stage    Stage
		action   Action
		reason   string
	}{
		{name: "paused-replicas goes to its count", pause: Pause{Replicas: n(7)}, replicas: 4, usage: high,
			want: 7, stage: StagePaused, action: ActionScaleUp, reason: "4 → 7: paused-replicas is 7; unpaused, the decision would be 8"},
		{name: "paused-replicas then holds", pause: Pause{Replicas: n(4)}, replicas: 4, usage: low,
			want: 4, stage: StagePaused, action: ActionNone, reason: "hold: paused-replicas is 4; unpaused, the decision would be 3"},
		{name: "paused-replicas above max-replicas, as KEDA", pause: Pause{Replicas: n(12)}, replicas: 4, usage: low,
			want: 12, stage: StagePaused, action: ActionScaleUp},
		{name: "paused-replicas below min-replicas, to 0", pause: Pause{Replicas: n(0)}, replicas: 4, usage: high,
			want: 0, stage: StagePaused, action: ActionScaleDown},
		{name: "paused-replicas from 0 replicas", pause: Pause{Replicas: n(3)}, replicas: 0,
			want: 3, stage: StagePaused, action: ActionScaleUp, reason: "0 → 3: paused-replicas is 3"},
		{name: "paused-replicas wins over paused", pause: Pause{Replicas: n(6)}, paused: true, replicas: 4, usage: high,
			want: 6, stage: StagePaused, action: ActionScaleUp, reason: "4 → 6: paused-replicas is 6"},
		{name: "paused-replicas wins over paused-scale-in", pause: Pause{Replicas: n(2), ScaleIn: true}, replicas: 4, usage: high,
			want: 2, stage: StagePaused, action: ActionScaleDown},
		{name: "paused-scale-in blocks a scale-down", pause: Pause{ScaleIn: true}, replicas: 5, usage: low,
			want: 5, stage: StagePaused, action: ActionNone, reason: "hold: paused-scale-in is set: the scale-down to 3 is blocked"},
		{name: "paused-scale-in lets a scale-up through", pause: Pause{ScaleIn: true}, replicas: 4, usage: high,
			want: 8, stage: StageNone, action: ActionScaleUp},
		{name: "paused-scale-in blocks going down to max-replicas", pause: Pause{ScaleIn: true}, replicas: 15, usage: low,
			want: 15, stage: StagePaused, action: ActionNone, reason: "hold: paused-scale-in is set: the scale-down to 10 is blocked"},
		{name: "paused-scale-out blocks a scale-up", pause: Pause{ScaleOut: true}, replicas: 4, usage: high,
			want: 4, stage: StagePaused, action: ActionNone, reason: "hold: paused-scale-out is set: the scale-up to 8 is blocked"},
		{name: "paused-scale-out lets a scale-down through", pause: Pause{ScaleOut: true}, replicas: 5, usage: low,
			want: 3, stage: StageNone, action: ActionScaleDown},
		{name: "paused-scale-out blocks going up to min-replicas", pause: Pause{ScaleOut: true}, replicas: 1, usage: high,
			want: 1, stage: StagePaused, action: ActionNone},
		{name: "both directions hold a scale-up", pause: Pause{ScaleIn: true, ScaleOut: true}, replicas: 4, usage: high,
			want: 4, stage: StagePaused, action: ActionNone},
		{name: "both directions hold a scale-down", pause: Pause{ScaleIn: true, ScaleOut: true}, replicas: 5, usage: low,
			want: 5, stage: StagePaused, action: ActionNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := baseSpec(cpuUtil(50))
			spec.MinReplicas, spec.MaxReplicas = 2, 10
			spec.Pause, spec.Paused = tc.pause, tc.paused
			in := cpuInput(tc.replicas, tc.usage)
			d, _ := Decide(&spec, &in, settled(), t0)
			assert.Equal(t, tc.want, d.DesiredReplicas)
			assert.Equal(t, tc.stage, d.LimitedBy)
			assert.Equal(t, tc.action, d.Action)
			if tc.reason != "" {
				assert.Equal(t, tc.reason, d.Reason())
			}
		})
	}
}

func TestPausedScaleOutBlocksFallback(t *testing.T) {
	spec := baseSpec(cpuUtil(50))
	spec.FallbackReplicas, spec.FallbackAfter = 6, time.Minute
	spec.Pause.ScaleOut = true
	in := Input{SpecReplicas: 3, StatusReplicas: 3, Pods: pods(3, nil), Metrics: []Observation{{Err: errors.New("metrics.k8s.io: unavailable")}}}
	st := settled()
	st.FailingSince = ago(2 * time.Minute)
	d, _ := Decide(&spec, &in, st, t0)
	assert.Equal(t, int32(3), d.DesiredReplicas)
	assert.Equal(t, StagePaused, d.LimitedBy)
	assert.Equal(t, "hold: paused-scale-out is set: the scale-up to 6 is blocked", d.Reason())
}

// TestPauseKeepsRecording: while a direction is paused, the history still
// records each recommendation, as HPA's does when KEDA disables a
// direction's policy, so that un-pausing acts on the load seen during the
// pause instead of waiting for a new scale-down window.
func TestPauseKeepsRecording(t *testing.T) {
	for _, behavior := range []bool{false, true} {
		name := "plain path"
		if behavior {
			name = "behavior path"
		}
		t.Run(name, func(t *testing.T) {
			spec := baseSpec(cpuUtil(50))
			if behavior {
				spec.Profile = ProfileSpinscale
				spec.Tuning = DefaultTuning
			}
			spec.Pause.ScaleIn = true
			st := State{Initialized: true, Recommendations: []TimedRecommendation{{Replicas: 5, At: ago(11 * time.Minute)}}}
			in := cpuInput(5, 300)
			for at := -5 * time.Minute; at < 0; at += time.Minute {
				var d Decision
				d, st = Decide(&spec, &in, st, t0.Add(at))
				require.Equal(t, StagePaused, d.LimitedBy, "blocked at %s", at)
				st = Commit(&spec, st, &d, t0.Add(at))
			}
			assert.Empty(t, st.ScaleDownEvents, "a blocked scale-down is no scale event")
			require.Len(t, st.Recommendations, 5, "one per paused decision; the old one expired")
			for _, r := range st.Recommendations {
				assert.Equal(t, int32(3), r.Replicas)
			}

			spec.Pause.ScaleIn = false
			d, _ := Decide(&spec, &in, st, t0)
			assert.Equal(t, ActionScaleDown, d.Action, "un-paused, the window holds five minutes of low recommendations: %s", d.Reason())
		})
	}
}
