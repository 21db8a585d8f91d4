package simulate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

const httpAnnotations = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "20"
  spinscale.dev/http-target-concurrency: "10"
state: {replicas: 2}
`

const twoPods = `
    pods: [{name: a}, {name: b}]
`

// A step's HTTP counts hold for every second until the next step that sets
// them; the windows average the seconds counted, and panic mode is replayed.
func TestHTTPStepsReplayTheKPA(t *testing.T) {
	sc := load(t, httpAnnotations+`
steps:
  - at: 0
    http: {concurrency: 15, requests: 30}`+twoPods+`
  - at: 10
    http: {concurrency: 100, requests: 200}`+twoPods+`
  - at: 15`+twoPods)
	res := sc.Run()
	require.Len(t, res, 3)
	h := res[0].Decision.Metrics[0].HTTP
	require.NotNil(t, h, res[0].Decision.Reason())
	assert.InDelta(t, 15.0, h.Stable, 1e-9)
	assert.InDelta(t, 15.0, h.Panic, 1e-9)
	assert.Equal(t, int32(2), res[0].Decision.DesiredReplicas)

	// Seconds 0..9 at 15, second 10 at 100.
	h = res[1].Decision.Metrics[0].HTTP
	assert.InDelta(t, 250.0/11, h.Stable, 1e-9)
	assert.InDelta(t, 175.0/6, h.Panic, 1e-9)
	assert.False(t, h.Panicking, "3 pods over 2 ready is below the threshold")

	// Seconds 10..15 at 100: panic 100, 10 pods over 2 ready.
	h = res[2].Decision.Metrics[0].HTTP
	assert.InDelta(t, 750.0/16, h.Stable, 1e-9)
	assert.InDelta(t, 100.0, h.Panic, 1e-9)
	assert.True(t, h.Panicking)
	assert.Equal(t, int32(10), res[2].Decision.Recommendation)
	assert.Equal(t, int64(1200), h.PanicRequests)
}

// Before any step sets counts, HTTP metrics fail as with no activator.
func TestHTTPStepsMissingCounts(t *testing.T) {
	sc := load(t, httpAnnotations+`
steps:
  - at: 0`+twoPods)
	res := sc.Run()
	require.Len(t, res, 1)
	assert.ErrorIs(t, res[0].Decision.Metrics[0].Err, recommender.ErrNoData)
	assert.Equal(t, recommender.StageMissingMetrics, res[0].Decision.LimitedBy)
}

func TestHTTPStepsErrors(t *testing.T) {
	got := strings.Join(problems(t, httpAnnotations+`
steps:
  - at: 0
    http: {requests: -1, concurrency: x}`+twoPods), "\n")
	assert.Contains(t, got, "steps[0].http.requests")
	assert.Contains(t, got, "steps[0].http.concurrency")

	got = strings.Join(problems(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/max-replicas: "20"
  spinscale.dev/target-cpu-utilization: "50"
state: {replicas: 2}
steps:
  - at: 0
    http: {requests: 1}`+twoPods), "\n")
	assert.Contains(t, got, "steps[0].http")
	assert.Contains(t, got, "the app has no HTTP target")
}
