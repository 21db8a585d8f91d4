package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// leaseHolder returns the holder of the Lease, or "".
func leaseHolder(t *testing.T, ns, name string) string {
	t.Helper()
	l, err := cluster.client.CoordinationV1().Leases(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Two replicas: only the leader writes; killing it hands over within the
// lease duration.
func TestLeaderElectionHandsOver(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 1, cpuAnnotations(1, 10, 50)))
	l := startLoad(t, ns, "shop", 140)
	args := []string{"--set", "leaderElection.enabled=true", "--set", "leaderElection.namespace=" + ns,
		"--set", "leaderElection.leaseDuration=6s", "--set", "leaderElection.renewDeadline=4s", "--set", "leaderElection.retryPeriod=1s"}
	a := startAutoscaler(t, ns, args...)
	waitLeader := func(not string) string {
		var holder string
		err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			holder = leaseHolder(t, ns, "spinscale")
			return holder != "" && holder != not, nil
		})
		require.NoError(t, err, "waiting for a leader other than %q", not)
		return holder
	}
	first := waitLeader("")
	b := startAutoscaler(t, ns, args...)
	waitReplicas(t, ns, "shop", 3*time.Minute, "the leader scales to 3", func(r int32) bool { return r == 3 })

	leader, standby := a, b
	if strings.Contains(b.output(), "became leader") {
		leader, standby = b, a
	}
	require.Contains(t, leader.output(), "became leader")
	assert.Eventually(t, func() bool { return strings.Contains(leader.output(), `"msg":"scaled"`) }, 10*time.Second, 100*time.Millisecond,
		"the leader logs its write")
	assert.NotContains(t, standby.output(), `"msg":"scaled"`, "a standby never writes")
	assert.NotContains(t, standby.output(), "became leader")

	leader.kill()
	killed := time.Now()
	second := waitLeader(first)
	handover := time.Since(killed)
	t.Logf("leader %s killed; %s took over after %s", first, second, handover.Round(100*time.Millisecond))
	// Expected: at most the lease duration (6s) after the last renewal, plus
	// one jittered retry period (up to 1.2 × 1s), plus request latency. The
	// bound leaves room for a loaded machine and stays below the 15s the
	// default lease duration would take, had the settings not applied.
	assert.LessOrEqual(t, handover, 12*time.Second, "hand-over within the lease duration (6s) after the last renewal, plus a retry period and slack")

	l.set(240)
	waitReplicas(t, ns, "shop", 3*time.Minute, "the new leader scales to 5", func(r int32) bool { return r == 5 })
	// The write is logged once its answer is back, which a watch of the
	// Deployment may see first.
	assert.Eventually(t, func() bool { return strings.Contains(standby.output(), `"msg":"scaled"`) }, 10*time.Second, 100*time.Millisecond,
		"the new leader logs its write")
}
