package simulate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

const apiApp = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "20"
  spinscale.dev/metrics: |
    - {name: packets, type: pods, metric: packets-per-second, targetAverageValue: 1k}
    - {name: rps, type: object, metric: requests-per-second, describedObject: {kind: Ingress, name: main-route}, targetValue: 10k}
    - {name: queue, type: external, metric: queue_messages_ready, selector: queue=worker_tasks, targetAverageValue: 30}
state: {replicas: 2}
`

const twoPods = `
    pods: [{name: a}, {name: b}]`

// Scenarios give the metrics APIs' answers by metric name; each goes
// through the source's mapping and HPA's rules.
func TestMetricsAPIsInScenarios(t *testing.T) {
	sc := load(t, apiApp+`steps:
  - at: 0`+twoPods+`
    metricsAPIs: {packets: {a: 1500, b: 2500}, rps: 12000, queue: 90}
  - at: 15`+twoPods+`
    replicas: 2
    metricsAPIs: {packets: {error: "service unavailable"}, rps: null}
`)
	res := sc.Run()
	require.Len(t, res, 2)
	m := res[0].Decision.Metrics
	require.Len(t, m, 3)
	// pods: average 2000 / 1000 × 2 = 4; object: 12000 / 10000 × 2 ready
	// = 2.4 → 3; external: ceil(90 / 30) = 3.
	assert.Equal(t, []int32{4, 3, 3}, []int32{m[0].Proposal, m[1].Proposal, m[2].Proposal})
	assert.Equal(t, int32(4), res[0].Decision.DesiredReplicas)

	m = res[1].Decision.Metrics
	assert.Equal(t, "custom.metrics.k8s.io unavailable", recommender.Cause(m[0].Err))
	assert.ErrorIs(t, m[1].Err, recommender.ErrNoData)
	assert.Contains(t, m[2].Err.Error(), "no answer for metric queue in this step")
	assert.Equal(t, int32(2), res[1].Decision.DesiredReplicas, "failed metrics never scale down")
}

func TestMetricsAPIsInScenariosValidated(t *testing.T) {
	for _, tc := range []struct {
		name, step, want string
	}{
		{"unknown name", `metricsAPIs: {packetz: {a: 1}}`, `steps[0].metricsAPIs.packetz: Not found: "packetz": the app has no metric of type pods, object or external of this name (it has: packets, rps, queue)`},
		{"pods given one number", `metricsAPIs: {packets: 5}`, `steps[0].metricsAPIs.packets: Invalid value: "5": a pods metric's answer is one value per pod`},
		{"external given per-pod values", `metricsAPIs: {queue: {a: 1}}`, `steps[0].metricsAPIs.queue: Invalid value: an external metric's answer is one number, not per-pod values`},
		{"not a number", `metricsAPIs: {rps: fast}`, `steps[0].metricsAPIs.rps: Invalid value: "fast": not a result`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(apiApp + "steps:\n  - at: 0" + twoPods + "\n    " + tc.step + "\n"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
