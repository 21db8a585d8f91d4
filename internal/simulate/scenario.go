package simulate

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/validation/field"

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

// Error lists every problem found in a scenario, each with the path of the
// field it concerns (for example
// `steps[2].pods[0].containers[0].requests.cpu: Invalid value: "abc": not a quantity`).
type Error struct {
	Errs field.ErrorList
}

func (e *Error) Error() string {
	if len(e.Errs) == 1 {
		return "invalid scenario: " + e.Errs[0].Error()
	}
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = fe.Error()
	}
	return "invalid scenario:\n  " + strings.Join(lines, "\n  ")
}

// Unwrap exposes each *field.Error to errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		out[i] = fe
	}
	return out
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
	// ScaledToZero is state.scaledToZero: Spinscale's record that it scaled
	// the app to zero before the first step (the scaled-to-zero annotation).
	ScaledToZero bool
	Steps        []Step
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
	// Metrics holds one observation per entry of the step's spec, in order.
	Metrics []recommender.Observation
	// Spec is the app's spec from this step on when the step changes its
	// annotations; nil keeps the previous step's.
	Spec *recommender.Spec
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
	root, perr := parseYAML(data)
	if perr != nil {
		return nil, &Error{Errs: field.ErrorList{perr}}
	}
	if root == nil {
		return nil, &Error{Errs: field.ErrorList{field.Required(field.NewPath("steps"), "the scenario is empty")}}
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, &Error{Errs: field.ErrorList{field.TypeInvalid(field.NewPath("scenario"), root, "not a mapping")}}
	}
	doc, err := json.Marshal(root)
	if err != nil {
		return nil, &Error{Errs: field.ErrorList{field.InternalError(nil, err)}}
	}
	for _, k := range loadTraceKeys {
		if _, ok := top[k]; ok {
			return loadTrace(doc, top, opts)
		}
	}

	var in podScenarioIn
	errs, fatal := decodeStrict(doc, &in, nil)
	if fatal {
		return nil, &Error{Errs: errs}
	}
	if in.State != nil {
		state, _ := top["state"].(map[string]any)
		_, in.State.hasRecommendations = state["recommendations"]
	}
	v := &validator{errs: errs}
	sc := &Scenario{}
	cfg := v.config(in.Config)
	app, ann, appOK := v.annotations(in.Annotations, cfg)
	if appOK {
		sc.Spec = app.Spec
		sc.Warnings = app.Warnings
	}
	v.state(in.State, sc)
	steps := v.steps(in.Steps, cfg.Interval)
	if len(steps) > 0 {
		sc.State = shift(sc.State, steps[0].Time.Sub(Epoch))
	}
	if len(steps) > 0 && steps[0].Replicas == nil && sc.Replicas == nil {
		v.errs = append(v.errs, field.Required(field.NewPath("state", "replicas"),
			"when steps[0] does not set replicas: the app's spec.replicas before the first step"))
	}
	if appOK {
		v.stepAnnotations(in.Steps, steps, ann, cfg)
		v.observations(steps, &sc.Spec, model.LabelName(cfg.Prometheus.PodLabel))
	}
	if len(v.errs) > 0 {
		return nil, &Error{Errs: inFieldOrder(v.errs, &in)}
	}
	sc.Steps = make([]Step, len(steps))
	for i := range steps {
		sc.Steps[i] = steps[i].Step
	}
	return sc, nil
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

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func seconds(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }
