package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// An edit of an app's annotations is decided on within a poll (1s), not at
// its next interval: with a 60s interval, lowering max-replicas below the
// current count scales the app down to it at once, as HPA reconciles when
// its own spec changes.
func TestAnEditIsDecidedOnWithinAPoll(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "web", 4, cpuAnnotations(1, 6, 50)))
	startLoad(t, ns, "web", 200) // 50m per pod of 100m: on target
	p := startAutoscaler(t, ns, "--set", "interval=60s", "--set", "poll=1s")
	waitLog(t, p, "decided", time.Minute, "the first decision")
	time.Sleep(2 * time.Second) // well inside the 60s interval

	patch := []byte(`{"metadata":{"annotations":{"spinscale.dev/max-replicas":"2"}}}`)
	edited := time.Now()
	_, err := cluster.client.AppsV1().Deployments(ns).Patch(context.Background(), "web", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	took := waitReplicas(t, ns, "web", 30*time.Second, "down to the new max-replicas", func(r int32) bool { return r == 2 })
	t.Logf("max-replicas 6 → 2: scaled %s after the edit (interval 60s)", took.Round(100*time.Millisecond))
	assert.Less(t, time.Since(edited), 15*time.Second, "decided on within a poll or two, not at the next 60s interval")
}
