package simulate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// Epoch is the wall-clock time of a scenario's t = 0. Scenarios speak in
// relative seconds; a fixed epoch keeps every run identical.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	// longAgo is when a pod started, or last changed readiness, unless the
	// scenario says otherwise: far enough back that no start-up rule applies.
	longAgo = 10 * 24 * time.Hour
	// defaultMetricsWindow is metrics-server's usual sample window.
	defaultMetricsWindow = 30 * time.Second
	// maxSeconds bounds every time field, so durations cannot overflow.
	maxSeconds = 1e9
)

// loadTraceKeys are the top-level keys that select the load-trace form.
var loadTraceKeys = []string{"workload", "sim", "trace", "traceFile"}

// Error lists every problem found in a scenario, each prefixed with the path
// of the field it concerns (for example
// `steps[2].pods[0].containers[0].requests.cpu: "abc" is not a quantity`).
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid scenario: " + e.Problems[0]
	}
	return "invalid scenario:\n  " + strings.Join(e.Problems, "\n  ")
}

// Scenario is a parsed and validated pod-level scenario, ready to Run.
type Scenario struct {
	// Spec is the app's policy: its annotations resolved against the
	// scenario's controller configuration.
	Spec recommender.Spec
	// State is the controller's memory of the app before the first step.
	State recommender.State
	// Replicas is state.replicas: the first step's replicas unless it sets
	// its own. Nil when unset (the first step then sets replicas).
	Replicas *int32
	// StatusReplicas is state.statusReplicas: the first step's status
	// replicas unless it sets its own. Nil when unset.
	StatusReplicas *int32
	Steps          []Step
	// Warnings are non-fatal remarks, such as unknown annotation keys.
	Warnings []string
	// Trace is set, and Steps empty, for a scenario in the load-trace form:
	// run it with Trace.Simulate, not Run.
	Trace *TraceScenario
}

// Step is what the controller observes at one moment of the scenario.
type Step struct {
	// At is the step's time in seconds since the scenario's start, as
	// written; Time is Epoch + At.
	At   float64
	Time time.Time
	// Replicas and StatusReplicas are nil when the step leaves them to
	// their defaults: the previous step's decision, and Replicas.
	Replicas       *int32
	StatusReplicas *int32
	Pods           []recommender.Pod
	// Metrics holds one observation per Spec.Metrics entry, in order.
	Metrics []recommender.Observation
}

// Load parses a scenario (YAML or JSON) and validates it completely. A
// malformed scenario yields an *Error listing every problem at once. A
// load-trace scenario that names a traceFile needs LoadWith.
func Load(data []byte) (*Scenario, error) {
	return LoadWith(data, Options{})
}

// Options are what Load needs from its caller besides the scenario's bytes.
type Options struct {
	// ReadFile reads a file the scenario names (a load trace's traceFile),
	// resolving a relative name against the scenario file's directory. Nil:
	// naming a file is an error.
	ReadFile func(name string) ([]byte, error)
}

// LoadWith is Load with access to the files the scenario names.
func LoadWith(data []byte, opts Options) (*Scenario, error) {
	var root any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []string{"not valid YAML or JSON: " + err.Error()}}
	}
	if root == nil {
		return nil, &Error{Problems: []string{"steps: required: the scenario is empty"}}
	}
	top, ok := asMap(root)
	if !ok {
		return nil, &Error{Problems: []string{fmt.Sprintf("scenario: %s is not a mapping", describe(root))}}
	}
	for _, k := range loadTraceKeys {
		if _, ok := top[k]; ok {
			return loadTrace(top, opts)
		}
	}

	c := &checker{}
	c.mapping("", root, "annotations", "config", "state", "steps")
	sc := &Scenario{}
	cfg := c.config(top["config"])
	app, appOK := c.annotations(top["annotations"], cfg)
	if appOK {
		sc.Spec = app.Spec
		sc.Warnings = app.Warnings
	}
	c.state(top["state"], sc)
	steps := c.steps(top["steps"], cfg.Interval)
	if len(steps) > 0 {
		sc.State = shift(sc.State, steps[0].Time.Sub(Epoch))
	}
	if len(steps) > 0 && steps[0].Replicas == nil && sc.Replicas == nil {
		c.addf("state.replicas", "required when steps[0] does not set replicas: the app's spec.replicas before the first step")
	}
	if appOK {
		c.observations(steps, &sc.Spec, model.LabelName(cfg.Prometheus.PodLabel))
	}
	if len(c.problems) > 0 {
		return nil, &Error{Problems: c.problems}
	}
	sc.Steps = make([]Step, len(steps))
	for i := range steps {
		sc.Steps[i] = steps[i].Step
	}
	return sc, nil
}

// config overlays the scenario's `config:` on the built-in defaults. On any
// problem it returns the defaults, so that the rest can still be checked.
func (c *checker) config(v any) config.Config {
	def := config.Default()
	if v == nil {
		return def
	}
	m, ok := c.mapping("config", v)
	if !ok {
		return def
	}
	// Name unknown keys by their full path, as for every other field;
	// config.Decode would reject them too, less precisely.
	known := def.Map()
	if !c.configKeys("config", "", m, known) {
		return def
	}
	cfg, err := config.Decode(def, m)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "decode config") {
				continue
			}
			c.addf("config", "%s", line)
		}
		return def
	}
	if err := cfg.Validate(); err != nil {
		for _, e := range unjoin(err) {
			c.problems = append(c.problems, "config."+e.Error())
		}
		return def
	}
	return cfg
}

// configKeys reports keys of m that are not configuration keys. known holds
// the dotted key paths of config.Config (as Config.Map returns them); keys
// match case-insensitively, as config.Decode matches them.
func (c *checker) configKeys(path, prefix string, m map[string]any, known map[string]any) bool {
	ok := true
	for _, k := range sortedKeys(m) {
		full := prefix + k
		if hasKeyFold(known, full) {
			continue
		}
		if hasPrefixFold(known, full+".") {
			if sub, isMap := asMap(m[k]); isMap {
				ok = c.configKeys(path, full+".", sub, known) && ok
			} else {
				c.addf(path+"."+full, "%s is not a mapping", describe(m[k]))
				ok = false
			}
			continue
		}
		c.addf(path+"."+full, "unknown field")
		ok = false
	}
	return ok
}

func hasKeyFold(m map[string]any, k string) bool {
	for key := range m {
		if strings.EqualFold(key, k) {
			return true
		}
	}
	return false
}

func hasPrefixFold(m map[string]any, p string) bool {
	for key := range m {
		if len(key) > len(p) && strings.EqualFold(key[:len(p)], p) {
			return true
		}
	}
	return false
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// annotations parses the app's annotations with the configuration's
// defaults. The app must be enabled: simulate only runs managed apps.
func (c *checker) annotations(v any, cfg config.Config) (annotations.App, bool) {
	ann := map[string]string{}
	if v != nil {
		m, ok := c.mapping("annotations", v)
		if !ok {
			return annotations.App{}, false
		}
		bad := false
		for _, k := range sortedKeys(m) {
			s, isString := m[k].(string)
			if !isString {
				c.addf(key("annotations", k), "%s is not a string: annotation values are strings, quote it", describe(m[k]))
				bad = true
				continue
			}
			ann[k] = s
		}
		if bad {
			return annotations.App{}, false
		}
	}
	app, err := annotations.Parse(ann, cfg.AppDefaults())
	if err != nil {
		// Each part names its annotation key.
		for _, e := range unjoin(err) {
			c.problems = append(c.problems, "annotations: "+e.Error())
		}
		// An unknown key often explains an error (a misspelt target).
		for _, w := range app.Warnings {
			c.problems = append(c.problems, "annotations: warning: "+w)
		}
		return annotations.App{}, false
	}
	if !app.Enabled {
		c.addf(key("annotations", "spinscale.dev/enabled"), "must be \"true\": Spinscale manages only apps that opt in, and simulate runs what the controller would do")
		return annotations.App{}, false
	}
	return app, true
}

// state reads the controller's memory before the first step. Its times
// count back from Epoch; Load shifts them to the first step's time.
func (c *checker) state(v any, sc *Scenario) {
	t0 := Epoch
	if v == nil {
		return
	}
	m, ok := c.mapping("state", v, "replicas", "statusReplicas", "recommendations", "scaleEvents")
	if !ok {
		return
	}
	sc.Replicas = c.optReplicas("state.replicas", m["replicas"])
	sc.StatusReplicas = c.optReplicas("state.statusReplicas", m["statusReplicas"])

	// Present, even empty, means exactly this memory: no seeding.
	if recs, present := m["recommendations"]; present {
		sc.State.Initialized = true
		for i, item := range c.list("state.recommendations", recs) {
			p := index("state.recommendations", i)
			r, ok := c.mapping(p, item, "secondsAgo", "replicas")
			if !ok {
				continue
			}
			ago, okAgo := c.requiredSeconds(field(p, "secondsAgo"), r["secondsAgo"])
			n := c.requiredReplicas(field(p, "replicas"), r["replicas"])
			if okAgo && n != nil {
				sc.State.Recommendations = append(sc.State.Recommendations,
					recommender.TimedRecommendation{Replicas: *n, At: t0.Add(-seconds(ago))})
			}
		}
		// The engine expects the history oldest first.
		slices.SortStableFunc(sc.State.Recommendations, func(a, b recommender.TimedRecommendation) int {
			return a.At.Compare(b.At)
		})
	}
	for i, item := range c.list("state.scaleEvents", m["scaleEvents"]) {
		p := index("state.scaleEvents", i)
		e, ok := c.mapping(p, item, "secondsAgo", "change")
		if !ok {
			continue
		}
		ago, okAgo := c.requiredSeconds(field(p, "secondsAgo"), e["secondsAgo"])
		if e["change"] == nil {
			c.addf(field(p, "change"), "required: the signed replica change (+ up, - down)")
			continue
		}
		change, okChange := c.integer(field(p, "change"), e["change"], -math.MaxInt32, math.MaxInt32)
		if okChange && change == 0 {
			c.addf(field(p, "change"), "0 is not a change: use a positive count for a scale-up, a negative one for a scale-down")
			continue
		}
		if !okAgo || !okChange {
			continue
		}
		at := t0.Add(-seconds(ago))
		if change > 0 {
			sc.State.ScaleUpEvents = append(sc.State.ScaleUpEvents, recommender.ScaleEvent{Change: int32(change), At: at})
		} else {
			sc.State.ScaleDownEvents = append(sc.State.ScaleDownEvents, recommender.ScaleEvent{Change: int32(-change), At: at})
		}
	}
}

// shift moves every time of st by d.
func shift(st recommender.State, d time.Duration) recommender.State {
	for i := range st.Recommendations {
		st.Recommendations[i].At = st.Recommendations[i].At.Add(d)
	}
	for i := range st.ScaleUpEvents {
		st.ScaleUpEvents[i].At = st.ScaleUpEvents[i].At.Add(d)
	}
	for i := range st.ScaleDownEvents {
		st.ScaleDownEvents[i].At = st.ScaleDownEvents[i].At.Add(d)
	}
	return st
}

// stepIn is a step being parsed: the Step, plus the raw material of its
// observations, which need the app's spec.
type stepIn struct {
	Step
	path string
	// usage is each pod's, as metrics.k8s.io reports it.
	usage map[types.NamespacedName]metrics.PodUsage
	prom  map[string]queryResult
	order []string // prom keys, sorted
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

func (c *checker) steps(v any, interval time.Duration) []stepIn {
	if v == nil {
		c.addf("steps", "required: a list of at least one step")
		return nil
	}
	items := c.list("steps", v)
	if len(items) == 0 {
		if _, isList := v.([]any); isList {
			c.addf("steps", "must list at least one step")
		}
		return nil
	}
	steps := make([]stepIn, 0, len(items))
	prevAt := 0.0
	for i, item := range items {
		p := index("steps", i)
		m, ok := c.mapping(p, item, "at", "replicas", "statusReplicas", "pods", "prometheus")
		if !ok {
			m = map[string]any{}
		}
		// Without `at`, a step comes one controller interval after the
		// previous one (the first at 0).
		at := 0.0
		if i > 0 {
			at = prevAt + interval.Seconds()
		}
		if m["at"] != nil {
			if a, ok := c.secondsValue(field(p, "at"), m["at"]); ok {
				if i > 0 && a < prevAt {
					c.addf(field(p, "at"), "%s is before the previous step's at (%s): steps must be in time order", fmtNum(a), fmtNum(prevAt))
				}
				at = a
			}
		}
		prevAt = at
		s := stepIn{path: p}
		s.At = at
		s.Time = Epoch.Add(seconds(at))
		s.Replicas = c.optReplicas(field(p, "replicas"), m["replicas"])
		s.StatusReplicas = c.optReplicas(field(p, "statusReplicas"), m["statusReplicas"])
		c.pods(&s, m["pods"])
		c.prometheus(&s, m["prometheus"])
		steps = append(steps, s)
	}
	return steps
}

func (c *checker) pods(s *stepIn, v any) {
	base := field(s.path, "pods")
	seen := map[string]bool{}
	for i, item := range c.list(base, v) {
		p := index(base, i)
		m, ok := c.mapping(p, item, "name", "phase", "ready", "startedSecondsAgo", "readySecondsAgo",
			"deleting", "containers", "resources", "metricsAgeSeconds", "metricsWindowSeconds")
		if !ok {
			continue
		}
		pod := recommender.Pod{Phase: corev1.PodRunning, Ready: true, HasReadyCondition: true}
		if name, ok := c.str(field(p, "name"), m["name"]); ok && name != "" {
			if seen[name] {
				c.addf(field(p, "name"), "%q is used by another pod of this step: pod names are unique", name)
			}
			seen[name] = true
			pod.Name = name
		} else if ok || m["name"] == nil {
			c.addf(field(p, "name"), "required: a non-empty pod name")
		}
		if m["phase"] != nil {
			if ph, ok := c.str(field(p, "phase"), m["phase"]); ok {
				if slices.Contains(phases, ph) {
					pod.Phase = corev1.PodPhase(ph)
				} else {
					c.addf(field(p, "phase"), "%q is not a pod phase: allowed %s", ph, strings.Join(phases, ", "))
				}
			}
		}
		if b, ok := c.optBool(field(p, "ready"), m["ready"]); ok {
			pod.Ready = b
		}
		if b, ok := c.optBool(field(p, "deleting"), m["deleting"]); ok {
			pod.Deleting = b
		}
		started := c.optSeconds(field(p, "startedSecondsAgo"), m["startedSecondsAgo"], longAgo)
		ready := c.optSeconds(field(p, "readySecondsAgo"), m["readySecondsAgo"], longAgo)
		pod.StartTime = s.Time.Add(-started)
		pod.ReadyTransition = s.Time.Add(-ready)
		pm := metricsv1beta1.PodMetrics{
			Timestamp: metav1.NewTime(s.Time.Add(-c.optSeconds(field(p, "metricsAgeSeconds"), m["metricsAgeSeconds"], 0))),
			Window:    metav1.Duration{Duration: c.optSeconds(field(p, "metricsWindowSeconds"), m["metricsWindowSeconds"], defaultMetricsWindow)},
		}
		var ps corev1.PodSpec
		ps.Containers, pm.Containers = c.containers(field(p, "containers"), m["containers"])
		ps.Resources = c.podResources(field(p, "resources"), m["resources"])
		pod.CPU, pod.Memory = recommender.PodRequests(&ps)
		s.Pods = append(s.Pods, pod)
		if s.usage == nil {
			s.usage = map[types.NamespacedName]metrics.PodUsage{}
		}
		s.usage[types.NamespacedName{Name: pod.Name}] = metrics.PodUsageOf(&pm)
	}
}

var resourceNames = []string{string(corev1.ResourceCPU), string(corev1.ResourceMemory)}

// containers reads a pod's containers with their requests, and returns
// their usage as metrics-server reports it.
func (c *checker) containers(path string, v any) (spec []corev1.Container, usage []metricsv1beta1.ContainerMetrics) {
	items := c.list(path, v)
	names := map[string]bool{}
	for i, item := range items {
		p := index(path, i)
		m, ok := c.mapping(p, item, "name", "requests", "usage")
		if !ok {
			continue
		}
		name := fmt.Sprintf("container-%d", i)
		if m["name"] != nil {
			if n, ok := c.str(field(p, "name"), m["name"]); ok && n != "" {
				if names[n] {
					c.addf(field(p, "name"), "%q is used by another container of this pod", n)
				}
				name = n
			}
		}
		names[name] = true
		spec = append(spec, corev1.Container{Name: name,
			Resources: corev1.ResourceRequirements{Requests: c.resourceList(field(p, "requests"), m["requests"])}})
		cm := metricsv1beta1.ContainerMetrics{Name: name, Usage: c.resourceList(field(p, "usage"), m["usage"])}
		usage = append(usage, cm)
	}
	return spec, usage
}

// podResources reads a pod's pod-level `resources: {requests: {...}}`;
// nil when absent.
func (c *checker) podResources(path string, v any) *corev1.ResourceRequirements {
	if v == nil {
		return nil
	}
	m, ok := c.mapping(path, v, "requests")
	if !ok {
		return nil
	}
	return &corev1.ResourceRequirements{Requests: c.resourceList(field(path, "requests"), m["requests"])}
}

func (c *checker) resourceList(path string, v any) corev1.ResourceList {
	out := corev1.ResourceList{}
	for r, q := range c.resources(path, v) {
		out[r] = *resource.NewMilliQuantity(q, resource.DecimalSI)
	}
	return out
}

func (c *checker) resources(path string, v any) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	if v == nil {
		return out
	}
	m, ok := c.mapping(path, v, resourceNames...)
	if !ok {
		return out
	}
	for _, r := range resourceNames {
		if m[r] == nil {
			continue
		}
		if q, ok := c.quantity(field(path, r), m[r]); ok {
			out[corev1.ResourceName(r)] = q
		}
	}
	return out
}

// prometheus reads the step's query results by metric name: a number is a
// single value, {pod: number} per-pod values, {error: "…"} a failed query,
// null an empty result.
func (c *checker) prometheus(s *stepIn, v any) {
	s.prom = map[string]queryResult{}
	if v == nil {
		return
	}
	base := field(s.path, "prometheus")
	m, ok := c.mapping(base, v)
	if !ok {
		return
	}
	s.order = sortedKeys(m)
	for _, name := range s.order {
		p := field(base, name)
		switch val := m[name].(type) {
		case nil:
			s.prom[name] = queryResult{}
		default:
			if f, isNum := toFloat(val); isNum {
				if c.finite(p, f) {
					s.prom[name] = queryResult{value: &f}
				}
				continue
			}
			pods, isMap := asMap(val)
			if !isMap {
				c.addf(p, "%s is not a query result: use a number, {pod: number, …}, {error: \"…\"} or null", describe(val))
				continue
			}
			if e, has := pods["error"]; has {
				if msg, isString := e.(string); isString {
					if len(pods) > 1 {
						c.addf(p, "error cannot be combined with per-pod values")
						continue
					}
					if msg == "" {
						msg = "query failed"
					}
					s.prom[name] = queryResult{err: errors.New(msg)}
					continue
				}
			}
			r := queryResult{perPod: []podValue{}}
			for _, pod := range sortedKeys(pods) {
				pp := key(p, pod)
				f, isNum := toFloat(pods[pod])
				if !isNum {
					c.addf(pp, "%s is not a number", describe(pods[pod]))
					continue
				}
				if c.finite(pp, f) {
					r.perPod = append(r.perPod, podValue{pod: pod, value: f})
				}
			}
			s.prom[name] = r
		}
	}
}

// observations builds each step's metric observations in the order of the
// spec's metrics, with the controller's sources' own mappings: pod usage
// through a metrics.ResourceSnapshot, query results through
// metrics.QueryObservation. It rejects Prometheus results for metrics the
// app does not have (a typo would otherwise silently read as "no result").
func (c *checker) observations(steps []stepIn, spec *recommender.Spec, podLabel model.LabelName) {
	var promNames []string
	for _, ms := range spec.Metrics {
		if ms.Source == recommender.SourcePrometheus {
			promNames = append(promNames, ms.Name)
		}
	}
	for i := range steps {
		s := &steps[i]
		for _, name := range s.order {
			if !slices.Contains(promNames, name) {
				have := "none"
				if len(promNames) > 0 {
					have = strings.Join(promNames, ", ")
				}
				c.addf(field(field(s.path, "prometheus"), name), "the app has no Prometheus metric of this name (its Prometheus metrics: %s)", have)
			}
		}
		snap := metrics.NewResourceSnapshot(s.usage, nil)
		s.Metrics = make([]recommender.Observation, len(spec.Metrics))
		for j, ms := range spec.Metrics {
			if ms.Source == recommender.SourceResource {
				s.Metrics[j] = snap.Observation("", s.Pods, ms.Resource)
				continue
			}
			r, ok := s.prom[ms.Name]
			if !ok {
				// As the controller, for a query that did not run.
				s.Metrics[j] = recommender.Observation{Err: fmt.Errorf("%w: no result for metric %s in this step", recommender.ErrNoData, ms.Name)}
				continue
			}
			var v model.Value
			if r.err == nil {
				v = r.modelValue(podLabel, s.Time)
			}
			s.Metrics[j] = metrics.QueryObservation(ms.Query, podLabel, v, r.err)
		}
	}
}

// checker walks the generic YAML tree and accumulates problems, each
// prefixed with its field path, so that one run reports all of them.
type checker struct {
	problems []string
}

func (c *checker) addf(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

func field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// key addresses an entry of a map whose keys are data (annotation keys, pod
// names) rather than field names.
func key(path, k string) string { return fmt.Sprintf("%s[%s]", path, k) }

// mapping returns v as a map. With allowed fields given, other keys are
// reported as unknown fields.
func (c *checker) mapping(path string, v any, allowed ...string) (map[string]any, bool) {
	m, ok := asMap(v)
	if !ok {
		p := path
		if p == "" {
			p = "scenario"
		}
		c.addf(p, "%s is not a mapping", describe(v))
		return nil, false
	}
	if len(allowed) > 0 {
		for _, k := range sortedKeys(m) {
			if !slices.Contains(allowed, k) {
				c.addf(field(path, k), "unknown field (allowed: %s)", strings.Join(allowed, ", "))
			}
		}
	}
	return m, true
}

// list returns v as a list; null is an empty list.
func (c *checker) list(path string, v any) []any {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		c.addf(path, "%s is not a list", describe(v))
	}
	return l
}

func (c *checker) str(path string, v any) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		c.addf(path, "%s is not a string", describe(v))
	}
	return s, ok
}

// optBool reads an optional boolean; ok is false when absent or invalid.
func (c *checker) optBool(path string, v any) (bool, bool) {
	if v == nil {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		c.addf(path, "%s is not a boolean (true or false)", describe(v))
	}
	return b, ok
}

func (c *checker) finite(path string, f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		c.addf(path, "%s is not a finite number", fmtNum(f))
		return false
	}
	return true
}

// integer reads a whole number in [lo, hi].
func (c *checker) integer(path string, v any, lo, hi int64) (int64, bool) {
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) {
		c.addf(path, "%s is not an integer", describe(v))
		return 0, false
	}
	if f < float64(lo) || f > float64(hi) {
		c.addf(path, "%s is out of range: allowed %d to %d", describe(v), lo, hi)
		return 0, false
	}
	return int64(f), true
}

func (c *checker) optReplicas(path string, v any) *int32 {
	if v == nil {
		return nil
	}
	return c.requiredReplicas(path, v)
}

func (c *checker) requiredReplicas(path string, v any) *int32 {
	if v == nil {
		c.addf(path, "required: a replica count")
		return nil
	}
	n, ok := c.integer(path, v, 0, math.MaxInt32)
	if !ok {
		return nil
	}
	r := int32(n)
	return &r
}

// number reads a finite number that inRange accepts; noun says what is
// expected ("number of seconds") and allowed what the range is.
func (c *checker) number(path string, v any, noun string, inRange func(float64) bool, allowed string) (float64, bool) {
	f, ok := toFloat(v)
	if !ok {
		c.addf(path, "%s is not a %s", describe(v), noun)
		return 0, false
	}
	if !c.finite(path, f) {
		return 0, false
	}
	if !inRange(f) {
		c.addf(path, "%s is out of range: allowed %s", describe(v), allowed)
		return 0, false
	}
	return f, true
}

// secondsValue reads a finite, non-negative number of seconds.
func (c *checker) secondsValue(path string, v any) (float64, bool) {
	return c.number(path, v, "number of seconds", func(f float64) bool { return f >= 0 && f <= maxSeconds },
		"0 to "+fmtNum(maxSeconds)+" seconds")
}

func (c *checker) requiredSeconds(path string, v any) (float64, bool) {
	if v == nil {
		c.addf(path, "required: a number of seconds")
		return 0, false
	}
	return c.secondsValue(path, v)
}

// optSeconds reads an optional number of seconds as a duration.
func (c *checker) optSeconds(path string, v any, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	f, ok := c.secondsValue(path, v)
	if !ok {
		return def
	}
	return seconds(f)
}

// quantity reads a Kubernetes quantity ("500m", "128Mi", 1) in milli-units,
// as HPA compares them.
func (c *checker) quantity(path string, v any) (int64, bool) {
	q, ok := c.parseQuantity(path, v)
	if !ok {
		return 0, false
	}
	// Checked on a float: Quantity comparisons panic on extreme exponents.
	if f := q.AsApproximateFloat64(); f > 1e15 {
		c.addf(path, "%s is too large", describe(v))
		return 0, false
	}
	if q.Sign() < 0 {
		c.addf(path, "%s is negative", describe(v))
		return 0, false
	}
	return q.MilliValue(), true
}

// parseQuantity reads a quantity written as a string ("500m") or a number.
func (c *checker) parseQuantity(path string, v any) (resource.Quantity, bool) {
	s, isString := v.(string)
	if !isString {
		f, ok := toFloat(v)
		if !ok {
			c.addf(path, "%s is not a quantity", describe(v))
			return resource.Quantity{}, false
		}
		if !c.finite(path, f) {
			return resource.Quantity{}, false
		}
		s = fmtNum(f)
	}
	q, err := annotations.ParseQuantity(s)
	if err != nil {
		c.addf(path, "%s is not a quantity", describe(v))
		return resource.Quantity{}, false
	}
	return q, true
}

// asMap accepts the two map types a YAML decoder produces.
func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, val := range m {
			out[fmt.Sprint(k)] = val
		}
		return out, true
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// describe renders a value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case float64:
		return fmtNum(x)
	}
	return fmt.Sprint(v)
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }
