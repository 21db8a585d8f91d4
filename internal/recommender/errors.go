package recommender

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Errors that classify why a metric gave no proposal. A failed metric never
// lets the app scale down.
var (
	// ErrNoData: the source returned nothing usable for the app's pods.
	ErrNoData = errors.New("no data")
	// ErrStale: every sample is older than maxSampleAge.
	ErrStale = errors.New("stale data")
	// ErrAllZero: every pod reports exactly zero usage, which Spin pods do
	// when the node's shim lacks cgroup accounting, not when they are idle.
	ErrAllZero = errors.New("every pod reports zero usage")
	// ErrNoPods: the selector matches no pod.
	ErrNoPods = errors.New("no pods match the selector")
	// ErrNoReadyPods: a value target needs ready pods to scale against.
	ErrNoReadyPods = errors.New("no ready pods")
	// ErrMissingRequest: a utilization target needs every container's request.
	ErrMissingRequest = errors.New("missing request")
	// ErrInvalidTarget: the metric's target is not positive.
	ErrInvalidTarget = errors.New("invalid target")
)

// causes are the sentinels Cause recognizes.
var causes = []error{ErrNoData, ErrStale, ErrAllZero, ErrNoPods, ErrNoReadyPods, ErrMissingRequest, ErrInvalidTarget}

// MissingRequestError is ErrMissingRequest for one container. The container
// is the same in every pod of a Deployment, the pod is not: only the former
// is part of the Summary.
type MissingRequestError struct {
	Resource  corev1.ResourceName
	Container string
	Pod       string
	// PodLevel: the pod sets pod-level requests but none for Resource, and
	// no container requests it either.
	PodLevel bool
}

func (e *MissingRequestError) Error() string {
	return fmt.Sprintf("%s of pod %s", e.Summary(), e.Pod)
}

// Summary names the resource and the container, which stay the same from
// one tick to the next, and not the pod, which a rollout replaces.
func (e *MissingRequestError) Summary() string {
	if e.PodLevel {
		return fmt.Sprintf("%v for %s at pod level or in any container", ErrMissingRequest, e.Resource)
	}
	return fmt.Sprintf("%v for %s in container %s", ErrMissingRequest, e.Resource, e.Container)
}

// Is makes errors.Is(err, ErrMissingRequest) hold.
func (e *MissingRequestError) Is(target error) bool { return target == ErrMissingRequest }

// Cause summarizes why a metric failed in words that stay the same while the
// failure does: without the pod counts, pod names and ages that the full
// message carries and that change from tick to tick. A warning keyed on it is
// recorded once per failure, not once per tick.
//
// An error that carries its own stable Summary (MissingRequestError, the
// sources' typed errors) gives that; one wrapping an engine sentinel gives
// the sentinel's text; any other error is returned in full, which is stable
// as long as it is.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var s interface{ Summary() string }
	if errors.As(err, &s) {
		return s.Summary()
	}
	for _, c := range causes {
		if errors.Is(err, c) {
			return c.Error()
		}
	}
	return err.Error()
}
