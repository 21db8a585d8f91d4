package simulate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/recommender"
)

// Limits of a load-trace scenario. They keep one simulation to seconds of
// CPU and tens of megabytes.
const (
	// maxTraceDuration is a week of simulated time at one-second steps.
	maxTraceDuration = 7 * 24 * 3600
	// maxTracePoints bounds a trace (inline or file).
	maxTracePoints = 1_000_000
	// maxPodCount bounds initialReplicas, as the annotations bound
	// max-replicas.
	maxPodCount = 100000
	// maxSimSeconds bounds the sim's and workload's durations.
	maxSimSeconds = 24 * 3600
	// defaultMetricResolution is metrics-server's default resolution.
	defaultMetricResolution = 15
)

// Prometheus result shapes of a load-trace scenario (sim.prometheusResult).
const (
	// PrometheusScalar: each query returns one value, the app's total
	// served load (as `sum(rate(requests_total[1m]))` does).
	PrometheusScalar = "scalar"
	// PrometheusPerPod: each query returns one series per pod, that pod's
	// served load (as `sum by (pod) (rate(requests_total[1m]))` does).
	PrometheusPerPod = "perPod"
)

// TraceScenario is a parsed and validated load-trace scenario: an app's
// policy, a model of its pods, and the load over time. Simulate runs it.
type TraceScenario struct {
	// Spec is the app's policy, as for a pod-level scenario.
	Spec     recommender.Spec
	Workload Workload
	Sim      SimSettings
	// Trace is the load over time, linear between points, in time order.
	Trace []TracePoint
	// Warnings are non-fatal remarks.
	Warnings []string
	// podLabel is config.prometheus.podLabel: the label of per-pod query
	// results.
	podLabel model.LabelName
}

// Workload models one pod of the app.
type Workload struct {
	// TargetLoadPerPod is the load one pod carries when its metric sits
	// exactly at the target; the oracle sizes the app with it.
	TargetLoadPerPod float64
	// CapacityPerPod is the most load one pod can serve.
	CapacityPerPod float64
	// CPUPerUnitMilli is the CPU, in millicores, one unit of served load
	// uses (for cpu targets).
	CPUPerUnitMilli float64
	// CPURequest and MemoryRequest are the pod's requests (Milli is 0 and
	// MissingIn set when absent).
	CPURequest    recommender.Request
	MemoryRequest recommender.Request
	// StartupSeconds is from the decision that creates a pod to the pod
	// Running; ReadinessDelaySeconds from Running to Ready.
	StartupSeconds        int64
	ReadinessDelaySeconds int64
	// InitialReplicas is the pod count at t = 0, all Ready.
	InitialReplicas int32
}

// SimSettings are the simulation's clock and metric pipeline.
type SimSettings struct {
	// TickSeconds is the controller's interval.
	TickSeconds int64
	// MetricResolutionSeconds is the window each sample averages over, and
	// how often samples are refreshed.
	MetricResolutionSeconds int64
	// MetricLagSeconds delays what the engine sees.
	MetricLagSeconds int64
	// MetricPhaseSeconds places the samples: they are produced at
	// MetricPhaseSeconds + k × MetricResolutionSeconds, so that a tick need
	// not fall on a sample (in a cluster, the metric pipeline's clock and
	// the controller's are not aligned).
	MetricPhaseSeconds int64
	// DurationSeconds is the simulated time: seconds [0, DurationSeconds).
	DurationSeconds int64
	// PrometheusResult is PrometheusScalar or PrometheusPerPod.
	PrometheusResult string
}

// TracePoint is one point of a load trace.
type TracePoint struct {
	At   float64
	Load float64
}

// traceTopKeys are the top-level keys a load-trace scenario may have.
var traceTopKeys = []string{"annotations", "config", "workload", "sim", "trace", "traceFile"}

// loadTrace parses and validates a scenario in the load-trace form.
func loadTrace(top map[string]any, opts Options) (*Scenario, error) {
	c := &checker{}
	for _, k := range sortedKeys(top) {
		switch k {
		case "steps", "state":
			c.addf(k, "not part of a load-trace scenario (it has %s): the simulation creates the pods and the controller's memory; remove %s, or remove workload, sim and trace to list steps", strings.Join(presentTraceKeys(top), ", "), k)
		default:
			if !slices.Contains(traceTopKeys, k) {
				c.addf(k, "unknown field (allowed: %s)", strings.Join(traceTopKeys, ", "))
			}
		}
	}
	cfg := c.config(top["config"])
	ts := &TraceScenario{podLabel: model.LabelName(cfg.Prometheus.PodLabel)}
	app, appOK := c.annotations(top["annotations"], cfg)
	if appOK {
		ts.Spec = app.Spec
		ts.Warnings = app.Warnings
	}
	ts.Trace = c.tracePoints(top, opts)
	w, given := c.workload(top["workload"])
	ts.Sim = c.sim(top["sim"], cfg.Interval, ts.Trace)
	if appOK {
		c.checkWorkload(&ts.Spec, &w, given, top["annotations"])
	}
	ts.Workload = w
	if w.CapacityPerPod > 0 && w.TargetLoadPerPod > w.CapacityPerPod {
		ts.Warnings = append(ts.Warnings, fmt.Sprintf("workload.capacityPerPod (%s) is below targetLoadPerPod (%s): pods saturate before their metric reaches the target",
			fmtNum(w.CapacityPerPod), fmtNum(w.TargetLoadPerPod)))
	}
	if len(c.problems) > 0 {
		return nil, &Error{Problems: c.problems}
	}
	if !given.initialReplicas {
		// The app has been serving the trace's first load for long: it
		// starts with the pods its own target gives that load (the
		// oracle's count when the target is not a per-pod load).
		perPod, ok := appTargetLoad(&ts.Spec, &ts.Workload)
		if !ok {
			perPod = ts.Workload.TargetLoadPerPod
		}
		n := max(ts.Spec.MinReplicas, recommender.CeilReplicas(ts.loadAt(0)/perPod))
		ts.Workload.InitialReplicas = min(n, ts.Spec.MaxReplicas)
	}
	return &Scenario{Spec: ts.Spec, Warnings: ts.Warnings, Trace: ts}, nil
}

func presentTraceKeys(top map[string]any) []string {
	var out []string
	for _, k := range loadTraceKeys {
		if _, ok := top[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// givenFields records which optional workload fields the scenario set.
type givenFields struct {
	targetLoad, cpuPerUnit, initialReplicas bool
}

func (c *checker) workload(v any) (Workload, givenFields) {
	w := Workload{CPURequest: recommender.Request{MissingIn: "app"}, MemoryRequest: recommender.Request{MissingIn: "app"}}
	var g givenFields
	if v == nil {
		c.addf("workload", "required: at least capacityPerPod, the load one pod can serve")
		return w, g
	}
	m, ok := c.mapping("workload", v, "targetLoadPerPod", "capacityPerPod", "cpuPerUnit", "requests",
		"startupSeconds", "readinessDelaySeconds", "initialReplicas")
	if !ok {
		return w, g
	}
	if m["targetLoadPerPod"] != nil {
		w.TargetLoadPerPod, g.targetLoad = c.positive("workload.targetLoadPerPod", m["targetLoadPerPod"])
	}
	if m["capacityPerPod"] == nil {
		c.addf("workload.capacityPerPod", "required: the load one pod can serve at all (above it, demand is unserved)")
	} else {
		w.CapacityPerPod, _ = c.positive("workload.capacityPerPod", m["capacityPerPod"])
	}
	if m["cpuPerUnit"] != nil {
		if q, ok := c.fineQuantity("workload.cpuPerUnit", m["cpuPerUnit"]); ok {
			if q <= 0 {
				c.addf("workload.cpuPerUnit", "must be positive (e.g. 1m: one millicore per unit of load)")
			} else {
				w.CPUPerUnitMilli, g.cpuPerUnit = q, true
			}
		}
	}
	req := c.resources("workload.requests", m["requests"])
	if q, ok := req[corev1.ResourceCPU]; ok {
		w.CPURequest = recommender.Request{Milli: q}
	}
	if q, ok := req[corev1.ResourceMemory]; ok {
		w.MemoryRequest = recommender.Request{Milli: q}
	}
	w.StartupSeconds, _ = c.wholeSeconds("workload.startupSeconds", m["startupSeconds"], 0, 0, maxSimSeconds)
	w.ReadinessDelaySeconds, _ = c.wholeSeconds("workload.readinessDelaySeconds", m["readinessDelaySeconds"], 0, 0, maxSimSeconds)
	if m["initialReplicas"] != nil {
		if n, ok := c.integer("workload.initialReplicas", m["initialReplicas"], 1, maxPodCount); ok {
			w.InitialReplicas, g.initialReplicas = int32(n), true
		}
	}
	return w, g
}

func (c *checker) sim(v any, interval time.Duration, trace []TracePoint) SimSettings {
	s := SimSettings{MetricResolutionSeconds: defaultMetricResolution, PrometheusResult: PrometheusScalar}
	m := map[string]any{}
	if v != nil {
		var ok bool
		if m, ok = c.mapping("sim", v, "tickSeconds", "metricResolutionSeconds", "metricLagSeconds", "metricPhaseSeconds", "durationSeconds", "prometheusResult"); !ok {
			m = map[string]any{}
		}
	}
	if m["tickSeconds"] != nil {
		s.TickSeconds, _ = c.wholeSeconds("sim.tickSeconds", m["tickSeconds"], 0, 1, maxSimSeconds)
	} else if interval%time.Second != 0 || interval < time.Second {
		c.addf("sim.tickSeconds", "required: config.interval (%s) is not a whole number of seconds, and the simulation runs in 1 s steps", interval)
	} else {
		s.TickSeconds = int64(interval / time.Second)
	}
	s.MetricResolutionSeconds, _ = c.wholeSeconds("sim.metricResolutionSeconds", m["metricResolutionSeconds"], defaultMetricResolution, 1, maxSimSeconds)
	s.MetricLagSeconds, _ = c.wholeSeconds("sim.metricLagSeconds", m["metricLagSeconds"], 0, 0, maxSimSeconds)
	if s.MetricResolutionSeconds > 0 {
		s.MetricPhaseSeconds, _ = c.wholeSeconds("sim.metricPhaseSeconds", m["metricPhaseSeconds"], 0, 0, s.MetricResolutionSeconds-1)
	}
	if m["durationSeconds"] != nil {
		s.DurationSeconds, _ = c.wholeSeconds("sim.durationSeconds", m["durationSeconds"], 0, 1, maxTraceDuration)
	} else if len(trace) > 0 {
		end := math.Ceil(trace[len(trace)-1].At)
		switch {
		case end < 1:
			c.addf("sim.durationSeconds", "required: the trace ends at 0")
		case end > maxTraceDuration:
			c.addf("sim.durationSeconds", "the trace ends at %s s, beyond the longest simulation (%d s): set a shorter durationSeconds", fmtNum(end), maxTraceDuration)
		default:
			s.DurationSeconds = int64(end)
		}
	}
	if m["prometheusResult"] != nil {
		if r, ok := c.str("sim.prometheusResult", m["prometheusResult"]); ok {
			if r == PrometheusScalar || r == PrometheusPerPod {
				s.PrometheusResult = r
			} else {
				c.addf("sim.prometheusResult", "%q is not a result shape: allowed %s (one value, the app's total), %s (one series per pod)", r, PrometheusScalar, PrometheusPerPod)
			}
		}
	}
	return s
}

// tracePoints reads trace or traceFile: exactly one of them.
func (c *checker) tracePoints(top map[string]any, opts Options) []TracePoint {
	inline, hasInline := top["trace"]
	file, hasFile := top["traceFile"]
	switch {
	case hasInline && hasFile:
		c.addf("trace", "set either trace or traceFile, not both")
		return nil
	case hasFile:
		name, ok := c.str("traceFile", file)
		if !ok || name == "" {
			if ok || file == nil {
				c.addf("traceFile", "required: the name of a CSV file with columns at,load")
			}
			return nil
		}
		if opts.ReadFile == nil {
			c.addf("traceFile", "%q: this scenario was read without a file system (from standard input?): give the trace inline under trace", name)
			return nil
		}
		data, err := opts.ReadFile(name)
		if err != nil {
			c.addf("traceFile", "%v", err)
			return nil
		}
		pts, problems := ParseTraceCSV(data)
		for _, p := range problems {
			c.addf("traceFile", "%s: %s", name, p)
		}
		return pts
	case hasInline:
		items := c.list("trace", inline)
		if len(items) == 0 {
			if _, isList := inline.([]any); isList || inline == nil {
				c.addf("trace", "must list at least one point {at, load}")
			}
			return nil
		}
		if len(items) > maxTracePoints {
			c.addf("trace", "%d points: at most %d", len(items), maxTracePoints)
			return nil
		}
		pts := make([]TracePoint, 0, len(items))
		bad := false
		for i, item := range items {
			p := index("trace", i)
			m, ok := c.mapping(p, item, "at", "load")
			if !ok {
				bad = true
				continue
			}
			at, okAt := c.requiredSeconds(field(p, "at"), m["at"])
			load, okLoad := c.load(field(p, "load"), m["load"])
			if !okAt || !okLoad {
				bad = true
				continue
			}
			if len(pts) > 0 && at < pts[len(pts)-1].At {
				c.addf(field(p, "at"), "%s is before the previous point's at (%s): points must be in time order", fmtNum(at), fmtNum(pts[len(pts)-1].At))
				bad = true
			}
			pts = append(pts, TracePoint{At: at, Load: load})
		}
		if bad {
			return nil
		}
		return pts
	}
	c.addf("trace", "required: the load over time, as trace: [{at, load}, ...] or traceFile: FILE.csv")
	return nil
}

func (c *checker) load(path string, v any) (float64, bool) {
	if v == nil {
		c.addf(path, "required: the load at this time")
		return 0, false
	}
	return c.number(path, v, "number", func(f float64) bool { return f >= 0 && f <= 1e15 }, "0 to 1e15")
}

// ParseTraceCSV reads a load trace from CSV: one `at,load` pair per line,
// at in seconds (non-decreasing), load non-negative. A first line `at,load`
// is a header; empty lines and lines starting with # are skipped. It
// returns every problem, each naming its line.
func ParseTraceCSV(data []byte) ([]TracePoint, []string) {
	var pts []TracePoint
	var problems []string
	add := func(line int, format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf("line %d: %s", line, fmt.Sprintf(format, args...)))
		}
	}
	header := true
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		if header {
			header = false
			if len(fields) == 2 && strings.EqualFold(strings.TrimSpace(fields[0]), "at") && strings.EqualFold(strings.TrimSpace(fields[1]), "load") {
				continue
			}
		}
		if len(fields) != 2 {
			add(n, "%q: want two fields, at,load", line)
			continue
		}
		at, errAt := strconv.ParseFloat(strings.TrimSpace(fields[0]), 64)
		load, errLoad := strconv.ParseFloat(strings.TrimSpace(fields[1]), 64)
		switch {
		case errAt != nil || math.IsNaN(at) || math.IsInf(at, 0) || at < 0 || at > maxSeconds:
			add(n, "at %q is not a number of seconds from 0 to %s", strings.TrimSpace(fields[0]), fmtNum(maxSeconds))
		case errLoad != nil || math.IsNaN(load) || math.IsInf(load, 0) || load < 0 || load > 1e15:
			add(n, "load %q is not a number from 0 to 1e15", strings.TrimSpace(fields[1]))
		case len(pts) > 0 && at < pts[len(pts)-1].At:
			add(n, "at %s is before the previous line's (%s): lines must be in time order", fmtNum(at), fmtNum(pts[len(pts)-1].At))
		case len(pts) >= maxTracePoints:
			add(n, "more than %d points", maxTracePoints)
			return nil, problems
		default:
			pts = append(pts, TracePoint{At: at, Load: load})
		}
	}
	if len(pts) == 0 && len(problems) == 0 {
		problems = append(problems, "no data: want lines at,load")
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return pts, nil
}

// checkWorkload checks the workload against the app's metrics, and derives
// targetLoadPerPod when the scenario leaves it out and one metric defines
// it.
func (c *checker) checkWorkload(spec *recommender.Spec, w *Workload, given givenFields, ann any) {
	annMap, _ := asMap(ann)
	hasCPU := false
	for _, ms := range spec.Metrics {
		if ms.Source != recommender.SourceResource {
			continue
		}
		if ms.Resource == corev1.ResourceMemory {
			k := annotations.KeyTargetMemoryUtilization
			if _, ok := annMap[k]; !ok {
				k = annotations.KeyTargetMemoryAverageValue
			}
			c.addf(key("annotations", k), "memory is not modelled by load-trace scenarios: scale on cpu or a Prometheus query")
			continue
		}
		hasCPU = true
		if ms.Target == recommender.TargetUtilization && w.CPURequest.MissingIn != "" {
			c.addf("workload.requests.cpu", "required: the app has a cpu utilization target (%s)", annotations.KeyTargetCPUUtilization)
		}
	}
	if hasCPU && !given.cpuPerUnit {
		c.addf("workload.cpuPerUnit", "required: the app has a cpu target, and usage is served load × cpuPerUnit (e.g. 1m)")
	}
	if given.targetLoad {
		return
	}
	if derived, ok := appTargetLoad(spec, w); ok {
		w.TargetLoadPerPod = derived
		return
	}
	c.addf("workload.targetLoadPerPod", "required: the load one pod carries when its metric sits exactly at the target (the oracle sizes the app with it)")
}

// appTargetLoad is the load at which one pod's metric sits exactly at the
// app's target, when the app has one metric that defines it: a cpu target
// (with cpuPerUnit, and the request for utilization) or a per-pod
// Prometheus target.
func appTargetLoad(spec *recommender.Spec, w *Workload) (float64, bool) {
	if len(spec.Metrics) != 1 {
		return 0, false
	}
	ms := spec.Metrics[0]
	load := 0.0
	switch {
	case ms.Source == recommender.SourceResource && ms.Resource == corev1.ResourceCPU && w.CPUPerUnitMilli > 0:
		if ms.Target == recommender.TargetUtilization && w.CPURequest.MissingIn == "" {
			load = float64(w.CPURequest.Milli) * float64(ms.TargetUtilization) / 100 / w.CPUPerUnitMilli
		}
		if ms.Target == recommender.TargetAverageValue {
			load = float64(ms.TargetMilli) / w.CPUPerUnitMilli
		}
	case ms.Source == recommender.SourcePrometheus && ms.Target == recommender.TargetAverageValue:
		load = float64(ms.TargetMilli) / 1000
	}
	return load, load > 0
}

// positive reads a finite number above 0.
func (c *checker) positive(path string, v any) (float64, bool) {
	return c.number(path, v, "number", func(f float64) bool { return f > 0 && f <= 1e15 }, "above 0, up to 1e15")
}

// wholeSeconds reads an optional whole number of seconds in [lo, hi].
func (c *checker) wholeSeconds(path string, v any, def, lo, hi int64) (int64, bool) {
	if v == nil {
		return def, true
	}
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		c.addf(path, "%s is not a whole number of seconds (the simulation runs in 1 s steps)", describe(v))
		return def, false
	}
	if f < float64(lo) || f > float64(hi) {
		c.addf(path, "%s is out of range: allowed %d to %d seconds", describe(v), lo, hi)
		return def, false
	}
	return int64(f), true
}

// fineQuantity reads a non-negative quantity in milli-units, keeping
// fractions of a milli-unit ("500u" is 0.5).
func (c *checker) fineQuantity(path string, v any) (float64, bool) {
	q, ok := c.parseQuantity(path, v)
	if !ok {
		return 0, false
	}
	f := q.AsApproximateFloat64()
	if f < 0 || f > 1e12 {
		c.addf(path, "%s is out of range: allowed 0 to 1T", describe(v))
		return 0, false
	}
	return f * 1000, true
}

// loadAt is the trace's load at second t: linear between points, the first
// point's load before it and the last point's after it. At a time listed
// twice (a step), the later point wins.
func (ts *TraceScenario) loadAt(t float64) float64 {
	pts := ts.Trace
	if len(pts) == 0 {
		return 0
	}
	if t < pts[0].At {
		return pts[0].Load
	}
	// The last point at or before t.
	lo, hi := 0, len(pts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if pts[mid].At <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == len(pts)-1 {
		return pts[lo].Load
	}
	a, b := pts[lo], pts[lo+1]
	return a.Load + (b.Load-a.Load)*(t-a.At)/(b.At-a.At)
}

// oracleAt is the oracle's pod count for a load: max(min, ceil(load /
// targetLoadPerPod)).
func (ts *TraceScenario) oracleAt(load float64) int32 {
	return max(ts.Spec.MinReplicas, recommender.CeilReplicas(load/ts.Workload.TargetLoadPerPod))
}
