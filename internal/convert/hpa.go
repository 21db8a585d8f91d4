package convert

import (
	"fmt"
	"strconv"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/annotations"
)

// hpaDefaultCPUUtilization is what the API server sets on an HPA without
// metrics (autoscaling/v2 defaults, and v1's targetCPUUtilizationPercentage).
const hpaDefaultCPUUtilization = 80

// FromHPA converts an autoscaling/v2 HorizontalPodAutoscaler. The decisions
// are the same: Spinscale's hpa profile implements the HPA's rules, with the
// controller's defaults equal to kube-controller-manager's (tolerance 0.1,
// 5m downscale stabilization).
func FromHPA(hpa *autoscalingv2.HorizontalPodAutoscaler) Result {
	ref := hpa.Spec.ScaleTargetRef
	r := newResult("HorizontalPodAutoscaler "+qualified(hpa.Namespace, hpa.Name), hpa.Namespace, ref.Name)
	checkTarget(&r, "spec.scaleTargetRef", ref.Kind, ref.APIVersion, ref.Name)
	bounds(&r, hpa.Spec.MinReplicas, "spec.minReplicas", 1, &hpa.Spec.MaxReplicas, "spec.maxReplicas", 0)

	if len(hpa.Spec.Metrics) == 0 {
		r.Annotations[annotations.KeyTargetCPUUtilization] = strconv.Itoa(hpaDefaultCPUUtilization)
		r.notef("spec.metrics is empty: the HPA default, cpu utilization %d%%, is made explicit", hpaDefaultCPUUtilization)
	}
	var list apiMetrics
	for i, m := range hpa.Spec.Metrics {
		path := fmt.Sprintf("spec.metrics[%d]", i)
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType:
			if m.Resource == nil {
				r.warnf("%s: type Resource without resource, skipped", path)
				continue
			}
			resourceTarget(&r, path+".resource", m.Resource.Name, m.Resource.Target)
		case autoscalingv2.ContainerResourceMetricSourceType:
			if m.ContainerResource == nil {
				r.warnf("%s: type ContainerResource without containerResource, skipped", path)
				continue
			}
			r.warnf("%s: ContainerResource (container %q) is measured on the whole pod, summed over its containers: the same for SpinKube's one-container pods, different for pods with sidecars or pod-level requests",
				path, m.ContainerResource.Container)
			resourceTarget(&r, path+".containerResource", m.ContainerResource.Name, m.ContainerResource.Target)
		case autoscalingv2.PodsMetricSourceType:
			if m.Pods == nil {
				r.warnf("%s: type Pods without pods, skipped", path)
				continue
			}
			if m.Pods.Target.Type != autoscalingv2.AverageValueMetricType {
				r.warnf("%s.pods.target.type %q: a Pods metric's target is AverageValue, not converted", path, m.Pods.Target.Type)
				continue
			}
			list.add(&r, path+".pods", "pods", m.Pods.Metric, nil, m.Pods.Target)
		case autoscalingv2.ObjectMetricSourceType:
			if m.Object == nil {
				r.warnf("%s: type Object without object, skipped", path)
				continue
			}
			list.add(&r, path+".object", "object", m.Object.Metric, &m.Object.DescribedObject, m.Object.Target)
		case autoscalingv2.ExternalMetricSourceType:
			if m.External == nil {
				r.warnf("%s: type External without external, skipped", path)
				continue
			}
			list.add(&r, path+".external", "external", m.External.Metric, nil, m.External.Target)
		default:
			r.warnf("%s: metric type %q is unknown, not converted", path, m.Type)
		}
	}
	list.write(&r)
	if hpa.Spec.Behavior != nil {
		behavior(&r, "spec.behavior", hpa.Spec.Behavior)
	}
	settleZero(&r)
	return r
}

// apiEntry is an entry of the metrics annotation for a Pods, Object or
// External metric, in the annotation's field order.
type apiEntry struct {
	Name               string                                     `json:"name"`
	Type               string                                     `json:"type"`
	Metric             string                                     `json:"metric"`
	Selector           string                                     `json:"selector,omitempty"`
	DescribedObject    *autoscalingv2.CrossVersionObjectReference `json:"describedObject,omitempty"`
	TargetValue        string                                     `json:"targetValue,omitempty"`
	TargetAverageValue string                                     `json:"targetAverageValue,omitempty"`
}

// apiMetrics are an HPA's Pods, Object and External metrics, converted one
// to one into entries of the metrics annotation.
type apiMetrics struct {
	entries []apiEntry
	used    map[string]bool
}

// add converts one metric: its name and selector as the HPA has them (the
// selector as the label selector string HPA sends), the described object,
// and the target.
func (l *apiMetrics) add(r *Result, path, kind string, id autoscalingv2.MetricIdentifier, object *autoscalingv2.CrossVersionObjectReference, t autoscalingv2.MetricTarget) {
	e := apiEntry{Type: kind, Metric: id.Name, DescribedObject: object}
	if id.Name == "" {
		r.warnf("%s.metric.name is empty, not converted", path)
		return
	}
	if id.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(id.Selector)
		if err != nil {
			r.warnf("%s.metric.selector: %v, not converted", path, err)
			return
		}
		e.Selector = sel.String()
	}
	switch {
	case t.Type == autoscalingv2.ValueMetricType && t.Value != nil:
		e.TargetValue = t.Value.String()
	case t.Type == autoscalingv2.AverageValueMetricType && t.AverageValue != nil:
		e.TargetAverageValue = t.AverageValue.String()
	default:
		r.warnf("%s.target: type %q without its value: a %s metric's target is Value or AverageValue, not converted", path, t.Type, kind)
		return
	}
	if l.used == nil {
		l.used = map[string]bool{"cpu": true, "memory": true, "default": true}
	}
	e.Name = entryName(id.Name, len(l.entries)+1, l.used)
	l.entries = append(l.entries, e)
}

// entryName makes a metric's name a unique DNS-1123 label: lower case,
// other characters as '-', or metric-<n> when nothing is left.
func entryName(metric string, n int, used map[string]bool) string {
	b := []byte(strings.ToLower(metric))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	name := strings.Trim(string(b), "-")
	if len(name) > 50 {
		name = strings.Trim(name[:50], "-")
	}
	if name == "" || len(validation.IsDNS1123Label(name)) > 0 {
		name = fmt.Sprintf("metric-%d", n)
	}
	base := name
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	used[name] = true
	return name
}

// write sets the metrics annotation.
func (l *apiMetrics) write(r *Result) {
	if len(l.entries) == 0 {
		return
	}
	data, err := yaml.Marshal(l.entries)
	if err != nil {
		r.warnf("spec.metrics: %v, not converted", err)
		return
	}
	r.Annotations[annotations.KeyMetrics] = strings.TrimSpace(string(data))
}

// FromHPAv1 converts an autoscaling/v1 HorizontalPodAutoscaler: bounds and
// a cpu utilization target.
func FromHPAv1(hpa *autoscalingv1.HorizontalPodAutoscaler) Result {
	ref := hpa.Spec.ScaleTargetRef
	r := newResult("HorizontalPodAutoscaler "+qualified(hpa.Namespace, hpa.Name), hpa.Namespace, ref.Name)
	checkTarget(&r, "spec.scaleTargetRef", ref.Kind, ref.APIVersion, ref.Name)
	bounds(&r, hpa.Spec.MinReplicas, "spec.minReplicas", 1, &hpa.Spec.MaxReplicas, "spec.maxReplicas", 0)
	target := int32(hpaDefaultCPUUtilization)
	if hpa.Spec.TargetCPUUtilizationPercentage != nil {
		target = *hpa.Spec.TargetCPUUtilizationPercentage
	} else {
		r.notef("spec.targetCPUUtilizationPercentage is unset: the HPA default, %d%%, is made explicit", hpaDefaultCPUUtilization)
	}
	r.Annotations[annotations.KeyTargetCPUUtilization] = strconv.Itoa(int(target))
	settleZero(&r)
	return r
}

// checkTarget warns when the scaled object is not a Deployment: Spinscale
// scales Deployments (SpinKube creates one per SpinApp).
func checkTarget(r *Result, path, kind, apiVersion, name string) {
	if name == "" {
		r.warnf("%s.name is empty: the patches below need the Deployment's name", path)
	}
	if kind != "" && kind != "Deployment" {
		r.warnf("%s: kind %s: Spinscale scales Deployments only (SpinKube creates one per SpinApp); these annotations do nothing on a %s", path, kind, kind)
	}
	if apiVersion != "" && apiVersion != "apps/v1" && kind == "Deployment" {
		r.warnf("%s.apiVersion %s: Spinscale scales apps/v1 Deployments", path, apiVersion)
	}
}

// bounds sets min-replicas and max-replicas. A min below 1 (scale to zero)
// has no equivalent: Spinscale keeps at least one replica.
func bounds(r *Result, min *int32, minPath string, minDefault int32, max *int32, maxPath string, maxDefault int32) {
	lo := minDefault
	if min != nil {
		lo = *min
	}
	if lo < 0 {
		lo = 0
	}
	r.Annotations[annotations.KeyMinReplicas] = strconv.Itoa(int(lo))
	if lo < 1 {
		r.zeroFrom = minPath
		r.zeroExplicit = min != nil
	}
	hi := maxDefault
	if max != nil {
		hi = *max
	} else {
		r.notef("%s is unset: its default, %d, is made explicit (Spinscale requires max-replicas)", maxPath, maxDefault)
	}
	r.Annotations[annotations.KeyMaxReplicas] = strconv.Itoa(int(hi))
}

// settleZero keeps a minimum of 0 (scale to zero) when the converted app has
// a Prometheus metric to wake it, as HPA 1.37 needs an Object or External
// metric; otherwise it raises the minimum to 1 and says why. It reports
// whether the zero was kept.
func settleZero(r *Result) bool {
	if r.zeroFrom == "" {
		return false
	}
	_, single := r.Annotations[annotations.KeyPrometheusQuery]
	_, list := r.Annotations[annotations.KeyMetrics]
	if single || list {
		return true
	}
	r.Annotations[annotations.KeyMinReplicas] = "1"
	if r.zeroExplicit {
		r.warnf("%s: 0 (scale to zero) needs a Prometheus metric in Spinscale, and none was converted: min-replicas 1", r.zeroFrom)
	} else {
		r.warnf("%s is unset, so the source scales to zero: that needs a Prometheus metric in Spinscale, and none was converted: min-replicas 1", r.zeroFrom)
	}
	return false
}

// resourceTarget converts a cpu or memory target.
func resourceTarget(r *Result, path string, name corev1.ResourceName, t autoscalingv2.MetricTarget) {
	var utilKey, avgKey string
	switch name {
	case corev1.ResourceCPU:
		utilKey, avgKey = annotations.KeyTargetCPUUtilization, annotations.KeyTargetCPUAverageValue
	case corev1.ResourceMemory:
		utilKey, avgKey = annotations.KeyTargetMemoryUtilization, annotations.KeyTargetMemoryAverageValue
	default:
		r.warnf("%s.name: resource %q: Spinscale scales on cpu and memory only, not converted", path, name)
		return
	}
	for _, k := range []string{utilKey, avgKey} {
		if v, ok := r.Annotations[k]; ok {
			r.warnf("%s: a second %s target: Spinscale takes one target per resource, %s: %q kept, this one not converted", path, name, k, v)
			return
		}
	}
	switch t.Type {
	case autoscalingv2.UtilizationMetricType:
		if t.AverageUtilization == nil {
			r.warnf("%s.target.averageUtilization is unset, not converted", path)
			return
		}
		r.Annotations[utilKey] = strconv.Itoa(int(*t.AverageUtilization))
	case autoscalingv2.AverageValueMetricType:
		if t.AverageValue == nil {
			r.warnf("%s.target.averageValue is unset, not converted", path)
			return
		}
		r.Annotations[avgKey] = t.AverageValue.String()
	default:
		r.warnf("%s.target.type %q: a resource target is Utilization or AverageValue, not converted", path, t.Type)
	}
}

// behavior copies an autoscaling/v2 behavior as the behavior annotation.
func behavior(r *Result, path string, b *autoscalingv2.HorizontalPodAutoscalerBehavior) {
	data, err := yaml.Marshal(b)
	if err != nil {
		r.warnf("%s: %v, not converted", path, err)
		return
	}
	r.Annotations[annotations.KeyBehavior] = strings.TrimSpace(string(data))
}
