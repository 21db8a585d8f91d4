package controller

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/metrics"
)

// gatedUsage is a ResourceSource whose Snapshot, the first read of every
// pass, announces the pass on entered and waits for release, so that a test
// holds a pass open while it moves the clock.
type gatedUsage struct {
	fakeUsage
	entered, release chan struct{}
	// inFlight and maxInFlight count the passes reading at once.
	inFlight, maxInFlight atomic.Int32
}

func newGatedUsage(pods []string, cpuMilli int64) *gatedUsage {
	return &gatedUsage{fakeUsage: fakeUsage{pods: pods, cpuMilli: cpuMilli},
		entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedUsage) Snapshot(ctx context.Context, namespaces []string) *metrics.ResourceSnapshot {
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxInFlight.Load()
		if n <= m || g.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	select {
	case g.entered <- struct{}{}:
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	return g.fakeUsage.Snapshot(ctx, namespaces)
}

// onInterval makes the loop pass every interval, as the hpa profile
// decides, so that each pass reads the gated source once.
func onInterval(c *config.Config) { c.Poll = 0 }

// runLoop runs the loop until the returned stop is called.
func runLoop(h *harness) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.ctl.loop(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

// The loop passes at once, then every interval; a pass due while another
// runs waits for it, passes missed meanwhile are not made up, and the delay
// is recorded as lag.
func TestLoopPassesNeverOverlapAndRecordLag(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage(names, 50) // on target: no write
	h := build(t, setup{config: onInterval, resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	stop := runLoop(h)

	<-gate.entered // the first pass, at once
	assert.Zero(t, gaugeValue(t, h.inst.TickLag))
	h.clock.Step(15 * time.Second) // the second pass is due ...
	h.clock.Step(10 * time.Second)
	gate.release <- struct{}{} // ... and starts 10 s late, when the first ends
	<-gate.entered
	assert.Equal(t, 10.0, gaugeValue(t, h.inst.TickLag))

	h.clock.Step(45 * time.Second) // three intervals pass during the second
	h.clock.Step(time.Second)
	gate.release <- struct{}{}
	<-gate.entered // one pass follows, 1 s late
	assert.Equal(t, 1.0, gaugeValue(t, h.inst.TickLag))
	gate.release <- struct{}{}
	stop()

	assert.Equal(t, 3, gate.calls, "missed passes are not made up")
	assert.Equal(t, int32(1), gate.maxInFlight.Load(), "passes never overlap")
}

// Liveness fails once three intervals pass without a completed pass, be it
// the first or a later one that hangs.
func TestHealthFailsAfterThreeMissedIntervals(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage(names, 50)
	h := build(t, setup{config: onInterval, resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	assert.NoError(t, h.ctl.Healthy(), "a standby is healthy")
	stop := runLoop(h)

	<-gate.entered // the first pass hangs
	h.clock.Step(45 * time.Second)
	assert.NoError(t, h.ctl.Healthy(), "three intervals are allowed")
	h.clock.Step(time.Second)
	assert.EqualError(t, h.ctl.Healthy(), "no tick completed for 46s (interval 15s)")

	gate.release <- struct{}{}
	<-gate.entered // the first pass completed; the second hangs
	assert.NoError(t, h.ctl.Healthy())
	h.clock.Step(45 * time.Second)
	assert.NoError(t, h.ctl.Healthy())
	h.clock.Step(time.Second)
	assert.EqualError(t, h.ctl.Healthy(), "no tick completed for 46s (interval 15s)")
	assert.True(t, h.ctl.Ready())

	stop() // the hanging pass ends with the loop
	assert.NoError(t, h.ctl.Healthy(), "a replica that no longer leads is healthy")
}

// Losing the leadership ends the context the loop runs with: the loop
// returns and no pass follows. (Run's leader election runs on real time; its
// callbacks only start and stop this loop.)
func TestLoopStopsWhenLeadershipEnds(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage(names, 100)
	h := build(t, setup{config: onInterval, resources: gate}, append(pods, deployment("shop", 2, cpuApp))...)
	stop := runLoop(h)
	<-gate.entered
	gate.release <- struct{}{}
	require.Eventually(t, func() bool { return h.ctl.lastTick.Load() != 0 }, 5*time.Second, time.Millisecond, "the first pass completes")
	// Its write is made beside the passes.
	require.Eventually(t, func() bool { return len(h.mutations()) > 0 }, 5*time.Second, time.Millisecond, "the first pass's write")
	stop()
	require.False(t, h.ctl.leading.Load())
	writes := h.mutations()
	require.Equal(t, []string{"patch deployments/scale apps/shop"}, writes)

	h.clock.Step(10 * 15 * time.Second)
	assert.Equal(t, 1, gate.calls, "no pass after the leadership ended")
	assert.Equal(t, writes, h.mutations())
	assert.NoError(t, h.ctl.Healthy())
}

// With leader election, Run takes the Lease before its first pass and
// releases it when it stops, so that a standby takes over at once. The Lease
// and the scale are all it writes. (Losing the Lease is driven by real-time
// renewals; the loop's side of it is TestLoopStopsWhenLeadershipEnds.)
func TestRunDecidesWhileHoldingTheLease(t *testing.T) {
	pods, names := podsFor("shop", 2)
	gate := newGatedUsage(names, 100)
	h := build(t, setup{resources: gate, config: func(c *config.Config) {
		onInterval(c)
		c.LeaderElection.Enabled = true
		c.LeaderElection.Namespace = "spinscale"
	}}, append(pods, deployment("shop", 2, cpuApp))...)
	name := h.ctl.cfg.LeaderElection.LeaseName
	lease := "leases spinscale/" + name

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.ctl.Run(ctx) }()
	<-gate.entered
	held, err := h.client.CoordinationV1().Leases("spinscale").Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err, "the Lease is taken before the first pass")
	assert.Equal(t, "test", ptr.Deref(held.Spec.HolderIdentity, ""))
	assert.Equal(t, 1.0, gaugeValue(t, h.inst.Leader))
	gate.release <- struct{}{}
	h.clock.Step(15 * time.Second)
	<-gate.entered // the first pass is complete
	// Its write is made beside the passes.
	require.Eventually(t, func() bool { return slices.Contains(h.mutations(), "patch deployments/scale apps/shop") },
		5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done, "stopping is not a loss of leadership")

	writes := h.mutations()
	require.NotEmpty(t, writes)
	assert.Equal(t, "create "+lease, writes[0])
	assert.Contains(t, writes, "patch deployments/scale apps/shop")
	assert.Equal(t, "update "+lease, writes[len(writes)-1], "released on the way out")
	for _, w := range writes {
		if w != "patch deployments/scale apps/shop" {
			assert.Contains(t, []string{"create " + lease, "update " + lease}, w, "the Lease and the scale are all that is written")
		}
	}
	released, err := h.client.CoordinationV1().Leases("spinscale").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, ptr.Deref(released.Spec.HolderIdentity, ""))
	assert.Zero(t, gaugeValue(t, h.inst.Leader))
}
