package simulate

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
)

// This file holds a scenario's input as written, and its decoding: YAML is
// turned into JSON and decoded strictly into the types below, so that an
// unknown or misspelt field is an error naming its path.

// podScenarioIn is a scenario in the pod-level form.
type podScenarioIn struct {
	Annotations annotationsIn `json:"annotations"`
	// Config is decoded by the configuration's own rules (config.Decode).
	Config map[string]any `json:"config"`
	State  *stateIn       `json:"state"`
	Steps  []*stepIn      `json:"steps"`
}

// annotationsIn are an app's annotations; a value that is not a string is
// reported, not decoded.
type annotationsIn map[string]value[string]

type stateIn struct {
	Replicas       value[float64] `json:"replicas"`
	StatusReplicas value[float64] `json:"statusReplicas"`
	// ScaledToZero is Spinscale's record that it scaled the app to zero.
	ScaledToZero value[bool] `json:"scaledToZero"`
	// Recommendations present, even empty or null, is exactly the
	// controller's memory; hasRecommendations records it.
	Recommendations    []*recommendationIn `json:"recommendations"`
	ScaleEvents        []*scaleEventIn     `json:"scaleEvents"`
	hasRecommendations bool
}

type recommendationIn struct {
	SecondsAgo value[float64] `json:"secondsAgo"`
	Replicas   value[float64] `json:"replicas"`
}

type scaleEventIn struct {
	SecondsAgo value[float64] `json:"secondsAgo"`
	Change     value[float64] `json:"change"`
}

type stepIn struct {
	At             value[float64] `json:"at"`
	Replicas       value[float64] `json:"replicas"`
	StatusReplicas value[float64] `json:"statusReplicas"`
	Pods           []*podIn       `json:"pods"`
	// Prometheus holds query results by metric name: a number, {pod:
	// number, …}, {error: "…"}, or null (an empty result).
	Prometheus map[string]value[any] `json:"prometheus"`
	// MetricsAPIs holds the answers of the custom and external metrics
	// APIs by metric name: a number (object, external), {pod: number, …}
	// (pods), {error: "…"}, or null (no value).
	MetricsAPIs map[string]value[any] `json:"metricsAPIs"`
	// Annotations change the app's annotations from this step on: a
	// string sets a key, null removes it.
	Annotations map[string]value[string] `json:"annotations"`
}

type podIn struct {
	Name              value[string]  `json:"name"`
	Phase             value[string]  `json:"phase"`
	Ready             value[bool]    `json:"ready"`
	StartedSecondsAgo value[float64] `json:"startedSecondsAgo"`
	ReadySecondsAgo   value[float64] `json:"readySecondsAgo"`
	Deleting          value[bool]    `json:"deleting"`
	Containers        []*containerIn `json:"containers"`
	// Resources are the pod-level resources (PodLevelResources).
	Resources            *podResourcesIn `json:"resources"`
	MetricsAgeSeconds    value[float64]  `json:"metricsAgeSeconds"`
	MetricsWindowSeconds value[float64]  `json:"metricsWindowSeconds"`
}

type containerIn struct {
	Name     value[string] `json:"name"`
	Requests *resourcesIn  `json:"requests"`
	Usage    *resourcesIn  `json:"usage"`
}

// podResourcesIn are a pod's pod-level resources: `resources: {requests: {…}}`.
type podResourcesIn struct {
	Requests *resourcesIn `json:"requests"`
}

// resourcesIn are quantities, written as strings ("500m") or numbers.
type resourcesIn struct {
	CPU    value[any] `json:"cpu"`
	Memory value[any] `json:"memory"`
}

// value is a scalar as the scenario writes it. One of another type than T
// is not a decoding error: validation reports it with every other problem.
type value[T any] struct {
	// raw is the JSON text; nil when the field is absent or null.
	raw json.RawMessage
	v   T
	// ok: raw decodes as a T.
	ok bool
}

func (x *value[T]) UnmarshalJSON(b []byte) error {
	*x = value[T]{}
	if string(b) == "null" {
		return nil
	}
	x.raw = slices.Clone(b)
	_, special := nonFiniteValue(x.literal())
	x.ok = json.Unmarshal(b, &x.v) == nil && !special
	return nil
}

// set reports whether the field is given (and not null).
func (x value[T]) set() bool { return x.raw != nil }

// literal is the value as written: a json.Number as written, a string, a
// bool, a list or mapping of them, or a non-finite float64.
func (x value[T]) literal() any { return literal(x.raw) }

func literal(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(raw)
	}
	return restored(v)
}

// Non-finite numbers have no JSON form: jsonable writes them as these
// strings, which no scenario holds (they start with a NUL), and literal
// turns them back into numbers.
var nonFinite = map[string]float64{"\x00NaN": math.NaN(), "\x00+Inf": math.Inf(1), "\x00-Inf": math.Inf(-1)}

// restored replaces the strings of nonFinite in a decoded value by their
// numbers.
func restored(v any) any {
	switch x := v.(type) {
	case string:
		if f, ok := nonFinite[x]; ok {
			return f
		}
	case map[string]any:
		for k, e := range x {
			x[k] = restored(e)
		}
	case []any:
		for i, e := range x {
			x[i] = restored(e)
		}
	}
	return v
}

// nonFiniteValue returns a literal that is a non-finite number.
func nonFiniteValue(lit any) (float64, bool) {
	f, ok := lit.(float64)
	return f, ok && (math.IsNaN(f) || math.IsInf(f, 0))
}

// parseYAML reads YAML (or JSON) into a tree that encoding/json can
// render, with YAML 1.2's rules (`yes` is a string, `.nan` a number): keys
// become strings, and NaN and infinities the strings of nonFinite.
func parseYAML(data []byte) (any, *field.Error) {
	var root any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, field.Invalid(field.NewPath("scenario"), field.OmitValueType{}, "not valid YAML or JSON: "+err.Error())
	}
	return jsonable(root), nil
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = jsonable(val)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[fmt.Sprint(k)] = jsonable(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = jsonable(val)
		}
		return out
	case float64:
		switch {
		case math.IsNaN(x):
			return "\x00NaN"
		case math.IsInf(x, 1):
			return "\x00+Inf"
		case math.IsInf(x, -1):
			return "\x00-Inf"
		}
	}
	return v
}

// decodeStrict decodes JSON into out, field names matching exactly. A
// field out does not have is an error naming its path and the fields
// allowed there; forbidden, when not nil and it returns a reason, reports
// such a field with that reason instead. A value of the wrong shape (a list
// for a mapping) stops decoding: fatal is then true. (Duplicate keys never
// reach here: the YAML parser refuses them.)
func decodeStrict(data []byte, out any, forbidden func(path string) string) (errs field.ErrorList, fatal bool) {
	strict, err := sigsjson.UnmarshalStrict(data, out, sigsjson.DisallowUnknownFields)
	if err != nil {
		return field.ErrorList{shapeError(data, err)}, true
	}
	for _, e := range strict {
		var fe sigsjson.FieldError
		if !errors.As(e, &fe) {
			errs = append(errs, field.InternalError(nil, e))
			continue
		}
		p := fe.FieldPath()
		if forbidden != nil {
			if reason := forbidden(p); reason != "" {
				errs = append(errs, &field.Error{Type: field.ErrorTypeForbidden, Field: p, BadValue: "", Detail: reason})
				continue
			}
		}
		detail := "unknown field"
		if allowed := allowedFields(reflect.TypeOf(out), p); len(allowed) > 0 {
			detail += " (allowed: " + strings.Join(allowed, ", ") + ")"
		}
		errs = append(errs, &field.Error{Type: field.ErrorTypeForbidden, Field: p, BadValue: "", Detail: detail})
	}
	return errs, false
}

// inFieldOrder sorts errors by the top-level field they concern, in the
// order of in's fields (the order of the documentation), keeping the order
// of the errors of one field. Errors of no field of in come first.
func inFieldOrder(errs field.ErrorList, in any) field.ErrorList {
	names := allowedFields(reflect.TypeOf(in), "top")
	rank := func(e *field.Error) int {
		top := strings.FieldsFunc(e.Field, func(r rune) bool { return r == '.' || r == '[' })
		if len(top) == 0 {
			return -1
		}
		return slices.Index(names, top[0])
	}
	slices.SortStableFunc(errs, func(a, b *field.Error) int { return rank(a) - rank(b) })
	return errs
}

// shapeError reports a value of the wrong shape, such as a list where a
// mapping belongs, at the path of the value the decoder stopped at.
func shapeError(doc []byte, err error) *field.Error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return field.Invalid(field.NewPath("scenario"), field.OmitValueType{}, strings.TrimPrefix(err.Error(), "json: "))
	}
	want := "a mapping"
	switch te.Type.Kind() {
	case reflect.Slice:
		want = "a list"
	case reflect.Float64:
		want = "a number"
	}
	path, tok, found := valueAt(doc, te.Offset)
	if !found {
		// The decoder's own path, without list indexes.
		path = field.NewPath(cmp.Or(te.Field, "scenario"))
		return field.TypeInvalid(path, field.OmitValueType{}, "not "+want)
	}
	if d, isDelim := tok.(json.Delim); isDelim {
		got := map[json.Delim]string{'[': "a list", '{': "a mapping"}[d]
		return field.TypeInvalid(path, field.OmitValueType{}, got+" is not "+want)
	}
	return field.TypeInvalid(path, restored(tok), "not "+want)
}

// valueAt finds the value of doc that a decoder error's offset points at:
// the one that ends there, or whose list or mapping opens just before.
func valueAt(doc []byte, offset int64) (*field.Path, json.Token, bool) {
	type frame struct {
		path  *field.Path
		list  bool
		index int
		key   string // the key whose value comes next; "" when a key comes next
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	stack := []*frame{{path: field.NewPath("scenario")}}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		top := stack[len(stack)-1]
		if d, isDelim := tok.(json.Delim); isDelim && (d == ']' || d == '}') {
			stack = stack[:len(stack)-1]
			continue
		}
		var path *field.Path
		switch {
		case len(stack) == 1:
			path = top.path
		case top.list:
			path = top.path.Index(top.index)
			top.index++
		case top.key == "":
			top.key = tok.(string)
			continue
		default:
			path = top.path.Child(top.key)
			top.key = ""
		}
		if dec.InputOffset() == offset {
			return path, tok, true
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			if len(stack) == 1 {
				path = nil // the root's children have no prefix
			}
			stack = append(stack, &frame{path: path, list: d == '['})
		}
	}
}

// allowedFields lists the JSON names of the fields of the struct that
// holds the field at path (as "steps[2].pods[0].cpuu").
func allowedFields(t reflect.Type, path string) []string {
	parts := strings.Split(path, ".")
	for _, part := range parts[:len(parts)-1] {
		name, _, _ := strings.Cut(part, "[")
		t = elem(t)
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldByJSONName(t, name)
		if !ok {
			return nil
		}
		t = f.Type
	}
	t = elem(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag == name {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// elem is the type a pointer or slice holds, repeatedly.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t
}
