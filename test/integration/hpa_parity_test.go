package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The upstream HPA controller (in kube-controller-manager) and Spinscale
// each scale their own copy of the same app under the same steady load,
// the HPA through an autoscaling/v2 object equivalent to the annotations.
// They must settle on the same replica count.
func TestSettlesLikeTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "by-spinscale", 1, cpuAnnotations(1, 10, 50)))
	createDeployment(t, spinDeployment(ns, "by-hpa", 1, nil))
	createHPA(t, ns, "by-hpa", 1, 10, 50)
	startLoad(t, ns, "by-spinscale", 330)
	startLoad(t, ns, "by-hpa", 330)
	start := time.Now()
	startAutoscaler(t, ns)

	// ceil(330 / 50) = 7 for both: 1 → 4 (capped), 82.5% on 4 → ceil(6.6) = 7.
	// Both apps are polled together, so their timings are comparable.
	apps := []string{"by-spinscale", "by-hpa"}
	first := map[string]time.Duration{}
	settled := map[string]time.Duration{}
	// The HPA controller syncs every 15s and needs metrics of the new pods
	// (10s resolution) before its second step; the bound leaves room for a
	// loaded machine.
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 6*time.Minute, true, func(context.Context) (bool, error) {
		for _, app := range apps {
			r := replicas(t, ns, app)
			if _, ok := first[app]; !ok && r > 1 {
				first[app] = time.Since(start)
			}
			if _, ok := settled[app]; !ok && r == 7 {
				settled[app] = time.Since(start)
			}
		}
		return len(settled) == len(apps), nil
	})
	require.NoError(t, err, "both should reach 7 replicas (first scale-ups %v, settled %v)", first, settled)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		require.Equal(t, replicas(t, ns, "by-hpa"), replicas(t, ns, "by-spinscale"), "both hold the same count under steady load")
		time.Sleep(2 * time.Second)
	}
	t.Logf("side by side, 330m of load, 100m request, 50%% target, 15s HPA sync, 2s spinscale tick, 10s metric resolution:\n"+
		"%-10s %-16s %-16s %s\n%-10s %-16s %-16s %d\n%-10s %-16s %-16s %d",
		"", "first scale-up", "reached 7", "final replicas",
		"spinscale", first["by-spinscale"].Round(time.Second), settled["by-spinscale"].Round(time.Second), replicas(t, ns, "by-spinscale"),
		"HPA", first["by-hpa"].Round(time.Second), settled["by-hpa"].Round(time.Second), replicas(t, ns, "by-hpa"))
}
