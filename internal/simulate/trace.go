package simulate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"

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
