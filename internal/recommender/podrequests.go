package recommender

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// This file is how HPA reads a pod's request for a utilization target
// (replica_calculator.go, calculateRequests, Kubernetes v1.37), shared by
// the controller and simulate so that both build the engine's Pod alike.
//
// A pod that sets pod-level requests (pod.spec.resources.requests, feature
// PodLevelResources, on by default since 1.34) is read as a whole: its
// pod-level request where it names the resource, and for a resource it does
// not name, the containers' requests aggregated as the scheduler does. Any
// other pod is read container by container, and one container without a
// request fails the target. HPA's ContainerResource metrics read one named
// container and never the pod level; Spinscale has no such metric.

// PodRequests returns a pod's cpu and memory requests as HPA reads them.
func PodRequests(spec *corev1.PodSpec) (cpu, memory Request) {
	if !PodLevelRequestsSet(spec) {
		return containerRequest(spec, corev1.ResourceCPU), containerRequest(spec, corev1.ResourceMemory)
	}
	return podLevelRequest(spec, corev1.ResourceCPU), podLevelRequest(spec, corev1.ResourceMemory)
}

// PodLevelRequestsSet reports whether the pod sets a pod-level request for a
// resource Kubernetes manages at pod level (cpu, memory, huge pages): one is
// enough for HPA to read the pod as a whole for every resource
// (component-helpers resource.IsPodLevelRequestsSet).
func PodLevelRequestsSet(spec *corev1.PodSpec) bool {
	if spec.Resources == nil {
		return false
	}
	for name := range spec.Resources.Requests {
		if name == corev1.ResourceCPU || name == corev1.ResourceMemory ||
			strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
			return true
		}
	}
	return false
}

func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// containerRequest sums the requests of the containers and of the
// restartable init containers (sidecars), each to whole milli-units first,
// and names the first of them without a request
// (calculatePodRequestsFromContainers).
func containerRequest(spec *corev1.PodSpec, name corev1.ResourceName) Request {
	var r Request
	add := func(c *corev1.Container) {
		q, ok := c.Resources.Requests[name]
		if !ok {
			if r.MissingIn == "" {
				r.MissingIn = c.Name
			}
			return
		}
		r.Milli += q.MilliValue()
	}
	for i := range spec.Containers {
		add(&spec.Containers[i])
	}
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) {
			add(&spec.InitContainers[i])
		}
	}
	return r
}

// podLevelRequest is calculatePodLevelRequests: component-helpers
// resource.PodRequests with default options, which reads the pod-level
// request where there is one, the containers' aggregate otherwise, and adds
// the pod's overhead to either. It fails only when none of them has the
// resource; a container without a request is no error on this path.
func podLevelRequest(spec *corev1.PodSpec, name corev1.ResourceName) Request {
	r := Request{PodLevel: true}
	q, ok := spec.Resources.Requests[name]
	if ok {
		q = q.DeepCopy()
	} else {
		q, ok = aggregateRequest(spec, name)
	}
	if o, has := spec.Overhead[name]; has {
		q.Add(o)
		ok = true
	}
	if !ok {
		if len(spec.Containers) > 0 {
			r.MissingIn = spec.Containers[0].Name
		}
		return r
	}
	r.Milli = q.MilliValue()
	return r
}

// aggregateRequest is component-helpers resource.AggregateContainerRequests
// for one resource, from the spec: the containers' and sidecars' sum, or the
// peak of the init phase when higher (an init container runs beside the
// sidecars started before it). Containers without a request add nothing;
// ok is false when none has one.
func aggregateRequest(spec *corev1.PodSpec, name corev1.ResourceName) (sum resource.Quantity, ok bool) {
	var sidecars, peak resource.Quantity
	var hasSidecars, hasPeak bool
	for i := range spec.Containers {
		if q, has := spec.Containers[i].Resources.Requests[name]; has {
			sum.Add(q)
			ok = true
		}
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		q, has := c.Resources.Requests[name]
		var phase resource.Quantity
		if isSidecar(c) {
			if has {
				sum.Add(q)
				ok = true
				sidecars.Add(q)
				hasSidecars = true
			}
			phase, has = sidecars.DeepCopy(), hasSidecars
		} else {
			if has {
				phase.Add(q)
			}
			if hasSidecars {
				phase.Add(sidecars)
				has = true
			}
		}
		if has && (!hasPeak || phase.Cmp(peak) > 0) {
			peak, hasPeak = phase, true
		}
	}
	if hasPeak && (!ok || peak.Cmp(sum) > 0) {
		return peak, true
	}
	return sum, ok
}
