package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"

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

	// zeroFrom names the source's minimum when it is 0 (scale to zero),
	// and zeroExplicit whether the source set it or left KEDA's default.
	zeroFrom     string
	zeroExplicit bool
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
		unknown, err := decode(obj, &hpa, "HorizontalPodAutoscaler")
		if err != nil {
			return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: %w", u.GetName(), err)
		}
		r := FromHPA(&hpa)
		r.Warnings = append(unknown, r.Warnings...)
		return validated(r), true, nil
	case kind == "HorizontalPodAutoscaler" && gv == "autoscaling/v1":
		var hpa autoscalingv1.HorizontalPodAutoscaler
		unknown, err := decode(obj, &hpa, "HorizontalPodAutoscaler")
		if err != nil {
			return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: %w", u.GetName(), err)
		}
		r := FromHPAv1(&hpa)
		r.Warnings = append(unknown, r.Warnings...)
		return validated(r), true, nil
	case kind == "HorizontalPodAutoscaler":
		return Result{}, false, fmt.Errorf("HorizontalPodAutoscaler %s: apiVersion %s is not supported: export it as autoscaling/v2 (kubectl get hpa.v2.autoscaling %s -o yaml)",
			u.GetName(), gv, u.GetName())
	case kind == "ScaledObject" && strings.HasPrefix(gv, "keda.sh/"):
		var so ScaledObject
		unknown, err := decode(obj, &so, "ScaledObject")
		if err != nil {
			return Result{}, false, fmt.Errorf("ScaledObject %s: %w", u.GetName(), err)
		}
		r := FromScaledObject(&so)
		r.Warnings = append(unknown, r.Warnings...)
		return validated(r), true, nil
	}
	return Result{}, false, nil
}

// decode converts a generic object into a typed one as the API server
// would, field names matching exactly. It returns the spec fields the type
// does not know, which the converter therefore cannot express, as warnings;
// metadata and status are never converted.
func decode(obj map[string]any, out any, kind string) ([]string, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	strict, err := sigsjson.UnmarshalStrict(data, out, sigsjson.DisallowUnknownFields)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	var unknown []string
	for _, e := range strict {
		var fe sigsjson.FieldError
		if errors.As(e, &fe) && strings.HasPrefix(fe.FieldPath(), "spec.") {
			unknown = append(unknown, fmt.Sprintf("%s: unknown %s field, not converted", fe.FieldPath(), kind))
		}
	}
	sort.Strings(unknown)
	return unknown, nil
}

// validated checks the annotations as the controller would, with the
// built-in defaults.
func validated(r Result) Result {
	c := config.Default()
	_, err := annotations.Parse(r.Annotations, c.AppDefaults())
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
