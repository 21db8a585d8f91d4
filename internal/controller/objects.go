package controller

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/recommender"
)

// The informer transforms keep only what the controller reads, so that
// caching every Deployment and Pod of a large cluster stays cheap.

// trimDeployment keeps metadata, replicas, selector and status replicas; the
// annotations of Deployments that do not opt in are dropped too.
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	out := &appsv1.Deployment{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: trimMeta(d.ObjectMeta),
		Spec: appsv1.DeploymentSpec{
			Replicas: d.Spec.Replicas,
			Selector: d.Spec.Selector,
		},
		Status: appsv1.DeploymentStatus{Replicas: d.Status.Replicas, ReadyReplicas: d.Status.ReadyReplicas},
	}
	if !annotations.Enabled(d.Annotations) {
		out.Annotations = map[string]string{annotations.Prefix + "enabled": d.Annotations[annotations.Prefix+"enabled"]}
	} else {
		out.Annotations = map[string]string{}
		for k, v := range d.Annotations {
			if strings.HasPrefix(k, annotations.Prefix) {
				out.Annotations[k] = v
			}
		}
	}
	return out, nil
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, Labels: m.Labels, Annotations: m.Annotations,
		OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp,
	}
}

// trimPod keeps the fields HPA's rules read: phase, readiness, start time,
// deletion, each container's requests and, for pods that set pod-level
// requests, those, the overhead and every init container's requests, which
// HPA then reads too (recommender.PodRequests).
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, DeletionTimestamp: p.DeletionTimestamp,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase, StartTime: p.Status.StartTime},
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	podLevel := recommender.PodLevelRequestsSet(&p.Spec)
	if podLevel {
		out.Spec.Resources = &corev1.ResourceRequirements{Requests: p.Spec.Resources.Requests}
		out.Spec.Overhead = p.Spec.Overhead
	}
	keep := func(cs []corev1.Container, sidecarsOnly bool) []corev1.Container {
		var kept []corev1.Container
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			kept = append(kept, corev1.Container{Name: c.Name, RestartPolicy: c.RestartPolicy,
				Resources: corev1.ResourceRequirements{Requests: c.Resources.Requests}})
		}
		return kept
	}
	out.Spec.Containers = keep(p.Spec.Containers, false)
	out.Spec.InitContainers = keep(p.Spec.InitContainers, !podLevel)
	return out, nil
}

// trimHPA keeps only the scale target, for conflict checks.
func trimHPA(obj any) (any, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok {
		return obj, nil
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   h.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: h.Name, Namespace: h.Namespace, ResourceVersion: h.ResourceVersion},
		Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: h.Spec.ScaleTargetRef},
	}, nil
}

var _ cache.TransformFunc = trimPod

// enginePod converts a pod into the engine's view, with its requests read
// as HPA reads them (recommender.PodRequests).
func enginePod(p *corev1.Pod) recommender.Pod {
	out := recommender.Pod{Name: p.Name, Phase: p.Status.Phase, Deleting: p.DeletionTimestamp != nil}
	if p.Status.StartTime != nil {
		out.StartTime = p.Status.StartTime.Time
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.HasReadyCondition = true
			out.Ready = c.Status == corev1.ConditionTrue
			out.ReadyTransition = c.LastTransitionTime.Time
		}
	}
	out.CPU, out.Memory = recommender.PodRequests(&p.Spec)
	return out
}

// labelIndex indexes pods by "namespace/key=value" for each of their labels,
// so that an app's pods are found without scanning its namespace.
const labelIndex = "labels"

func podLabelKeys(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(p.Labels))
	for k, v := range p.Labels {
		keys = append(keys, labelKey(p.Namespace, k, v))
	}
	return keys, nil
}

func labelKey(namespace, k, v string) string { return fmt.Sprintf("%s/%s=%s", namespace, k, v) }
