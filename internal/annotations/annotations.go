package annotations

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/spinscale/spinscale/internal/duration"
	"github.com/spinscale/spinscale/internal/recommender"
)

// This file is the parser's core: Parse and the keys with plain values.

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

// Defaults are the global settings an app's spec starts from; the global
// configuration provides them (config.Config.AppDefaults).
type Defaults struct {
	Profile                 string
	Tolerance               float64
	DownscaleStabilization  time.Duration
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
	MaxSampleAge            time.Duration
	ScaleUpLimitFactor      float64
	ScaleUpLimitMinimum     int32
	// PrometheusServers are the names of the configured Prometheus servers
	// (prometheus.servers) that a metric may name.
	PrometheusServers []string
}

// App is an app's parsed annotations.
type App struct {
	// Enabled is true when the app opted in (enabled: "true").
	Enabled bool
	// DryRun is the app's own dry-run annotation: compute and report, never
	// patch. The global dry-run setting applies on top of it.
	DryRun bool
	// Shadow is the shadow annotation: decide beside the live autoscaler
	// (an HPA, a ScaledObject), never write, and compare.
	Shadow bool
	// Interval is the app's own decision interval (the interval
	// annotation); 0 means the controller's.
	Interval time.Duration
	// Spec is the engine's fully resolved spec. Unset when Parse fails.
	Spec recommender.Spec
	// Warnings are problems that do not stop the app from being managed,
	// such as unknown keys under the prefix.
	Warnings []string
}

// UsesResourceMetrics reports whether the app scales on cpu or memory from
// metrics.k8s.io, so that the caller fetches pod usage only for such apps.
// False for an app whose annotations failed to parse: it is not decided.
func (a *App) UsesResourceMetrics() bool {
	for i := range a.Spec.Metrics {
		if a.Spec.Metrics[i].Source == recommender.SourceResource {
			return true
		}
	}
	return false
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

	p := &parser{ann: ann, servers: d.PrometheusServers}
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
	app.Shadow = p.boolean(KeyShadow)
	spec.Paused = p.boolean(KeyPaused)
	spec.Pause = p.pause()
	spec.FallbackReplicas, spec.FallbackAfter = p.fallback(b)
	spec.FallbackBehavior = p.fallbackBehavior()
	app.Interval = p.interval()
	spec.ActivationMilli, spec.ScaleToZeroAfter = p.zero(b, &spec)

	if len(p.errs) > 0 {
		return App{Enabled: true, DryRun: app.DryRun, Shadow: app.Shadow, Warnings: app.Warnings}, &Error{Fields: p.errs}
	}
	app.Spec = spec
	return app, nil
}

// Bounds of the interval annotation: Kubernetes 1.38's per-object sync
// period for HPAs (alpha) allows the same range.
const (
	minInterval = time.Second
	maxInterval = 10 * time.Minute
)

// interval parses the app's own decision interval.
func (p *parser) interval() time.Duration {
	v, ok := p.get(KeyInterval)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minInterval || d > maxInterval {
		p.fail(KeyInterval, "must be a Go duration from %s to %s (e.g. 5s, 1m)", duration.Format(minInterval), duration.Format(maxInterval))
		return 0
	}
	return d
}

// parser reads one app's annotations and collects every error.
type parser struct {
	ann  map[string]string
	errs []FieldError
	// servers are the Prometheus servers a metric may name.
	servers []string
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
			p.fail(KeyLookahead, "must be a Go duration from 0s (off) to %s (e.g. 30s)", duration.Format(maxLookahead))
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
		if err != nil || n < 0 || n > maxReplicas {
			p.fail(KeyMinReplicas, "must be an integer from 0 to %d (0 only with a Prometheus or an HTTP metric)", maxReplicas)
			b.minOK = false
		} else {
			b.min = int32(n)
		}
	}
	b.lower = max(b.min, 1)
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
	if err != nil || n < int64(max(b.min, 1)) || n > maxReplicas {
		lower := b.minDesc
		if b.minOK && b.min == 0 {
			lower = "1"
		}
		p.fail(KeyMaxReplicas, "must be an integer >= %s and <= %d", lower, maxReplicas)
		return b
	}
	b.max, b.maxOK, b.upper = int32(n), true, int32(n)
	b.maxDesc = fmt.Sprintf("max-replicas (%d)", n)
	return b
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

// prometheusMetric parses the single-query keys into a metric that metrics
// names once the metrics list is known (queryMetricName).
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
	out := &recommender.MetricSpec{Source: recommender.SourcePrometheus, Query: query, Annotation: KeyPrometheusQuery}
	for _, t := range []queryTarget{
		{KeyPrometheusTargetAverageValue, recommender.TargetAverageValue, avg, hasAvg},
		{KeyPrometheusTargetValue, recommender.TargetValue, val, hasVal},
	} {
		if !t.set {
			continue
		}
		if !setTarget(out, t) {
			p.fail(t.name, "%s", queryTargetAllowed)
			ok = false
		}
		if !hasQuery {
			p.fail(t.name, "requires %s", KeyPrometheusQuery)
			ok = false
		}
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

// metrics resolves every target, in the order cpu, memory, prometheus-query,
// then the metrics list. Every metric is evaluated and the largest proposal
// wins, as in HPA, so the single-query keys and the list may be combined.
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
	query, queryPresent := p.prometheusMetric()
	list, listPresent := p.metricList()
	if query != nil {
		taken := slices.Clone(reservedNames)
		for _, ms := range list {
			taken = append(taken, ms.Name)
		}
		query.Name = queryMetricName(query.Query, taken)
	}
	add(query, queryPresent)
	anyTarget = anyTarget || listPresent
	out = append(out, list...)
	httpList, httpPresent := p.httpMetrics()
	anyTarget = anyTarget || httpPresent
	out = append(out, httpList...)

	// A present but invalid target has its own error already.
	if !anyTarget {
		p.fail(KeyEnabled, "at least one target is required: set %s, %s, %s, %s, %s with %s or %s, %s, %s or %s",
			KeyTargetCPUUtilization, KeyTargetMemoryUtilization, KeyTargetCPUAverageValue, KeyTargetMemoryAverageValue,
			KeyPrometheusQuery, KeyPrometheusTargetAverageValue, KeyPrometheusTargetValue, KeyMetrics, KeyHTTPTargetInFlight, KeyHTTPTargetRPS)
	}
	return out
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
			p.fail(KeyFallbackAfter, "must be a Go duration > 0s and <= %s (e.g. 90s, 5m)", duration.Format(maxFallbackAfter))
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

// fallbackBehavior parses fallback-behavior (KEDA's fallback behaviors).
func (p *parser) fallbackBehavior() recommender.FallbackBehavior {
	v, ok := p.get(KeyFallbackBehavior)
	if !ok {
		return ""
	}
	for _, b := range recommender.FallbackBehaviors {
		if v == string(b) {
			return b
		}
	}
	names := make([]string, len(recommender.FallbackBehaviors))
	for i, b := range recommender.FallbackBehaviors {
		names[i] = string(b)
	}
	p.fail(KeyFallbackBehavior, "must be one of %s", strings.Join(names, ", "))
	return ""
}

// jsonString decodes a JSON string; ok is false for any other JSON value.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
