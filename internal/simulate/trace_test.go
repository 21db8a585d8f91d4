package simulate

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const rpsApp = `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: "sum(rate(requests_total[1m]))"
  spinscale.dev/prometheus-target-average-value: "400"
`

func TestLoadTraceDefaults(t *testing.T) {
	ts := loadTraceScenario(t, rpsApp+`
config: {interval: 10s}
workload: {capacityPerPod: 578}
trace: [{at: 0, load: 900}, {at: 120.5, load: 1400}]
`)
	assert.Equal(t, 400.0, ts.Workload.TargetLoadPerPod, "derived from the per-pod Prometheus target")
	assert.Equal(t, int32(3), ts.Workload.InitialReplicas, "sized for the first load: ceil(900/400)")
	assert.Equal(t, SimSettings{TickSeconds: 10, MetricResolutionSeconds: 15, DurationSeconds: 121, PrometheusResult: PrometheusScalar}, ts.Sim)
	assert.Equal(t, int64(0), ts.Workload.StartupSeconds)
	assert.NotEmpty(t, ts.Workload.CPURequest.MissingIn, "no cpu request")
}

func TestLoadTraceReportsEveryProblemWithItsPath(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"capacity required", rpsApp + `
workload: {}
trace: [{at: 0, load: 1}]
sim: {durationSeconds: 10}`, []string{"workload.capacityPerPod: Required value"}},
		{"workload required", rpsApp + `
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"workload: Required value"}},
		{"memory is not modelled", `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/target-memory-utilization: "60"
workload: {capacityPerPod: 10, targetLoadPerPod: 5}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"annotations[spinscale.dev/target-memory-utilization]: Forbidden: memory is not modelled"}},
		{"metrics APIs are not modelled", `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/max-replicas: "10"
  spinscale.dev/metrics: "- {name: queue, type: external, metric: q, targetValue: 5}"
workload: {capacityPerPod: 10, targetLoadPerPod: 5}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"annotations[spinscale.dev/metrics][queue]: Forbidden: a metric of type external is not modelled by load-trace scenarios"}},
		{"cpu needs cpuPerUnit and a request", cpuApp + `
workload: {capacityPerPod: 10, targetLoadPerPod: 5}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"workload.requests.cpu: Required value", "workload.cpuPerUnit: Required value"}},
		{"target load not derivable", `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/profile: hpa
  spinscale.dev/max-replicas: "10"
  spinscale.dev/prometheus-query: "sum(rate(requests_total[1m]))"
  spinscale.dev/prometheus-target-value: "400"
workload: {capacityPerPod: 10}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"workload.targetLoadPerPod: Required value"}},
		{"fields", rpsApp + `
workload: {capacityPerPod: -1, targetLoadPerPod: 0, startupSeconds: 1.5, initialReplicas: 0, cpuPerUnit: abc, warmup: 3}
sim: {tickSeconds: 0, metricLagSeconds: -1, prometheusResult: sum, speed: 2}
trace: [{at: 10, load: 1}, {at: 5, load: -1}, {at: 20}]`, []string{
			"workload.capacityPerPod: Invalid value: -1: out of range",
			"workload.targetLoadPerPod: Invalid value: 0: out of range",
			"workload.startupSeconds: Invalid value: 1.5: not a whole number of seconds",
			"workload.initialReplicas: Invalid value: 0: out of range",
			`workload.cpuPerUnit: Invalid value: "abc": not a quantity`,
			"workload.warmup: Forbidden: unknown field (allowed: targetLoadPerPod,",
			"sim.tickSeconds: Invalid value: 0: out of range",
			"sim.metricLagSeconds: Invalid value: -1: out of range",
			`sim.prometheusResult: Unsupported value: "sum": not a result shape`,
			"sim.speed: Forbidden: unknown field (allowed: tickSeconds,",
			"trace[1].load: Invalid value: -1: out of range",
			"trace[2].load: Required value",
		}},
		{"out of order", rpsApp + `
workload: {capacityPerPod: 500}
trace: [{at: 10, load: 1}, {at: 5, load: 1}]`, []string{"trace[1].at: Invalid value: 5: before the previous point's at (10)"}},
		{"steps and state do not belong", rpsApp + `
workload: {capacityPerPod: 500}
state: {replicas: 1}
steps: [{}]
trace: [{at: 0, load: 1}, {at: 10, load: 1}]`, []string{"state: Forbidden: not part of a load-trace scenario", "steps: Forbidden: not part of a load-trace scenario"}},
		{"both trace forms", rpsApp + `
workload: {capacityPerPod: 500}
trace: [{at: 0, load: 1}]
traceFile: t.csv`, []string{"trace: Forbidden: set either trace or traceFile, not both"}},
		{"no trace", rpsApp + `
workload: {capacityPerPod: 500}`, []string{"trace: Required value"}},
		{"empty trace", rpsApp + `
workload: {capacityPerPod: 500}
trace: []`, []string{"trace: Required value: must list at least one point"}},
		{"a trace ending at 0 needs a duration", rpsApp + `
workload: {capacityPerPod: 500}
trace: [{at: 0, load: 1}]`, []string{"sim.durationSeconds: Required value: the trace ends at 0"}},
		{"no file system", rpsApp + `
workload: {capacityPerPod: 500}
traceFile: load.csv`, []string{`traceFile: Invalid value: "load.csv": this scenario was read without a file system`}},
		{"unknown top-level field", rpsApp + `
workload: {capacityPerPod: 500}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]
simulation: {}`, []string{"simulation: Forbidden: unknown field (allowed: annotations, config, workload, sim, trace, traceFile)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.doc)
			for _, w := range tc.want {
				assert.True(t, containsPrefix(got, w), "want %q in:\n%v", w, got)
			}
		})
	}
}

func TestLoadTraceWarnsWhenPodsSaturateBeforeTheTarget(t *testing.T) {
	sc := load(t, rpsApp+`
workload: {capacityPerPod: 300}
trace: [{at: 0, load: 1}, {at: 10, load: 1}]
`)
	require.Len(t, sc.Warnings, 1)
	assert.Contains(t, sc.Warnings[0], "capacityPerPod (300) is below targetLoadPerPod (400)")
}

func TestLoadTraceFile(t *testing.T) {
	doc := rpsApp + `
workload: {capacityPerPod: 500}
traceFile: traces/load.csv
`
	var asked string
	read := func(name string) ([]byte, error) {
		asked = name
		return []byte("# provenance: made up\nat,load\n0,100\n\n60,1000\n"), nil
	}
	sc, err := LoadWith([]byte(doc), Options{ReadFile: read})
	require.NoError(t, err)
	assert.Equal(t, "traces/load.csv", asked, "the caller resolves the name against the scenario's directory")
	assert.Equal(t, []TracePoint{{0, 100}, {60, 1000}}, sc.Trace.Trace)
	assert.Equal(t, int64(60), sc.Trace.Sim.DurationSeconds)

	_, err = LoadWith([]byte(doc), Options{ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist }})
	assert.EqualError(t, err, `invalid scenario: traceFile: Invalid value: "traces/load.csv": file does not exist`)

	_, err = LoadWith([]byte(doc), Options{ReadFile: func(string) ([]byte, error) { return []byte("at,load\n0,1\n5;2\n"), nil }})
	assert.EqualError(t, err, `invalid scenario: traceFile: Invalid value: "traces/load.csv": line 3: "5;2": want two fields, at,load`)
}

func TestParseTraceCSV(t *testing.T) {
	pts, problems := ParseTraceCSV([]byte("0, 1.5\n10,2\r\n10,20\n"))
	assert.Empty(t, problems)
	assert.Equal(t, []TracePoint{{0, 1.5}, {10, 2}, {10, 20}}, pts, "no header, CRLF, a step")

	_, problems = ParseTraceCSV([]byte("at,load\n5,1\nx,2\n6,-1\n1,1\n7,NaN\n"))
	assert.Equal(t, []string{
		`line 3: at "x" is not a number of seconds from 0 to 1000000000`,
		`line 4: load "-1" is not a number from 0 to 1e15`,
		`line 5: at 1 is before the previous line's (5): lines must be in time order`,
		`line 6: load "NaN" is not a number from 0 to 1e15`,
	}, problems)

	_, problems = ParseTraceCSV([]byte("# nothing\nat,load\n"))
	assert.Equal(t, []string{"no data: want lines at,load"}, problems)
}

// TestTracePerPodPrometheus: with one series per pod, a pod Ready for less
// than one window has no series yet: it is missing, and on a scale-up it
// counts as 0, which here flips the direction: hold.
func TestTracePerPodPrometheus(t *testing.T) {
	ts := loadTraceScenario(t, promStep+"  - {at: 120, load: 1000}\n")
	ts.Sim.PrometheusResult = PrometheusPerPod
	res := ts.Simulate()
	for _, tc := range []struct {
		tick             int
		desired          int32
		ready, missing   int
		currentMilliLoad int64
	}{
		{3, 2, 1, 0, 150_000}, // t=45: one pod at 150
		{4, 2, 1, 1, 150_000}, // t=60: the new pod has no series yet
		{5, 3, 2, 0, 150_000}, // t=75
	} {
		d := res.Ticks[tc.tick].Decision
		m := d.Metrics[0]
		assert.Equal(t, "pods", m.Kind)
		assert.Equal(t, tc.desired, d.DesiredReplicas, "tick %d: %s", tc.tick, d.Reason())
		assert.Equal(t, tc.ready, m.ReadyPods, "tick %d", tc.tick)
		assert.Equal(t, tc.missing, m.MissingPods, "tick %d", tc.tick)
		assert.Equal(t, tc.currentMilliLoad, m.CurrentMilli, "tick %d", tc.tick)
	}
}
