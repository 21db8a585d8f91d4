package annotations

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/duration"
	"github.com/spinscale/spinscale/internal/recommender"
)

// The fields of one entry of the metrics list.
const (
	fieldName               = "name"
	fieldQuery              = "query"
	fieldTargetValue        = "targetValue"
	fieldTargetAverageValue = "targetAverageValue"
	fieldFallbackReplicas   = "fallbackReplicas"
	fieldFallbackAfter      = "fallbackAfter"
	fieldServer             = "server"
	fieldQueryParameters    = "queryParameters"
	fieldIgnoreNullValues   = "ignoreNullValues"
	fieldType               = "type"
	fieldMetric             = "metric"
	fieldSelector           = "selector"
	fieldDescribedObject    = "describedObject"
)

var metricFields = []string{fieldName, fieldQuery, fieldTargetValue, fieldTargetAverageValue, fieldFallbackReplicas, fieldFallbackAfter,
	fieldServer, fieldQueryParameters, fieldIgnoreNullValues, fieldType, fieldMetric, fieldSelector, fieldDescribedObject}

// The types of an entry: where its value comes from.
const (
	typePrometheus = "prometheus"
	typePods       = "pods"
	typeObject     = "object"
	typeExternal   = "external"
)

var metricTypes = map[string]recommender.SourceType{
	typePrometheus: recommender.SourcePrometheus,
	typePods:       recommender.SourcePods,
	typeObject:     recommender.SourceObject,
	typeExternal:   recommender.SourceExternal,
}

// prometheusOnly are the fields of a prometheus entry only; apiOnly those of
// the metrics APIs' entries only.
var (
	prometheusOnly = []string{fieldQuery, fieldServer, fieldQueryParameters, fieldIgnoreNullValues}
	apiOnly        = []string{fieldMetric, fieldSelector, fieldDescribedObject}
)

// defaultMetricFallbackAfter is KEP-5679's default failure duration.
const defaultMetricFallbackAfter = 3 * time.Minute

// reservedNames are names a list entry may not take: the resource metrics'
// and "default", the prometheus-query metric's name in scenarios.
var reservedNames = []string{"cpu", "memory", "default"}

const metricListAllowed = "must be a YAML list of {name, query, targetValue | targetAverageValue}"

// metricList parses the metrics annotation: named Prometheus queries, each
// with exactly one target. present is true when the key is set.
//
// Entries are decoded field by field rather than into a struct, so that a
// wrong type or an unknown field is reported with its index and field name
// and does not hide the problems of the other entries.
func (p *parser) metricList() (out []recommender.MetricSpec, present bool) {
	if _, ok := p.ann[KeyMetrics]; !ok {
		return nil, false
	}
	v, _ := p.get(KeyMetrics)
	if v == "" || len(v) > maxStructuredLen {
		p.fail(KeyMetrics, "%s, non-empty and at most %d bytes", metricListAllowed, maxStructuredLen)
		return nil, true
	}
	var items []json.RawMessage
	if err := yaml.UnmarshalStrict([]byte(v), &items); err != nil {
		p.fail(KeyMetrics, "%s: %s", metricListAllowed, cleanDecodeError(err))
		return nil, true
	}

	ok := true
	seen := map[string]int{}
	for i, raw := range items {
		ms, valid := p.metricEntry(i, raw, seen)
		if !valid {
			ok = false
			continue
		}
		out = append(out, ms)
	}
	if !ok {
		return nil, true
	}
	return out, true
}

// metricEntry parses the list's entry i; seen maps the names so far to
// their index.
func (p *parser) metricEntry(i int, raw json.RawMessage, seen map[string]int) (recommender.MetricSpec, bool) {
	at := func(field string) string {
		if field == "" {
			return fmt.Sprintf("[%d]", i)
		}
		return fmt.Sprintf("[%d].%s", i, field)
	}
	var fields map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &fields) != nil {
		p.failAt(KeyMetrics, at(""), "", "must be an object {name, query, targetValue | targetAverageValue}")
		return recommender.MetricSpec{}, false
	}

	ok := true
	var unknown []string
	for f := range fields {
		if !slices.Contains(metricFields, f) {
			unknown = append(unknown, f)
		}
	}
	sort.Strings(unknown)
	for _, f := range unknown {
		p.failAt(KeyMetrics, at(""), "", "unknown field %q: allowed %s", f, strings.Join(metricFields, ", "))
		ok = false
	}

	ms := recommender.MetricSpec{Source: recommender.SourcePrometheus}
	kind := typePrometheus
	if raw, has := fields[fieldType]; has {
		t, isString := jsonString(raw)
		if source, known := metricTypes[t]; isString && known {
			kind, ms.Source = t, source
		} else {
			p.failAt(KeyMetrics, at(fieldType), rawText(raw, isString, t), "must be prometheus (the default), pods, object or external")
			return recommender.MetricSpec{}, false
		}
	}
	misplaced, owners := apiOnly, "pods, object and external"
	if kind != typePrometheus {
		misplaced, owners = prometheusOnly, typePrometheus
	}
	for _, f := range misplaced {
		if _, has := fields[f]; has {
			p.failAt(KeyMetrics, at(f), "", "is a field of type %s entries only, not of type %s", owners, kind)
			ok = false
		}
	}

	// name: a DNS-1123 label, unique, not one of the other keys' names.
	const nameAllowed = "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63), unique, and not cpu, memory or default"
	switch raw, has := fields[fieldName]; {
	case !has:
		p.failAt(KeyMetrics, at(fieldName), "", "required: %s", nameAllowed)
		ok = false
	default:
		name, isString := jsonString(raw)
		switch {
		case !isString:
			p.failAt(KeyMetrics, at(fieldName), string(raw), "%s", nameAllowed)
			ok = false
		case len(validation.IsDNS1123Label(name)) > 0 || slices.Contains(reservedNames, name):
			p.failAt(KeyMetrics, at(fieldName), name, "%s", nameAllowed)
			ok = false
		default:
			if first, dup := seen[name]; dup {
				p.failAt(KeyMetrics, at(fieldName), name, "duplicate of [%d].name: names must be unique", first)
				ok = false
			} else {
				seen[name] = i
			}
			ms.Name = name
			ms.Annotation = fmt.Sprintf("%s[%s]", KeyMetrics, name)
		}
	}

	// query: non-empty PromQL; or the metric of the metrics APIs.
	const queryAllowed = "must be a non-empty PromQL query string"
	if kind != typePrometheus {
		if !p.apiMetric(kind, fields, at, &ms) {
			ok = false
		}
	} else if raw, has := fields[fieldQuery]; !has {
		p.failAt(KeyMetrics, at(fieldQuery), "", "required: %s", queryAllowed)
		ok = false
	} else if q, isString := jsonString(raw); !isString || strings.TrimSpace(q) == "" || !utf8.ValidString(q) {
		p.failAt(KeyMetrics, at(fieldQuery), rawText(raw, isString, q), "%s", queryAllowed)
		ok = false
	} else {
		ms.Query = strings.TrimSpace(q)
	}

	// Exactly one target.
	rawValue, hasValue := fields[fieldTargetValue]
	rawAverage, hasAverage := fields[fieldTargetAverageValue]
	switch {
	case hasValue && hasAverage:
		p.failAt(KeyMetrics, at(""), "", "set exactly one of %s or %s, not both", fieldTargetValue, fieldTargetAverageValue)
		ok = false
	case !hasValue && !hasAverage:
		p.failAt(KeyMetrics, at(""), "", "requires a target: set %s or %s", fieldTargetValue, fieldTargetAverageValue)
		ok = false
	}
	for _, t := range []queryTarget{
		{fieldTargetValue, recommender.TargetValue, quantityText(rawValue), hasValue},
		{fieldTargetAverageValue, recommender.TargetAverageValue, quantityText(rawAverage), hasAverage},
	} {
		if t.set && !setTarget(&ms, t) {
			p.failAt(KeyMetrics, at(t.name), t.text, "%s", queryTargetAllowed)
			ok = false
		}
	}

	if kind == typePods && hasValue {
		p.failAt(KeyMetrics, at(fieldTargetValue), quantityText(rawValue), "a pods metric takes targetAverageValue only, as HPA's Pods metrics")
		ok = false
	}

	// Where the query goes, and how an empty result reads.
	if !p.queryOptions(fields, at, &ms) {
		ok = false
	}

	// The metric's own fallback (KEP-5679).
	rawReplicas, hasReplicas := fields[fieldFallbackReplicas]
	if hasReplicas {
		var n int32
		if json.Unmarshal(rawReplicas, &n) != nil || n < 1 || n > maxReplicas {
			p.failAt(KeyMetrics, at(fieldFallbackReplicas), string(rawReplicas), "must be an integer from 1 to %d (capped at max-replicas)", maxReplicas)
			ok = false
		} else {
			ms.FallbackReplicas, ms.FallbackAfter = n, defaultMetricFallbackAfter
		}
	}
	if raw, has := fields[fieldFallbackAfter]; has {
		text, isString := jsonString(raw)
		d, err := time.ParseDuration(strings.TrimSpace(text))
		switch {
		case !isString || err != nil || d <= 0 || d > maxFallbackAfter:
			p.failAt(KeyMetrics, at(fieldFallbackAfter), rawText(raw, isString, text), "must be a Go duration > 0s and <= %s (e.g. 90s, 3m)", duration.Format(maxFallbackAfter))
			ok = false
		case !hasReplicas:
			p.failAt(KeyMetrics, at(fieldFallbackAfter), text, "requires %s", fieldFallbackReplicas)
			ok = false
		default:
			ms.FallbackAfter = d
		}
	}
	return ms, ok
}

// quantityText returns a target written as a YAML string or number as text.
// Any other JSON value is returned as written, which no quantity is, so that
// the error quotes it.
func quantityText(raw json.RawMessage) string {
	if s, ok := jsonString(raw); ok {
		return strings.TrimSpace(s)
	}
	return string(raw)
}

// rawText is the value to quote in an error: the string if it was one, the
// JSON text otherwise.
func rawText(raw json.RawMessage, isString bool, s string) string {
	if isString {
		return s
	}
	return string(raw)
}

// queryOptions parses the fields that say where a query goes: its server
// (one of the config's prometheus.servers), extra query parameters, and
// whether an empty result reads as 0.
func (p *parser) queryOptions(fields map[string]json.RawMessage, at func(string) string, ms *recommender.MetricSpec) bool {
	ok := true
	if raw, has := fields[fieldServer]; has {
		name, isString := jsonString(raw)
		switch {
		case !isString || !slices.Contains(p.servers, name):
			known := "none is configured"
			if len(p.servers) > 0 {
				known = "configured: " + strings.Join(p.servers, ", ")
			}
			p.failAt(KeyMetrics, at(fieldServer), rawText(raw, isString, name), "must name a server of the controller's prometheus.servers (%s)", known)
			ok = false
		default:
			ms.Server = name
		}
	}
	if raw, has := fields[fieldQueryParameters]; has {
		var params map[string]string
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &params) != nil || len(params) == 0 {
			p.failAt(KeyMetrics, at(fieldQueryParameters), string(raw), "must be a non-empty map of strings, such as {dedup: \"false\", partial_response: \"true\"}")
			ok = false
		} else {
			values := url.Values{}
			for k, v := range params {
				if k == "" || k == "query" || k == "time" || k == "timeout" {
					p.failAt(KeyMetrics, at(fieldQueryParameters+"."+k), v, "is a parameter Spinscale sets itself: query, time and timeout cannot be overridden")
					ok = false
					continue
				}
				values.Set(k, v)
			}
			ms.Params = values.Encode()
		}
	}
	if raw, has := fields[fieldIgnoreNullValues]; has {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			p.failAt(KeyMetrics, at(fieldIgnoreNullValues), string(raw), "must be true or false")
			ok = false
		} else {
			ms.IgnoreNull = b
		}
	}
	return ok
}

// metricNameAllowed is what the metric of a metrics-API entry may be: a
// segment of the API's path.
const metricNameAllowed = "must be the metric's name in the metrics API: non-empty, at most 253 characters, without '/', '%', spaces or control characters"

// apiMetric parses the fields of a pods, object or external entry: the
// metric's name, its label selector, passed to the API as written, and the
// object an object metric describes.
func (p *parser) apiMetric(kind string, fields map[string]json.RawMessage, at func(string) string, ms *recommender.MetricSpec) bool {
	ok := true
	switch raw, has := fields[fieldMetric]; {
	case !has:
		p.failAt(KeyMetrics, at(fieldMetric), "", "required for type %s: %s", kind, metricNameAllowed)
		ok = false
	default:
		name, isString := jsonString(raw)
		if !isString || !validAPIName(name) {
			p.failAt(KeyMetrics, at(fieldMetric), rawText(raw, isString, name), "%s", metricNameAllowed)
			ok = false
		} else {
			ms.Metric = name
		}
	}
	if raw, has := fields[fieldSelector]; has {
		sel, isString := jsonString(raw)
		if !isString {
			p.failAt(KeyMetrics, at(fieldSelector), string(raw), "must be a label selector string, such as \"queue=worker_tasks\" or \"env in (prod), tier!=cache\"")
			ok = false
		} else if _, err := labels.Parse(sel); err != nil {
			p.failAt(KeyMetrics, at(fieldSelector), sel, "not a label selector: %v", err)
			ok = false
		} else {
			ms.Selector = sel
		}
	}
	raw, has := fields[fieldDescribedObject]
	switch {
	case kind != typeObject && has:
		p.failAt(KeyMetrics, at(fieldDescribedObject), "", "is a field of type object entries only")
		ok = false
	case kind == typeObject && !has:
		p.failAt(KeyMetrics, at(fieldDescribedObject), "", "required for type object: {apiVersion, kind, name} of an object in the app's namespace")
		ok = false
	case kind == typeObject:
		var ref struct {
			APIVersion *string `json:"apiVersion"`
			Kind       *string `json:"kind"`
			Name       *string `json:"name"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if len(raw) == 0 || raw[0] != '{' || dec.Decode(&ref) != nil {
			p.failAt(KeyMetrics, at(fieldDescribedObject), string(raw), "must be an object {apiVersion, kind, name} with string values")
			return false
		}
		if ref.APIVersion != nil {
			if _, err := schema.ParseGroupVersion(*ref.APIVersion); err != nil || *ref.APIVersion == "" {
				p.failAt(KeyMetrics, at(fieldDescribedObject+".apiVersion"), *ref.APIVersion, "must be an API version such as v1 or networking.k8s.io/v1")
				ok = false
			} else {
				ms.Object.APIVersion = *ref.APIVersion
			}
		}
		if ref.Kind == nil || !validAPIName(*ref.Kind) {
			p.failAt(KeyMetrics, at(fieldDescribedObject+".kind"), ptrText(ref.Kind), "required: a kind such as Service or Ingress")
			ok = false
		} else {
			ms.Object.Kind = *ref.Kind
		}
		if ref.Name == nil || len(validation.IsDNS1123Subdomain(*ref.Name)) > 0 {
			p.failAt(KeyMetrics, at(fieldDescribedObject+".name"), ptrText(ref.Name), "required: the object's name (a DNS-1123 subdomain), in the app's namespace")
			ok = false
		} else {
			ms.Object.Name = *ref.Name
		}
	}
	return ok
}

// validAPIName reports whether s can be a segment of a metrics API's path.
func validAPIName(s string) bool {
	if s == "" || len(s) > 253 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '%' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func ptrText(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
