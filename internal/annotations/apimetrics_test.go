package annotations

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/spinscale/spinscale/internal/recommender"
)

// The entries of the metrics APIs: each field lands in the spec, and the
// selector as written.
func TestParseMetricsAPIEntries(t *testing.T) {
	list := `- name: packets-per-second
  type: pods
  metric: packets-per-second
  targetAverageValue: 1k
- name: requests-per-second
  type: object
  metric: requests-per-second
  describedObject: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: main-route}
  targetValue: 10k
- name: queue-messages-ready
  type: external
  metric: queue_messages_ready
  selector: "queue=worker_tasks, env in (prod)"
  targetAverageValue: 30
- name: lag
  type: external
  metric: lag
  targetValue: 5
  fallbackReplicas: 3
- name: q
  type: prometheus
  query: sum(q)
  targetValue: 1`
	app, err := Parse(ann("enabled", "true", "max-replicas", "5", "metrics", list), defaults)
	require.NoError(t, err)
	want := []recommender.MetricSpec{
		{Name: "packets-per-second", Source: recommender.SourcePods, Metric: "packets-per-second", Annotation: KeyMetrics + "[packets-per-second]",
			Target: recommender.TargetAverageValue, TargetMilli: 1000000},
		{Name: "requests-per-second", Source: recommender.SourceObject, Metric: "requests-per-second", Annotation: KeyMetrics + "[requests-per-second]",
			Object: autoscalingv2.CrossVersionObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "main-route"},
			Target: recommender.TargetValue, TargetMilli: 10000000},
		{Name: "queue-messages-ready", Source: recommender.SourceExternal, Metric: "queue_messages_ready", Selector: "queue=worker_tasks, env in (prod)",
			Annotation: KeyMetrics + "[queue-messages-ready]", Target: recommender.TargetAverageValue, TargetMilli: 30000},
		{Name: "lag", Source: recommender.SourceExternal, Metric: "lag", Annotation: KeyMetrics + "[lag]",
			Target: recommender.TargetValue, TargetMilli: 5000, FallbackReplicas: 3, FallbackAfter: defaultMetricFallbackAfter},
		{Name: "q", Source: recommender.SourcePrometheus, Query: "sum(q)", Annotation: KeyMetrics + "[q]", Target: recommender.TargetValue, TargetMilli: 1000},
	}
	assert.Equal(t, want, app.Spec.Metrics)
}

// min-replicas 0 needs a metric from outside the pods: object and external
// ones are, as for HPA; a pods one is not.
func TestParseZeroWithAPIMetrics(t *testing.T) {
	for _, tt := range []struct {
		entry string
		ok    bool
	}{
		{"- {name: a, type: external, metric: m, targetValue: 1}", true},
		{"- {name: a, type: object, metric: m, describedObject: {kind: Service, name: s}, targetAverageValue: 1}", true},
		{"- {name: a, type: pods, metric: m, targetAverageValue: 1}", false},
	} {
		_, err := Parse(ann("enabled", "true", "max-replicas", "5", "min-replicas", "0", "metrics", tt.entry), defaults)
		if tt.ok {
			assert.NoError(t, err, tt.entry)
		} else {
			require.Error(t, err, tt.entry)
			assert.Contains(t, err.Error(), `spinscale.dev/min-replicas: "0": 0 needs a Prometheus metric, or an object or external one`)
		}
	}
}

func TestParseMetricsAPIErrors(t *testing.T) {
	tests := []struct {
		name    string
		metrics string
		want    []string
	}{
		{"unknown type", "- {name: a, type: custom, metric: m, targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0].type: "custom": must be prometheus (the default), pods, object or external`}},
		{"type not a string", "- {name: a, type: 3, metric: m, targetValue: 1}", []string{`spinscale.dev/metrics: [0].type: "3": must be prometheus`}},
		{"metric missing", "- {name: a, type: external, targetValue: 1}", []string{"spinscale.dev/metrics: [0].metric: required for type external"}},
		{"metric with a slash", "- {name: a, type: pods, metric: a/b, targetAverageValue: 1}",
			[]string{`spinscale.dev/metrics: [0].metric: "a/b": must be the metric's name in the metrics API`}},
		{"selector unparsable", "- {name: a, type: external, metric: m, selector: 'queue in (a', targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0].selector: "queue in (a": not a label selector`}},
		{"selector a map", "- {name: a, type: external, metric: m, selector: {queue: w}, targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0].selector: "{\"queue\":\"w\"}": must be a label selector string`}},
		{"missing target", "- {name: a, type: external, metric: m}", []string{"spinscale.dev/metrics: [0]: requires a target: set targetValue or targetAverageValue"}},
		{"pods with a value target", "- {name: a, type: pods, metric: m, targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0].targetValue: "1": a pods metric takes targetAverageValue only`}},
		{"query on an external entry", "- {name: a, type: external, metric: m, query: sum(x), targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].query: is a field of type prometheus entries only, not of type external"}},
		{"server on a pods entry", "- {name: a, type: pods, metric: m, server: s, targetAverageValue: 1}",
			[]string{"spinscale.dev/metrics: [0].server: is a field of type prometheus entries only, not of type pods"}},
		{"metric on a prometheus entry", "- {name: a, query: q, metric: m, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].metric: is a field of type pods, object and external entries only, not of type prometheus"}},
		{"object without describedObject", "- {name: a, type: object, metric: m, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].describedObject: required for type object"}},
		{"describedObject on external", "- {name: a, type: external, metric: m, describedObject: {kind: Service, name: s}, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].describedObject: is a field of type object entries only"}},
		{"describedObject without name", "- {name: a, type: object, metric: m, describedObject: {kind: Service}, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].describedObject.name: required"}},
		{"describedObject without kind", "- {name: a, type: object, metric: m, describedObject: {name: s}, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].describedObject.kind: required"}},
		{"describedObject unknown field", "- {name: a, type: object, metric: m, describedObject: {kind: Service, name: s, namespace: x}, targetValue: 1}",
			[]string{"spinscale.dev/metrics: [0].describedObject: ", "must be an object {apiVersion, kind, name}"}},
		{"describedObject bad apiVersion", "- {name: a, type: object, metric: m, describedObject: {apiVersion: a/b/c, kind: Service, name: s}, targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0].describedObject.apiVersion: "a/b/c": must be an API version`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(valid("metrics", tt.metrics), defaults)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
