package convert

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	return data
}

// parse checks the annotations as the controller does and returns the spec.
func parse(t *testing.T, ann map[string]string) annotations.App {
	t.Helper()
	c := config.Default()
	app, err := annotations.Parse(ann, c.AppDefaults())
	require.NoError(t, err)
	require.True(t, app.Enabled)
	require.Empty(t, app.Warnings, "no unknown keys")
	return app
}

func convertOne(t *testing.T, input []byte) Result {
	t.Helper()
	results, err := Convert(input)
	require.NoError(t, err)
	require.Len(t, results, 1)
	return results[0]
}

func TestSpinKubeSamples(t *testing.T) {
	for _, tc := range []struct {
		name, file, source, target string
		want                       map[string]string
	}{
		{
			name: "HPA 1-10 at 50% cpu", file: "testdata/spinkube-hpa.yaml",
			source: "HorizontalPodAutoscaler spinapp-autoscaler", target: "hpa-spinapp",
			want: map[string]string{
				"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "1", "spinscale.dev/max-replicas": "10",
				"spinscale.dev/target-cpu-utilization": "50",
			},
		},
		{
			name: "ScaledObject 1-20 at 50% cpu", file: "testdata/spinkube-scaledobject.yaml",
			source: "ScaledObject cpu-scaling", target: "keda-spinapp",
			want: map[string]string{
				"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "1", "spinscale.dev/max-replicas": "20",
				"spinscale.dev/target-cpu-utilization": "50",
			},
		},
		{
			name: "spin kube scaffold --autoscaler hpa output", file: "testdata/scaffold-hpa.yaml",
			source: "HorizontalPodAutoscaler example-app-autoscaler", target: "example-app",
			want: scaffoldDefaults(t),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convertOne(t, readFile(t, tc.file))
			assert.Equal(t, tc.source, r.Source)
			assert.Equal(t, tc.target, r.Name)
			assert.Equal(t, tc.want, r.Annotations)
			assert.Empty(t, r.Warnings, "the samples convert exactly")
			assert.NoError(t, r.Invalid)
			app := parse(t, r.Annotations)
			assert.Nil(t, app.Spec.Behavior, "no behavior: HPA's plain path")
		})
	}
}

// scaffoldDefaults are the annotations of examples/scaffold-defaults.yaml,
// the documented equivalent of scaffold's HPA.
func scaffoldDefaults(t *testing.T) map[string]string {
	t.Helper()
	var scenario struct {
		Annotations map[string]string `json:"annotations"`
	}
	require.NoError(t, yaml.Unmarshal(readFile(t, "../../examples/scaffold-defaults.yaml"), &scenario))
	require.NotEmpty(t, scenario.Annotations)
	// The example pins the hpa profile to show HPA's rules step by step;
	// a conversion leaves the profile to the controller's configuration.
	require.Equal(t, "hpa", scenario.Annotations["spinscale.dev/profile"])
	delete(scenario.Annotations, "spinscale.dev/profile")
	return scenario.Annotations
}

// A full behavior block becomes the behavior annotation, and the controller
// reads back exactly the HPA's behavior.
func TestHPAWithBehavior(t *testing.T) {
	r := convertOne(t, readFile(t, "testdata/hpa-behavior.yaml"))
	assert.Equal(t, "HorizontalPodAutoscaler web/shop", r.Source)
	assert.Equal(t, "web", r.Namespace)
	assert.Equal(t, "shop", r.Name)
	assert.Empty(t, r.Warnings)
	assert.Equal(t, "2", r.Annotations["spinscale.dev/min-replicas"])
	assert.Equal(t, "20", r.Annotations["spinscale.dev/max-replicas"])
	assert.Equal(t, "70", r.Annotations["spinscale.dev/target-cpu-utilization"])
	assert.Equal(t, "200Mi", r.Annotations["spinscale.dev/target-memory-average-value"])
	require.Contains(t, r.Annotations, "spinscale.dev/behavior")

	app := parse(t, r.Annotations)
	want := &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleUp: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](30), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}, {Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}},
		},
		ScaleDown: &autoscalingv2.HPAScalingRules{
			StabilizationWindowSeconds: ptr.To[int32](600), SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect),
			Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10, PeriodSeconds: 60}, {Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60}},
		},
	}
	assert.Equal(t, want, app.Spec.Behavior)
	require.Len(t, app.Spec.Metrics, 2)
}

// The HPA walkthrough's metrics convert one to one, with no warning, and
// the controller reads back HPA's metrics: cpu, then the list in order.
func TestHPAWalkthroughMetrics(t *testing.T) {
	r := convertOne(t, readFile(t, "testdata/hpa-walkthrough.yaml"))
	assert.Empty(t, r.Warnings)
	require.NoError(t, r.Invalid)
	assert.Equal(t, map[string]string{
		"spinscale.dev/enabled":                "true",
		"spinscale.dev/min-replicas":           "1",
		"spinscale.dev/max-replicas":           "10",
		"spinscale.dev/target-cpu-utilization": "50",
		"spinscale.dev/metrics": `- metric: packets-per-second
  name: packets-per-second
  targetAverageValue: 1k
  type: pods
- describedObject:
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    name: main-route
  metric: requests-per-second
  name: requests-per-second
  targetValue: 10k
  type: object
- metric: queue_messages_ready
  name: queue-messages-ready
  selector: queue=worker_tasks
  targetAverageValue: "30"
  type: external`,
	}, r.Annotations)

	app := parse(t, r.Annotations)
	require.Len(t, app.Spec.Metrics, 4)
	m := app.Spec.Metrics
	assert.Equal(t, recommender.SourceResource, m[0].Source)
	assert.Equal(t, recommender.MetricSpec{Name: "packets-per-second", Source: recommender.SourcePods, Metric: "packets-per-second",
		Annotation: "spinscale.dev/metrics[packets-per-second]", Target: recommender.TargetAverageValue, TargetMilli: 1_000_000}, m[1])
	assert.Equal(t, recommender.MetricSpec{Name: "requests-per-second", Source: recommender.SourceObject, Metric: "requests-per-second",
		Object:     autoscalingv2.CrossVersionObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "main-route"},
		Annotation: "spinscale.dev/metrics[requests-per-second]", Target: recommender.TargetValue, TargetMilli: 10_000_000}, m[2])
	assert.Equal(t, recommender.MetricSpec{Name: "queue-messages-ready", Source: recommender.SourceExternal, Metric: "queue_messages_ready",
		Selector: "queue=worker_tasks", Annotation: "spinscale.dev/metrics[queue-messages-ready]", Target: recommender.TargetAverageValue, TargetMilli: 30_000}, m[3])
}

func TestHPAVariants(t *testing.T) {
	hpa := func(spec string) []byte {
		return []byte("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a, namespace: ns}\nspec:\n" +
			"  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n" + spec)
	}
	for _, tc := range []struct {
		name     string
		input    []byte
		want     map[string]string // a subset
		absent   []string
		warnings []string // substrings, one per warning, in order
		notes    []string
		invalid  bool
	}{
		{
			name:  "no metrics: the HPA default cpu 80% made explicit",
			input: hpa("  maxReplicas: 5\n"),
			want:  map[string]string{"spinscale.dev/min-replicas": "1", "spinscale.dev/max-replicas": "5", "spinscale.dev/target-cpu-utilization": "80"},
			notes: []string{"spec.metrics is empty"},
		},
		{
			name:     "scale to zero has no equivalent",
			input:    hpa("  minReplicas: 0\n  maxReplicas: 5\n"),
			want:     map[string]string{"spinscale.dev/min-replicas": "1"},
			warnings: []string{"spec.minReplicas: 0 (scale to zero)"},
			notes:    []string{"spec.metrics is empty"},
		},
		{
			name: "custom metrics are converted, the first cpu target kept",
			input: hpa(`  maxReplicas: 5
  metrics:
    - type: Pods
      pods: {metric: {name: rps}, target: {type: AverageValue, averageValue: "10"}}
    - type: External
      external: {metric: {name: queue}, target: {type: Value, value: "30"}}
    - type: Resource
      resource: {name: cpu, target: {type: AverageValue, averageValue: 250m}}
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`),
			want: map[string]string{
				"spinscale.dev/target-cpu-average-value": "250m",
				"spinscale.dev/metrics": "- metric: rps\n  name: rps\n  targetAverageValue: \"10\"\n  type: pods\n" +
					"- metric: queue\n  name: queue\n  targetValue: \"30\"\n  type: external",
			},
			absent: []string{"spinscale.dev/target-cpu-utilization", "spinscale.dev/prometheus-query"},
			warnings: []string{
				`spec.metrics[3].resource: a second cpu target`,
			},
		},
		{
			name:  "only an object metric",
			input: hpa("  maxReplicas: 5\n  metrics:\n    - type: Object\n      object: {metric: {name: hits}, describedObject: {kind: Service, name: s}, target: {type: Value, value: '1'}}\n"),
			want:  map[string]string{"spinscale.dev/metrics": "- describedObject:\n    kind: Service\n    name: s\n  metric: hits\n  name: hits\n  targetValue: \"1\"\n  type: object"},
		},
		{
			name:     "a Pods metric with a Value target is refused as by HPA",
			input:    hpa("  maxReplicas: 5\n  metrics:\n    - type: Pods\n      pods: {metric: {name: rps}, target: {type: Value, value: '1'}}\n"),
			warnings: []string{`spec.metrics[0].pods.target.type "Value": a Pods metric's target is AverageValue, not converted`, "incomplete, Spinscale would refuse them"},
			invalid:  true,
		},
		{
			name:     "container resource is measured on the pod",
			input:    hpa("  maxReplicas: 5\n  metrics:\n    - type: ContainerResource\n      containerResource: {name: memory, container: app, target: {type: Utilization, averageUtilization: 60}}\n"),
			want:     map[string]string{"spinscale.dev/target-memory-utilization": "60"},
			warnings: []string{`spec.metrics[0]: ContainerResource (container "app") is measured on the whole pod`},
		},
		{
			name:     "unknown fields are reported",
			input:    hpa("  maxReplicas: 5\n  surprise: true\n"),
			warnings: []string{"spec.surprise: unknown HorizontalPodAutoscaler field"},
			notes:    []string{"spec.metrics is empty"},
		},
		{
			// As the API server reads it: a key in the wrong case is not
			// the field, and an unknown field is named even when empty.
			name:     "field names match exactly",
			input:    hpa("  maxReplicas: 5\n  minreplicas: 3\n  bogus: false\n"),
			want:     map[string]string{"spinscale.dev/min-replicas": "1"},
			warnings: []string{"spec.bogus: unknown HorizontalPodAutoscaler field", "spec.minreplicas: unknown HorizontalPodAutoscaler field"},
			notes:    []string{"spec.metrics is empty"},
		},
		{
			name:     "not a Deployment",
			input:    []byte("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: db}\n  maxReplicas: 3\n"),
			warnings: []string{"kind StatefulSet: Spinscale scales Deployments only"},
			notes:    []string{"spec.metrics is empty"},
		},
		{
			name:  "autoscaling/v1",
			input: []byte("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: app}\n  minReplicas: 2\n  maxReplicas: 4\n  targetCPUUtilizationPercentage: 65\n"),
			want:  map[string]string{"spinscale.dev/min-replicas": "2", "spinscale.dev/max-replicas": "4", "spinscale.dev/target-cpu-utilization": "65"},
		},
		{
			name:  "autoscaling/v2beta2 reads as v2",
			input: []byte("apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {kind: Deployment, name: app}\n  maxReplicas: 4\n  metrics: [{type: Resource, resource: {name: memory, target: {type: Utilization, averageUtilization: 75}}}]\n"),
			want:  map[string]string{"spinscale.dev/target-memory-utilization": "75"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convertOne(t, tc.input)
			for k, v := range tc.want {
				assert.Equal(t, v, r.Annotations[k], k)
			}
			for _, k := range tc.absent {
				assert.NotContains(t, r.Annotations, k)
			}
			assertMessages(t, tc.warnings, r.Warnings)
			assertMessages(t, tc.notes, r.Notes)
			if tc.invalid {
				assert.Error(t, r.Invalid)
				return
			}
			require.NoError(t, r.Invalid)
			parse(t, r.Annotations)
		})
	}
}

func assertMessages(t *testing.T, want, got []string) {
	t.Helper()
	require.Len(t, got, len(want), "got %q", got)
	for i := range want {
		assert.Contains(t, got[i], want[i])
	}
}

// Prometheus triggers become queries; every field that KEDA has and
// Spinscale does not is named.
func TestScaledObjectWithPrometheusTriggers(t *testing.T) {
	r := convertOne(t, readFile(t, "testdata/keda-prometheus.yaml"))
	assert.Equal(t, "ScaledObject web/shop", r.Source)
	app := parse(t, r.Annotations)

	assert.Equal(t, map[string]string{
		"spinscale.dev/enabled":                     "true",
		"spinscale.dev/min-replicas":                "0",
		"spinscale.dev/max-replicas":                "30",
		"spinscale.dev/scale-to-zero-after":         "2m0s",
		"spinscale.dev/activation-threshold":        "0",
		"spinscale.dev/target-memory-average-value": "256Mi",
		"spinscale.dev/behavior":                    "scaleDown:\n  stabilizationWindowSeconds: 60",
		"spinscale.dev/fallback-replicas":           "6",
		"spinscale.dev/fallback-after":              "45s",
		"spinscale.dev/metrics": `- name: rps
  query: sum(rate(traefik_service_requests_total{service="web-shop-80@kubernetes"}[1m]))
  targetAverageValue: "400"
- name: prometheus-2
  query: max(queue_depth)
  targetValue: 1k`,
	}, r.Annotations)
	assert.Equal(t, int32(6), app.Spec.FallbackReplicas)
	assert.Equal(t, 45*time.Second, app.Spec.FallbackAfter)
	require.Len(t, app.Spec.Metrics, 3, "memory, rps, prometheus-2")

	assertMessages(t, []string{
		"spec.triggers[3].foo: unknown ScaledObject field",
		"spec.pollingInterval: 15s",
		`spec.triggers[2]: trigger type "kafka" has no Spinscale equivalent`,
		"the prometheus triggers have different activationThresholds: Spinscale has one for every Prometheus metric, the lowest (0) kept",
		"spec.fallback: KEDA goes to 6 replicas in either direction",
	}, r.Warnings)
	assert.Equal(t, int32(0), app.Spec.MinReplicas, "KEDA's default minimum, 0, is kept: the app has Prometheus metrics to wake it")
	assert.Equal(t, 2*time.Minute, app.Spec.ScaleToZeroAfter)
	assertMessages(t, []string{
		"spec.triggers[0]: an empty query result is 0 for KEDA",
		"set prometheus.address: http://prometheus.monitoring:9090",
		"failureThreshold 3 × pollingInterval 15s is fallback-after 45s",
	}, r.Notes)
}

func TestScaledObjectVariants(t *testing.T) {
	so := func(spec string) []byte {
		return []byte("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: a}\nspec:\n  scaleTargetRef: {name: app}\n  minReplicaCount: 2\n" + spec)
	}
	for _, tc := range []struct {
		name     string
		input    []byte
		want     map[string]string
		absent   []string
		warnings []string
		notes    []string
	}{
		{
			name:  "one prometheus trigger, Value: prometheus-query and prometheus-target-value",
			input: so("  maxReplicaCount: 8\n  triggers:\n    - type: prometheus\n      metricType: Value\n      metadata: {serverAddress: 'http://p:9090', query: 'sum(x) or vector(0)', threshold: '0.5', ignoreNullValues: 'false'}\n"),
			want: map[string]string{"spinscale.dev/prometheus-query": "sum(x) or vector(0)", "spinscale.dev/prometheus-target-value": "0.5",
				"spinscale.dev/min-replicas": "2", "spinscale.dev/max-replicas": "8"},
			notes: []string{"set prometheus.address: http://p:9090"},
		},
		{
			name:  "default max 100, KEDA < 2.10 metadata.type",
			input: so("  triggers:\n    - type: cpu\n      metadata: {type: AverageValue, value: 300m}\n"),
			want:  map[string]string{"spinscale.dev/max-replicas": "100", "spinscale.dev/target-cpu-average-value": "300m"},
			notes: []string{"spec.maxReplicaCount is unset: its default, 100"},
		},
		{
			name:     "fallback above max",
			input:    so("  maxReplicaCount: 4\n  fallback: {failureThreshold: 2, replicas: 9, behavior: currentReplicasIfHigher}\n  triggers: [{type: memory, metricType: Utilization, metadata: {value: '70'}}]\n"),
			absent:   []string{"spinscale.dev/fallback-replicas"},
			warnings: []string{"spec.fallback.replicas: 9 is outside"},
		},
		{
			name:  "fallback currentReplicasIfHigher is Spinscale's",
			input: so("  maxReplicaCount: 10\n  fallback: {failureThreshold: 4, replicas: 5, behavior: currentReplicasIfHigher}\n  triggers: [{type: memory, metricType: Utilization, metadata: {value: '70'}}]\n"),
			want:  map[string]string{"spinscale.dev/fallback-replicas": "5", "spinscale.dev/fallback-after": "2m"},
			notes: []string{"failureThreshold 4 × pollingInterval 30s is fallback-after 2m"},
		},
		{
			name:     "scaling modifiers and auth",
			input:    so("  maxReplicaCount: 10\n  advanced:\n    scalingModifiers: {formula: 'a + b', target: '2'}\n    restoreToOriginalReplicaCount: true\n  triggers:\n    - type: cpu\n      metricType: Utilization\n      authenticationRef: {name: x}\n      metadata: {value: '50', containerName: app}\n"),
			want:     map[string]string{"spinscale.dev/target-cpu-utilization": "50"},
			warnings: []string{"restoreToOriginalReplicaCount", "scalingModifiers", "spec.triggers[0].authenticationRef", `spec.triggers[0].metadata.containerName: "app"`},
		},
		{
			name:  "several named triggers keep valid names",
			input: so("  maxReplicaCount: 10\n  triggers:\n    - {type: prometheus, name: RPS, metadata: {query: a, threshold: '1'}}\n    - {type: prometheus, name: cpu, metadata: {query: b, threshold: '2'}}\n"),
			want:  map[string]string{"spinscale.dev/metrics": "- name: rps\n  query: a\n  targetAverageValue: \"1\"\n- name: prometheus-2\n  query: b\n  targetAverageValue: \"2\""},
			notes: []string{"spec.triggers[0]: an empty query result", "spec.triggers[1]: an empty query result"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convertOne(t, tc.input)
			for k, v := range tc.want {
				assert.Equal(t, v, r.Annotations[k], k)
			}
			for _, k := range tc.absent {
				assert.NotContains(t, r.Annotations, k)
			}
			assertMessages(t, tc.warnings, r.Warnings)
			assertMessages(t, tc.notes, r.Notes)
			require.NoError(t, r.Invalid)
			parse(t, r.Annotations)
		})
	}
}

func TestScaffold(t *testing.T) {
	for _, autoscaler := range []string{"hpa", "keda"} {
		t.Run(autoscaler+" defaults", func(t *testing.T) {
			o := DefaultScaffoldOptions()
			o.Autoscaler, o.Name = autoscaler, NameFromImage("ghcr.io/foo/example-app:v0.1.0")
			o.CPULimit, o.MemoryLimit = "100m", "128Mi"
			r, err := Scaffold(o)
			require.NoError(t, err)
			assert.Equal(t, "example-app", r.Name)
			assert.Equal(t, scaffoldDefaults(t), r.Annotations, "min 2, max 3, cpu 60%, memory 60%")
			assert.Empty(t, r.Warnings)
			assert.Len(t, r.Notes, 2, "requests default to the limits")
			assert.Equal(t, map[string]any{"resources": map[string]map[string]string{"limits": {"cpu": "100m", "memory": "128Mi"}}}, r.SpinAppSpec)
			parse(t, r.Annotations)
		})
	}

	t.Run("flags", func(t *testing.T) {
		r, err := Scaffold(ScaffoldOptions{Autoscaler: "hpa", Name: "web", Replicas: 1, MaxReplicas: 10,
			TargetCPUUtilization: 50, TargetMemoryUtilization: 80, CPURequest: "100m", MemoryRequest: "64Mi"})
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "1", "spinscale.dev/max-replicas": "10",
			"spinscale.dev/target-cpu-utilization": "50", "spinscale.dev/target-memory-utilization": "80",
		}, r.Annotations)
		assert.Empty(t, r.Notes)
		assert.Empty(t, r.Warnings)
	})

	t.Run("no resources", func(t *testing.T) {
		o := DefaultScaffoldOptions()
		o.Autoscaler = "hpa"
		r, err := Scaffold(o)
		require.NoError(t, err)
		assertMessages(t, []string{"no --cpu-limit or --cpu-request", "no --memory-limit or --memory-request"}, r.Warnings)
		assert.Nil(t, r.SpinAppSpec)
	})

	t.Run("refused like scaffold", func(t *testing.T) {
		_, err := Scaffold(ScaffoldOptions{Autoscaler: "vpa", Replicas: 3, MaxReplicas: 2, TargetCPUUtilization: 0, TargetMemoryUtilization: 101, CPULimit: "lots"})
		require.Error(t, err)
		for _, part := range []string{`--autoscaler: "vpa"`, "--max-replicas: 2: must be at least --replicas (3)",
			"--autoscaler-target-cpu-utilization: 0", "--autoscaler-target-memory-utilization: 101", `--cpu-limit: "lots"`} {
			assert.Contains(t, err.Error(), part)
		}
	})
}

func TestNameFromImage(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/foo/example-app:v0.1.0":  "example-app",
		"bacongobbler/hello-rust:latest":  "hello-rust",
		"ttl.sh/simple-app-2353:12h":      "simple-app-2353",
		"registry:5000/team/app@sha256:0": "app",
		"app":                             "app",
	} {
		assert.Equal(t, want, NameFromImage(in), in)
	}
}

func TestConvertInput(t *testing.T) {
	t.Run("several documents and a List, other kinds skipped", func(t *testing.T) {
		input := string(readFile(t, "testdata/spinkube-hpa.yaml")) + "\n---\n" + string(readFile(t, "testdata/spinkube-scaledobject.yaml")) +
			"\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: autoscaling/v1\n  kind: HorizontalPodAutoscaler\n  metadata: {name: c}\n  spec: {scaleTargetRef: {kind: Deployment, name: c}, maxReplicas: 2}\n"
		results, err := Convert([]byte(input))
		require.NoError(t, err)
		require.Len(t, results, 3)
		assert.Equal(t, []string{"hpa-spinapp", "keda-spinapp", "c"}, []string{results[0].Name, results[1].Name, results[2].Name})
	})
	t.Run("JSON", func(t *testing.T) {
		r := convertOne(t, []byte(`{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"x"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"x"},"maxReplicas":3,"targetCPUUtilizationPercentage":40}}`))
		assert.Equal(t, "40", r.Annotations["spinscale.dev/target-cpu-utilization"])
	})
	for name, input := range map[string]string{
		"not YAML":      "spec: [",
		"no autoscaler": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
		"empty":         "",
		"v2beta1":       "apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {maxReplicas: 2}\n",
		"wrong types":   "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {maxReplicas: many}\n",
	} {
		t.Run("error: "+name, func(t *testing.T) {
			_, err := Convert([]byte(input))
			assert.Error(t, err)
		})
	}
	_, err := Convert([]byte("apiVersion: v1\nkind: ConfigMap\n"))
	assert.ErrorIs(t, err, ErrNoAutoscaler)
}

func TestWrite(t *testing.T) {
	results, err := Convert(readFile(t, "testdata/hpa-behavior.yaml"))
	require.NoError(t, err)

	var out bytes.Buffer
	require.NoError(t, Write(&out, results, PatchBoth, "yaml"))
	docs := strings.Split(out.String(), "\n---\n")
	require.Len(t, docs, 2)
	assert.Contains(t, docs[0], "kubectl patch spinapp shop -n web --type merge --patch-file FILE")
	assert.Contains(t, docs[0], "kubectl delete hpa shop -n web")
	assert.Contains(t, docs[1], "kubectl patch deployment shop -n web --type merge --patch-file FILE")

	var spinApp struct {
		Spec struct {
			EnableAutoscaling     bool              `json:"enableAutoscaling"`
			DeploymentAnnotations map[string]string `json:"deploymentAnnotations"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(docs[0]), &spinApp))
	assert.True(t, spinApp.Spec.EnableAutoscaling)
	assert.Equal(t, results[0].Annotations, spinApp.Spec.DeploymentAnnotations)
	parse(t, spinApp.Spec.DeploymentAnnotations)

	var dep struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	require.NoError(t, yaml.UnmarshalStrict([]byte(docs[1]), &dep))
	assert.Equal(t, results[0].Annotations, dep.Metadata.Annotations)

	out.Reset()
	require.NoError(t, Write(&out, results, PatchDeployment, "json"))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1)
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &dep))
	assert.Equal(t, results[0].Annotations, dep.Metadata.Annotations)

	assert.Error(t, Write(&out, results, "hpa", "yaml"))
	assert.Error(t, Write(&out, results, PatchBoth, "toml"))
}

// The engine reads a converted behavior exactly like the HPA's: the decision
// path for an HPA and its conversion is the same.
func TestConvertedBehaviorValidatesLikeTheAPIServer(t *testing.T) {
	b := &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
		Policies:  []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 30}},
		Tolerance: ptr.To(resource.MustParse("0.05")),
	}}
	r := FromHPA(&autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "x"},
		MaxReplicas:    4,
		Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}},
		Behavior: b,
	}})
	app := parse(t, r.Annotations)
	require.Empty(t, recommender.ValidateBehavior(app.Spec.Behavior))
	assert.InDelta(t, 0.05, app.Spec.Tolerance.Down, 1e-9, "the behavior's scaleDown tolerance")
}

// KEDA's scale to zero converts when a prometheus trigger can wake the app:
// minReplicaCount 0, activationThreshold and cooldownPeriod map one to one.
// Without one, the minimum becomes 1 with a warning.
func TestScaledObjectScaleToZero(t *testing.T) {
	withQueue := []byte(`apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker}
spec:
  scaleTargetRef: {name: worker}
  minReplicaCount: 0
  maxReplicaCount: 10
  cooldownPeriod: 60
  triggers:
    - type: prometheus
      metadata: {serverAddress: "http://p:9090", query: "sum(queue_length)", threshold: "10", activationThreshold: "2", ignoreNullValues: "false"}
`)
	r := convertOne(t, withQueue)
	app := parse(t, r.Annotations)
	assert.Equal(t, "0", r.Annotations["spinscale.dev/min-replicas"])
	assert.Equal(t, "2", r.Annotations["spinscale.dev/activation-threshold"])
	assert.Equal(t, "1m0s", r.Annotations["spinscale.dev/scale-to-zero-after"])
	assert.Empty(t, r.Warnings)
	require.NotNil(t, app.Spec.ActivationMilli)
	assert.Equal(t, int64(2000), *app.Spec.ActivationMilli)

	cpuOnly := []byte(`apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 0
  maxReplicaCount: 10
  cooldownPeriod: 60
  triggers:
    - {type: cpu, metricType: Utilization, metadata: {value: "50"}}
`)
	r = convertOne(t, cpuOnly)
	parse(t, r.Annotations)
	assert.Equal(t, "1", r.Annotations["spinscale.dev/min-replicas"])
	assertMessages(t, []string{
		"spec.minReplicaCount: 0 (scale to zero) needs a Prometheus metric in Spinscale, and none was converted: min-replicas 1",
		"spec.cooldownPeriod: 60s applies to scaling to zero, which the converted app does not do",
	}, r.Warnings)
}

// KEDA's queryParameters become the metric's queryParameters map.
func TestScaledObjectQueryParameters(t *testing.T) {
	r := convertOne(t, []byte(`apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: a}
spec:
  scaleTargetRef: {name: app}
  minReplicaCount: 1
  triggers:
    - type: prometheus
      name: rps
      metadata: {serverAddress: "http://thanos:9090", query: "sum(rate(x[1m]))", threshold: "100", queryParameters: "dedup=true,partial_response=false", ignoreNullValues: "false"}
`))
	app := parse(t, r.Annotations)
	require.Len(t, app.Spec.Metrics, 1)
	assert.Equal(t, "dedup=true&partial_response=false", app.Spec.Metrics[0].Params)
	assert.Empty(t, r.Warnings)
}
