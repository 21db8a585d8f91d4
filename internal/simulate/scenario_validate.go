package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// This file checks a decoded scenario: each problem is a field.Error at the
// field's path, and one run reports all of them.

// validator accumulates the problems of one scenario.
type validator struct {
	errs field.ErrorList
}

func (v *validator) add(errs ...*field.Error) { v.errs = append(v.errs, errs...) }

// withDetail sets the detail of an error whose constructor takes none
// (field.Duplicate, field.NotFound).
func withDetail(e *field.Error, detail string) *field.Error {
	e.Detail = detail
	return e
}

// config overlays the scenario's `config:` on the built-in defaults. On any
// problem it returns the defaults, so that the rest can still be checked.
func (v *validator) config(m map[string]any) config.Config {
	def := config.Default()
	if m == nil {
		return def
	}
	// Name unknown keys by their full path, as for every other field;
	// config.Decode would reject them too, less precisely.
	if !v.configKeys(field.NewPath("config"), "", m, def.Map()) {
		return def
	}
	cfg, err := config.Decode(def, m)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		v.add(fieldErrors(field.NewPath("config"), err)...)
		return def
	}
	return cfg
}

// configKeys reports keys of m that are not configuration keys. known holds
// the dotted key paths of config.Config (as Config.Map returns them); keys
// match case-insensitively, as config.Decode matches them.
func (v *validator) configKeys(path *field.Path, prefix string, m map[string]any, known map[string]any) bool {
	ok := true
	for _, k := range sortedKeys(m) {
		full := prefix + k
		if hasKeyFold(known, full) {
			continue
		}
		if hasPrefixFold(known, full+".") {
			if sub, isMap := m[k].(map[string]any); isMap {
				ok = v.configKeys(path.Child(k), full+".", sub, known) && ok
			} else {
				v.add(field.TypeInvalid(path.Child(k), m[k], "not a mapping"))
				ok = false
			}
			continue
		}
		v.add(field.Forbidden(path.Child(k), "unknown field"))
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

// fieldErrors turns an error of the configuration or annotation parser
// into field errors under base. It walks joined errors (Unwrap() []error)
// and wrapped ones, and places each part that names its key
// (config.FieldError, mapstructure.DecodeError, annotations.FieldError) at
// that key.
func fieldErrors(base *field.Path, err error) field.ErrorList {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var out field.ErrorList
		for _, part := range e.Unwrap() {
			out = append(out, fieldErrors(base, part)...)
		}
		return out
	case *config.FieldError:
		return field.ErrorList{field.Invalid(base.Child(e.Key), field.OmitValueType{}, e.Err.Error())}
	case *mapstructure.DecodeError:
		if _, joined := e.Unwrap().(interface{ Unwrap() []error }); !joined {
			return field.ErrorList{field.Invalid(base.Child(e.Name()), field.OmitValueType{}, e.Unwrap().Error())}
		}
	case annotations.FieldError:
		if e.Path == "" && e.Value == "" {
			return field.ErrorList{field.Required(base.Key(e.Key), e.Message)}
		}
		var bad any = e.Value
		if e.Value == "" {
			bad = field.OmitValueType{}
		}
		// Path continues the key's path inside its value: "[1].target".
		p := base.Key(e.Key).String()
		if e.Path != "" && !strings.HasPrefix(e.Path, "[") {
			p += "."
		}
		return field.ErrorList{{Type: field.ErrorTypeInvalid, Field: p + e.Path, BadValue: bad, Detail: e.Message}}
	}
	if inner := errors.Unwrap(err); inner != nil {
		return fieldErrors(base, inner)
	}
	return field.ErrorList{field.Invalid(base, field.OmitValueType{}, err.Error())}
}

// annotations parses the app's annotations with the configuration's
// defaults. The app must be enabled: simulate only runs managed apps.
func (v *validator) annotations(in annotationsIn, cfg config.Config) (annotations.App, map[string]string, bool) {
	path := field.NewPath("annotations")
	ann := map[string]string{}
	for _, k := range sortedKeys(in) {
		val := in[k]
		if !val.ok {
			v.add(field.TypeInvalid(path.Key(k), val.literal(), "not a string: annotation values are strings, quote it"))
			continue
		}
		ann[k] = val.v
	}
	if len(ann) < len(in) {
		return annotations.App{}, nil, false
	}
	app, ok := v.parseApp(path, ann, cfg)
	return app, ann, ok
}

// stepAnnotations applies each step's changes to the annotations, in
// order, and parses the result into the step's spec.
func (v *validator) stepAnnotations(in []*stepIn, steps []stepObs, ann map[string]string, cfg config.Config) {
	cur := maps.Clone(ann)
	for i := range steps {
		if i >= len(in) || in[i] == nil || len(in[i].Annotations) == 0 {
			continue
		}
		path := steps[i].path.Child("annotations")
		ok := true
		for _, k := range sortedKeys(in[i].Annotations) {
			val := in[i].Annotations[k]
			switch {
			case !val.set():
				delete(cur, k)
			case !val.ok:
				v.add(field.TypeInvalid(path.Key(k), val.literal(), "not a string: annotation values are strings, quote it; null removes the key"))
				ok = false
			default:
				cur[k] = val.v
			}
		}
		if !ok {
			continue
		}
		if app, parsed := v.parseApp(path, maps.Clone(cur), cfg); parsed {
			steps[i].Spec = &app.Spec
		}
	}
}

// parseApp parses annotations, reporting their problems under path.
func (v *validator) parseApp(path *field.Path, ann map[string]string, cfg config.Config) (annotations.App, bool) {
	app, err := annotations.Parse(ann, cfg.AppDefaults())
	if err != nil {
		v.add(fieldErrors(path, err)...)
		// An unknown key often explains an error (a misspelt target).
		for _, w := range app.Warnings {
			v.add(field.Invalid(path, field.OmitValueType{}, "warning: "+w))
		}
		return annotations.App{}, false
	}
	if !app.Enabled {
		const why = `must be "true": Spinscale manages only apps that opt in, and simulate runs what the controller would do`
		p := path.Key(annotations.KeyEnabled)
		if val, ok := ann[annotations.KeyEnabled]; ok {
			v.add(field.Invalid(p, val, why))
		} else {
			v.add(field.Required(p, why))
		}
		return annotations.App{}, false
	}
	return app, true
}

// state reads the controller's memory before the first step. Its times
// count back from Epoch; Load shifts them to the first step's time.
func (v *validator) state(in *stateIn, sc *Scenario) {
	if in == nil {
		return
	}
	path := field.NewPath("state")
	sc.Replicas = v.optReplicas(path.Child("replicas"), in.Replicas)
	sc.StatusReplicas = v.optReplicas(path.Child("statusReplicas"), in.StatusReplicas)
	sc.ScaledToZero = v.optBool(path.Child("scaledToZero"), in.ScaledToZero, false)

	// Present, even empty, means exactly this memory: no seeding.
	if in.hasRecommendations {
		sc.State.Initialized = true
		for i, r := range in.Recommendations {
			p := path.Child("recommendations").Index(i)
			if v.isNull(p, r) {
				continue
			}
			ago, okAgo := v.requiredSeconds(p.Child("secondsAgo"), r.SecondsAgo)
			n := v.requiredReplicas(p.Child("replicas"), r.Replicas)
			if okAgo && n != nil {
				sc.State.Recommendations = append(sc.State.Recommendations,
					recommender.TimedRecommendation{Replicas: *n, At: Epoch.Add(-seconds(ago))})
			}
		}
		// The engine expects the history oldest first.
		slices.SortStableFunc(sc.State.Recommendations, func(a, b recommender.TimedRecommendation) int {
			return a.At.Compare(b.At)
		})
	}
	for i, e := range in.ScaleEvents {
		p := path.Child("scaleEvents").Index(i)
		if v.isNull(p, e) {
			continue
		}
		ago, okAgo := v.requiredSeconds(p.Child("secondsAgo"), e.SecondsAgo)
		if !e.Change.set() {
			v.add(field.Required(p.Child("change"), "the signed replica change (+ up, - down)"))
			continue
		}
		change, okChange := v.integer(p.Child("change"), e.Change, -math.MaxInt32, math.MaxInt32)
		if okChange && change == 0 {
			v.add(field.Invalid(p.Child("change"), 0, "not a change: use a positive count for a scale-up, a negative one for a scale-down"))
			continue
		}
		if !okAgo || !okChange {
			continue
		}
		at := Epoch.Add(-seconds(ago))
		if change > 0 {
			sc.State.ScaleUpEvents = append(sc.State.ScaleUpEvents, recommender.ScaleEvent{Change: int32(change), At: at})
		} else {
			sc.State.ScaleDownEvents = append(sc.State.ScaleDownEvents, recommender.ScaleEvent{Change: int32(-change), At: at})
		}
	}
}

// isNull reports a null list item, which is not a mapping. The input
// structs' lists hold pointers so that such an item (`- ~`) is seen.
func (v *validator) isNull(path *field.Path, item any) bool {
	if !reflect.ValueOf(item).IsNil() {
		return false
	}
	v.add(field.TypeInvalid(path, nil, "not a mapping"))
	return true
}

// number reads a finite number that inRange accepts; noun says what is
// expected ("number of seconds") and allowed what the range is.
func (v *validator) number(path *field.Path, x value[float64], noun string, inRange func(float64) bool, allowed string) (float64, bool) {
	f := x.v
	if !x.ok {
		var special bool
		if f, special = nonFiniteValue(x.literal()); !special {
			v.add(field.TypeInvalid(path, x.literal(), "not a "+noun))
			return 0, false
		}
	}
	if !v.finite(path, f) {
		return 0, false
	}
	if !inRange(f) {
		v.add(field.Invalid(path, x.literal(), "out of range: allowed "+allowed))
		return 0, false
	}
	return f, true
}

func (v *validator) finite(path *field.Path, f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.add(field.Invalid(path, f, "not a finite number"))
		return false
	}
	return true
}

// integer reads a whole number in [lo, hi].
func (v *validator) integer(path *field.Path, x value[float64], lo, hi int64) (int64, bool) {
	if !x.ok || x.v != math.Trunc(x.v) {
		v.add(field.TypeInvalid(path, x.literal(), "not an integer"))
		return 0, false
	}
	if x.v < float64(lo) || x.v > float64(hi) {
		v.add(field.Invalid(path, x.literal(), fmt.Sprintf("out of range: allowed %d to %d", lo, hi)))
		return 0, false
	}
	return int64(x.v), true
}

func (v *validator) optReplicas(path *field.Path, x value[float64]) *int32 {
	if !x.set() {
		return nil
	}
	return v.requiredReplicas(path, x)
}

func (v *validator) requiredReplicas(path *field.Path, x value[float64]) *int32 {
	if !x.set() {
		v.add(field.Required(path, "a replica count"))
		return nil
	}
	n, ok := v.integer(path, x, 0, math.MaxInt32)
	if !ok {
		return nil
	}
	return ptr.To(int32(n))
}

// secondsValue reads a finite, non-negative number of seconds.
func (v *validator) secondsValue(path *field.Path, x value[float64]) (float64, bool) {
	return v.number(path, x, "number of seconds", func(f float64) bool { return f >= 0 && f <= maxSeconds },
		"0 to "+fmtNum(maxSeconds)+" seconds")
}

func (v *validator) requiredSeconds(path *field.Path, x value[float64]) (float64, bool) {
	if !x.set() {
		v.add(field.Required(path, "a number of seconds"))
		return 0, false
	}
	return v.secondsValue(path, x)
}

// optSeconds reads an optional number of seconds as a duration.
func (v *validator) optSeconds(path *field.Path, x value[float64], def time.Duration) time.Duration {
	if !x.set() {
		return def
	}
	f, ok := v.secondsValue(path, x)
	if !ok {
		return def
	}
	return seconds(f)
}

// quantity reads a Kubernetes quantity ("500m", "128Mi", 1) in milli-units,
// as HPA compares them.
func (v *validator) quantity(path *field.Path, x value[any]) (int64, bool) {
	q, ok := v.parseQuantity(path, x)
	if !ok {
		return 0, false
	}
	// Checked on a float: Quantity comparisons panic on extreme exponents.
	if f := q.AsApproximateFloat64(); f > 1e15 {
		v.add(field.Invalid(path, x.literal(), "too large"))
		return 0, false
	}
	if q.Sign() < 0 {
		v.add(field.Invalid(path, x.literal(), "negative"))
		return 0, false
	}
	return q.MilliValue(), true
}

// parseQuantity reads a quantity written as a string ("500m") or a number.
func (v *validator) parseQuantity(path *field.Path, x value[any]) (resource.Quantity, bool) {
	var s string
	switch lit := x.literal().(type) {
	case string:
		s = lit
	case json.Number:
		f, err := lit.Float64()
		if err != nil {
			v.add(field.Invalid(path, lit, "not a quantity"))
			return resource.Quantity{}, false
		}
		s = fmtNum(f)
	case float64: // not finite
		v.finite(path, lit)
		return resource.Quantity{}, false
	default:
		v.add(field.TypeInvalid(path, lit, "not a quantity"))
		return resource.Quantity{}, false
	}
	q, err := annotations.ParseQuantity(s)
	if err != nil {
		v.add(field.Invalid(path, x.literal(), "not a quantity"))
		return resource.Quantity{}, false
	}
	return q, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
