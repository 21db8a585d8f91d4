package recommender

import (
	"testing"

	"github.com/stretchr/testify/assert"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func TestValidateBehavior(t *testing.T) {
	tests := []struct {
		name     string
		behavior *autoscalingv2.HorizontalPodAutoscalerBehavior
		want     field.ErrorList
	}{
		{name: "none", behavior: nil},
		{name: "empty", behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}},
		{name: "every field at its limit", behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr.To(MaxStabilizationWindowSeconds),
				SelectPolicy:               ptr.To(autoscalingv2.DisabledPolicySelect),
				Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 1, PeriodSeconds: MaxPeriodSeconds}},
				Tolerance:                  ptr.To(resource.MustParse("0")),
			},
		}},
		{name: "every problem of both directions, in order", behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr.To[int32](-1),
				SelectPolicy:               ptr.To(autoscalingv2.ScalingPolicySelect("Fastest")),
				Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: "Pod", Value: 0, PeriodSeconds: 1801}},
				Tolerance:                  ptr.To(resource.MustParse("-0.1")),
			},
			ScaleDown: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{}},
		}, want: field.ErrorList{
			field.Invalid(field.NewPath("scaleUp", "stabilizationWindowSeconds"), int32(-1), "out of range: allowed 0 to 3600"),
			field.Invalid(field.NewPath("scaleUp", "selectPolicy"), "Fastest", "not supported: allowed Max, Min, Disabled"),
			field.Invalid(field.NewPath("scaleUp", "policies").Index(0).Child("type"), "Pod", "not supported: allowed Pods, Percent"),
			field.Invalid(field.NewPath("scaleUp", "policies").Index(0).Child("value"), int32(0), "must be greater than zero"),
			field.Invalid(field.NewPath("scaleUp", "policies").Index(0).Child("periodSeconds"), int32(1801), "out of range: allowed 1 to 1800"),
			field.Invalid(field.NewPath("scaleUp", "tolerance"), "-100m", "must be non-negative"),
			field.Required(field.NewPath("scaleDown", "policies"), "must specify at least one policy"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ValidateBehavior(tt.behavior))
		})
	}
}
