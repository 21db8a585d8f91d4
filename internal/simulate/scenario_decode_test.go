package simulate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
)

// fieldErrs returns the field errors of an invalid scenario.
func fieldErrs(t *testing.T, doc string) field.ErrorList {
	t.Helper()
	_, err := Load([]byte(doc))
	var se *Error
	require.True(t, errors.As(err, &se), "want *Error, got %T: %v", err, err)
	return se.Errs
}

// TestUnknownFieldAtANestedPath: a misspelt field deep in a step is named
// by its full path, with the fields allowed there.
func TestUnknownFieldAtANestedPath(t *testing.T) {
	got := fieldErrs(t, cpuApp+`
state: {replicas: 1}
steps:
  - {}
  - {}
  - pods:
      - {name: a, cpuu: 1, containers: [{requests: {cpu: 1, gpu: 1}}]}
`)
	require.Len(t, got, 2)
	assert.Equal(t, "steps[2].pods[0].containers[0].requests.gpu", got[0].Field)
	assert.Equal(t, field.ErrorTypeForbidden, got[0].Type)
	assert.Equal(t, "steps[2].pods[0].cpuu: Forbidden: unknown field (allowed: name, phase, ready, startedSecondsAgo, readySecondsAgo, deleting, containers, resources, metricsAgeSeconds, metricsWindowSeconds)",
		got[1].Error())
}

// TestWrongTypeAtANestedPath: a scalar of the wrong type is reported with
// the other problems; a value of the wrong shape (a mapping for a list)
// stops decoding and is reported alone, at its full path.
func TestWrongTypeAtANestedPath(t *testing.T) {
	got := fieldErrs(t, cpuApp+`
state: {replicas: 1}
steps:
  - pods: [{name: a, ready: "yes"}]
  - pods: [{name: 3, startedSecondsAgo: soon}]
`)
	assert.Equal(t, []string{
		`steps[0].pods[0].ready: Invalid value: "yes": not a boolean (true or false)`,
		`steps[1].pods[0].name: Invalid value: 3: not a string`,
		`steps[1].pods[0].startedSecondsAgo: Invalid value: "soon": not a number of seconds`,
	}, messages(got))
	for _, e := range got {
		assert.Equal(t, field.ErrorTypeTypeInvalid, e.Type)
	}

	got = fieldErrs(t, cpuApp+`
state: {replicas: 1}
steps:
  - pods: [{name: a, bogus: 1}]
  - pods: {a: {}}
  - pods: 3
`)
	assert.Equal(t, []string{"steps[1].pods: Invalid value: a mapping is not a list"}, messages(got))
}

// TestSeveralErrorsTogether: problems of every kind (unknown field, wrong
// type, out of range, duplicate, unsupported value, annotation and
// configuration errors) come out of one run, in the order of the
// scenario's fields.
func TestSeveralErrorsTogether(t *testing.T) {
	got := fieldErrs(t, `
annotations:
  spinscale.dev/enabled: "true"
  spinscale.dev/max-replicas: "many"
  spinscale.dev/target-cpu-utilization: "50"
config: {tolerance: 3, log: {level: loud}}
state: {replicas: 1.5}
steps:
  - replicas: -1
    pods: [{name: a, phase: Runing}, {name: a, deleting: 1}]
    prometheus: {rps: .inf}
  - {at: 10, extra: true}
`)
	assert.Equal(t, []string{
		`annotations[spinscale.dev/max-replicas]: Invalid value: "many": must be an integer >= min-replicas (1) and <= 100000`,
		`config.tolerance: Invalid value: 3 is out of range: allowed 0 to 1`,
		`config.log.level: Invalid value: "loud" is not allowed: allowed values are debug, info, warn, error`,
		`state.replicas: Invalid value: 1.5: not an integer`,
		// Neither replicas is usable.
		`state.replicas: Required value: when steps[0] does not set replicas: the app's spec.replicas before the first step`,
		`steps[1].extra: Forbidden: unknown field (allowed: at, replicas, statusReplicas, pods, prometheus, metricsAPIs, annotations)`,
		`steps[0].replicas: Invalid value: -1: out of range: allowed 0 to 2147483647`,
		`steps[0].pods[0].phase: Unsupported value: "Runing": supported values: "Pending", "Running", "Succeeded", "Failed", "Unknown"`,
		`steps[0].pods[1].name: Duplicate value: "a": used by another pod of this step: pod names are unique`,
		`steps[0].pods[1].deleting: Invalid value: 1: not a boolean (true or false)`,
		`steps[0].prometheus.rps: Invalid value: +Inf: not a finite number`,
	}, messages(got))
}

// TestRecommendationsNull: `recommendations:` with no value is present, as
// an empty list is: exactly the controller's (empty) memory.
func TestRecommendationsNull(t *testing.T) {
	sc := load(t, cpuApp+"state:\n  replicas: 1\n  recommendations:\nsteps: [{}]\n")
	assert.True(t, sc.State.Initialized)
	sc = load(t, cpuApp+"state:\n  replicas: 1\nsteps: [{}]\n")
	assert.False(t, sc.State.Initialized)
}

// TestFieldErrorsPlacesEachPartAtItsKey: joined and wrapped errors of the
// configuration and the annotation parser become one field error each.
func TestFieldErrorsPlacesEachPartAtItsKey(t *testing.T) {
	base := field.NewPath("x")
	err := fmt.Errorf("wrapped: %w", errors.Join(
		&config.FieldError{Key: "prometheus.timeout", Err: errors.New(`"0s" is out of range`)},
		&annotations.Error{Fields: []annotations.FieldError{
			{Key: "k", Value: "v", Message: "bad"},
			{Key: "k", Path: "[1].target", Value: "t", Message: "worse"},
			{Key: "k", Path: "scaleUp", Message: "empty"},
		}},
		errors.New("no key"),
	))
	assert.Equal(t, []string{
		`x.prometheus.timeout: Invalid value: "0s" is out of range`,
		`x[k]: Invalid value: "v": bad`,
		`x[k][1].target: Invalid value: "t": worse`,
		`x[k].scaleUp: Invalid value: empty`,
		`x: Invalid value: no key`,
	}, messages(fieldErrors(base, err)))
}

func messages(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// TestNullItemsAndNonFiniteNumbers: a null list item is not a mapping, and
// .nan is a number, not a string, wherever it stands.
func TestNullItemsAndNonFiniteNumbers(t *testing.T) {
	got := fieldErrs(t, cpuApp+`
state: {replicas: 1, scaleEvents: [~]}
steps:
  - ~
  - pods: [~, {name: .nan, containers: [{requests: {cpu: .inf}}]}]
`)
	assert.Equal(t, []string{
		"state.scaleEvents[0]: Invalid value: null: not a mapping",
		"steps[0]: Invalid value: null: not a mapping",
		"steps[1].pods[0]: Invalid value: null: not a mapping",
		"steps[1].pods[1].name: Invalid value: NaN: not a string",
		"steps[1].pods[1].containers[0].requests.cpu: Invalid value: +Inf: not a finite number",
	}, messages(got))
}
