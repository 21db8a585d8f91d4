package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spinscale/spinscale/internal/recommender"
)

// TestTrimPodKeepsWhatRequestsAreReadFrom: the informer's trimmed pod gives
// the engine the same requests as the full pod, with and without pod-level
// requests (which make HPA read the overhead and plain init containers too).
func TestTrimPodKeepsWhatRequestsAreReadFrom(t *testing.T) {
	req := func(cpu, mem string) corev1.ResourceRequirements {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return corev1.ResourceRequirements{Requests: l, Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}
	}
	spec := func(podLevel *corev1.ResourceRequirements) corev1.PodSpec {
		return corev1.PodSpec{
			Resources:      podLevel,
			Overhead:       corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")},
			Containers:     []corev1.Container{{Name: "app", Image: "ghcr.io/spinscale/app:1", Resources: req("", "64Mi")}},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "ghcr.io/spinscale/migrate:1", Resources: req("", "256Mi")}},
		}
	}
	podLevel := req("1", "")
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		cpu, mem recommender.Request
	}{
		{
			name: "containers only",
			spec: spec(nil),
			cpu:  recommender.Request{MissingIn: "app"},
			mem:  recommender.Request{Milli: 64 << 20 * 1000},
		},
		{
			name: "pod-level cpu: memory from the init phase's peak plus the overhead",
			spec: spec(&podLevel),
			cpu:  recommender.Request{Milli: 1000, PodLevel: true},
			mem:  recommender.Request{Milli: (256 + 16) << 20 * 1000, PodLevel: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "apps"}, Spec: tt.spec}
			obj, err := trimPod(full)
			require.NoError(t, err)
			trimmed := obj.(*corev1.Pod)
			for _, p := range []*corev1.Pod{full, trimmed} {
				got := enginePod(p)
				assert.Equal(t, tt.cpu, got.CPU, "cpu")
				assert.Equal(t, tt.mem, got.Memory, "memory")
			}
			assert.Empty(t, trimmed.Spec.Containers[0].Image, "images are not kept")
			assert.Empty(t, trimmed.Spec.Containers[0].Resources.Limits, "limits are not kept")
			if tt.spec.Resources == nil {
				assert.Nil(t, trimmed.Spec.Overhead, "no overhead without pod-level requests")
				assert.Empty(t, trimmed.Spec.InitContainers, "no plain init container without pod-level requests")
			}
		})
	}
}
