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

// cachedPod is all the pod informer keeps of a pod: the engine's view of it
// (phase, readiness, start time, deletion, and its requests read as HPA reads
// them, recommender.PodRequests), computed once when the pod changes rather
// than on every tick, and what the cache keys and indexes it by. A
// corev1.Pod, even trimmed, is a 1.3 KiB struct; this is about 200 bytes
// plus the labels.
type cachedPod struct {
	namespace       string
	resourceVersion string
	labels          map[string]string
	pod             recommender.Pod
}

// GetObjectMeta lets the informer's store key, index and version the pod
// (meta.Accessor). It builds a small ObjectMeta on each call: a few per
// watch event and per pod on a relist, never per tick.
//
// A cachedPod is not a runtime.Object. client-go's debugging checks that
// compare cached objects (KUBE_WATCHLIST_INCONSISTENCY_DETECTOR,
// KUBE_CACHE_MUTATION_DETECTOR) expect runtime.Objects: the first would
// panic on this cache and the second skips it; neither is on in a build or
// a test of this project.
func (p *cachedPod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: p.pod.Name, Namespace: p.namespace, ResourceVersion: p.resourceVersion, Labels: p.labels}
}

var _ metav1.ObjectMetaAccessor = (*cachedPod)(nil)

// trimPod is the pod informer's transform: a *corev1.Pod becomes a
// *cachedPod; anything else (a pod already transformed, a tombstone) passes
// through, as client-go asks of transforms.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &cachedPod{namespace: p.Namespace, resourceVersion: p.ResourceVersion, labels: p.Labels, pod: enginePod(p)}, nil
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
	p, ok := obj.(*cachedPod)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(p.labels))
	for k, v := range p.labels {
		keys = append(keys, labelKey(p.namespace, k, v))
	}
	return keys, nil
}

func labelKey(namespace, k, v string) string { return fmt.Sprintf("%s/%s=%s", namespace, k, v) }
