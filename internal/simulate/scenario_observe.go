package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	customapi "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// This file turns a scenario's steps into what the controller observes:
// pods, their usage as metrics.k8s.io reports it, and Prometheus results.

// stepObs is a step being built: the Step, plus the raw material of its
// observations, which need the app's spec.
type stepObs struct {
	Step
	path *field.Path
	// usage is each pod's, as metrics.k8s.io reports it.
	usage map[types.NamespacedName]metrics.PodUsage
	prom  map[string]queryResult
	order []string // prom keys, sorted
	// api and apiOrder are the same for the metrics APIs' answers.
	api      map[string]queryResult
	apiOrder []string
}

// queryResult is a step's answer to one Prometheus query, before it is
// mapped as the Prometheus source maps what the client returns.
type queryResult struct {
	// value is a single value; perPod one value per pod (sorted by pod);
	// err a failed query. None of them: an empty result.
	value  *float64
	perPod []podValue
	err    error
}

type podValue struct {
	pod   string
	value float64
}

// modelValue is the result as the Prometheus client decodes it: a series
// without labels for a single value (what sum(...) returns), one series
// per pod labelled podLabel, or an empty vector.
func (r queryResult) modelValue(podLabel model.LabelName, at time.Time) model.Value {
	ts := model.TimeFromUnixNano(at.UnixNano())
	if r.value != nil {
		return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(*r.value), Timestamp: ts}}
	}
	v := make(model.Vector, 0, len(r.perPod))
	for _, p := range r.perPod {
		v = append(v, &model.Sample{Metric: model.Metric{podLabel: model.LabelValue(p.pod)}, Value: model.SampleValue(p.value), Timestamp: ts})
	}
	return v
}

var phases = []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}

func (v *validator) steps(in []*stepIn, interval time.Duration) []stepObs {
	path := field.NewPath("steps")
	switch {
	case in == nil:
		v.add(field.Required(path, "a list of at least one step"))
		return nil
	case len(in) == 0:
		v.add(field.Required(path, "must list at least one step"))
		return nil
	}
	steps := make([]stepObs, 0, len(in))
	prevAt := 0.0
	for i, st := range in {
		p := path.Index(i)
		if v.isNull(p, st) {
			st = &stepIn{}
		}
		// Without `at`, a step comes one controller interval after the
		// previous one (the first at 0).
		at := 0.0
		if i > 0 {
			at = prevAt + interval.Seconds()
		}
		if st.At.set() {
			if a, ok := v.secondsValue(p.Child("at"), st.At); ok {
				if i > 0 && a < prevAt {
					v.add(field.Invalid(p.Child("at"), st.At.literal(),
						fmt.Sprintf("before the previous step's at (%s): steps must be in time order", fmtNum(prevAt))))
				}
				at = a
			}
		}
		prevAt = at
		s := stepObs{path: p}
		s.At = at
		s.Time = Epoch.Add(seconds(at))
		s.Replicas = v.optReplicas(p.Child("replicas"), st.Replicas)
		s.StatusReplicas = v.optReplicas(p.Child("statusReplicas"), st.StatusReplicas)
		v.pods(&s, st.Pods)
		s.prom, s.order = v.results(s.path.Child("prometheus"), st.Prometheus)
		s.api, s.apiOrder = v.results(s.path.Child("metricsAPIs"), st.MetricsAPIs)
		steps = append(steps, s)
	}
	return steps
}

func (v *validator) pods(s *stepObs, in []*podIn) {
	base := s.path.Child("pods")
	seen := map[string]bool{}
	for i, pi := range in {
		p := base.Index(i)
		if v.isNull(p, pi) {
			continue
		}
		pod := recommender.Pod{Phase: corev1.PodRunning, Ready: true, HasReadyCondition: true}
		switch name := pi.Name; {
		case name.set() && !name.ok:
			v.add(field.TypeInvalid(p.Child("name"), name.literal(), "not a string"))
		case name.v == "":
			v.add(field.Required(p.Child("name"), "a non-empty pod name"))
		default:
			if seen[name.v] {
				v.add(withDetail(field.Duplicate(p.Child("name"), name.v), "used by another pod of this step: pod names are unique"))
			}
			seen[name.v] = true
			pod.Name = name.v
		}
		if ph := pi.Phase; ph.set() {
			switch {
			case !ph.ok:
				v.add(field.TypeInvalid(p.Child("phase"), ph.literal(), "not a string"))
			case slices.Contains(phases, ph.v):
				pod.Phase = corev1.PodPhase(ph.v)
			default:
				v.add(field.NotSupported(p.Child("phase"), ph.v, phases))
			}
		}
		pod.Ready = v.optBool(p.Child("ready"), pi.Ready, pod.Ready)
		pod.Deleting = v.optBool(p.Child("deleting"), pi.Deleting, pod.Deleting)
		pod.StartTime = s.Time.Add(-v.optSeconds(p.Child("startedSecondsAgo"), pi.StartedSecondsAgo, longAgo))
		pod.ReadyTransition = s.Time.Add(-v.optSeconds(p.Child("readySecondsAgo"), pi.ReadySecondsAgo, longAgo))
		pm := metricsv1beta1.PodMetrics{
			Timestamp: metav1.NewTime(s.Time.Add(-v.optSeconds(p.Child("metricsAgeSeconds"), pi.MetricsAgeSeconds, 0))),
			Window:    metav1.Duration{Duration: v.optSeconds(p.Child("metricsWindowSeconds"), pi.MetricsWindowSeconds, defaultMetricsWindow)},
		}
		var ps corev1.PodSpec
		ps.Containers, pm.Containers = v.containers(p.Child("containers"), pi.Containers)
		if pi.Resources != nil {
			ps.Resources = &corev1.ResourceRequirements{Requests: v.resourceList(p.Child("resources", "requests"), pi.Resources.Requests)}
		}
		// The controller's rule: pod-level requests when set, else the
		// containers' (recommender.PodRequests).
		pod.CPU, pod.Memory = recommender.PodRequests(&ps)
		s.Pods = append(s.Pods, pod)
		if s.usage == nil {
			s.usage = map[types.NamespacedName]metrics.PodUsage{}
		}
		s.usage[types.NamespacedName{Name: pod.Name}] = metrics.PodUsageOf(&pm)
	}
}

// optBool reads an optional boolean; def when absent or invalid.
func (v *validator) optBool(path *field.Path, x value[bool], def bool) bool {
	if !x.set() {
		return def
	}
	if !x.ok {
		v.add(field.TypeInvalid(path, x.literal(), "not a boolean (true or false)"))
		return def
	}
	return x.v
}

// containers reads a pod's containers with their requests, and returns
// their usage as metrics-server reports it.
func (v *validator) containers(path *field.Path, in []*containerIn) (spec []corev1.Container, usage []metricsv1beta1.ContainerMetrics) {
	names := map[string]bool{}
	for i, c := range in {
		p := path.Index(i)
		if v.isNull(p, c) {
			continue
		}
		name := fmt.Sprintf("container-%d", i)
		switch {
		case c.Name.set() && !c.Name.ok:
			v.add(field.TypeInvalid(p.Child("name"), c.Name.literal(), "not a string"))
		case c.Name.v != "":
			if names[c.Name.v] {
				v.add(withDetail(field.Duplicate(p.Child("name"), c.Name.v), "used by another container of this pod"))
			}
			name = c.Name.v
		}
		names[name] = true
		spec = append(spec, corev1.Container{Name: name,
			Resources: corev1.ResourceRequirements{Requests: v.resourceList(p.Child("requests"), c.Requests)}})
		usage = append(usage, metricsv1beta1.ContainerMetrics{Name: name, Usage: v.resourceList(p.Child("usage"), c.Usage)})
	}
	return spec, usage
}

// resourceList reads quantities as a ResourceList.
func (v *validator) resourceList(path *field.Path, in *resourcesIn) corev1.ResourceList {
	out := corev1.ResourceList{}
	for r, q := range v.resources(path, in) {
		out[r] = *resource.NewMilliQuantity(q, resource.DecimalSI)
	}
	return out
}

func (v *validator) resources(path *field.Path, in *resourcesIn) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	if in == nil {
		return out
	}
	for _, r := range []struct {
		name corev1.ResourceName
		q    value[any]
	}{{corev1.ResourceCPU, in.CPU}, {corev1.ResourceMemory, in.Memory}} {
		if !r.q.set() {
			continue
		}
		if q, ok := v.quantity(path.Child(string(r.name)), r.q); ok {
			out[r.name] = q
		}
	}
	return out
}

// results reads the step's query results (or metrics APIs' answers) by
// metric name: a number is a single value, {pod: number} per-pod values,
// {error: "…"} a failed request, null an empty result.
func (v *validator) results(path *field.Path, in map[string]value[any]) (map[string]queryResult, []string) {
	out := map[string]queryResult{}
	order := sortedKeys(in)
	for _, name := range order {
		p := path.Child(name)
		switch lit := in[name].literal(); val := lit.(type) {
		case nil:
			out[name] = queryResult{}
		case map[string]any:
			if r, ok := v.perPod(p, val); ok {
				out[name] = r
			}
		default:
			if _, isNum := lit.(json.Number); !isNum && !isNonFinite(lit) {
				v.add(field.TypeInvalid(p, lit, `not a result: use a number, {pod: number, …}, {error: "…"} or null`))
			} else if f, ok := v.resultNumber(p, lit); ok {
				out[name] = queryResult{value: &f}
			}
		}
	}
	return out, order
}

// checkAPINames rejects answers of the metrics APIs for metrics the app
// does not have.
func (v *validator) checkAPINames(s *stepObs, spec *recommender.Spec) {
	var names []string
	for _, ms := range spec.Metrics {
		if metrics.IsAPIMetric(ms.Source) {
			names = append(names, ms.Name)
		}
	}
	for _, name := range s.apiOrder {
		if !slices.Contains(names, name) {
			have := "none"
			if len(names) > 0 {
				have = strings.Join(names, ", ")
			}
			v.add(withDetail(field.NotFound(s.path.Child("metricsAPIs", name), name),
				fmt.Sprintf("the app has no metric of type pods, object or external of this name (it has: %s)", have)))
		}
	}
}

// apiObservation maps the step's answer for a pods, object or external
// metric through the source's own mapping: per-pod values for pods, one
// number for object and external; a number where per-pod values are due,
// or the reverse, is an error.
func (v *validator) apiObservation(s *stepObs, ms *recommender.MetricSpec) recommender.Observation {
	read := metrics.APIReadOf("", "", ms)
	r, ok := s.api[ms.Name]
	if !ok {
		return recommender.Observation{Err: fmt.Errorf("%w: no answer for metric %s in this step", recommender.ErrNoData, ms.Name)}
	}
	p := s.path.Child("metricsAPIs", ms.Name)
	ts := metav1.NewTime(s.Time)
	switch {
	case r.err != nil:
		return metrics.APIFailure(read, r.err)
	case ms.Source == recommender.SourcePods && r.value != nil:
		v.add(field.Invalid(p, fmtNum(*r.value), "a pods metric's answer is one value per pod: {pod: number, …}"))
		return recommender.Observation{}
	case ms.Source == recommender.SourcePods:
		items := make([]customapi.MetricValue, 0, len(r.perPod))
		for _, pv := range r.perPod {
			m, _ := metrics.Milli(pv.value)
			items = append(items, customapi.MetricValue{DescribedObject: corev1.ObjectReference{Kind: "Pod", Name: pv.pod},
				Timestamp: ts, Value: *resource.NewMilliQuantity(m, resource.DecimalSI)})
		}
		return metrics.PodsObservation(read, items)
	case r.perPod != nil:
		v.add(field.Invalid(p, field.OmitValueType{}, fmt.Sprintf("an %s metric's answer is one number, not per-pod values", ms.Source)))
		return recommender.Observation{}
	case r.value == nil:
		return metrics.ExternalObservation(read, nil, s.Time)
	}
	m, _ := metrics.Milli(*r.value)
	return metrics.ExternalObservation(read, []int64{m}, s.Time)
}

// perPod reads {pod: number, …} or {error: "…"}.
func (v *validator) perPod(p *field.Path, pods map[string]any) (queryResult, bool) {
	if msg, isString := pods["error"].(string); isString {
		if len(pods) > 1 {
			v.add(field.Invalid(p, field.OmitValueType{}, "error cannot be combined with per-pod values"))
			return queryResult{}, false
		}
		if msg == "" {
			msg = "query failed"
		}
		return queryResult{err: errors.New(msg)}, true
	}
	r := queryResult{perPod: []podValue{}}
	for _, pod := range sortedKeys(pods) {
		if f, ok := v.resultNumber(p.Key(pod), pods[pod]); ok {
			r.perPod = append(r.perPod, podValue{pod: pod, value: f})
		}
	}
	return r, true
}

// resultNumber reads a finite number of a query result.
func (v *validator) resultNumber(p *field.Path, lit any) (float64, bool) {
	if f, special := nonFiniteValue(lit); special {
		return 0, v.finite(p, f)
	}
	n, isNum := lit.(json.Number)
	if !isNum {
		v.add(field.TypeInvalid(p, lit, "not a number"))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil {
		v.add(field.Invalid(p, lit, "not a number"))
		return 0, false
	}
	return f, true
}

func isNonFinite(lit any) bool {
	_, ok := nonFiniteValue(lit)
	return ok
}

// observations builds each step's metric observations in the order of the
// spec's metrics, with the controller's sources' own mappings: pod usage
// through a metrics.ResourceSnapshot, query results through
// metrics.QueryObservation. It rejects Prometheus results for metrics the
// app does not have (a typo would otherwise silently read as "no result").
//
// The prometheus-query metric's results may also go by "default", its name
// before metrics were named after their query.
func (v *validator) observations(steps []stepObs, spec *recommender.Spec, podLabel model.LabelName) {
	for i := range steps {
		if steps[i].Spec != nil {
			// A step that changes the annotations observes with its spec,
			// and so do the steps after it.
			spec = steps[i].Spec
		}
		v.observe(&steps[i], spec, podLabel)
	}
}

// observe maps one step's data onto the metrics of spec.
func (v *validator) observe(s *stepObs, spec *recommender.Spec, podLabel model.LabelName) {
	var promNames, shown []string
	queryName := "" // the prometheus-query metric's name, if the app has one
	for _, ms := range spec.Metrics {
		if ms.Source != recommender.SourcePrometheus {
			continue
		}
		promNames = append(promNames, ms.Name)
		if ms.Annotation == annotations.KeyPrometheusQuery {
			queryName = ms.Name
			shown = append(shown, ms.Name+" (or "+annotations.DefaultMetricAlias+")")
			continue
		}
		shown = append(shown, ms.Name)
	}
	for _, name := range s.order {
		at := s.path.Child("prometheus", name)
		switch {
		case name == annotations.DefaultMetricAlias && queryName != "":
			if _, both := s.prom[queryName]; both {
				v.add(withDetail(field.Duplicate(at, name),
					fmt.Sprintf("the results of %s are given twice: as %s and as %s", annotations.KeyPrometheusQuery, queryName, name)))
			}
		case !slices.Contains(promNames, name):
			have := "none"
			if len(shown) > 0 {
				have = strings.Join(shown, ", ")
			}
			v.add(withDetail(field.NotFound(at, name),
				fmt.Sprintf("the app has no Prometheus metric of this name (its Prometheus metrics: %s)", have)))
		}
	}
	v.checkAPINames(s, spec)
	snap := metrics.NewResourceSnapshot(s.usage, nil)
	s.Metrics = make([]recommender.Observation, len(spec.Metrics))
	for j, ms := range spec.Metrics {
		if ms.Source == recommender.SourceResource {
			s.Metrics[j] = snap.Observation("", s.Pods, ms.Resource)
			continue
		}
		if metrics.IsAPIMetric(ms.Source) {
			s.Metrics[j] = v.apiObservation(s, &spec.Metrics[j])
			continue
		}
		r, ok := s.prom[ms.Name]
		if !ok && ms.Name == queryName {
			r, ok = s.prom[annotations.DefaultMetricAlias]
		}
		if !ok {
			// As the controller, for a query that did not run.
			s.Metrics[j] = recommender.Observation{Err: fmt.Errorf("%w: no result for metric %s in this step", recommender.ErrNoData, ms.Name)}
			continue
		}
		var val model.Value
		if r.err == nil {
			val = r.modelValue(podLabel, s.Time)
		}
		s.Metrics[j] = metrics.QueryObservation(ms.Query, podLabel, val, r.err)
	}
}
