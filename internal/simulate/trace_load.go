package simulate

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// This file reads a scenario in the load-trace form: its input as written,
// and its validation.

// traceScenarioIn is a scenario in the load-trace form.
type traceScenarioIn struct {
	Annotations annotationsIn   `json:"annotations"`
	Config      map[string]any  `json:"config"`
	Workload    *workloadIn     `json:"workload"`
	Sim         *simIn          `json:"sim"`
	Trace       []*tracePointIn `json:"trace"`
	TraceFile   value[string]   `json:"traceFile"`
}

type workloadIn struct {
	TargetLoadPerPod      value[float64] `json:"targetLoadPerPod"`
	CapacityPerPod        value[float64] `json:"capacityPerPod"`
	CPUPerUnit            value[any]     `json:"cpuPerUnit"`
	Requests              *resourcesIn   `json:"requests"`
	StartupSeconds        value[float64] `json:"startupSeconds"`
	ReadinessDelaySeconds value[float64] `json:"readinessDelaySeconds"`
	InitialReplicas       value[float64] `json:"initialReplicas"`
}

type simIn struct {
	TickSeconds             value[float64] `json:"tickSeconds"`
	MetricResolutionSeconds value[float64] `json:"metricResolutionSeconds"`
	MetricLagSeconds        value[float64] `json:"metricLagSeconds"`
	MetricPhaseSeconds      value[float64] `json:"metricPhaseSeconds"`
	DurationSeconds         value[float64] `json:"durationSeconds"`
	PrometheusResult        value[string]  `json:"prometheusResult"`
}

type tracePointIn struct {
	At   value[float64] `json:"at"`
	Load value[float64] `json:"load"`
}

// loadTrace parses and validates a scenario in the load-trace form. doc is
// the scenario as JSON; top its top-level fields, which tell an absent
// field from a null one.
func loadTrace(doc []byte, top map[string]any, opts Options) (*Scenario, error) {
	var in traceScenarioIn
	errs, fatal := decodeStrict(doc, &in, func(path string) string {
		if path != "steps" && path != "state" {
			return ""
		}
		return fmt.Sprintf("not part of a load-trace scenario (it has %s): the simulation creates the pods and the controller's memory; remove %s, or remove workload, sim and trace to list steps",
			strings.Join(presentTraceKeys(top), ", "), path)
	})
	if fatal {
		return nil, &Error{Errs: errs}
	}
	v := &validator{errs: errs}
	cfg := v.config(in.Config)
	ts := &TraceScenario{podLabel: model.LabelName(cfg.Prometheus.PodLabel)}
	app, _, appOK := v.annotations(in.Annotations, cfg)
	if appOK {
		ts.Spec = app.Spec
		ts.Warnings = app.Warnings
	}
	_, hasInline := top["trace"]
	ts.Trace = v.tracePoints(in, hasInline, opts)
	w, given := v.workload(in.Workload)
	ts.Sim = v.sim(in.Sim, cfg.Interval, ts.Trace)
	if appOK {
		v.checkWorkload(&ts.Spec, &w, given, in.Annotations)
	}
	ts.Workload = w
	if w.CapacityPerPod > 0 && w.TargetLoadPerPod > w.CapacityPerPod {
		ts.Warnings = append(ts.Warnings, fmt.Sprintf("workload.capacityPerPod (%s) is below targetLoadPerPod (%s): pods saturate before their metric reaches the target",
			fmtNum(w.CapacityPerPod), fmtNum(w.TargetLoadPerPod)))
	}
	if len(v.errs) > 0 {
		return nil, &Error{Errs: inFieldOrder(v.errs, &in)}
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

func (v *validator) workload(in *workloadIn) (Workload, givenFields) {
	w := Workload{CPURequest: recommender.Request{MissingIn: "app"}, MemoryRequest: recommender.Request{MissingIn: "app"}}
	var g givenFields
	path := field.NewPath("workload")
	if in == nil {
		v.add(field.Required(path, "at least capacityPerPod, the load one pod can serve"))
		return w, g
	}
	if in.TargetLoadPerPod.set() {
		w.TargetLoadPerPod, g.targetLoad = v.positive(path.Child("targetLoadPerPod"), in.TargetLoadPerPod)
	}
	if !in.CapacityPerPod.set() {
		v.add(field.Required(path.Child("capacityPerPod"), "the load one pod can serve at all (above it, demand is unserved)"))
	} else {
		w.CapacityPerPod, _ = v.positive(path.Child("capacityPerPod"), in.CapacityPerPod)
	}
	if in.CPUPerUnit.set() {
		if q, ok := v.fineQuantity(path.Child("cpuPerUnit"), in.CPUPerUnit); ok {
			if q <= 0 {
				v.add(field.Invalid(path.Child("cpuPerUnit"), in.CPUPerUnit.literal(), "must be positive (e.g. 1m: one millicore per unit of load)"))
			} else {
				w.CPUPerUnitMilli, g.cpuPerUnit = q, true
			}
		}
	}
	req := v.resources(path.Child("requests"), in.Requests)
	if q, ok := req[corev1.ResourceCPU]; ok {
		w.CPURequest = recommender.Request{Milli: q}
	}
	if q, ok := req[corev1.ResourceMemory]; ok {
		w.MemoryRequest = recommender.Request{Milli: q}
	}
	w.StartupSeconds, _ = v.wholeSeconds(path.Child("startupSeconds"), in.StartupSeconds, 0, 0, maxSimSeconds)
	w.ReadinessDelaySeconds, _ = v.wholeSeconds(path.Child("readinessDelaySeconds"), in.ReadinessDelaySeconds, 0, 0, maxSimSeconds)
	if in.InitialReplicas.set() {
		if n, ok := v.integer(path.Child("initialReplicas"), in.InitialReplicas, 1, maxPodCount); ok {
			w.InitialReplicas, g.initialReplicas = int32(n), true
		}
	}
	return w, g
}

func (v *validator) sim(in *simIn, interval time.Duration, trace []TracePoint) SimSettings {
	s := SimSettings{MetricResolutionSeconds: defaultMetricResolution, PrometheusResult: PrometheusScalar}
	if in == nil {
		in = &simIn{}
	}
	path := field.NewPath("sim")
	if in.TickSeconds.set() {
		s.TickSeconds, _ = v.wholeSeconds(path.Child("tickSeconds"), in.TickSeconds, 0, 1, maxSimSeconds)
	} else if interval%time.Second != 0 || interval < time.Second {
		v.add(field.Required(path.Child("tickSeconds"), fmt.Sprintf("config.interval (%s) is not a whole number of seconds, and the simulation runs in 1 s steps", interval)))
	} else {
		s.TickSeconds = int64(interval / time.Second)
	}
	s.MetricResolutionSeconds, _ = v.wholeSeconds(path.Child("metricResolutionSeconds"), in.MetricResolutionSeconds, defaultMetricResolution, 1, maxSimSeconds)
	s.MetricLagSeconds, _ = v.wholeSeconds(path.Child("metricLagSeconds"), in.MetricLagSeconds, 0, 0, maxSimSeconds)
	if s.MetricResolutionSeconds > 0 {
		s.MetricPhaseSeconds, _ = v.wholeSeconds(path.Child("metricPhaseSeconds"), in.MetricPhaseSeconds, 0, 0, s.MetricResolutionSeconds-1)
	}
	if in.DurationSeconds.set() {
		s.DurationSeconds, _ = v.wholeSeconds(path.Child("durationSeconds"), in.DurationSeconds, 0, 1, maxTraceDuration)
	} else if len(trace) > 0 {
		end := math.Ceil(trace[len(trace)-1].At)
		switch {
		case end < 1:
			v.add(field.Required(path.Child("durationSeconds"), "the trace ends at 0"))
		case end > maxTraceDuration:
			v.add(field.Invalid(path.Child("durationSeconds"), fmtNum(end),
				fmt.Sprintf("the trace ends at %s s, beyond the longest simulation (%d s): set a shorter durationSeconds", fmtNum(end), maxTraceDuration)))
		default:
			s.DurationSeconds = int64(end)
		}
	}
	if r := in.PrometheusResult; r.set() {
		shapes := []string{PrometheusScalar, PrometheusPerPod}
		switch {
		case !r.ok:
			v.add(field.TypeInvalid(path.Child("prometheusResult"), r.literal(), "not a string"))
		case slices.Contains(shapes, r.v):
			s.PrometheusResult = r.v
		default:
			v.add(withDetail(field.NotSupported(path.Child("prometheusResult"), r.v, shapes),
				fmt.Sprintf("not a result shape: allowed %s (one value, the app's total), %s (one series per pod)", PrometheusScalar, PrometheusPerPod)))
		}
	}
	return s
}

// tracePoints reads trace or traceFile: exactly one of them. hasInline: the
// scenario has trace, even null.
func (v *validator) tracePoints(in traceScenarioIn, hasInline bool, opts Options) []TracePoint {
	file := field.NewPath("traceFile")
	switch {
	case hasInline && in.TraceFile.set():
		v.add(field.Forbidden(field.NewPath("trace"), "set either trace or traceFile, not both"))
		return nil
	case in.TraceFile.set():
		name := in.TraceFile.v
		switch {
		case !in.TraceFile.ok:
			v.add(field.TypeInvalid(file, in.TraceFile.literal(), "not a string"))
			return nil
		case name == "":
			v.add(field.Required(file, "the name of a CSV file with columns at,load"))
			return nil
		case opts.ReadFile == nil:
			v.add(field.Invalid(file, name, "this scenario was read without a file system (from standard input?): give the trace inline under trace"))
			return nil
		}
		data, err := opts.ReadFile(name)
		if err != nil {
			v.add(field.Invalid(file, name, err.Error()))
			return nil
		}
		pts, problems := ParseTraceCSV(data)
		for _, p := range problems {
			v.add(field.Invalid(file, name, p))
		}
		return pts
	case hasInline:
		return v.inlineTrace(in.Trace)
	}
	v.add(field.Required(field.NewPath("trace"), "the load over time, as trace: [{at, load}, ...] or traceFile: FILE.csv"))
	return nil
}

func (v *validator) inlineTrace(in []*tracePointIn) []TracePoint {
	path := field.NewPath("trace")
	if len(in) == 0 {
		v.add(field.Required(path, "must list at least one point {at, load}"))
		return nil
	}
	if len(in) > maxTracePoints {
		v.add(field.TooMany(path, len(in), maxTracePoints))
		return nil
	}
	pts := make([]TracePoint, 0, len(in))
	bad := false
	for i, pt := range in {
		p := path.Index(i)
		if v.isNull(p, pt) {
			bad = true
			continue
		}
		at, okAt := v.requiredSeconds(p.Child("at"), pt.At)
		load, okLoad := v.load(p.Child("load"), pt.Load)
		if !okAt || !okLoad {
			bad = true
			continue
		}
		if len(pts) > 0 && at < pts[len(pts)-1].At {
			v.add(field.Invalid(p.Child("at"), pt.At.literal(),
				fmt.Sprintf("before the previous point's at (%s): points must be in time order", fmtNum(pts[len(pts)-1].At))))
			bad = true
		}
		pts = append(pts, TracePoint{At: at, Load: load})
	}
	if bad {
		return nil
	}
	return pts
}

func (v *validator) load(path *field.Path, x value[float64]) (float64, bool) {
	if !x.set() {
		v.add(field.Required(path, "the load at this time"))
		return 0, false
	}
	return v.number(path, x, "number", func(f float64) bool { return f >= 0 && f <= 1e15 }, "0 to 1e15")
}

// checkWorkload checks the workload against the app's metrics, and derives
// targetLoadPerPod when the scenario leaves it out and one metric defines
// it.
func (v *validator) checkWorkload(spec *recommender.Spec, w *Workload, given givenFields, ann annotationsIn) {
	path := field.NewPath("workload")
	hasCPU := false
	for _, ms := range spec.Metrics {
		if metrics.IsAPIMetric(ms.Source) {
			v.add(field.Forbidden(field.NewPath("annotations").Key(annotations.KeyMetrics).Key(ms.Name),
				fmt.Sprintf("a metric of type %s is not modelled by load-trace scenarios: give its answers step by step (steps[].metricsAPIs)", ms.Source)))
			continue
		}
		if ms.Source != recommender.SourceResource {
			continue
		}
		if ms.Resource == corev1.ResourceMemory {
			k := annotations.KeyTargetMemoryUtilization
			if _, ok := ann[k]; !ok {
				k = annotations.KeyTargetMemoryAverageValue
			}
			v.add(field.Forbidden(field.NewPath("annotations").Key(k), "memory is not modelled by load-trace scenarios: scale on cpu or a Prometheus query"))
			continue
		}
		hasCPU = true
		if ms.Target == recommender.TargetUtilization && w.CPURequest.MissingIn != "" {
			v.add(field.Required(path.Child("requests", "cpu"), fmt.Sprintf("the app has a cpu utilization target (%s)", annotations.KeyTargetCPUUtilization)))
		}
	}
	if hasCPU && !given.cpuPerUnit {
		v.add(field.Required(path.Child("cpuPerUnit"), "the app has a cpu target, and usage is served load × cpuPerUnit (e.g. 1m)"))
	}
	if given.targetLoad {
		return
	}
	if derived, ok := appTargetLoad(spec, w); ok {
		w.TargetLoadPerPod = derived
		return
	}
	v.add(field.Required(path.Child("targetLoadPerPod"), "the load one pod carries when its metric sits exactly at the target (the oracle sizes the app with it)"))
}

// positive reads a finite number above 0.
func (v *validator) positive(path *field.Path, x value[float64]) (float64, bool) {
	return v.number(path, x, "number", func(f float64) bool { return f > 0 && f <= 1e15 }, "above 0, up to 1e15")
}

// wholeSeconds reads an optional whole number of seconds in [lo, hi].
func (v *validator) wholeSeconds(path *field.Path, x value[float64], def, lo, hi int64) (int64, bool) {
	if !x.set() {
		return def, true
	}
	if !x.ok || x.v != math.Trunc(x.v) {
		v.add(field.TypeInvalid(path, x.literal(), "not a whole number of seconds (the simulation runs in 1 s steps)"))
		return def, false
	}
	if x.v < float64(lo) || x.v > float64(hi) {
		v.add(field.Invalid(path, x.literal(), fmt.Sprintf("out of range: allowed %d to %d seconds", lo, hi)))
		return def, false
	}
	return int64(x.v), true
}

// fineQuantity reads a non-negative quantity in milli-units, keeping
// fractions of a milli-unit ("500u" is 0.5).
func (v *validator) fineQuantity(path *field.Path, x value[any]) (float64, bool) {
	q, ok := v.parseQuantity(path, x)
	if !ok {
		return 0, false
	}
	f := q.AsApproximateFloat64()
	if f < 0 || f > 1e12 {
		v.add(field.Invalid(path, x.literal(), "out of range: allowed 0 to 1T"))
		return 0, false
	}
	return f * 1000, true
}
