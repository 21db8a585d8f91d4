package recommender

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Input is what the controller observed of one app at one moment.
type Input struct {
	// SpecReplicas is the Deployment's spec.replicas: the current count.
	SpecReplicas int32
	// StatusReplicas is status.replicas; HPA uses it for AverageValue
	// targets of single-value metrics.
	StatusReplicas int32
	// Pods are the pods matched by the Deployment's selector.
	Pods []Pod
	// Metrics holds one observation per Spec.Metrics entry, in the same order.
	Metrics []Observation
	// ScaledToZero is true when Spinscale itself scaled the app to zero (its
	// record on the Deployment, HPA's ScaledToZero condition): only such a
	// zero is woken from; a zero set by hand pauses scaling.
	ScaledToZero bool
}

// Pod is the part of a pod the rules look at.
type Pod struct {
	Name     string
	Phase    corev1.PodPhase
	Deleting bool
	// HasReadyCondition is false when the pod has no Ready condition at all.
	HasReadyCondition bool
	// Ready is the Ready condition's status (true only for "True").
	Ready bool
	// ReadyTransition is the Ready condition's last transition time.
	ReadyTransition time.Time
	// StartTime is status.startTime; zero when the pod has not started.
	StartTime time.Time
	// CPU and Memory are the pod's requests as HPA reads them (PodRequests):
	// summed over its containers, or the pod's own when it sets pod-level
	// requests.
	CPU    Request
	Memory Request
}

// Request is a pod's request for one resource.
type Request struct {
	// Milli is the request in milli-units.
	Milli int64
	// MissingIn names a container without a request for the resource; empty
	// when every container has one. HPA refuses utilization targets then.
	// On the pod-level path it is set only when neither the pod nor any
	// container requests the resource.
	MissingIn string
	// PodLevel is true when the pod sets pod-level requests, so that Milli
	// was read from the pod as a whole (PodRequests).
	PodLevel bool
}

func (p *Pod) request(r corev1.ResourceName) Request {
	if r == corev1.ResourceMemory {
		return p.Memory
	}
	return p.CPU
}

// Observation is one metric's result at one moment: an error, per-pod samples,
// or a single value.
type Observation struct {
	// Err is set when the source failed; the other fields are then ignored.
	Err error
	// PerPod selects Samples; otherwise Value and Timestamp hold a single
	// value for the whole app.
	PerPod  bool
	Samples []Sample
	// Value is the single value in milli-units.
	Value     int64
	Timestamp time.Time
	// HTTP holds an HTTP metric's counts (SourceHTTP); the other fields
	// are then ignored.
	HTTP *HTTPWindows
}

// Sample is one pod's value of a metric.
type Sample struct {
	Pod string
	// Value in milli-units (cpu millicores, memory milli-bytes as HPA uses
	// MilliValue, Prometheus values × 1000).
	Value int64
	// Timestamp is the end of the sample's window; zero means "now".
	Timestamp time.Time
	// Window is the duration the sample averages over.
	Window time.Duration
}
