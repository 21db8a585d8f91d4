package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/ptr"
)

// The tests in this file stop cluster components, so they do not run in
// parallel; Go runs them before every parallel test starts.

func stopComponent(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, runLogged(cluster.root, "hack/cluster/down.sh", cluster.state, "--only", name))
}

func startComponents(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(cluster.root, "hack/cluster/up.sh"), cluster.state)
	cmd.Env = append(os.Environ(), "METRIC_RESOLUTION=10s")
	require.NoError(t, runCmd(cmd))
}

// While metrics-server is down the app holds, however long the outage, and
// says so once; when metrics return, it acts within a tick.
func TestHoldsWhileMetricsServerIsDownThenRecovers(t *testing.T) {
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 4, cpuAnnotations(1, 10, 50)))
	startLoad(t, ns, "shop", 40)
	waitPodMetrics(t, ns, "shop", 4, 2*time.Minute)

	stopComponent(t, "metrics-server")
	t.Cleanup(func() { startComponents(t) })
	p := startAutoscaler(t, ns, "--set", "downscaleStabilization=10s")
	ev := waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "scale-down blocked", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	holdReplicas(t, ns, "shop", 4, 30*time.Second, "no scale-down while metrics are missing (window is 10s)")

	startComponents(t)
	// Watch the metrics API and the app together: the controller may act
	// before a slower poller sees the metrics.
	mc := metricsclient.NewForConfigOrDie(cluster.rest)
	var back, scaled time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if back.IsZero() {
			if list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{}); err == nil && len(list.Items) > 0 {
				back = time.Now()
			}
		}
		if scaled.IsZero() && replicas(t, ns, "shop") == 1 {
			scaled = time.Now()
		}
		return !back.IsZero() && !scaled.IsZero(), nil
	})
	require.NoError(t, err, "metrics back at %v, scaled down at %v", back, scaled)
	// The first fresh data is treated like a first sight: decisions resume
	// within a tick, and the scale-down waits one window (10s), about 12s
	// after the data is back. The upper bound allows twice that for a loaded
	// machine.
	assert.GreaterOrEqual(t, scaled.Sub(back), 7*time.Second, "no scale-down on the first readings after the outage")
	assert.LessOrEqual(t, scaled.Sub(back), 28*time.Second, "scaled down once a window of fresh data had passed")
	// Logged before the scale-down that was just observed; the wait only
	// covers the output pipe.
	assert.Eventually(t, func() bool {
		return strings.Contains(p.output(), "held at 4 by the highest recommendation of the last 10s")
	},
		20*time.Second, 500*time.Millisecond, "decisions on fresh data resumed (held by the window, not by missing metrics)")
}

// A restart of kube-apiserver interrupts watches and requests; the
// controller keeps running and keeps scaling afterwards.
func TestSurvivesAnAPIServerRestart(t *testing.T) {
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 1, cpuAnnotations(1, 10, 50)))
	l := startLoad(t, ns, "shop", 140)
	p := startAutoscaler(t, ns)
	waitReplicas(t, ns, "shop", 3*time.Minute, "scale up to 3 before the restart", func(r int32) bool { return r == 3 })

	stopComponent(t, "kube-apiserver")
	time.Sleep(5 * time.Second)
	startComponents(t)
	select {
	case <-p.exited:
		t.Fatalf("the controller exited during the API server restart:\n%s", p.output())
	default:
	}
	l.set(240)
	waitReplicas(t, ns, "shop", 3*time.Minute, "scale up to 5 after the restart", func(r int32) bool { return r == 5 })
}

// An HPA on the same Deployment would fight Spinscale: refuse, say why once,
// and leave the app alone.
func TestRefusesADeploymentAnHPATargets(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 2, cpuAnnotations(1, 10, 50)))
	// min = max = 2: the HPA itself will not move the app either.
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-hpa"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 2,
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	startLoad(t, ns, "shop", 1000)
	startAutoscaler(t, ns)
	ev := waitEvent(t, ns, "shop", "SpinscaleRefused", "HorizontalPodAutoscaler shop-hpa", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	holdReplicas(t, ns, "shop", 2, 15*time.Second, "refused apps are never scaled")
}

// With enableAutoscaling false, spin-operator writes replicas back on every
// reconcile: refuse until the SpinApp allows autoscaling, then scale.
func TestRefusesUntilTheSpinAppEnablesAutoscaling(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	spinApp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp",
		"metadata": map[string]any{"name": "shop", "namespace": ns},
		"spec": map[string]any{
			"image": "ghcr.io/example/shop:1.0.0", "executor": "containerd-shim-spin", "replicas": int64(2),
			"enableAutoscaling":     false,
			"deploymentAnnotations": map[string]any{"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10", "spinscale.dev/target-cpu-utilization": "50"},
		},
	}}
	created, err := cluster.dynamic.Resource(spinAppGVR).Namespace(ns).Create(context.Background(), spinApp, metav1.CreateOptions{})
	require.NoError(t, err)
	d := spinDeployment(ns, "shop", 2, cpuAnnotations(1, 10, 50))
	d.OwnerReferences = []metav1.OwnerReference{{APIVersion: "core.spinkube.dev/v1alpha1", Kind: "SpinApp", Name: "shop",
		UID: created.GetUID(), Controller: ptr.To(true)}}
	createDeployment(t, d)
	startLoad(t, ns, "shop", 500)
	startAutoscaler(t, ns)
	ev := waitEvent(t, ns, "shop", "SpinscaleRefused", "spec.enableAutoscaling false", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	holdReplicas(t, ns, "shop", 2, 15*time.Second, "spin-operator owns replicas while enableAutoscaling is false")

	patch := []byte(`{"spec":{"enableAutoscaling":true}}`)
	_, err = cluster.dynamic.Resource(spinAppGVR).Namespace(ns).Patch(context.Background(), "shop", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	waitReplicas(t, ns, "shop", 2*time.Minute, fmt.Sprintf("scale up once the SpinApp allows it (%s)", ns), func(r int32) bool { return r > 2 })
}
