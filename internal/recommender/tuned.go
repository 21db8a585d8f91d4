package recommender

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// The spinscale profile. It forms every metric's proposal as HPA does, with
// one change (pods without a usable sample are left out of a scale-up, not
// counted at 0: see leaveOut), and then, before HPA's stabilization and rate
// policies:
//
//   - projects the load: when a scale-up is due and the app's load estimate
//     rose at every estimate of the last trend span (a ramp), the
//     recommendation is the load expected Lookahead from now, so that pods
//     started now are Ready when the load arrives;
//   - reacts to bursts: when a metric reads at or above BurstThreshold times
//     its target on a load higher than any measured over the trend span,
//     the pods may be saturated, and a saturated pod's metric reads no
//     higher than its capacity, so the true load is unknown: the
//     recommendation goes as far as the scale-up policies allow at once;
//   - scales down gradually (spinscaleDownPolicies) after the scale-down
//     window, instead of at any rate; a sharp drop, held for DropWindow,
//     goes through without waiting for that window (tunedDrop).
//
// Every part is configurable per app: the behavior annotation overrides the
// windows and policies, the tuning annotations the rest.

// Tuning holds the spinscale profile's parameters.
type Tuning struct {
	// BurstThreshold is the usage ratio (metric / target) at or above which
	// a scale-up goes as far as the scale-up policies allow. 0 disables it.
	BurstThreshold float64
	// Lookahead is how far ahead a rising load is projected; about one pod
	// start-up plus one metric window. 0 disables the projection.
	Lookahead time.Duration
	// DropWindow and DropThreshold release a burst's pods early: when every
	// recommendation of the last DropWindow is at least DropThreshold (a
	// fraction) below the current count, the app scales down without
	// waiting for the scale-down window. Smaller drops, such as noise,
	// wait for the whole window. DropWindow 0 disables it.
	DropWindow    time.Duration
	DropThreshold float64
}

// DefaultTuning is the spinscale profile's tuning unless an app sets its own.
var DefaultTuning = Tuning{
	BurstThreshold: 1.3,
	Lookahead:      30 * time.Second,
	DropWindow:     60 * time.Second,
	DropThreshold:  0.6,
}

// trendSpan is how far back the projection looks for the load's rise.
const trendSpan = 30 * time.Second

// The spinscale profile's scale-down policies: at most 20% of the pods per
// 15 s (at least one pod).
var (
	spinscaleDownPolicies = []autoscalingv2.HPAScalingPolicy{
		{Type: autoscalingv2.PercentScalingPolicy, Value: 20, PeriodSeconds: 15},
		{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 15},
	}
)

// tunedRecommend turns the largest metric proposal into the spinscale
// profile's recommendation: the projection of a rising load, or the
// scale-up policies' limit on a burst. It records the load estimate in st.
// On the decision that seeded the history (seeded) it keeps the proposal:
// see the comment below.
func tunedRecommend(spec *Spec, st *State, d *Decision, current, proposal int32, now time.Time, seeded bool) int32 {
	load, ratio := 0.0, 0.0
	for i := range d.Metrics {
		// max would spread a NaN to every metric: skip non-finite values.
		if m := &d.Metrics[i]; m.Err == nil && finite(m.load) && finite(m.Ratio) {
			load, ratio = max(load, m.load), max(ratio, m.Ratio)
		}
	}
	rec := proposal
	t := spec.Tuning
	// The estimates of the trend span, oldest first, then the new one.
	st.Loads = since(st.Loads, now.Add(-trendSpan), TimedLoad{Pods: load, At: now})
	span := st.Loads[:len(st.Loads)-1]
	// A start is not a burst. Right after the controller starts or fails
	// over, or the app's data returns after every metric failed, nothing
	// says how the load got where it is: a high ratio is the load as it has
	// been for a while as much as a burst, and there is no rise to project.
	// The decision takes HPA's proposal; the estimate just recorded lets the
	// next one tell a burst or a ramp.
	if seeded {
		return proposal
	}
	// The projection sizes a scale-up the metrics already ask for; it
	// never starts one, and a rise within the tolerance band is noise.
	if t.Lookahead > 0 && proposal > current && len(span) > 0 {
		old := span[0]
		if now.After(old.At) && load > old.Pods*(1+spec.Tolerance.Up) && steadyRise(span, load) {
			slope := (load - old.Pods) / now.Sub(old.At).Seconds()
			if projected := CeilReplicas(load + slope*t.Lookahead.Seconds()); projected > rec {
				rec = projected
				d.Projected = projected
			}
		}
	}
	// A burst is a high ratio on a load not measured before: once pods
	// added by a burst report a load no higher than the one already seen,
	// the metric is not under-reading and the proposal is enough.
	peak := 0.0
	for _, l := range span {
		peak = max(peak, l.Pods)
	}
	rising := load > peak*(1+spec.Tolerance.Up)
	if t.BurstThreshold > 0 && ratio >= t.BurstThreshold && rising {
		limit := scaleUpLimit(current, st, scaleUpRules(spec), now)
		if limit > rec {
			rec = limit
			d.Burst = true
		}
	}
	return rec
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// steadyRise reports whether the estimates rose at every step and up to
// load, over at least two intervals: a ramp, which can be projected. A step
// seen through a metric window also rises, but after a flat stretch or in
// one jump, and projecting it would overshoot.
func steadyRise(span []TimedLoad, load float64) bool {
	prev := math.Inf(-1)
	for _, l := range span {
		if !(l.Pods > prev) {
			return false
		}
		prev = l.Pods
	}
	return len(span) >= 2 && load > prev
}

// tunedDrop lets a sharp drop through before the scale-down window has
// passed: when the scale-down window holds the app at its current count but
// every recommendation of the drop window is DropThreshold or more below
// it.
func tunedDrop(spec *Spec, st *State, d *Decision, current, rec int32, now time.Time, up, down time.Duration) {
	t := spec.Tuning
	if t.DropWindow <= 0 || d.Stabilized < current {
		return
	}
	// A newly seen app, or one whose data just came back, waits one whole
	// scale-down window as with HPA: a rate over a window reaching back
	// before the gap reads low.
	if now.Sub(st.SeededAt) < down {
		return
	}
	recs := st.Recommendations
	// The drop must have been seen for the whole window: a window with no
	// earlier recommendation (after a hold, or with a tick longer than the
	// window) is a single reading, not a drop that lasted.
	cutoff := now.Add(-t.DropWindow)
	seen := false
	for _, r := range recs {
		if r.At.After(cutoff) && r.At.Before(now) {
			seen = true
			break
		}
	}
	if !seen {
		return
	}
	quick := behaviorStabilize(recs, current, rec, now, up, t.DropWindow)
	if quick < current && float64(quick) <= float64(current)*(1-t.DropThreshold) {
		d.Stabilized, d.Window, d.Drop = quick, t.DropWindow, true
	}
}
