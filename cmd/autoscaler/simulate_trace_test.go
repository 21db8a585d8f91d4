package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// summaryJSON is the contract of the load-trace summary line (DESIGN.md §7),
// spelled out here so that renaming a field fails a test.
type summaryJSON struct {
	PodSeconds                 *float64 `json:"podSeconds"`
	OraclePodSeconds           *float64 `json:"oraclePodSeconds"`
	CostRatio                  *float64 `json:"costRatio"`
	UnderProvisionedPodSeconds *float64 `json:"underProvisionedPodSeconds"`
	UnderProvisionedSeconds    *float64 `json:"underProvisionedSeconds"`
	OverProvisionedPodSeconds  *float64 `json:"overProvisionedPodSeconds"`
	ScaleActions               *int     `json:"scaleActions"`
	Reversals                  *int     `json:"reversals"`
	FirstScaleUpSeconds        *float64 `json:"firstScaleUpSeconds"`
}

// TestSimulateLoadTrace runs a standard scenario, whose traceFile is
// relative to the scenario's directory, in every output form.
func TestSimulateLoadTrace(t *testing.T) {
	const scenario = "../../bench/scenarios/step-10x.yaml"

	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, runSimulate([]string{"--scenario", scenario, "-o", "json"}, &stdout, &stderr), stderr.String())
		assert.Empty(t, stderr.String())
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		require.Len(t, lines, 1200/15+1, "one object per tick, then the summary")
		var step stepJSON
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &step))
		require.NotNil(t, step.At)
		assert.Equal(t, 0.0, *step.At)
		assert.NotEmpty(t, step.Reason)

		dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
		dec.DisallowUnknownFields()
		var last struct {
			Summary summaryJSON `json:"summary"`
		}
		require.NoError(t, dec.Decode(&last), "exactly the summary's fields")
		s := last.Summary
		for name, v := range map[string]any{"podSeconds": s.PodSeconds, "oraclePodSeconds": s.OraclePodSeconds, "costRatio": s.CostRatio,
			"underProvisionedPodSeconds": s.UnderProvisionedPodSeconds, "underProvisionedSeconds": s.UnderProvisionedSeconds,
			"overProvisionedPodSeconds": s.OverProvisionedPodSeconds, "scaleActions": s.ScaleActions, "reversals": s.Reversals,
			"firstScaleUpSeconds": s.FirstScaleUpSeconds} {
			assert.NotNil(t, v, name)
		}
		require.NotNil(t, s.FirstScaleUpSeconds)
		assert.Equal(t, 75.0, *s.FirstScaleUpSeconds, "the tick at 75 is the first to see the step of 60")
	})

	t.Run("table", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, runSimulate([]string{"--scenario", scenario}, &stdout, &stderr), stderr.String())
		assert.Contains(t, stdout.String(), "cost ratio")
	})

	t.Run("csv and plot", func(t *testing.T) {
		plot := filepath.Join(t.TempDir(), "step.png")
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, runSimulate([]string{"--scenario", scenario, "-o", "csv", "--plot", plot}, &stdout, &stderr), stderr.String())
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		require.Len(t, lines, 1201)
		assert.True(t, strings.HasPrefix(lines[0], "t,load,"), lines[0])
		f, err := os.Open(plot)
		require.NoError(t, err)
		defer f.Close()
		_, err = png.Decode(f)
		assert.NoError(t, err)
	})

	t.Run("csv needs a load trace", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, exitUsage, runSimulate([]string{"--scenario", "../../examples/cpu-load-gen.yaml", "-o", "csv"}, &stdout, &stderr))
		assert.Contains(t, stderr.String(), "need a load-trace scenario")
		assert.Empty(t, stdout.String())
	})

	t.Run("missing trace file", func(t *testing.T) {
		dir := t.TempDir()
		doc := `
annotations: {spinscale.dev/enabled: "true", spinscale.dev/max-replicas: "5", spinscale.dev/prometheus-query: "q", spinscale.dev/prometheus-target-average-value: "100"}
workload: {capacityPerPod: 150}
traceFile: nowhere.csv
`
		path := filepath.Join(dir, "s.yaml")
		require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
		var stdout, stderr bytes.Buffer
		assert.Equal(t, exitUsage, runSimulate([]string{"--scenario", path}, &stdout, &stderr))
		assert.Contains(t, stderr.String(), filepath.Join(dir, "nowhere.csv"))
	})
}
