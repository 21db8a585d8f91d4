package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Two installations with disjoint selectors, each with its own Lease, share
// a namespace: each scales its own apps and never writes the other's.
func TestShardsNeverActOnTheSameApp(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	for _, shard := range []string{"a", "b"} {
		d := spinDeployment(ns, "app-"+shard, 1, cpuAnnotations(1, 10, 50))
		d.Labels = map[string]string{"spinscale.dev/shard": shard}
		createDeployment(t, d)
		startLoad(t, ns, "app-"+shard, 330)
	}
	procs := map[string]*proc{}
	for _, shard := range []string{"a", "b"} {
		procs[shard] = startAutoscaler(t, ns, "--set", "selector=spinscale.dev/shard="+shard,
			"--set", "leaderElection.enabled=true", "--set", "leaderElection.namespace="+ns,
			"--set", "leaderElection.leaseName=spinscale-"+shard,
			"--set", "leaderElection.leaseDuration=6s", "--set", "leaderElection.renewDeadline=4s", "--set", "leaderElection.retryPeriod=1s")
	}
	for _, shard := range []string{"a", "b"} {
		waitReplicas(t, ns, "app-"+shard, 3*time.Minute, "scaled by its shard", func(r int32) bool { return r > 1 })
	}
	for _, shard := range []string{"a", "b"} {
		lease, err := cluster.client.CoordinationV1().Leases(ns).Get(context.Background(), "spinscale-"+shard, metav1.GetOptions{})
		require.NoError(t, err, "each shard holds its own Lease")
		require.NotNil(t, lease.Spec.HolderIdentity)
	}
	a, err := cluster.client.CoordinationV1().Leases(ns).Get(context.Background(), "spinscale-a", metav1.GetOptions{})
	require.NoError(t, err)
	b, err := cluster.client.CoordinationV1().Leases(ns).Get(context.Background(), "spinscale-b", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, *a.Spec.HolderIdentity, *b.Spec.HolderIdentity, "two processes, each leading its shard")

	// Each process decided and scaled its own app only: the other shard's
	// app is not even in its cache.
	for shard, other := range map[string]string{"a": "b", "b": "a"} {
		out := procs[shard].output()
		assert.Contains(t, out, `"deployment":"app-`+shard+`"`)
		assert.NotContains(t, out, `"deployment":"app-`+other+`"`, "shard %s never acts on app-%s", shard, other)
	}
}
