package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// waitPodMetrics waits until metrics.k8s.io serves a sample for n pods of
// the app.
func waitPodMetrics(t *testing.T, ns, app string, n int, timeout time.Duration) {
	t.Helper()
	mc := metricsclient.NewForConfigOrDie(cluster.rest)
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + app})
		return err == nil && len(list.Items) >= n, nil
	})
	require.NoError(t, err, "waiting for metrics of %d pods of %s/%s", n, ns, app)
}

// With 280m of load on a 100m request and a 50% target, HPA's rule settles
// on ceil(280 / 50) = 6 replicas: 1 → 4 (the per-tick cap), then 70% on 4
// pods → ceil(5.6) = 6, then 47% is inside tolerance. Loads are chosen so
// that no step lands near a rounding edge, since emulated usage is averaged
// over a window while the load is being re-spread.
func TestScaleUpUnderLoad(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 1, cpuAnnotations(1, 10, 50)))
	startLoad(t, ns, "shop", 280)
	startAutoscaler(t, ns)
	took := waitReplicas(t, ns, "shop", 3*time.Minute, "scale up to 6", func(r int32) bool { return r == 6 })
	t.Logf("scaled 1 → 6 in %s", took.Round(time.Second))
	holdReplicas(t, ns, "shop", 6, 20*time.Second, "settled at the load's replica count")
	ev := waitEvent(t, ns, "shop", "SpinscaleRescaled", "→ 6", 30*time.Second)
	assert.Contains(t, ev.Message, "cpu:")
}

// First sight seeds the history with the current count: no scale-down
// before one scale-down window (40s here) has passed, then straight down.
func TestScaleDownOnlyAfterStabilizationWindow(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 4, cpuAnnotations(1, 10, 50)))
	startLoad(t, ns, "shop", 40)
	waitPodMetrics(t, ns, "shop", 4, 2*time.Minute)
	start := time.Now()
	startAutoscaler(t, ns, "--set", "downscaleStabilization=40s")
	took := waitReplicas(t, ns, "shop", 2*time.Minute, "scale down to 1", func(r int32) bool { return r < 4 })
	assert.GreaterOrEqual(t, time.Since(start), 38*time.Second, "scaled down before the window had passed")
	assert.Equal(t, int32(1), replicas(t, ns, "shop"), "no rate limit on the plain path: straight to ceil(40/50)")
	t.Logf("held for %s, then scaled down", took.Round(time.Second))
}

func TestMinAndMaxAreRespected(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 1, cpuAnnotations(2, 3, 50)))
	l := startLoad(t, ns, "shop", 2000)
	startAutoscaler(t, ns, "--set", "downscaleStabilization=10s")
	waitReplicas(t, ns, "shop", time.Minute, "below min goes straight to min", func(r int32) bool { return r >= 2 })
	waitReplicas(t, ns, "shop", 2*time.Minute, "capped at max 3", func(r int32) bool { return r == 3 })
	holdReplicas(t, ns, "shop", 3, 20*time.Second, "never above max-replicas")
	l.set(10)
	waitReplicas(t, ns, "shop", 2*time.Minute, "down to min 2", func(r int32) bool { return r == 2 })
	holdReplicas(t, ns, "shop", 2, 20*time.Second, "never below min-replicas")
}

func TestInvalidAnnotationsLeaveTheAppUntouched(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 2, cpuAnnotations(1, 10, 50, "spinscale.dev/max-replicas", "lots", "spinscale.dev/tolerance", "2")))
	startLoad(t, ns, "shop", 1000)
	startAutoscaler(t, ns)
	ev := waitEvent(t, ns, "shop", "SpinscaleInvalidAnnotations", `spinscale.dev/max-replicas: "lots"`, time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	assert.Contains(t, ev.Message, `spinscale.dev/tolerance: "2"`, "every problem is reported at once")
	holdReplicas(t, ns, "shop", 2, 20*time.Second, "an app with invalid annotations is never scaled")
	for _, e := range spinscaleEvents(t, ns, "shop") {
		if e.Reason == "SpinscaleInvalidAnnotations" {
			assert.Equal(t, int32(1), e.Count, "reported once per change, not every tick")
		}
	}
}

// Dry-run computes and prints every decision and writes nothing: no scale
// change, no Event, no field owned by spinscale on the Deployment.
func TestDryRunNeverWrites(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 2, cpuAnnotations(1, 10, 50)))
	startLoad(t, ns, "shop", 500)
	waitPodMetrics(t, ns, "shop", 2, 2*time.Minute)
	before, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), "shop", metav1.GetOptions{})
	require.NoError(t, err)

	out, err := exec.Command(cluster.autoscaler, "run", "--dry-run", "--once", "--kubeconfig", cluster.kubeconfig,
		"--set", "namespaces="+ns, "--set", "leaderElection.enabled=false").Output()
	require.NoError(t, err)
	table := string(out)
	assert.Contains(t, table, "NAMESPACE")
	assert.Contains(t, table, "DESIRED")
	// The shipped default profile, spinscale: 250% of a 50% target asks
	// for 10 or 11 pods, capped by the profile's scale-up rate at
	// max(2 + 4, 2 × 200%) = 6 (HPA's plain path would stop at 4).
	assert.Regexp(t, ns+`\s+shop\s+cpu: \d+%/50%\s+1\s+10\s+2\s+6\s+scale-up`, table)
	assert.Contains(t, table, "capped at 6 by the scale-up rate limit")

	// Several ticks, each of which would scale the app were it not a dry
	// run, however long the start takes on a loaded machine.
	p := startAutoscaler(t, ns, "--dry-run", "--output", "json")
	decision := `"namespace":"` + ns + `","name":"shop"`
	require.Eventually(t, func() bool { return strings.Count(p.output(), decision) >= 5 },
		2*time.Minute, 500*time.Millisecond, "five dry-run decisions printed")
	p.stop()

	after, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, *before.Spec.Replicas, *after.Spec.Replicas)
	assert.Equal(t, before.Generation, after.Generation)
	for _, mf := range after.ManagedFields {
		assert.NotEqual(t, "spinscale", mf.Manager)
	}
	assert.Empty(t, spinscaleEvents(t, ns, "shop"))
	assert.False(t, strings.Contains(p.output(), `"msg":"scaled"`))
}
