package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"github.com/spinscale/spinscale/internal/recommender"
)

// sampledAt is the fixed time of every pod metrics sample.
var sampledAt = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func podMetrics(namespace, name string, containers ...corev1.ResourceList) *metricsv1beta1.PodMetrics {
	pm := &metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Timestamp:  metav1.NewTime(sampledAt),
		Window:     metav1.Duration{Duration: 30 * time.Second},
	}
	for i, usage := range containers {
		pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: string(rune('a' + i)), Usage: usage})
	}
	return pm
}

func usage(cpu, memory string) corev1.ResourceList {
	l := corev1.ResourceList{}
	if cpu != "" {
		l[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if memory != "" {
		l[corev1.ResourceMemory] = resource.MustParse(memory)
	}
	return l
}

// fakeMetrics serves the pod metrics given, and records the namespaces
// listed. The fake tracker files PodMetrics under a resource guessed from
// the kind, not under "pods" where the client lists them, hence Create
// with the resource spelled out.
func fakeMetrics(t *testing.T, pms ...*metricsv1beta1.PodMetrics) (*metricsfake.Clientset, *[]string) {
	t.Helper()
	client := metricsfake.NewSimpleClientset()
	gvr := metricsv1beta1.SchemeGroupVersion.WithResource("pods")
	for _, pm := range pms {
		require.NoError(t, client.Tracker().Create(gvr, pm, pm.Namespace))
	}
	var listed []string
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		listed = append(listed, a.GetNamespace())
		return false, nil, nil
	})
	return client, &listed
}

func appPods(names ...string) []recommender.Pod {
	pods := make([]recommender.Pod, len(names))
	for i, n := range names {
		pods[i] = recommender.Pod{Name: n}
	}
	return pods
}

func TestMetricsServerSnapshot(t *testing.T) {
	pms := []*metricsv1beta1.PodMetrics{
		podMetrics("shop", "shop-a", usage("100m", "64Mi"), usage("50m", "16Mi")),
		podMetrics("shop", "shop-b", usage("200m", ""), usage("10m", "1Mi")),
		podMetrics("shop", "shop-c"),
		podMetrics("cart", "cart-a", usage("300m", "32Mi")),
	}
	sample := func(pod string, value int64) recommender.Sample {
		return recommender.Sample{Pod: pod, Value: value, Timestamp: sampledAt, Window: 30 * time.Second}
	}
	for _, tc := range []struct {
		name       string
		namespaces []string
		wantLists  []string
	}{
		{"cluster-wide: one LIST", nil, []string{""}},
		{"one LIST per namespace", []string{"shop", "cart"}, []string{"shop", "cart"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, listed := fakeMetrics(t, pms...)
			snap := MetricsServer{Client: client}.Snapshot(context.Background(), tc.namespaces)
			assert.ElementsMatch(t, tc.wantLists, *listed, "LISTed side by side, in any order")
			require.NoError(t, snap.Err("shop"))

			cpu := snap.Observation("shop", appPods("shop-a", "shop-b", "shop-c", "shop-gone"), corev1.ResourceCPU)
			require.NoError(t, cpu.Err)
			assert.True(t, cpu.PerPod)
			assert.Equal(t, []recommender.Sample{sample("shop-a", 150), sample("shop-b", 210)}, cpu.Samples,
				"summed over containers; a pod without containers or without metrics has no sample")

			mem := snap.Observation("shop", appPods("shop-a", "shop-b"), corev1.ResourceMemory)
			require.NoError(t, mem.Err)
			assert.Equal(t, []recommender.Sample{sample("shop-a", 80<<20*1000)}, mem.Samples,
				"a pod with a container that lacks the resource has no sample for it")

			other := snap.Observation("cart", appPods("cart-a"), corev1.ResourceCPU)
			require.NoError(t, other.Err)
			assert.Equal(t, []recommender.Sample{sample("cart-a", 300)}, other.Samples, "namespaces do not mix")

			none := snap.Observation("shop", appPods("shop-c"), corev1.ResourceCPU)
			assert.ErrorIs(t, none.Err, recommender.ErrNoData)
			assert.Contains(t, none.Err.Error(), "metrics.k8s.io has no cpu sample for the app's 1 pods")
		})
	}
}

func TestMetricsServerSnapshotListFailure(t *testing.T) {
	boom := errors.New("the server is currently unable to handle the request")
	for _, tc := range []struct {
		name       string
		namespaces []string
		failIn     string
		// broken and healthy are namespaces whose observations fail and
		// succeed.
		broken, healthy []string
	}{
		{"one namespace fails, the other is kept", []string{"shop", "cart"}, "shop", []string{"shop"}, []string{"cart"}},
		{"a cluster-wide LIST fails for every namespace", nil, "", []string{"shop", "cart"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := fakeMetrics(t, podMetrics("shop", "shop-a", usage("100m", "1Mi")), podMetrics("cart", "cart-a", usage("100m", "1Mi")))
			client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetNamespace() == tc.failIn {
					return true, nil, boom
				}
				return false, nil, nil
			})
			snap := MetricsServer{Client: client}.Snapshot(context.Background(), tc.namespaces)
			for _, ns := range tc.broken {
				err := snap.Err(ns)
				require.Error(t, err, ns)
				assert.ErrorIs(t, err, ErrUnavailable)
				assert.ErrorIs(t, err, boom)
				obs := snap.Observation(ns, appPods(ns+"-a"), corev1.ResourceCPU)
				assert.ErrorIs(t, obs.Err, ErrUnavailable, ns)
				assert.Empty(t, obs.Samples)
			}
			for _, ns := range tc.healthy {
				require.NoError(t, snap.Err(ns), ns)
				obs := snap.Observation(ns, appPods(ns+"-a"), corev1.ResourceCPU)
				require.NoError(t, obs.Err, ns)
				assert.Len(t, obs.Samples, 1)
			}
		})
	}
}

func TestMetricsServerListsThePodSelectorOnly(t *testing.T) {
	client, _ := fakeMetrics(t)
	var selectors []string
	client.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		selectors = append(selectors, a.(k8stesting.ListAction).GetListRestrictions().Labels.String())
		return false, nil, nil
	})
	MetricsServer{Client: client, PodSelector: "core.spinkube.dev/app-name"}.Snapshot(context.Background(), []string{"shop"})
	MetricsServer{Client: client}.Snapshot(context.Background(), []string{"shop"})
	assert.Equal(t, []string{"core.spinkube.dev/app-name", ""}, selectors)
}
