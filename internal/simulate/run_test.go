package simulate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

// busy is one step of two pods at 250% of their cpu request.
const busy = `
    pods:
      - {name: a, containers: [{requests: {cpu: 100m}, usage: {cpu: 250m}}]}
      - {name: b, containers: [{requests: {cpu: 100m}, usage: {cpu: 250m}}]}
`

// TestRunCommitsEveryDecision: simulate applies each decision, so on the
// behavior path the next step's rate limit counts the previous scale-up.
// With the v2 defaults (max(4 pods, 100%) per 15 s), 2 → 6 at t=0 leaves no
// room at t=5: the period started at 2.
func TestRunCommitsEveryDecision(t *testing.T) {
	sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "20"
  spinscale.dev/target-cpu-utilization: "50"
  spinscale.dev/behavior: "{}"
state: {replicas: 2}
steps:
  - at: 0`+busy+`
  - at: 5`+busy+`
  - at: 15`+busy)
	res := sc.Run()
	require.Len(t, res, 3)
	for _, r := range res {
		assert.True(t, r.Decision.Behavior)
	}
	assert.Equal(t, int32(6), res[0].Decision.DesiredReplicas)
	assert.Equal(t, recommender.StageScaleUpPolicy, res[0].Decision.LimitedBy)
	assert.Equal(t, int32(6), res[1].Decision.CurrentReplicas)
	assert.Equal(t, int32(6), res[1].Decision.DesiredReplicas, "the scale-up of t=0 is inside the 15 s period")
	assert.Equal(t, recommender.StageScaleUpPolicy, res[1].Decision.LimitedBy)
	// At t=15 the event is exactly one period old and no longer counts: the
	// limit is max(6+4, 2×6) = 12, above the proposal ceil(5 × 2 ready) = 10.
	assert.Equal(t, int32(10), res[2].Decision.DesiredReplicas)
	assert.Equal(t, recommender.StageNone, res[2].Decision.LimitedBy)
}

// TestRunUsesStateScaleEvents: an event counts for a policy period while
// secondsAgo < periodSeconds.
func TestRunUsesStateScaleEvents(t *testing.T) {
	doc := func(ago string) string {
		return `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "20"
  spinscale.dev/target-cpu-utilization: "50"
  spinscale.dev/behavior: "{}"
state:
  replicas: 2
  scaleEvents: [{secondsAgo: ` + ago + `, change: 1}]
steps:
  - at: 0` + busy
	}
	// Inside the period: it started at 1, limit max(1+4, 2×1) = 5.
	assert.Equal(t, int32(5), load(t, doc("14")).Run()[0].Decision.DesiredReplicas)
	// Exactly one period ago: limit max(2+4, 2×2) = 6.
	assert.Equal(t, int32(6), load(t, doc("15")).Run()[0].Decision.DesiredReplicas)
}

// TestRunDoesNotModifyTheScenario: Run may be called again with the same
// outcome.
func TestRunDoesNotModifyTheScenario(t *testing.T) {
	sc := load(t, cpuApp+`
state: {replicas: 2, recommendations: [{secondsAgo: 10, replicas: 2}]}
steps:
  - at: 0`+busy+`
  - at: 400`+busy)
	first := sc.Run()
	assert.Equal(t, first, sc.Run())
}
