package recommender

import (
	"fmt"
	"time"
)

// Scale to zero follows HPA 1.37 (HPAScaleToZero, beta and on by default):
// pkg/controller/podautoscaler/horizontal.go, reconcileAutoscaler and
// shouldComputeMetricsForZeroReplicas, and replica_calculator.go,
// getUsageRatioReplicaCount.
//
//   - MinReplicas 0 is allowed only with a metric from outside the pods (HPA:
//     an Object or External metric; Spinscale: those, a Prometheus metric or
//     an HTTP metric), which the annotations check.
//   - A rescale from a positive count to 0 with MinReplicas 0 records that
//     Spinscale scaled the app to zero (HPA's ScaledToZero condition); any
//     other rescale clears the record.
//   - At zero, the metrics are computed only when the record is set; a zero
//     without it (set by hand) disables scaling, as before 1.37.
//   - At zero, a Value target proposes ceil(value/target), with no tolerance
//     and no ready pods; an AverageValue target, ceil(value/target) (its
//     ratio against zero status replicas is infinite).
//   - Woken with MinReplicas above 0 (raised while at zero), the count is at
//     least MinReplicas.
//
// KEDA's activation threshold and cooldown come on top (Spec.ActivationMilli,
// Spec.ScaleToZeroAfter).

// ZeroRecord is a decision's change to the record that Spinscale scaled the
// app to zero.
type ZeroRecord string

const (
	// ZeroKeep leaves the record as it is.
	ZeroKeep ZeroRecord = ""
	// ZeroSet records that Spinscale scales the app to zero.
	ZeroSet ZeroRecord = "set"
	// ZeroClear removes the record: the app is woken, or rescaled while the
	// record was set.
	ZeroClear ZeroRecord = "clear"
)

// usesSource reports whether any metric's source satisfies is.
func (s *Spec) usesSource(is func(SourceType) bool) bool {
	for i := range s.Metrics {
		if is(s.Metrics[i].Source) {
			return true
		}
	}
	return false
}

// UsesThresholded reports whether any metric is held to
// activation-threshold (Prometheus, Object, External).
func (s *Spec) UsesThresholded() bool { return s.usesSource(SourceType.Thresholded) }

// WakesFromZero reports whether any metric comes from outside the pods, one
// that can wake an app at zero (HPA requires an Object or External metric;
// Spinscale also takes Prometheus and HTTP metrics).
func (s *Spec) WakesFromZero() bool { return s.usesSource(SourceType.Wakes) }

// keda reports whether KEDA's activation options are in use.
func (s *Spec) keda() bool {
	return s.MinReplicas == 0 && (s.ActivationMilli != nil || s.ScaleToZeroAfter > 0)
}

// handZero is the hold of an app at zero that Spinscale did not scale there.
const handZero = "spec.replicas is 0 and Spinscale did not scale the app to zero; scaling is paused until the app is scaled up by hand"

// zeroRecordOf is HPA's rule for its ScaledToZero condition, set on every
// rescale: true when the rescale goes from a positive count to zero.
func zeroRecordOf(spec *Spec, in *Input, d *Decision) ZeroRecord {
	if d.DesiredReplicas == d.CurrentReplicas {
		return ZeroKeep
	}
	// HPA sets it when min-replicas is 0 and a metric from outside the
	// pods exists, the only way it reaches zero; Spinscale also reaches
	// zero through paused-replicas "0", a zero of its own as well.
	if d.CurrentReplicas > 0 && d.DesiredReplicas == 0 {
		return ZeroSet
	}
	if in.ScaledToZero {
		return ZeroClear
	}
	return ZeroKeep
}

// active reports whether any working Prometheus metric is above the
// activation threshold (strictly, as KEDA) or any working HTTP metric is not
// idle, and whether any of them failed.
func active(spec *Spec, d *Decision) (isActive, failed bool) {
	threshold := int64(0)
	if spec.ActivationMilli != nil {
		threshold = *spec.ActivationMilli
	}
	for i := range d.Metrics {
		m := &d.Metrics[i]
		if !m.Source.Wakes() {
			continue
		}
		if m.Err != nil {
			failed = true
			continue
		}
		if m.Source == SourceHTTP {
			if m.HTTP != nil && !m.HTTP.Idle {
				isActive = true
			}
			continue
		}
		if m.CurrentMilli > threshold {
			isActive = true
		}
	}
	return isActive, failed
}

// activate applies KEDA's activation rule to the count the HPA rules
// reached: the app runs (at least one pod) while a Prometheus metric is
// above the threshold, stays at zero while none is, and goes to zero once
// none has been for ScaleToZeroAfter. A failed metric is never idleness.
func activate(spec *Spec, st *State, d *Decision, now time.Time) {
	if !spec.keda() {
		return
	}
	activeText, idleText := "a Prometheus, object or external metric is above activation-threshold", "every Prometheus, object and external metric at or below activation-threshold"
	if spec.UsesHTTP() {
		activeText, idleText = "a metric is active (a Prometheus, object or external metric above activation-threshold, or HTTP requests)", "every metric idle (Prometheus, object and external metrics at or below activation-threshold, no HTTP request)"
		if !spec.UsesThresholded() {
			activeText, idleText = "HTTP requests arrived, are in flight or held", "no HTTP request"
		}
	}
	isActive, failed := active(spec, d)
	current := d.CurrentReplicas
	if isActive || failed {
		st.IdleSince = time.Time{}
		if d.DesiredReplicas == 0 && (isActive || current > 0) {
			*d = bound(*d, 1, StageActivation, activeText+": at least 1 pod")
		}
		return
	}
	if current == 0 {
		// Idleness is counted while the app runs, from its first idle
		// decision: a hand scale-up from zero starts a new count.
		st.IdleSince = time.Time{}
		*d = bound(*d, 0, StageActivation, idleText+": the app stays at zero")
		return
	}
	if st.IdleSince.IsZero() {
		st.IdleSince = now
	}
	if idle := now.Sub(st.IdleSince); idle >= spec.ScaleToZeroAfter {
		*d = bound(*d, 0, StageActivation, fmt.Sprintf("%s for %s (scale-to-zero-after %s): to zero", idleText, idle, spec.ScaleToZeroAfter))
		return
	}
	if d.DesiredReplicas == 0 {
		*d = bound(*d, 1, StageActivation, fmt.Sprintf("idle for %s, less than scale-to-zero-after %s: at least 1 pod", now.Sub(st.IdleSince), spec.ScaleToZeroAfter))
	}
}
