package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
)

// ErrNoAutoscaler: the input holds no HorizontalPodAutoscaler and no
// ScaledObject.
var ErrNoAutoscaler = errors.New("no HorizontalPodAutoscaler or KEDA ScaledObject found")

// Result is one converted autoscaler: the annotations for the app it scaled.
type Result struct {
	// Source names the converted object, such as
	// "HorizontalPodAutoscaler shop/cart".
	Source string
	// Namespace and Name locate the scaled Deployment, which spin-operator
	// names after its SpinApp. Namespace is empty when the input had none.
	Namespace, Name string
	// Annotations are the spinscale.dev/ annotations, enabled included.
	Annotations map[string]string
	// SpinAppSpec holds SpinApp spec fields to set besides
	// deploymentAnnotations (resources, from scaffold flags).
	SpinAppSpec map[string]any
	// Notes explain choices that keep the meaning (a default made explicit).
	Notes []string
	// Warnings name every field that could not be expressed, and how the
	// result differs from the source because of it.
	Warnings []string
	// Invalid is set when the annotations are not accepted by the controller
	// as they stand (typically: no target could be converted).
	Invalid error
}

func (r *Result) warnf(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

func (r *Result) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Convert reads a YAML (or JSON) stream of one or more documents and converts
// every HorizontalPodAutoscaler and ScaledObject in it, in order. Other
// objects (the SpinApp next to an HPA, a Secret) are skipped; List objects
// are expanded. It fails when the input cannot be parsed or holds no
// autoscaler.
func Convert(input []byte) ([]Result, error) {
	docs, err := documents(input)
	if err != nil {
		return nil, err
	}
	var out []Result
	for i, doc := range docs {
		r, ok, err := convertObject(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if ok {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoAutoscaler
	}
	return out, nil
}

// documents splits the stream into objects, expanding kind: List.
func documents(input []byte) ([]map[string]any, error) {
	reader := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(input), 4096)
	var out []map[string]any
	for i := 1; ; i++ {
		var obj map[string]any
		err := reader.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: not YAML or JSON: %w", i, err)
		}
		if len(obj) == 0 {
			continue
		}
		if kind, _ := obj["kind"].(string); strings.HasSuffix(kind, "List") {
			items, _ := obj["items"].([]any)
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					out = append(out, m)
				}
			}
			continue
		}
		out = append(out, obj)
	}
	return out, nil
}

func convertObject(obj map[string]any) (Result, bool, error) {
	u := unstructured.Unstructured{Object: obj}
	gv, kind := u.GetAPIVersion(), u.GetKind()
	switch {
	case kind == "HorizontalPodAutoscaler" && (gv == "autoscaling/v2" || gv == "autoscaling/v2beta2"):
		var hpa autoscalingv2.HorizontalPodAutoscaler
		if err := decode(obj, &hpa); err != nil {
			return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: %w", u.GetName(), err)
		}
		r := FromHPA(&hpa)
		r.Warnings = append(ignoredFields(obj, &hpa, "HorizontalPodAutoscaler"), r.Warnings...)
		return validated(r), true, nil
	case kind == "HorizontalPodAutoscaler" && gv == "autoscaling/v1":
		var hpa autoscalingv1.HorizontalPodAutoscaler
		if err := decode(obj, &hpa); err != nil {
			return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: %w", u.GetName(), err)
		}
		r := FromHPAv1(&hpa)
		r.Warnings = append(ignoredFields(obj, &hpa, "HorizontalPodAutoscaler"), r.Warnings...)
		return validated(r), true, nil
	case kind == "HorizontalPodAutoscaler":
		return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: apiVersion %s is not supported: export it as autoscaling/v2 (kubectl get hpa.v2.autoscaling %s -o yaml)",
			u.GetName(), gv, u.GetName())
	case kind == "ScaledObject" && strings.HasPrefix(gv, "keda.sh/"):
		var so ScaledObject
		if err := decode(obj, &so); err != nil {
			return Result{}, false, fmt.Errorf("ScaledObject %s: %w", u.GetName(), err)
		}
		r := FromScaledObject(&so)
		r.Warnings = append(ignoredFields(obj, &so, "ScaledObject"), r.Warnings...)
		return validated(r), true, nil
	}
	return Result{}, false, nil
}

// decode converts a generic object into a typed one, accepting unknown
// fields (ignoredFields reports them).
func decode(obj map[string]any, out any) error {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), "error unmarshaling JSON: "), "while decoding JSON: json: "))
	}
	return nil
}

// ignoredFields lists the spec fields of the input that the typed decoding
// did not keep: fields this converter does not know, which it therefore
// cannot express. metadata and status are never converted.
func ignoredFields(obj map[string]any, typed any, kind string) []string {
	data, err := yaml.Marshal(typed)
	if err != nil {
		return nil
	}
	var back map[string]any
	if yaml.Unmarshal(data, &back) != nil {
		return nil
	}
	var out []string
	spec, _ := obj["spec"].(map[string]any)
	kept, _ := back["spec"].(map[string]any)
	missingKeys("spec", spec, kept, &out)
	sort.Strings(out)
	for i, path := range out {
		out[i] = fmt.Sprintf("%s: unknown %s field, not converted", path, kind)
	}
	return out
}

func missingKeys(path string, in, kept any, out *[]string) {
	switch in := in.(type) {
	case map[string]any:
		k, _ := kept.(map[string]any)
		for key, v := range in {
			sub, ok := k[key]
			if !ok {
				if isZero(v) {
					continue // dropped by omitempty, not unknown
				}
				*out = append(*out, path+"."+key)
				continue
			}
			missingKeys(path+"."+key, v, sub, out)
		}
	case []any:
		k, _ := kept.([]any)
		for i, v := range in {
			if i < len(k) {
				missingKeys(fmt.Sprintf("%s[%d]", path, i), v, k[i], out)
			}
		}
	}
}

func isZero(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case float64:
		return v == 0
	case int64:
		return v == 0
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

// validated checks the annotations as the controller would, with the
// built-in defaults.
func validated(r Result) Result {
	c := config.Default()
	_, err := annotations.Parse(r.Annotations, annotations.Defaults{
		Profile: c.Profile, Tolerance: c.Tolerance, DownscaleStabilization: c.DownscaleStabilization,
		CPUInitializationPeriod: c.CPUInitializationPeriod, InitialReadinessDelay: c.InitialReadinessDelay,
		MaxSampleAge: c.MaxSampleAge, ScaleUpLimitFactor: c.ScaleUpLimitFactor, ScaleUpLimitMinimum: c.ScaleUpLimitMinimum,
	})
	if err != nil {
		r.Invalid = err
		r.warnf("the converted annotations are incomplete, Spinscale would refuse them as they stand: %v", err)
	}
	return r
}

// newResult starts a result for a target, with the bounds every app has.
func newResult(source, namespace, name string) Result {
	return Result{
		Source:      source,
		Namespace:   namespace,
		Name:        name,
		Annotations: map[string]string{annotations.KeyEnabled: "true"},
	}
}

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
