package integration

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The shipped default profile is spinscale. An app at 6 pods under the load
// of 6 (300m of cpu against 50% of 100m) is seen first: nothing scales down
// for one scale-down window after that (150 s here, as HPA would). Then the
// load falls to what 1 pod needs (30m). The scale-down window would hold the
// 6 pods for 150 s after the last high reading; the drop window lets the
// sharp drop through after 60 s of low readings, gradually, at most
// max(20%, 1 pod) per 15 s: 6 → 4 → 3 → 2. From 2, going to 1 is not a drop
// of 60% or more, so the last step waits for the scale-down window like
// noise.
func TestDefaultProfileReleasesASharpDropEarly(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 6, cpuAnnotations(1, 10, 50)))
	l := startLoad(t, ns, "shop", 300)
	waitPodMetrics(t, ns, "shop", 6, 2*time.Minute)
	p := startAutoscaler(t, ns, "--set", "profile=default", "--set", "downscaleStabilization=150s")
	holdReplicas(t, ns, "shop", 6, 150*time.Second, "at its load, and seen first: no scale-down for one window")
	l.set(30)
	start := time.Now()
	var first int32
	waitReplicas(t, ns, "shop", 4*time.Minute, "the first scale-down", func(r int32) bool {
		if r < 6 && first == 0 {
			first = r
		}
		return r < 6
	})
	held := time.Since(start)
	assert.GreaterOrEqual(t, held, 55*time.Second, "scaled down inside the drop window")
	assert.Less(t, held, 4*time.Minute, "waited for the scale-down window after the drop")
	assert.Less(t, held, 150*time.Second, "waited for the 150 s scale-down window after the drop")
	assert.Equal(t, int32(4), first, "6 × (1 - 20%%) = 4.8, truncated: a gradual first step")
	waitEvent(t, ns, "shop", "SpinscaleRescaled", "6 → 4", 30*time.Second)
	waitReplicas(t, ns, "shop", 2*time.Minute, "down to 2", func(r int32) bool { return r == 2 })
	holdReplicas(t, ns, "shop", 2, 30*time.Second, "1 of 2 is no sharp drop: it waits for the window")
	assert.Contains(t, p.output(), `"profile":"spinscale"`, "the start-up log names the default profile")
	assert.Contains(t, p.output(), "sharp drop", "the decision says why it did not wait for the window")
	t.Logf("held %s, first step to %d", held.Round(time.Second), first)
}
