package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchRunsEveryStandardScenario keeps the standard scenarios valid: one
// table per scenario, a row per variant and the oracle's.
func TestBenchRunsEveryStandardScenario(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, "../scenarios"))
	text := out.String()
	for _, name := range []string{"step-10x", "ramp-120s", "ramp-240s", "connections-40", "diurnal", "spikes", "sawtooth",
		"nasa-busiest-hour", "nasa-steepest-rise", "twitter-busiest-hour", "twitter-steepest-rise"} {
		i := strings.Index(text, "### "+name+"\n")
		require.GreaterOrEqual(t, i, 0, "a table for %s", name)
		rows := 0
		for _, line := range strings.Split(text[i:], "\n")[1:] {
			if strings.HasPrefix(line, "### ") {
				break
			}
			if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| profile") {
				rows++
			}
		}
		assert.Equal(t, len(variants)+1, rows, name)
	}
	// The spinscale profile's promise: every target met on the standard
	// traces, in the same run as the yardstick.
	require.Contains(t, text, "### Targets")
	assert.Regexp(t, `(?m)^\| spinscale \| [0-9]+ \([0-9.]+×\) \| [0-9.]+ \([0-9.]+×\) \| [0-9]+ \| none \|$`, text)
	// And lower targets are not the way to meet them.
	assert.Regexp(t, `(?m)^\| hpa, target 55% \|.*total pod-seconds`, text)
}

func TestVariantLowersTheTarget(t *testing.T) {
	doc := []byte(`
annotations:
  spinscale.dev/prometheus-target-average-value: "350"
workload: {capacityPerPod: 500}
sim: {tickSeconds: 30}
`)
	out, err := variantOf(doc, variant{name: "x", profile: "hpa", targetPercent: 55})
	require.NoError(t, err)
	assert.Contains(t, string(out), `spinscale.dev/prometheus-target-average-value: "275"`)
	assert.Contains(t, string(out), "tickSeconds: 15")
	assert.Contains(t, string(out), "spinscale.dev/profile: hpa")

	_, err = variantOf([]byte(`annotations: {spinscale.dev/behavior: "{}"}`), variants[0])
	assert.ErrorContains(t, err, "behavior path")
}
