package recommender

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func container(name string, requests ...string) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: list(requests...)}}
}

func sidecarContainer(name string, requests ...string) corev1.Container {
	c := container(name, requests...)
	always := corev1.ContainerRestartPolicyAlways
	c.RestartPolicy = &always
	return c
}

// list builds a resource list from "cpu=500m" style pairs.
func list(pairs ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, p := range pairs {
		name, q, _ := strings.Cut(p, "=")
		out[corev1.ResourceName(name)] = resource.MustParse(q)
	}
	return out
}

func podLevel(pairs ...string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{Requests: list(pairs...)}
}

// TestPodRequests follows HPA v1.37's calculateRequests
// (pkg/controller/podautoscaler/replica_calculator.go) and, for pods with
// pod-level requests, component-helpers resource.PodRequests.
func TestPodRequests(t *testing.T) {
	const mi = 1 << 20 * 1000 // 1Mi in milli-bytes
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		cpu, mem Request
	}{
		{
			name: "containers summed, sidecars included, plain init containers not",
			spec: corev1.PodSpec{
				Containers:     []corev1.Container{container("app", "cpu=500m", "memory=64Mi"), container("log", "cpu=100m", "memory=16Mi")},
				InitContainers: []corev1.Container{container("setup", "cpu=2", "memory=1Gi"), sidecarContainer("proxy", "cpu=50m", "memory=8Mi")},
			},
			cpu: Request{Milli: 650}, mem: Request{Milli: 88 * mi},
		},
		{
			name: "a container without a request is named",
			spec: corev1.PodSpec{Containers: []corev1.Container{container("app", "cpu=500m"), container("log")}},
			cpu:  Request{Milli: 500, MissingIn: "log"}, mem: Request{MissingIn: "app"},
		},
		{
			name: "pod-level requests and containers without any: the pod's",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=1", "memory=256Mi"),
				Containers: []corev1.Container{container("app"), container("log")},
			},
			cpu: Request{Milli: 1000, PodLevel: true}, mem: Request{Milli: 256 * mi, PodLevel: true},
		},
		{
			name: "pod-level requests win over the containers'",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=2", "memory=512Mi"),
				Containers: []corev1.Container{container("app", "cpu=500m", "memory=64Mi")},
			},
			cpu: Request{Milli: 2000, PodLevel: true}, mem: Request{Milli: 512 * mi, PodLevel: true},
		},
		{
			name: "pod-level cpu only: memory is the containers' sum, a container without one adds nothing",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=1"),
				Containers: []corev1.Container{container("app", "memory=64Mi"), container("log")},
			},
			cpu: Request{Milli: 1000, PodLevel: true}, mem: Request{Milli: 64 * mi, PodLevel: true},
		},
		{
			name: "pod-level cpu only and no memory anywhere: memory is missing",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=1"),
				Containers: []corev1.Container{container("app"), container("log")},
			},
			cpu: Request{Milli: 1000, PodLevel: true}, mem: Request{MissingIn: "app", PodLevel: true},
		},
		{
			name: "huge pages at pod level are enough to read the pod as a whole",
			spec: corev1.PodSpec{
				Resources:  podLevel("hugepages-2Mi=4Mi"),
				Containers: []corev1.Container{container("app", "cpu=500m"), container("log")},
			},
			cpu: Request{Milli: 500, PodLevel: true}, mem: Request{MissingIn: "app", PodLevel: true},
		},
		{
			name: "a resource not managed at pod level is not a pod-level request",
			spec: corev1.PodSpec{
				Resources:  podLevel("ephemeral-storage=1Gi"),
				Containers: []corev1.Container{container("app", "cpu=500m")},
			},
			cpu: Request{Milli: 500}, mem: Request{MissingIn: "app"},
		},
		{
			name: "pod level: the overhead is added, to the pod's request and to the containers' sum",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=1"),
				Overhead:   list("cpu=250m", "memory=32Mi"),
				Containers: []corev1.Container{container("app", "memory=64Mi")},
			},
			cpu: Request{Milli: 1250, PodLevel: true}, mem: Request{Milli: 96 * mi, PodLevel: true},
		},
		{
			name: "pod level: an init container's peak above the containers' sum counts",
			spec: corev1.PodSpec{
				Resources:  podLevel("cpu=1"),
				Containers: []corev1.Container{container("app", "memory=64Mi")},
				InitContainers: []corev1.Container{
					sidecarContainer("proxy", "memory=16Mi"),
					container("migrate", "memory=128Mi"),
				},
			},
			// the sidecar runs beside the app (80Mi) and beside the migration (144Mi).
			cpu: Request{Milli: 1000, PodLevel: true}, mem: Request{Milli: 144 * mi, PodLevel: true},
		},
		{
			name: "the overhead is ignored without pod-level requests",
			spec: corev1.PodSpec{
				Overhead:   list("cpu=250m"),
				Containers: []corev1.Container{container("app", "cpu=500m", "memory=64Mi")},
			},
			cpu: Request{Milli: 500}, mem: Request{Milli: 64 * mi},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := PodRequests(&tt.spec)
			assert.Equal(t, tt.cpu, cpu, "cpu")
			assert.Equal(t, tt.mem, mem, "memory")
		})
	}
}

// TestUtilizationOfPodLevelRequests: the pod-level request is the
// denominator, in both profiles, and a pod without any request for the
// resource fails the metric with a message that says pod level.
func TestUtilizationOfPodLevelRequests(t *testing.T) {
	// Containers ask for 250m cpu each, the pods for 1 cpu: 600m used is
	// 60% of the pod-level request (and would be 240% of the containers').
	spec := corev1.PodSpec{
		Resources:  podLevel("cpu=1"),
		Containers: []corev1.Container{container("app", "cpu=250m"), container("log")},
	}
	cpu, mem := PodRequests(&spec)
	withRequests := func(p *Pod) { p.CPU, p.Memory = cpu, mem }
	ps := pods(2, map[int][]func(*Pod){0: {withRequests}, 1: {withRequests}})
	for _, profile := range []Profile{ProfileHPA, ProfileSpinscale} {
		t.Run(string(profile), func(t *testing.T) {
			s := baseSpec(cpuUtil(50))
			s.Profile = profile
			in := Input{SpecReplicas: 2, StatusReplicas: 2, Pods: ps, Metrics: []Observation{samples(600, 600)}}
			d, _ := Decide(&s, &in, settled(), t0)
			require.Len(t, d.Metrics, 1)
			require.NoError(t, d.Metrics[0].Err)
			assert.Equal(t, int32(60), d.Metrics[0].Utilization)
			assert.Equal(t, int32(3), d.Metrics[0].Proposal)
		})
	}
	t.Run("no memory request at pod level or in any container", func(t *testing.T) {
		err := failure(t, memUtil(50), 2, ps, samples(600, 600))
		assert.ErrorIs(t, err, ErrMissingRequest)
		assert.Equal(t, "missing request for memory at pod level or in any container", Cause(err))
	})
}
