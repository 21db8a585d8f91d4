package recommender

import (
	"fmt"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// The autoscaling/v2 defaults for a behavior's unset fields
// (pkg/apis/autoscaling/v2/defaults.go): scale up by max(4 pods, 100%) per
// 15 s with no window, scale down by 100% per 15 s after the controller's
// scale-down window.
const (
	defaultScaleUpPods      int32 = 4
	defaultScaleUpPercent   int32 = 100
	defaultScaleDownPercent int32 = 100
	defaultPolicyPeriod     int32 = 15

	// MaxStabilizationWindowSeconds and MaxPeriodSeconds are the API
	// server's limits for behavior fields.
	MaxStabilizationWindowSeconds int32 = 3600
	MaxPeriodSeconds              int32 = 1800
)

var (
	defaultScaleUpPolicies = []autoscalingv2.HPAScalingPolicy{
		{Type: autoscalingv2.PodsScalingPolicy, Value: defaultScaleUpPods, PeriodSeconds: defaultPolicyPeriod},
		{Type: autoscalingv2.PercentScalingPolicy, Value: defaultScaleUpPercent, PeriodSeconds: defaultPolicyPeriod},
	}
	defaultScaleDownPolicies = []autoscalingv2.HPAScalingPolicy{
		{Type: autoscalingv2.PercentScalingPolicy, Value: defaultScaleDownPercent, PeriodSeconds: defaultPolicyPeriod},
	}
)

// rules is one direction of a behavior with every default resolved.
type rules struct {
	window   time.Duration
	selectP  autoscalingv2.ScalingPolicySelect
	policies []autoscalingv2.HPAScalingPolicy
}

func resolveRules(r *autoscalingv2.HPAScalingRules, window time.Duration, policies []autoscalingv2.HPAScalingPolicy) rules {
	out := rules{window: window, selectP: autoscalingv2.MaxChangePolicySelect, policies: policies}
	if r == nil {
		return out
	}
	if r.StabilizationWindowSeconds != nil {
		out.window = time.Duration(*r.StabilizationWindowSeconds) * time.Second
	}
	out.selectP = ptr.Deref(r.SelectPolicy, out.selectP)
	if r.Policies != nil {
		out.policies = r.Policies
	}
	return out
}

func scaleUpRules(spec *Spec) rules {
	var r *autoscalingv2.HPAScalingRules
	if spec.Behavior != nil {
		r = spec.Behavior.ScaleUp
	}
	return resolveRules(r, 0, defaultScaleUpPolicies)
}

// usesPolicies reports whether decisions go through rate policies and
// per-direction windows: HPA's behavior path, and always the spinscale
// profile.
func (spec *Spec) usesPolicies() bool {
	return spec.Behavior != nil || spec.Profile == ProfileSpinscale
}

func scaleDownRules(spec *Spec) rules {
	var r *autoscalingv2.HPAScalingRules
	if spec.Behavior != nil {
		r = spec.Behavior.ScaleDown
	}
	if spec.Profile == ProfileSpinscale {
		return resolveRules(r, spec.DownscaleStabilization, spinscaleDownPolicies)
	}
	return resolveRules(r, spec.DownscaleStabilization, defaultScaleDownPolicies)
}

func longestPeriod(policies []autoscalingv2.HPAScalingPolicy) int32 {
	var longest int32
	for _, p := range policies {
		longest = max(longest, p.PeriodSeconds)
	}
	return longest
}

// ValidateBehavior applies the API server's validation of a behavior after
// defaulting, returning every problem; field paths are relative to the
// behavior ("scaleUp.policies[0].value") and each detail says what is
// allowed.
func ValidateBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior) field.ErrorList {
	if b == nil {
		return nil
	}
	errs := validateRules(b.ScaleUp, field.NewPath("scaleUp"))
	return append(errs, validateRules(b.ScaleDown, field.NewPath("scaleDown"))...)
}

func validateRules(r *autoscalingv2.HPAScalingRules, path *field.Path) field.ErrorList {
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if w := r.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > MaxStabilizationWindowSeconds) {
		errs = append(errs, field.Invalid(path.Child("stabilizationWindowSeconds"), *w,
			fmt.Sprintf("out of range: allowed 0 to %d", MaxStabilizationWindowSeconds)))
	}
	if s := r.SelectPolicy; s != nil {
		switch *s {
		case autoscalingv2.MaxChangePolicySelect, autoscalingv2.MinChangePolicySelect, autoscalingv2.DisabledPolicySelect:
		default:
			errs = append(errs, field.Invalid(path.Child("selectPolicy"), string(*s), "not supported: allowed Max, Min, Disabled"))
		}
	}
	if r.Policies != nil && len(r.Policies) == 0 {
		errs = append(errs, field.Required(path.Child("policies"), "must specify at least one policy"))
	}
	for i, p := range r.Policies {
		at := path.Child("policies").Index(i)
		if p.Type != autoscalingv2.PodsScalingPolicy && p.Type != autoscalingv2.PercentScalingPolicy {
			errs = append(errs, field.Invalid(at.Child("type"), string(p.Type), "not supported: allowed Pods, Percent"))
		}
		if p.Value <= 0 {
			errs = append(errs, field.Invalid(at.Child("value"), p.Value, "must be greater than zero"))
		}
		if p.PeriodSeconds <= 0 || p.PeriodSeconds > MaxPeriodSeconds {
			errs = append(errs, field.Invalid(at.Child("periodSeconds"), p.PeriodSeconds,
				fmt.Sprintf("out of range: allowed 1 to %d", MaxPeriodSeconds)))
		}
	}
	if r.Tolerance != nil && r.Tolerance.Sign() < 0 {
		errs = append(errs, field.Invalid(path.Child("tolerance"), r.Tolerance.String(), "must be non-negative"))
	}
	return errs
}
