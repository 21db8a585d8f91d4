package annotations

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// Prefix is the annotation prefix every Spinscale key lives under.
const Prefix = "spinscale.dev/"

// The annotation keys, in full. They are the product contract (DESIGN.md §3):
// never rename one.
const (
	KeyEnabled                      = Prefix + "enabled"
	KeyMinReplicas                  = Prefix + "min-replicas"
	KeyMaxReplicas                  = Prefix + "max-replicas"
	KeyTargetCPUUtilization         = Prefix + "target-cpu-utilization"
	KeyTargetMemoryUtilization      = Prefix + "target-memory-utilization"
	KeyTargetCPUAverageValue        = Prefix + "target-cpu-average-value"
	KeyTargetMemoryAverageValue     = Prefix + "target-memory-average-value"
	KeyPrometheusQuery              = Prefix + "prometheus-query"
	KeyPrometheusTargetAverageValue = Prefix + "prometheus-target-average-value"
	KeyPrometheusTargetValue        = Prefix + "prometheus-target-value"
	KeyMetrics                      = Prefix + "metrics"
	KeyTolerance                    = Prefix + "tolerance"
	KeyToleranceUp                  = Prefix + "tolerance-up"
	KeyToleranceDown                = Prefix + "tolerance-down"
	KeyScaleUpStabilization         = Prefix + "scale-up-stabilization"
	KeyScaleDownStabilization       = Prefix + "scale-down-stabilization"
	KeyBehavior                     = Prefix + "behavior"
	KeyProfile                      = Prefix + "profile"
	KeyBurstThreshold               = Prefix + "burst-threshold"
	KeyLookahead                    = Prefix + "lookahead"
	KeyDropWindow                   = Prefix + "drop-window"
	KeyDropThreshold                = Prefix + "drop-threshold"
	KeyDryRun                       = Prefix + "dry-run"
	KeyPaused                       = Prefix + "paused"
	KeyFallbackReplicas             = Prefix + "fallback-replicas"
	KeyFallbackAfter                = Prefix + "fallback-after"
)

// keys lists every known key in documentation order.
var keys = []string{
	KeyEnabled,
	KeyMinReplicas,
	KeyMaxReplicas,
	KeyTargetCPUUtilization,
	KeyTargetMemoryUtilization,
	KeyTargetCPUAverageValue,
	KeyTargetMemoryAverageValue,
	KeyPrometheusQuery,
	KeyPrometheusTargetAverageValue,
	KeyPrometheusTargetValue,
	KeyMetrics,
	KeyTolerance,
	KeyToleranceUp,
	KeyToleranceDown,
	KeyScaleUpStabilization,
	KeyScaleDownStabilization,
	KeyBehavior,
	KeyProfile,
	KeyBurstThreshold,
	KeyLookahead,
	KeyDropWindow,
	KeyDropThreshold,
	KeyDryRun,
	KeyPaused,
	KeyFallbackReplicas,
	KeyFallbackAfter,
}

// Keys returns every known annotation key (with the prefix), in the order
// the documentation lists them.
func Keys() []string { return slices.Clone(keys) }

// Profiles are the values the profile annotation accepts.
var Profiles = []recommender.Profile{recommender.ProfileHPA, recommender.ProfileSpinscale}

// Limits of the values. They keep every number the engine multiplies far
// from overflow, and are documented in docs/annotations.md.
const (
	// maxReplicas bounds min-replicas, max-replicas and fallback-replicas.
	maxReplicas = 100000
	// maxUtilization bounds a utilization target, in percent.
	maxUtilization = 100000
	// maxTargetMilli bounds every quantity target: 10^12 units ("1T").
	maxTargetMilli = int64(1_000_000_000_000_000)
	// maxStructuredLen bounds the behavior and metrics values, which are
	// YAML documents; a real one is a few hundred bytes.
	maxStructuredLen = 64 << 10
	// maxStabilization bounds the stabilization shorthands, as the API
	// server bounds stabilizationWindowSeconds.
	maxStabilization = time.Duration(recommender.MaxStabilizationWindowSeconds) * time.Second
	// maxBurstThreshold bounds burst-threshold, a usage ratio.
	maxBurstThreshold = 100
	// maxLookahead bounds lookahead.
	maxLookahead = 10 * time.Minute
	// maxFallbackAfter bounds fallback-after.
	maxFallbackAfter = 24 * time.Hour
	// defaultFallbackAfter is fallback-after when only fallback-replicas is set.
	defaultFallbackAfter = time.Minute
	// maxQuantityLen bounds a quantity's text.
	maxQuantityLen = 64
	// maxErrorValueLen is how much of a value an error message quotes.
	maxErrorValueLen = 120
)

var maxTarget = resource.NewMilliQuantity(maxTargetMilli, resource.DecimalSI)

// extremeNumber matches a decimal exponent of 100 or more in magnitude, or a
// run of more than 30 digits. resource.ParseQuantity takes minutes on
// "1e-2147483647" and Quantity.String is slow on huge digit strings, so such
// numbers are refused before they reach either; no real target or tolerance
// needs them.
var extremeNumber = regexp.MustCompile(`[0-9.][eE][+-]?0*[1-9][0-9]{2,}|[0-9]{31,}`)

// ErrExtremeQuantity rejects a quantity text that apimachinery cannot parse
// in reasonable time or format safely.
var ErrExtremeQuantity = errors.New("numbers must have at most 30 digits and an exponent below 100")

// ParseQuantity is resource.ParseQuantity for untrusted text: it refuses
// texts longer than 64 characters and extreme exponents or digit runs first.
func ParseQuantity(s string) (resource.Quantity, error) {
	if len(s) > maxQuantityLen {
		return resource.Quantity{}, fmt.Errorf("quantity longer than %d characters", maxQuantityLen)
	}
	if extremeNumber.MatchString(s) {
		return resource.Quantity{}, ErrExtremeQuantity
	}
	return resource.ParseQuantity(s)
}

// Defaults are the global settings an app's spec starts from; the wiring code
// fills them from the controller's configuration.
type Defaults struct {
	Profile                 string
	Tolerance               float64
	DownscaleStabilization  time.Duration
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
	MaxSampleAge            time.Duration
	ScaleUpLimitFactor      float64
	ScaleUpLimitMinimum     int32
}

// DefaultsFrom takes the defaults from the controller's configuration: the
// controller, the simulator and the converter all start an app's spec here.
func DefaultsFrom(c *config.Config) Defaults {
	return Defaults{
		Profile: c.Profile, Tolerance: c.Tolerance, DownscaleStabilization: c.DownscaleStabilization,
		CPUInitializationPeriod: c.CPUInitializationPeriod, InitialReadinessDelay: c.InitialReadinessDelay,
		MaxSampleAge: c.MaxSampleAge, ScaleUpLimitFactor: c.ScaleUpLimitFactor, ScaleUpLimitMinimum: c.ScaleUpLimitMinimum,
	}
}

// FieldError is one problem with one annotation.
type FieldError struct {
	// Key is the full annotation key.
	Key string
	// Path locates the problem inside a structured value (metrics,
	// behavior), such as "[1].targetValue"; empty for a plain value.
	Path string
	// Value is the offending value (the element at Path, if any).
	Value string
	// Message says what is wrong and what is allowed.
	Message string

	// absent marks a required key that is missing, so that the message does
	// not quote an empty value the user never wrote.
	absent bool
}

// Error renders `key: "value": message`, or `key: path: "value": message`
// for a field inside a structured value.
func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Key)
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if !e.absent && (e.Path == "" || e.Value != "") {
		b.WriteString(quote(e.Value))
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// quote quotes a value, shortened so that one huge value cannot flood an
// Event or a log line.
func quote(v string) string {
	if len(v) <= maxErrorValueLen {
		return strconv.Quote(v)
	}
	cut := maxErrorValueLen
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.Quote(v[:cut]+"…") + fmt.Sprintf(" (%d bytes)", len(v))
}

// Error is every problem found in an app's annotations.
type Error struct {
	Fields []FieldError
}

// Error joins every field error with "; ".
func (e *Error) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap exposes each field error to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// App is an app's parsed annotations.
type App struct {
	// Enabled is true when the app opted in (enabled: "true").
	Enabled bool
	// DryRun is the app's own dry-run annotation: compute and report, never
	// patch. The global dry-run setting applies on top of it.
	DryRun bool
	// Spec is the engine's fully resolved spec. Unset when Parse fails.
	Spec recommender.Spec
	// Warnings are problems that do not stop the app from being managed,
	// such as unknown keys under the prefix.
	Warnings []string
}

// Enabled reports whether the annotations opt the app in. It is cheap enough
// to filter every Deployment of the cluster with.
func Enabled(ann map[string]string) bool {
	return strings.TrimSpace(ann[KeyEnabled]) == "true"
}

// Parse validates an app's annotations and resolves its spec against d.
//
// An app that is not enabled gives App{Enabled: false} and no error; its
// other keys are not looked at. Otherwise, the error, if any, is an *Error
// listing every problem found, and the returned Spec must not be used: the
// app is to be left as it is.
func Parse(ann map[string]string, d Defaults) (App, error) {
	if !Enabled(ann) {
		var app App
		// A value that is neither true nor false is probably a typo for
		// true: say so rather than ignore the app silently.
		if v, ok := ann[KeyEnabled]; ok && strings.TrimSpace(v) != "false" {
			app.Warnings = []string{fmt.Sprintf("%s: %s: must be true or false; the app is not managed", KeyEnabled, quote(v))}
		}
		return app, nil
	}

	p := &parser{ann: ann}
	app := App{Enabled: true, Warnings: unknownKeys(ann)}
	spec := recommender.Spec{
		DownscaleStabilization:  d.DownscaleStabilization,
		ScaleUpLimitFactor:      d.ScaleUpLimitFactor,
		ScaleUpLimitMinimum:     d.ScaleUpLimitMinimum,
		CPUInitializationPeriod: d.CPUInitializationPeriod,
		InitialReadinessDelay:   d.InitialReadinessDelay,
		MaxSampleAge:            d.MaxSampleAge,
	}
	// In the order of Keys, so that errors come out in the documentation's
	// order.
	b := p.bounds()
	spec.MinReplicas, spec.MaxReplicas = b.min, b.max
	spec.Metrics = p.metrics()
	spec.Behavior, spec.Tolerance = p.behavior(d.Tolerance)
	spec.Profile = p.profile(d.Profile)
	spec.Tuning = p.tuning(spec.Profile)
	app.DryRun = p.boolean(KeyDryRun)
	spec.Paused = p.boolean(KeyPaused)
	spec.FallbackReplicas, spec.FallbackAfter = p.fallback(b)

	if len(p.errs) > 0 {
		return App{Enabled: true, DryRun: app.DryRun, Warnings: app.Warnings}, &Error{Fields: p.errs}
	}
	app.Spec = spec
	return app, nil
}

// parser reads one app's annotations and collects every error.
type parser struct {
	ann  map[string]string
	errs []FieldError
}

// get returns a key's value trimmed of surrounding whitespace.
func (p *parser) get(key string) (string, bool) {
	v, ok := p.ann[key]
	return strings.TrimSpace(v), ok
}

// fail records a problem with a key's value as written.
func (p *parser) fail(key, format string, args ...any) {
	p.errs = append(p.errs, FieldError{Key: key, Value: p.ann[key], Message: fmt.Sprintf(format, args...)})
}

// failAt records a problem inside a structured value.
func (p *parser) failAt(key, path, value, format string, args ...any) {
	p.errs = append(p.errs, FieldError{Key: key, Path: path, Value: value, Message: fmt.Sprintf(format, args...)})
}

// missing records a required key that is absent.
func (p *parser) missing(key, format string, args ...any) {
	p.errs = append(p.errs, FieldError{Key: key, Message: fmt.Sprintf(format, args...), absent: true})
}

func (p *parser) boolean(key string) bool {
	v, ok := p.get(key)
	switch {
	case !ok || v == "false":
		return false
	case v == "true":
		return true
	}
	p.fail(key, "must be true or false")
	return false
}

func (p *parser) profile(def string) recommender.Profile {
	v, ok := p.get(KeyProfile)
	if !ok {
		return recommender.Profile(def)
	}
	if slices.Contains(Profiles, recommender.Profile(v)) {
		return recommender.Profile(v)
	}
	names := make([]string, len(Profiles))
	for i, pr := range Profiles {
		names[i] = string(pr)
	}
	p.fail(KeyProfile, "must be one of: %s", strings.Join(names, ", "))
	return ""
}

// tuning parses the spinscale profile's keys over its defaults. They mean
// nothing to the hpa profile, so setting one there is a contradiction.
func (p *parser) tuning(profile recommender.Profile) recommender.Tuning {
	if profile != recommender.ProfileSpinscale {
		for _, key := range []string{KeyBurstThreshold, KeyLookahead, KeyDropWindow, KeyDropThreshold} {
			if _, ok := p.ann[key]; ok && profile != "" {
				p.fail(key, "applies to the spinscale profile only; this app's profile is %s (set %s: spinscale)", profile, KeyProfile)
			}
		}
		return recommender.Tuning{}
	}
	t := recommender.DefaultTuning
	if _, ok := p.ann[KeyBurstThreshold]; ok {
		v, _ := p.get(KeyBurstThreshold)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f == 0 || (f > 1 && f <= maxBurstThreshold)) { // also rejects NaN
			p.fail(KeyBurstThreshold, "must be 0 (off) or a usage ratio above 1 and at most %d (e.g. 1.3: the metric at 130%% of its target)", maxBurstThreshold)
		} else {
			t.BurstThreshold = f
		}
	}
	if _, ok := p.ann[KeyLookahead]; ok {
		v, _ := p.get(KeyLookahead)
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxLookahead {
			p.fail(KeyLookahead, "must be a Go duration from 0s (off) to %s (e.g. 30s)", config.FormatDuration(maxLookahead))
		} else {
			t.Lookahead = d
		}
	}
	if _, ok := p.ann[KeyDropWindow]; ok {
		if w, ok := p.window(KeyDropWindow); ok {
			t.DropWindow = time.Duration(w) * time.Second
		}
	}
	if _, ok := p.ann[KeyDropThreshold]; ok {
		v, _ := p.get(KeyDropThreshold)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f < 1) { // also rejects NaN
			p.fail(KeyDropThreshold, "must be a fraction above 0 and below 1 (e.g. 0.3: recommendations 30%% below the current count)")
		} else {
			t.DropThreshold = f
		}
	}
	return t
}

// bounds are the replica bounds, and whether each is known valid, so that
// later checks compare against them only when they mean something.
type bounds struct {
	min, max     int32
	minOK, maxOK bool
	minDesc      string // "min-replicas (2)", or "min-replicas" when invalid
	maxDesc      string // "max-replicas (10)" when valid
	lower, upper int32  // what fallback-replicas may be, as far as known
}

func (p *parser) bounds() bounds {
	b := bounds{min: 1, minOK: true, lower: 1, upper: maxReplicas}
	if v, ok := p.get(KeyMinReplicas); ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > maxReplicas {
			p.fail(KeyMinReplicas, "must be an integer from 1 to %d", maxReplicas)
			b.minOK = false
		} else {
			b.min = int32(n)
		}
	}
	b.lower = b.min
	b.minDesc = "min-replicas"
	if b.minOK {
		b.minDesc = fmt.Sprintf("min-replicas (%d)", b.min)
	}

	v, ok := p.get(KeyMaxReplicas)
	if !ok {
		p.missing(KeyMaxReplicas, "required (there is no default): an integer >= %s and <= %d", b.minDesc, maxReplicas)
		return b
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < int64(b.min) || n > maxReplicas {
		p.fail(KeyMaxReplicas, "must be an integer >= %s and <= %d", b.minDesc, maxReplicas)
		return b
	}
	b.max, b.maxOK, b.upper = int32(n), true, int32(n)
	b.maxDesc = fmt.Sprintf("max-replicas (%d)", n)
	return b
}

// parseTarget parses a quantity target into milli-units; ok is false unless
// it is a quantity in (0, maxTarget].
func parseTarget(s string) (int64, bool) {
	q, err := ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return 0, false
	}
	// The bound is checked on a float: Quantity.Cmp panics on some extreme
	// exponents. A value too small for a float64 is treated as zero.
	if f := q.AsApproximateFloat64(); !(f > 0 && f <= float64(maxTargetMilli)/1000) {
		return 0, false
	}
	// MilliValue rounds up, so a positive target is never 0m.
	return q.MilliValue(), true
}

// targetAllowed describes what parseTarget accepts.
func targetAllowed(example string) string {
	return fmt.Sprintf("must be a quantity > 0 and <= %s (e.g. %s)", maxTarget.String(), example)
}

// resourceMetric parses the utilization and average-value targets of one
// resource; present is true when either key is set.
func (p *parser) resourceMetric(res corev1.ResourceName, utilKey, avgKey, example string) (ms *recommender.MetricSpec, present bool) {
	util, hasUtil := p.get(utilKey)
	avg, hasAvg := p.get(avgKey)
	var out *recommender.MetricSpec
	if hasUtil {
		n, err := strconv.ParseInt(util, 10, 32)
		if err != nil || n < 1 || n > maxUtilization {
			p.fail(utilKey, "must be a whole percent of the %s request from 1 to %d (it may exceed 100)", res, maxUtilization)
		} else {
			out = &recommender.MetricSpec{Name: string(res), Source: recommender.SourceResource, Resource: res,
				Target: recommender.TargetUtilization, TargetUtilization: int32(n)}
		}
	}
	if hasAvg {
		milli, ok := parseTarget(avg)
		if !ok {
			p.fail(avgKey, "%s", targetAllowed(example))
		} else {
			out = &recommender.MetricSpec{Name: string(res), Source: recommender.SourceResource, Resource: res,
				Target: recommender.TargetAverageValue, TargetMilli: milli}
		}
	}
	if hasUtil && hasAvg {
		p.fail(avgKey, "contradicts %s: set either a utilization or an average-value target for %s, not both", utilKey, res)
		return nil, true
	}
	return out, hasUtil || hasAvg
}

// prometheusMetric parses the single-query keys into the "default" metric.
func (p *parser) prometheusMetric() (ms *recommender.MetricSpec, present bool) {
	query, hasQuery := p.get(KeyPrometheusQuery)
	avg, hasAvg := p.get(KeyPrometheusTargetAverageValue)
	val, hasVal := p.get(KeyPrometheusTargetValue)
	if !hasQuery && !hasAvg && !hasVal {
		return nil, false
	}
	ok := true
	if hasQuery {
		if query == "" || !utf8.ValidString(query) {
			p.fail(KeyPrometheusQuery, "must be a non-empty PromQL query in UTF-8")
			ok = false
		}
		if !hasAvg && !hasVal {
			p.fail(KeyPrometheusQuery, "requires a target: set %s or %s", KeyPrometheusTargetAverageValue, KeyPrometheusTargetValue)
			ok = false
		}
	}
	out := &recommender.MetricSpec{Name: "default", Source: recommender.SourcePrometheus, Query: query}
	for _, t := range []struct {
		key, value string
		set        bool
		target     recommender.TargetType
	}{
		{KeyPrometheusTargetAverageValue, avg, hasAvg, recommender.TargetAverageValue},
		{KeyPrometheusTargetValue, val, hasVal, recommender.TargetValue},
	} {
		if !t.set {
			continue
		}
		milli, valid := parseTarget(t.value)
		if !valid {
			p.fail(t.key, "%s", targetAllowed("400, 0.5, 1k"))
			ok = false
		}
		if !hasQuery {
			p.fail(t.key, "requires %s", KeyPrometheusQuery)
			ok = false
		}
		out.Target, out.TargetMilli = t.target, milli
	}
	if hasAvg && hasVal {
		p.fail(KeyPrometheusTargetValue, "contradicts %s: set exactly one target for %s", KeyPrometheusTargetAverageValue, KeyPrometheusQuery)
		ok = false
	}
	if !ok {
		return nil, true
	}
	return out, true
}

// metrics resolves every target, in the order cpu, memory, default, then the
// metrics list. Every metric is evaluated and the largest proposal wins, as
// in HPA, so the single-query keys and the list may be combined.
func (p *parser) metrics() []recommender.MetricSpec {
	var out []recommender.MetricSpec
	anyTarget := false
	add := func(ms *recommender.MetricSpec, present bool) {
		anyTarget = anyTarget || present
		if ms != nil {
			out = append(out, *ms)
		}
	}
	add(p.resourceMetric(corev1.ResourceCPU, KeyTargetCPUUtilization, KeyTargetCPUAverageValue, "250m"))
	add(p.resourceMetric(corev1.ResourceMemory, KeyTargetMemoryUtilization, KeyTargetMemoryAverageValue, "128Mi"))
	add(p.prometheusMetric())
	list, present := p.metricList()
	anyTarget = anyTarget || present
	out = append(out, list...)

	// A present but invalid target has its own error already.
	if !anyTarget {
		p.fail(KeyEnabled, "at least one target is required: set %s, %s, %s, %s, %s with %s or %s, or %s",
			KeyTargetCPUUtilization, KeyTargetMemoryUtilization, KeyTargetCPUAverageValue, KeyTargetMemoryAverageValue,
			KeyPrometheusQuery, KeyPrometheusTargetAverageValue, KeyPrometheusTargetValue, KeyMetrics)
	}
	return out
}

// parseTolerance parses a tolerance annotation: a decimal in [0, 1].
func (p *parser) parseTolerance(key string) (float64, bool) {
	v, _ := p.get(key)
	t, err := strconv.ParseFloat(v, 64)
	if err != nil || !(t >= 0 && t <= 1) { // also rejects NaN
		p.fail(key, "must be a decimal from 0 to 1 (e.g. 0.1)")
		return 0, false
	}
	return t, true
}

// tolerance resolves the tolerance annotations over the default: tolerance
// sets both directions, tolerance-up and tolerance-down override one. It
// returns the key that set each direction, "" for the default.
func (p *parser) tolerance(def float64) (tol recommender.Tolerances, upKey, downKey string) {
	tol = recommender.Tolerances{Up: def, Down: def}
	if _, ok := p.ann[KeyTolerance]; ok {
		upKey, downKey = KeyTolerance, KeyTolerance
		if t, ok := p.parseTolerance(KeyTolerance); ok {
			tol.Up, tol.Down = t, t
		}
	}
	if _, ok := p.ann[KeyToleranceUp]; ok {
		upKey = KeyToleranceUp
		if t, ok := p.parseTolerance(KeyToleranceUp); ok {
			tol.Up = t
		}
	}
	if _, ok := p.ann[KeyToleranceDown]; ok {
		downKey = KeyToleranceDown
		if t, ok := p.parseTolerance(KeyToleranceDown); ok {
			tol.Down = t
		}
	}
	return tol, upKey, downKey
}

// direction is one side of a behavior and the annotations that touch it.
type direction struct {
	name         string // "scaleUp" or "scaleDown"
	windowKey    string
	toleranceKey string // the annotation that set this side's tolerance, if any
	tolerance    *float64
}

// rules returns the address of this side's rules in b.
func (d direction) rules(b *autoscalingv2.HorizontalPodAutoscalerBehavior) **autoscalingv2.HPAScalingRules {
	if d.name == "scaleUp" {
		return &b.ScaleUp
	}
	return &b.ScaleDown
}

// behavior resolves the behavior annotation, the stabilization shorthands
// and the tolerances. The tolerances never select the behavior path; the
// behavior annotation (even "{}") and the stabilization shorthands do.
func (p *parser) behavior(defTolerance float64) (*autoscalingv2.HorizontalPodAutoscalerBehavior, recommender.Tolerances) {
	tol, upKey, downKey := p.tolerance(defTolerance)

	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	_, hasBehavior := p.ann[KeyBehavior]
	valid := true
	if hasBehavior {
		b, valid = p.parseBehavior()
	}

	dirs := []direction{
		{name: "scaleUp", windowKey: KeyScaleUpStabilization, toleranceKey: upKey, tolerance: &tol.Up},
		{name: "scaleDown", windowKey: KeyScaleDownStabilization, toleranceKey: downKey, tolerance: &tol.Down},
	}
	for _, d := range dirs {
		// The behavior's own tolerance for this direction.
		if b != nil {
			if r := *d.rules(b); r != nil && r.Tolerance != nil {
				if d.toleranceKey != "" {
					p.fail(d.toleranceKey, "contradicts %s %s.tolerance (%s): set the %s tolerance in one place only",
						KeyBehavior, d.name, strconv.FormatFloat(r.Tolerance.AsApproximateFloat64(), 'g', -1, 64), d.name)
				} else {
					*d.tolerance = r.Tolerance.AsApproximateFloat64()
				}
			}
		}

		// The stabilization shorthand.
		if _, ok := p.ann[d.windowKey]; !ok {
			continue
		}
		secs, ok := p.window(d.windowKey)
		if !ok || !valid {
			continue // an invalid behavior has its own error
		}
		if b == nil {
			b = &autoscalingv2.HorizontalPodAutoscalerBehavior{}
		}
		rules := d.rules(b)
		if *rules == nil {
			*rules = &autoscalingv2.HPAScalingRules{}
		}
		if w := (*rules).StabilizationWindowSeconds; w != nil {
			p.fail(d.windowKey, "contradicts %s %s.stabilizationWindowSeconds (%d): set the window in one place only",
				KeyBehavior, d.name, *w)
			continue
		}
		(*rules).StabilizationWindowSeconds = &secs
	}
	return b, tol
}

// parseBehavior decodes and validates the behavior annotation.
func (p *parser) parseBehavior() (*autoscalingv2.HorizontalPodAutoscalerBehavior, bool) {
	const allowed = "must be an autoscaling/v2 HorizontalPodAutoscalerBehavior in YAML, such as {scaleDown: {stabilizationWindowSeconds: 60}}"
	v, _ := p.get(KeyBehavior)
	if len(v) > maxStructuredLen {
		p.fail(KeyBehavior, "%s, at most %d bytes", allowed, maxStructuredLen)
		return nil, false
	}
	if extremeNumber.MatchString(v) {
		p.fail(KeyBehavior, "%s: numbers must have at most 30 digits and an exponent below 100", allowed)
		return nil, false
	}
	var b *autoscalingv2.HorizontalPodAutoscalerBehavior
	if err := yaml.UnmarshalStrict([]byte(v), &b); err != nil {
		p.fail(KeyBehavior, "%s: %s", allowed, cleanDecodeError(err))
		return nil, false
	}
	if b == nil {
		p.fail(KeyBehavior, "%s (use {} for the defaults)", allowed)
		return nil, false
	}
	ok := true
	if err := recommender.ValidateBehavior(b); err != nil {
		for _, e := range unjoin(err) {
			path, msg, cut := strings.Cut(e.Error(), ": ")
			if !cut {
				path, msg = "", e.Error()
			}
			p.failAt(KeyBehavior, path, "", "%s", msg)
		}
		ok = false
	}
	// A tolerance above 1 is refused as for the tolerance annotations (the
	// API server accepts it, but it disables a direction for good).
	for _, side := range []struct {
		name  string
		rules *autoscalingv2.HPAScalingRules
	}{{"scaleUp", b.ScaleUp}, {"scaleDown", b.ScaleDown}} {
		if side.rules == nil || side.rules.Tolerance == nil {
			continue
		}
		if t := side.rules.Tolerance.AsApproximateFloat64(); t > 1 {
			p.failAt(KeyBehavior, side.name+".tolerance", "", "%s is out of range: allowed 0 to 1", strconv.FormatFloat(t, 'g', -1, 64))
			ok = false
		}
	}
	if !ok {
		return nil, false
	}
	return b, true
}

// window parses a stabilization shorthand into whole seconds.
func (p *parser) window(key string) (int32, bool) {
	v, _ := p.get(key)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxStabilization || d%time.Second != 0 {
		p.fail(key, "must be a Go duration in whole seconds from 0s to %s (e.g. 0s, 90s, 5m)", config.FormatDuration(maxStabilization))
		return 0, false
	}
	return int32(d / time.Second), true
}

// fallback parses fallback-replicas and fallback-after.
func (p *parser) fallback(b bounds) (int32, time.Duration) {
	var replicas int32
	replicasOK := false
	_, hasReplicas := p.ann[KeyFallbackReplicas]
	if hasReplicas {
		v, _ := p.get(KeyFallbackReplicas)
		n, err := strconv.ParseInt(v, 10, 32)
		switch {
		case err == nil && n >= int64(b.lower) && n <= int64(b.upper):
			replicas, replicasOK = int32(n), true
		case b.maxOK:
			p.fail(KeyFallbackReplicas, "must be an integer from %s to %s", b.minDesc, b.maxDesc)
		default:
			p.fail(KeyFallbackReplicas, "must be an integer from %s to max-replicas", b.minDesc)
		}
	}

	after := defaultFallbackAfter
	if _, ok := p.ann[KeyFallbackAfter]; ok {
		v, _ := p.get(KeyFallbackAfter)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxFallbackAfter {
			p.fail(KeyFallbackAfter, "must be a Go duration > 0s and <= %s (e.g. 90s, 5m)", config.FormatDuration(maxFallbackAfter))
		} else {
			after = d
		}
		if !hasReplicas {
			p.fail(KeyFallbackAfter, "requires %s", KeyFallbackReplicas)
		}
	}
	if !replicasOK {
		return 0, 0
	}
	return replicas, after
}

// cleanDecodeError strips the decoder's wrapping so that the message says
// what is wrong with the user's YAML, not how it was decoded.
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, prefix := range []string{
		"error converting YAML to JSON: ",
		"error unmarshaling JSON: ",
		"while decoding JSON: ",
		"json: ",
		"yaml: ",
	} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		return joined.Unwrap()
	}
	return []error{err}
}

// unknownKeys warns about every key under the prefix that is not known, with
// a suggestion when a known key is close.
func unknownKeys(ann map[string]string) []string {
	var unknown []string
	for k := range ann {
		if strings.HasPrefix(k, Prefix) && !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	var out []string
	for _, k := range unknown {
		// A key with control characters or invalid UTF-8 is shown quoted,
		// so that it cannot forge a log line.
		shown := k
		if q := strconv.QuoteToGraphic(k); q != `"`+k+`"` {
			shown = q
		}
		if s := suggest(k); s != "" {
			out = append(out, fmt.Sprintf("%s: unknown annotation (did you mean %s?)", shown, s))
		} else {
			out = append(out, fmt.Sprintf("%s: unknown annotation, ignored", shown))
		}
	}
	return out
}

// suggest returns the known key closest to k, if within edit distance 2.
func suggest(k string) string {
	name := strings.ToLower(strings.TrimPrefix(k, Prefix))
	best, bestDist := "", 3
	for _, known := range keys {
		kn := strings.TrimPrefix(known, Prefix)
		if d := editDistance(name, kn, bestDist); d < bestDist {
			best, bestDist = known, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in runes, or
// limit when it is at least limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if abs(len(ra)-len(rb)) >= limit {
		return limit
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], limit)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// jsonString decodes a JSON string; ok is false for any other JSON value.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
