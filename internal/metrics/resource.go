package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/spinscale/spinscale/internal/recommender"
)

// ErrUnavailable wraps a failure to reach the resource metrics API.
var ErrUnavailable = errors.New("resource metrics API unavailable")

// PodUsage is one pod's cpu and memory usage, summed over its containers.
type PodUsage struct {
	// CPU and Memory are in milli-units. Has* is false when some container
	// lacks that resource: HPA treats such a pod as missing.
	CPU, Memory       int64
	HasCPU, HasMemory bool
	Timestamp         time.Time
	Window            time.Duration
}

// ResourceSnapshot is the pod usage of one tick, fetched once and shared by
// every app.
type ResourceSnapshot struct {
	pods map[types.NamespacedName]PodUsage
	// errs holds a fetch error per namespace ("" for a cluster-wide LIST).
	errs map[string]error
}

// NewResourceSnapshot builds a snapshot from usage already fetched; errs maps
// a namespace ("" = every namespace) to the error that lost its data.
func NewResourceSnapshot(pods map[types.NamespacedName]PodUsage, errs map[string]error) *ResourceSnapshot {
	if pods == nil {
		pods = map[types.NamespacedName]PodUsage{}
	}
	return &ResourceSnapshot{pods: pods, errs: errs}
}

// Err returns the error that lost the namespace's data, if any.
func (s *ResourceSnapshot) Err(namespace string) error {
	if err, ok := s.errs[""]; ok {
		return err
	}
	return s.errs[namespace]
}

// Observation returns one resource metric's samples for the app's pods.
func (s *ResourceSnapshot) Observation(namespace string, pods []recommender.Pod, resource corev1.ResourceName) recommender.Observation {
	if err := s.Err(namespace); err != nil {
		return recommender.Observation{Err: err}
	}
	obs := recommender.Observation{PerPod: true, Samples: make([]recommender.Sample, 0, len(pods))}
	for i := range pods {
		u, ok := s.pods[types.NamespacedName{Namespace: namespace, Name: pods[i].Name}]
		if !ok {
			continue
		}
		value, has := u.CPU, u.HasCPU
		if resource == corev1.ResourceMemory {
			value, has = u.Memory, u.HasMemory
		}
		if !has {
			continue
		}
		obs.Samples = append(obs.Samples, recommender.Sample{Pod: pods[i].Name, Value: value, Timestamp: u.Timestamp, Window: u.Window})
	}
	if len(obs.Samples) == 0 {
		obs.Err = fmt.Errorf("%w: metrics.k8s.io has no %s sample for the app's %d pods", recommender.ErrNoData, resource, len(pods))
	}
	return obs
}

// ResourceSource fetches pod usage for a tick.
type ResourceSource interface {
	// Snapshot lists pod metrics once: cluster-wide when namespaces is
	// empty, otherwise one LIST per namespace. It never returns nil.
	Snapshot(ctx context.Context, namespaces []string) *ResourceSnapshot
}

// MetricsServer reads metrics.k8s.io (metrics-server).
type MetricsServer struct {
	Client metricsclient.Interface
	// PodSelector narrows the LISTs to the pods it matches (the
	// controller's podSelector): metrics-server filters by pod labels, so
	// the usage of pods the controller never counts is neither sent nor
	// decoded. Empty lists every pod.
	PodSelector string
}

var _ ResourceSource = MetricsServer{}

// Snapshot implements ResourceSource.
func (m MetricsServer) Snapshot(ctx context.Context, namespaces []string) *ResourceSnapshot {
	snap := NewResourceSnapshot(nil, map[string]error{})
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	// The namespaces are listed side by side (at most snapshotLists at
	// once): a pass waits for the slowest LIST, not for their sum.
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sema = make(chan struct{}, snapshotLists)
	)
	for _, ns := range namespaces {
		sema <- struct{}{}
		wg.Go(func() {
			defer func() { <-sema }()
			list, err := m.Client.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: m.PodSelector})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				snap.errs[ns] = fmt.Errorf("%w: list pod metrics in %q: %w", ErrUnavailable, ns, err)
				return
			}
			for i := range list.Items {
				pm := &list.Items[i]
				snap.pods[types.NamespacedName{Namespace: pm.Namespace, Name: pm.Name}] = PodUsageOf(pm)
			}
		})
	}
	wg.Wait()
	return snap
}

// snapshotLists bounds the metrics.k8s.io LISTs a snapshot has in flight.
const snapshotLists = 8

// PodUsageOf sums container usage the way HPA does: a resource is present
// for the pod only when every container reports it, and a pod without
// containers has none. Simulate builds its pods' usage with it too.
func PodUsageOf(pm *metricsv1beta1.PodMetrics) PodUsage {
	u := PodUsage{
		HasCPU: len(pm.Containers) > 0, HasMemory: len(pm.Containers) > 0,
		Timestamp: pm.Timestamp.Time, Window: pm.Window.Duration,
	}
	for _, c := range pm.Containers {
		if q, ok := c.Usage[corev1.ResourceCPU]; ok {
			u.CPU += q.MilliValue()
		} else {
			u.HasCPU = false
		}
		if q, ok := c.Usage[corev1.ResourceMemory]; ok {
			u.Memory += q.MilliValue()
		} else {
			u.HasMemory = false
		}
	}
	return u
}
