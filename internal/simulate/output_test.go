package simulate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONOutput(t *testing.T) {
	sc := load(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-cpu-utilization: "50"
  spinscale.dev/metrics: |
    - {name: rps, query: "sum(rate(requests[1m]))", targetValue: "100"}
state: {replicas: 3, recommendations: []}
steps:
  - pods:
      - {name: a, containers: [{requests: {cpu: 100m}, usage: {cpu: 60m}}]}
      - {name: b, containers: [{requests: {cpu: 100m}, usage: {cpu: 70m}}]}
      - {name: c, containers: [{requests: {cpu: 100m}, usage: {cpu: 60m}}]}
    prometheus: {rps: {error: "bad gateway"}}
  - replicas: 0
`)
	var out bytes.Buffer
	require.NoError(t, WriteJSON(&out, sc.Run()))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 2, "one object per step, nothing else")

	var step map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &step))
	// 190m of 300m = 63%: ratio 1.26, ceil(1.26 × 3) = 4. The failed rps
	// metric does not block a scale-up.
	assert.Equal(t, 4.0, step["desiredReplicas"])
	assert.Equal(t, "scale-up", step["action"])
	assert.Equal(t, false, step["behavior"])
	metrics := step["metrics"].([]any)
	require.Len(t, metrics, 2)
	cpu := metrics[0].(map[string]any)
	assert.Equal(t, "resource", cpu["type"])
	assert.Equal(t, 63.0, cpu["utilization"])
	assert.Equal(t, 63.0, cpu["current"])
	assert.Equal(t, 50.0, cpu["target"])
	assert.NotContains(t, cpu, "error")
	rps := metrics[1].(map[string]any)
	assert.Equal(t, `prometheus unavailable: query "sum(rate(requests[1m]))": bad gateway`, rps["error"], "the live source's message")
	assert.Equal(t, 100.0, rps["target"])
	for _, k := range []string{"current", "value", "proposal", "ratio"} {
		assert.NotContains(t, rps, k, "a failed metric has no %s", k)
	}

	require.NoError(t, json.Unmarshal([]byte(lines[1]), &step))
	assert.Equal(t, "paused", step["limitedBy"])
	assert.Equal(t, 0.0, step["desiredReplicas"])
	assert.Equal(t, []any{}, step["metrics"], "an empty list, not null")
}

func TestTableOutput(t *testing.T) {
	sc := load(t, cpuApp+`
state: {replicas: 2}
steps:
  - pods:
      - {name: a, containers: [{requests: {cpu: 100m}, usage: {cpu: 60m}}]}
  - {}
`)
	var out bytes.Buffer
	require.NoError(t, WriteTable(&out, sc.Run()))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, []string{"AT", "REPLICAS", "TARGETS", "DESIRED", "ACTION", "LIMITED-BY", "REASON"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"0", "2", "cpu:", "60%/50%", "2"}, strings.Fields(lines[1])[:5])
	assert.Contains(t, lines[2], "cpu: <unknown>/50%")
	assert.Contains(t, lines[2], "missing-metrics")
}

func TestParseFormat(t *testing.T) {
	f, err := ParseFormat("json")
	require.NoError(t, err)
	assert.Equal(t, FormatJSON, f)
	_, err = ParseFormat("yaml")
	assert.ErrorContains(t, err, "allowed table, json")
}
