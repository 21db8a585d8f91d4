package convert

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/annotations"
)

// ScaffoldOptions are the autoscaler flags of `spin kube scaffold` (spin
// plugin kube), with the same names and defaults.
type ScaffoldOptions struct {
	// Autoscaler is hpa or keda (--autoscaler).
	Autoscaler string
	// Name is the app's name; scaffold takes it from --from's image name.
	Name string
	// Replicas is the minimum replica count (--replicas, default 2).
	Replicas int32
	// MaxReplicas is the maximum (--max-replicas, default 3).
	MaxReplicas int32
	// TargetCPUUtilization and TargetMemoryUtilization are percents of the
	// requests (--autoscaler-target-cpu-utilization,
	// --autoscaler-target-memory-utilization, default 60 each).
	TargetCPUUtilization    int32
	TargetMemoryUtilization int32
	// The app's resources (--cpu-limit, --memory-limit, --cpu-request,
	// --memory-request).
	CPULimit, MemoryLimit, CPURequest, MemoryRequest string
}

// DefaultScaffoldOptions are scaffold's defaults.
func DefaultScaffoldOptions() ScaffoldOptions {
	return ScaffoldOptions{Replicas: 2, MaxReplicas: 3, TargetCPUUtilization: 60, TargetMemoryUtilization: 60}
}

// NameFromImage derives the app's name from an image reference as scaffold
// does: the last path element, without tag or digest.
func NameFromImage(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	parts := strings.Split(ref, "/")
	name := parts[len(parts)-1]
	name, _, _ = strings.Cut(name, ":")
	return name
}

// Scaffold converts scaffold's autoscaler flags: the HPA (or ScaledObject)
// scaffold would generate, converted, plus the resources for the SpinApp.
// It refuses the values scaffold refuses, except missing cpu and memory
// limits: without them (or requests) it warns that the utilization targets
// have nothing to measure against.
func Scaffold(o ScaffoldOptions) (Result, error) {
	var errs []string
	if o.Autoscaler != "hpa" && o.Autoscaler != "keda" {
		errs = append(errs, fmt.Sprintf("--autoscaler: %q: allowed hpa, keda", o.Autoscaler))
	}
	if o.Replicas < 1 {
		errs = append(errs, fmt.Sprintf("--replicas: %d: must be at least 1", o.Replicas))
	}
	if o.MaxReplicas < o.Replicas {
		errs = append(errs, fmt.Sprintf("--max-replicas: %d: must be at least --replicas (%d)", o.MaxReplicas, o.Replicas))
	}
	for _, u := range []struct {
		flag string
		v    int32
	}{{"--autoscaler-target-cpu-utilization", o.TargetCPUUtilization}, {"--autoscaler-target-memory-utilization", o.TargetMemoryUtilization}} {
		if u.v < 1 || u.v > 100 {
			errs = append(errs, fmt.Sprintf("%s: %d: must be between 1 and 100", u.flag, u.v))
		}
	}
	res := map[string]map[string]string{}
	for _, q := range []struct{ flag, kind, name, v string }{
		{"--cpu-limit", "limits", "cpu", o.CPULimit}, {"--memory-limit", "limits", "memory", o.MemoryLimit},
		{"--cpu-request", "requests", "cpu", o.CPURequest}, {"--memory-request", "requests", "memory", o.MemoryRequest},
	} {
		if q.v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.v); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %q: not a quantity", q.flag, q.v))
			continue
		}
		if res[q.kind] == nil {
			res[q.kind] = map[string]string{}
		}
		res[q.kind][q.name] = q.v
	}
	if len(errs) > 0 {
		return Result{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}

	var r Result
	if o.Autoscaler == "hpa" {
		r = FromHPA(&autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: o.Name + "-autoscaler"},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: o.Name},
				MinReplicas:    ptr.To(o.Replicas), MaxReplicas: o.MaxReplicas,
				Metrics: []autoscalingv2.MetricSpec{
					utilization(corev1.ResourceCPU, o.TargetCPUUtilization),
					utilization(corev1.ResourceMemory, o.TargetMemoryUtilization),
				},
			},
		})
	} else {
		r = FromScaledObject(&ScaledObject{
			Metadata: metav1.ObjectMeta{Name: o.Name + "-autoscaler"},
			Spec: ScaledObjectSpec{
				ScaleTargetRef:  &ScaleTarget{APIVersion: "apps/v1", Kind: "Deployment", Name: o.Name},
				MinReplicaCount: ptr.To(o.Replicas), MaxReplicaCount: ptr.To(o.MaxReplicas),
				Triggers: []Trigger{
					{Type: "cpu", MetricType: "Utilization", Metadata: map[string]string{"value": fmt.Sprint(o.TargetCPUUtilization)}},
					{Type: "memory", MetricType: "Utilization", Metadata: map[string]string{"value": fmt.Sprint(o.TargetMemoryUtilization)}},
				},
			},
		})
	}
	r.Source = "spin kube scaffold --autoscaler " + o.Autoscaler
	r.Warnings = nil // scaffold's objects convert exactly
	if len(res) > 0 {
		r.SpinAppSpec = map[string]any{"resources": res}
	}
	for _, name := range []string{"cpu", "memory"} {
		switch {
		case res["requests"][name] != "":
		case res["limits"][name] != "":
			r.notef("no --%s-request: Kubernetes sets the %s request to the limit (%s), so the %s utilization target is a percent of the limit",
				name, name, res["limits"][name], name)
		default:
			r.warnf("no --%s-limit or --%s-request: %s needs a %s request on the app's containers (SpinApp spec.resources), or that metric fails",
				name, name, map[string]string{"cpu": annotations.KeyTargetCPUUtilization, "memory": annotations.KeyTargetMemoryUtilization}[name], name)
		}
	}
	return validated(r), nil
}

func utilization(name corev1.ResourceName, percent int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ResourceMetricSourceType,
		Resource: &autoscalingv2.ResourceMetricSource{Name: name,
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(percent)}},
	}
}
