package annotations

import (
	"fmt"
	"math"
	"strconv"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/duration"
	"github.com/spinscale/spinscale/internal/recommender"
)

// This file resolves the behavior annotation, the stabilization shorthands
// and the tolerances into one autoscaling/v2 behavior.

// parseTolerance parses a tolerance annotation: a decimal from 0 to 1, or
// any decimal of 0 or more for tolerance-up. HPA bounds neither (KEP-4951:
// a non-negative quantity), but a scale-down tolerance of 1 already means
// never scaling down, and one above 1 would hide that as a typo; a scale-up
// tolerance above 1 is a real setting (2: scale up only above three times
// the target).
func (p *parser) parseTolerance(key string) (float64, bool) {
	v, _ := p.get(key)
	t, err := strconv.ParseFloat(v, 64)
	if key == KeyToleranceUp {
		if err != nil || !(t >= 0) || math.IsInf(t, 1) { // also rejects NaN
			p.fail(key, "must be a decimal of 0 or more (e.g. 0.1)")
			return 0, false
		}
		return t, true
	}
	if err != nil || !(t >= 0 && t <= 1) { // also rejects NaN
		p.fail(key, "must be a decimal from 0 to 1 (e.g. 0.1)")
		return 0, false
	}
	return t, true
}

// tolerance resolves the tolerance annotations over the default: tolerance
// sets both directions, tolerance-up and tolerance-down override one. It
// returns the key that set each direction, "" for the default.
func (p *parser) tolerance(def float64) (tol recommender.Tolerances, upKey, downKey string) {
	tol = recommender.Tolerances{Up: def, Down: def}
	if _, ok := p.ann[KeyTolerance]; ok {
		upKey, downKey = KeyTolerance, KeyTolerance
		if t, ok := p.parseTolerance(KeyTolerance); ok {
			tol.Up, tol.Down = t, t
		}
	}
	if _, ok := p.ann[KeyToleranceUp]; ok {
		upKey = KeyToleranceUp
		if t, ok := p.parseTolerance(KeyToleranceUp); ok {
			tol.Up = t
		}
	}
	if _, ok := p.ann[KeyToleranceDown]; ok {
		downKey = KeyToleranceDown
		if t, ok := p.parseTolerance(KeyToleranceDown); ok {
			tol.Down = t
		}
	}
	return tol, upKey, downKey
}

// direction is one side of a behavior and the annotations that touch it.
type direction struct {
	name         string // "scaleUp" or "scaleDown"
	windowKey    string
	toleranceKey string // the annotation that set this side's tolerance, if any
	tolerance    *float64
}

// rules returns the address of this side's rules in b.
func (d direction) rules(b *autoscalingv2.HorizontalPodAutoscalerBehavior) **autoscalingv2.HPAScalingRules {
	if d.name == "scaleUp" {
		return &b.ScaleUp
	}
	return &b.ScaleDown
}

// behavior resolves the behavior annotation, the stabilization shorthands
// and the tolerances. The tolerances never select the behavior path; the
// behavior annotation (even "{}") and the stabilization shorthands do.
func (p *parser) behavior(defTolerance float64) (*autoscalingv2.HorizontalPodAutoscalerBehavior, recommender.Tolerances) {
	tol, upKey, downKey := p.tolerance(defTolerance)

	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	_, hasBehavior := p.ann[KeyBehavior]
	valid := true
	if hasBehavior {
		b, valid = p.parseBehavior()
	}

	dirs := []direction{
		{name: "scaleUp", windowKey: KeyScaleUpStabilization, toleranceKey: upKey, tolerance: &tol.Up},
		{name: "scaleDown", windowKey: KeyScaleDownStabilization, toleranceKey: downKey, tolerance: &tol.Down},
	}
	for _, d := range dirs {
		// The behavior's own tolerance for this direction.
		if b != nil {
			if r := *d.rules(b); r != nil && r.Tolerance != nil {
				if d.toleranceKey != "" {
					p.fail(d.toleranceKey, "contradicts %s %s.tolerance (%s): set the %s tolerance in one place only",
						KeyBehavior, d.name, strconv.FormatFloat(r.Tolerance.AsApproximateFloat64(), 'g', -1, 64), d.name)
				} else {
					*d.tolerance = r.Tolerance.AsApproximateFloat64()
				}
			}
		}

		// The stabilization shorthand.
		if _, ok := p.ann[d.windowKey]; !ok {
			continue
		}
		secs, ok := p.window(d.windowKey)
		if !ok || !valid {
			continue // an invalid behavior has its own error
		}
		if b == nil {
			b = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		}
		rules := d.rules(b)
		if *rules == nil {
			*rules = &autoscalingv2.HPAScalingRules{}
		}
		if w := (*rules).StabilizationWindowSeconds; w != nil {
			p.fail(d.windowKey, "contradicts %s %s.stabilizationWindowSeconds (%d): set the window in one place only",
				KeyBehavior, d.name, *w)
			continue
		}
		(*rules).StabilizationWindowSeconds = ptr.To(secs)
	}
	return b, tol
}

// parseBehavior decodes and validates the behavior annotation.
func (p *parser) parseBehavior() (*autoscalingv2.HorizontalPodAutoscalerBehavior, bool) {
	const allowed = "must be an autoscaling/v2 HorizontalPodAutoscalerBehavior in YAML, such as {scaleDown: {stabilizationWindowSeconds: 60}}"
	v, _ := p.get(KeyBehavior)
	if len(v) > maxStructuredLen {
		p.fail(KeyBehavior, "%s, at most %d bytes", allowed, maxStructuredLen)
		return nil, false
	}
	if extremeNumber.MatchString(v) {
		p.fail(KeyBehavior, "%s: numbers must have at most 30 digits and an exponent below 100", allowed)
		return nil, false
	}
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if err := yaml.UnmarshalStrict([]byte(v), &b); err != nil {
		p.fail(KeyBehavior, "%s: %s", allowed, cleanDecodeError(err))
		return nil, false
	}
	if b == nil {
		p.fail(KeyBehavior, "%s (use {} for the defaults)", allowed)
		return nil, false
	}
	errs := recommender.ValidateBehavior(b)
	for _, e := range errs {
		value := fmt.Sprint(e.BadValue)
		if e.Type == field.ErrorTypeRequired {
			value = "" // there is no value to quote
		}
		p.failAt(KeyBehavior, e.Field, value, "%s", e.Detail)
	}
	ok := len(errs) == 0
	// A scale-down tolerance above 1 is refused as for tolerance-down (the
	// API server accepts it); a scale-up one is not bounded.
	if r := b.ScaleDown; r != nil && r.Tolerance != nil {
		if t := r.Tolerance.AsApproximateFloat64(); t > 1 {
			p.failAt(KeyBehavior, "scaleDown.tolerance", strconv.FormatFloat(t, 'g', -1, 64), "out of range: allowed 0 to 1")
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	return b, true
}

// window parses a stabilization shorthand into whole seconds.
func (p *parser) window(key string) (int32, bool) {
	v, _ := p.get(key)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxStabilization || d%time.Second != 0 {
		p.fail(key, "must be a Go duration in whole seconds from 0s to %s (e.g. 0s, 90s, 5m)", duration.Format(maxStabilization))
		return 0, false
	}
	return int32(d / time.Second), true
}
