package simulate

import (
	"bytes"
	"encoding/json"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTraceJSONOutput: one object per tick with the pod-level step's
// fields, then a summary line with exactly the fields of DESIGN.md §7.
func TestTraceJSONOutput(t *testing.T) {
	res := loadTraceScenario(t, promStep).Simulate()
	var out bytes.Buffer
	require.NoError(t, WriteTraceJSON(&out, res))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, len(res.Ticks)+1)

	var tick map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[3]), &tick))
	for _, k := range []string{"at", "currentReplicas", "desiredReplicas", "action", "metrics", "recommendation", "limitedBy", "reason", "load", "pods", "ready", "oracle"} {
		assert.Contains(t, tick, k)
	}
	assert.Equal(t, 45.0, tick["at"])
	assert.Equal(t, 2.0, tick["desiredReplicas"])
	assert.Equal(t, 1000.0, tick["load"])
	assert.Equal(t, 10.0, tick["oracle"])

	var last map[string]map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
	require.Len(t, last, 1)
	keys := make([]string, 0)
	for k := range last["summary"] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	assert.Equal(t, []string{"costRatio", "firstScaleUpSeconds", "oraclePodSeconds", "overProvisionedPodSeconds", "podSeconds",
		"reversals", "scaleActions", "underProvisionedPodSeconds", "underProvisionedSeconds"}, keys)
	assert.Equal(t, `{"summary":{"podSeconds":285,"oraclePodSeconds":930,"costRatio":0.306452,"underProvisionedPodSeconds":385,"underProvisionedSeconds":90,"overProvisionedPodSeconds":0,"scaleActions":4,"reversals":0,"firstScaleUpSeconds":45}}`,
		lines[len(lines)-1])
}

func TestTraceJSONSummaryWithoutScaleUp(t *testing.T) {
	res := loadTraceScenario(t, rpsApp+`
workload: {capacityPerPod: 500}
trace: [{at: 0, load: 100}, {at: 60, load: 100}]
`).Simulate()
	var out bytes.Buffer
	require.NoError(t, WriteTraceJSON(&out, res))
	assert.Contains(t, out.String(), `"firstScaleUpSeconds":null}}`)
}

func TestTraceTableOutput(t *testing.T) {
	res := loadTraceScenario(t, promStep).Simulate()
	var out bytes.Buffer
	require.NoError(t, WriteTraceTable(&out, res))
	text := out.String()
	lines := strings.Split(text, "\n")
	assert.Equal(t, []string{"AT", "LOAD", "PODS", "READY", "ORACLE", "TARGETS", "DESIRED", "ACTION", "LIMITED-BY", "REASON"}, strings.Fields(lines[0]))
	assert.Contains(t, lines[4], "scale-up")
	assert.Contains(t, text, "cost ratio 0.306")
	assert.Contains(t, text, "41.4% of the oracle's pod-seconds")
	assert.Regexp(t, `first scale-up \(s\)\s+45\s+30`, text)
}

func TestTraceCSVOutput(t *testing.T) {
	ts := loadTraceScenario(t, promStep)
	res := ts.Simulate()
	var out bytes.Buffer
	require.NoError(t, WriteTraceCSV(&out, res, ts.Workload.CapacityPerPod, ts.Workload.TargetLoadPerPod))
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 121, "a header and one row per second")
	assert.Equal(t, "t,load,demandPods,served,unserved,capacity,replicas,running,ready,oracle,recommendation,desired,metric", lines[0])
	assert.Equal(t, "0,100,1,100,0,150,1,1,1,1,1,1,100", lines[1])
	// t=50: the tick at 45 asked for 2; the new pod is still starting.
	assert.Equal(t, "50,1000,10,150,850,150,2,1,1,10,2,2,150", lines[51])
}

func TestWritePlot(t *testing.T) {
	ts := loadTraceScenario(t, cpuStep)
	var out bytes.Buffer
	require.NoError(t, WritePlot(&out, ts.Simulate(), ts.Workload.CapacityPerPod, "cpu step"))
	img, err := png.Decode(&out)
	require.NoError(t, err)
	assert.Equal(t, plotW, img.Bounds().Dx())
	assert.Equal(t, plotH, img.Bounds().Dy())
	// Something was drawn in the load colour.
	found := false
	for y := 0; y < plotH && !found; y++ {
		for x := 0; x < plotW; x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == uint32(colCapacity.R) && g>>8 == uint32(colCapacity.G) && b>>8 == uint32(colCapacity.B) {
				found = true
				break
			}
		}
	}
	assert.True(t, found, "the capacity line is drawn")
}

func TestTimeAxis(t *testing.T) {
	a := timeAxis(7200)
	assert.Equal(t, "min", a.unit)
	assert.Equal(t, "120", a.label(a.ticks[len(a.ticks)-1]))
}
