package annotations

import (
	"errors"
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

	"github.com/spinscale/spinscale/internal/recommender"
)

// defaults are the shipped configuration's values.
var defaults = Defaults{
	Profile:                 "hpa",
	Tolerance:               0.1,
	DownscaleStabilization:  5 * time.Minute,
	CPUInitializationPeriod: 5 * time.Minute,
	InitialReadinessDelay:   30 * time.Second,
	MaxSampleAge:            2 * time.Minute,
	ScaleUpLimitFactor:      2,
	ScaleUpLimitMinimum:     4,
}

// baseSpec is the spec every app starts from with these defaults.
func baseSpec() recommender.Spec {
	return recommender.Spec{
		Profile:                 recommender.ProfileHPA,
		MinReplicas:             1,
		Tolerance:               recommender.Tolerances{Up: 0.1, Down: 0.1},
		DownscaleStabilization:  5 * time.Minute,
		ScaleUpLimitFactor:      2,
		ScaleUpLimitMinimum:     4,
		CPUInitializationPeriod: 5 * time.Minute,
		InitialReadinessDelay:   30 * time.Second,
		MaxSampleAge:            2 * time.Minute,
	}
}

// ann builds annotations from short keys (without the prefix).
func ann(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[Prefix+kv[i]] = kv[i+1]
	}
	return out
}

// valid is a minimal valid set, with extra short key/value pairs merged in.
func valid(kv ...string) map[string]string {
	out := ann("enabled", "true", "max-replicas", "10", "target-cpu-utilization", "50")
	for k, v := range ann(kv...) {
		out[k] = v
	}
	return out
}

func cpuUtilization(n int32) recommender.MetricSpec {
	return recommender.MetricSpec{Name: "cpu", Source: recommender.SourceResource, Resource: corev1.ResourceCPU,
		Target: recommender.TargetUtilization, TargetUtilization: n}
}

func memoryUtilization(n int32) recommender.MetricSpec {
	return recommender.MetricSpec{Name: "memory", Source: recommender.SourceResource, Resource: corev1.ResourceMemory,
		Target: recommender.TargetUtilization, TargetUtilization: n}
}

func TestParseFullSpec(t *testing.T) {
	tests := []struct {
		name   string
		ann    map[string]string
		dryRun bool
		want   func() recommender.Spec
	}{
		{
			name: "utilization, average value and every other key",
			ann: ann(
				"enabled", "true",
				"min-replicas", "2",
				"max-replicas", "20",
				"target-cpu-utilization", "60",
				"target-memory-average-value", "128Mi",
				"prometheus-query", "  sum(rate(http_requests_total{app=\"web\"}[1m]))  ",
				"prometheus-target-average-value", "400",
				"metrics", `
- name: queue-depth
  query: sum(queue_depth)
  targetValue: 100
- name: latency-p99
  query: histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m])))
  targetAverageValue: "0.5"
`,
				"tolerance", "0.2",
				"tolerance-up", "0.05",
				"tolerance-down", "0",
				"scale-up-stabilization", "30s",
				"scale-down-stabilization", "10m",
				"behavior", `
scaleUp:
  selectPolicy: Max
  policies:
  - {type: Pods, value: 2, periodSeconds: 60}
scaleDown:
  policies:
  - {type: Percent, value: 10, periodSeconds: 60}
`,
				"profile", "hpa",
				"dry-run", "true",
				"paused", "true",
				"fallback-replicas", "5",
				"fallback-after", "3m",
			),
			dryRun: true,
			want: func() recommender.Spec {
				s := baseSpec()
				s.MinReplicas, s.MaxReplicas = 2, 20
				s.Metrics = []recommender.MetricSpec{
					cpuUtilization(60),
					{Name: "memory", Source: recommender.SourceResource, Resource: corev1.ResourceMemory,
						Target: recommender.TargetAverageValue, TargetMilli: 128 * 1024 * 1024 * 1000},
					{Name: "http_requests_total", Source: recommender.SourcePrometheus, Query: `sum(rate(http_requests_total{app="web"}[1m]))`, Annotation: KeyPrometheusQuery,
						Target: recommender.TargetAverageValue, TargetMilli: 400000},
					{Name: "queue-depth", Source: recommender.SourcePrometheus, Query: "sum(queue_depth)", Annotation: KeyMetrics + "[queue-depth]",
						Target: recommender.TargetValue, TargetMilli: 100000},
					{Name: "latency-p99", Source: recommender.SourcePrometheus, Query: "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m])))", Annotation: KeyMetrics + "[latency-p99]",
						Target: recommender.TargetAverageValue, TargetMilli: 500},
				}
				s.Tolerance = recommender.Tolerances{Up: 0.05, Down: 0}
				s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To[int32](30),
						SelectPolicy:               ptr.To(autoscalingv2.MaxChangePolicySelect),
						Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 2, PeriodSeconds: 60}},
					},
					ScaleDown: &autoscalingv2.HPAScalingRules{
						StabilizationWindowSeconds: ptr.To[int32](600),
						Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 10, PeriodSeconds: 60}},
					},
				}
				s.Paused = true
				s.FallbackReplicas, s.FallbackAfter = 5, 3*time.Minute
				return s
			},
		},
		{
			name: "the other target kinds",
			ann: ann(
				"enabled", "true",
				"max-replicas", "100000",
				"target-cpu-average-value", "250m",
				"target-memory-utilization", "150",
				"prometheus-query", "sum(rps)",
				"prometheus-target-value", "1k",
				"dry-run", "false",
				"paused", "false",
				"fallback-replicas", "1",
			),
			want: func() recommender.Spec {
				s := baseSpec()
				s.MaxReplicas = 100000
				s.Metrics = []recommender.MetricSpec{
					{Name: "cpu", Source: recommender.SourceResource, Resource: corev1.ResourceCPU,
						Target: recommender.TargetAverageValue, TargetMilli: 250},
					memoryUtilization(150),
					{Name: "rps", Source: recommender.SourcePrometheus, Query: "sum(rps)", Annotation: KeyPrometheusQuery,
						Target: recommender.TargetValue, TargetMilli: 1000000},
				}
				s.FallbackReplicas, s.FallbackAfter = 1, time.Minute
				return s
			},
		},
		{
			name: "behavior tolerances",
			ann:  valid("behavior", `{scaleUp: {tolerance: 0.05}, scaleDown: {tolerance: "0.2"}}`),
			want: func() recommender.Spec {
				s := baseSpec()
				s.MaxReplicas = 10
				s.Metrics = []recommender.MetricSpec{cpuUtilization(50)}
				s.Tolerance = recommender.Tolerances{Up: 0.05, Down: 0.2}
				s.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
					ScaleUp:   &autoscalingv2.HPAScalingRules{Tolerance: ptr.To(mustQuantity(t, "0.05"))},
					ScaleDown: &autoscalingv2.HPAScalingRules{Tolerance: ptr.To(mustQuantity(t, "0.2"))},
				}
				return s
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(tt.ann, defaults)
			require.NoError(t, err)
			assert.True(t, app.Enabled)
			assert.Equal(t, tt.dryRun, app.DryRun)
			assert.Empty(t, app.Warnings)
			want := tt.want()
			// Quantities compare by value, not by their cached string.
			if want.Behavior != nil {
				require.NotNil(t, app.Spec.Behavior)
				for _, pair := range [][2]*autoscalingv2.HPAScalingRules{
					{want.Behavior.ScaleUp, app.Spec.Behavior.ScaleUp},
					{want.Behavior.ScaleDown, app.Spec.Behavior.ScaleDown},
				} {
					if pair[0] != nil && pair[0].Tolerance != nil {
						require.NotNil(t, pair[1])
						require.NotNil(t, pair[1].Tolerance)
						assert.Zero(t, pair[0].Tolerance.Cmp(*pair[1].Tolerance))
						pair[0].Tolerance, pair[1].Tolerance = nil, nil
					}
				}
			}
			assert.Equal(t, want, app.Spec)
		})
	}
}

func TestParseScaffoldEquivalent(t *testing.T) {
	// What `spin kube scaffold --autoscaler hpa` expresses as an HPA.
	app, err := Parse(ann(
		"enabled", "true",
		"min-replicas", "2",
		"max-replicas", "3",
		"target-cpu-utilization", "60",
		"target-memory-utilization", "60",
	), defaults)
	require.NoError(t, err)
	want := baseSpec()
	want.MinReplicas, want.MaxReplicas = 2, 3
	want.Metrics = []recommender.MetricSpec{cpuUtilization(60), memoryUtilization(60)}
	assert.Equal(t, want, app.Spec)
	assert.Nil(t, app.Spec.Behavior, "an HPA without behavior takes the plain path")
}

func TestParseNotEnabled(t *testing.T) {
	tests := []struct {
		name        string
		ann         map[string]string
		wantWarning string
	}{
		{name: "no annotations", ann: nil},
		{name: "only other keys", ann: ann("max-replicas", "nonsense")},
		{name: "disabled", ann: ann("enabled", "false", "max-replicas", "0")},
		{name: "disabled with spaces", ann: ann("enabled", " false ")},
		{name: "not a boolean", ann: ann("enabled", "yes"), wantWarning: `spinscale.dev/enabled: "yes": must be true or false`},
		{name: "wrong case", ann: ann("enabled", "True"), wantWarning: `spinscale.dev/enabled: "True"`},
		{name: "without prefix", ann: map[string]string{"enabled": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.False(t, Enabled(tt.ann))
			app, err := Parse(tt.ann, defaults)
			require.NoError(t, err)
			assert.False(t, app.Enabled)
			assert.Equal(t, recommender.Spec{}, app.Spec)
			if tt.wantWarning == "" {
				assert.Empty(t, app.Warnings)
			} else {
				require.Len(t, app.Warnings, 1)
				assert.Contains(t, app.Warnings[0], tt.wantWarning)
			}
		})
	}
}

func TestParseTrimsValues(t *testing.T) {
	app, err := Parse(ann(
		"enabled", " true\n",
		"min-replicas", " 2 ",
		"max-replicas", "\t4",
		"target-cpu-utilization", "70 ",
		"tolerance", " 0.3 ",
		"paused", " true",
	), defaults)
	require.NoError(t, err)
	assert.True(t, app.Enabled)
	assert.Equal(t, int32(2), app.Spec.MinReplicas)
	assert.Equal(t, int32(4), app.Spec.MaxReplicas)
	assert.Equal(t, []recommender.MetricSpec{cpuUtilization(70)}, app.Spec.Metrics)
	assert.Equal(t, recommender.Tolerances{Up: 0.3, Down: 0.3}, app.Spec.Tolerance)
	assert.True(t, app.Spec.Paused)
}

func TestParseDefaults(t *testing.T) {
	d := defaults
	d.Tolerance = 0.25
	d.Profile = "spinscale"
	app, err := Parse(valid(), d)
	require.NoError(t, err)
	assert.Equal(t, recommender.Tolerances{Up: 0.25, Down: 0.25}, app.Spec.Tolerance)
	assert.Equal(t, recommender.Profile("spinscale"), app.Spec.Profile, "the configured profile is used as is")
	assert.Equal(t, int32(1), app.Spec.MinReplicas)
	assert.Zero(t, app.Spec.FallbackReplicas)
	assert.Zero(t, app.Spec.FallbackAfter)
	assert.False(t, app.DryRun)
	assert.False(t, app.Spec.Paused)
}

func TestParseTuning(t *testing.T) {
	d := defaults
	d.Profile = "spinscale"
	app, err := Parse(valid(), d)
	require.NoError(t, err)
	assert.Equal(t, recommender.DefaultTuning, app.Spec.Tuning, "the spinscale profile starts from its defaults")

	app, err = Parse(valid("burst-threshold", "2.5", "lookahead", "0s", "drop-window", "2m", "drop-threshold", "0.45"), d)
	require.NoError(t, err)
	assert.Equal(t, recommender.Tuning{BurstThreshold: 2.5, DropWindow: 2 * time.Minute, DropThreshold: 0.45}, app.Spec.Tuning)

	app, err = Parse(valid("profile", "spinscale", "burst-threshold", "0"), defaults)
	require.NoError(t, err, "the annotation selects the profile the keys belong to")
	assert.Equal(t, recommender.ProfileSpinscale, app.Spec.Profile)
	assert.Zero(t, app.Spec.Tuning.BurstThreshold, "0 turns bursts off")

	app, err = Parse(valid("profile", "hpa"), d)
	require.NoError(t, err)
	assert.Equal(t, recommender.Tuning{}, app.Spec.Tuning, "the hpa profile has no tuning")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		// want are substrings of the one error expected: key, quoted value
		// and what is allowed.
		want []string
	}{
		{"max-replicas missing", ann("enabled", "true", "target-cpu-utilization", "50"),
			[]string{"spinscale.dev/max-replicas: required", ">= min-replicas (1) and <= 100000"}},
		{"max-replicas zero", valid("max-replicas", "0"),
			[]string{`spinscale.dev/max-replicas: "0": must be an integer >= min-replicas (1) and <= 100000`}},
		{"max-replicas below min", valid("min-replicas", "5", "max-replicas", "4"),
			[]string{`spinscale.dev/max-replicas: "4": must be an integer >= min-replicas (5)`}},
		{"max-replicas too large", valid("max-replicas", "100001"), []string{`spinscale.dev/max-replicas: "100001"`, "100000"}},
		{"max-replicas huge", valid("max-replicas", "99999999999999999999999"), []string{`spinscale.dev/max-replicas: "99999999999999999999999"`}},
		{"max-replicas not a number", valid("max-replicas", "ten"), []string{`spinscale.dev/max-replicas: "ten"`}},
		{"max-replicas empty", valid("max-replicas", ""), []string{`spinscale.dev/max-replicas: "": must be`}},
		{"min-replicas zero without a Prometheus metric", valid("min-replicas", "0"), []string{`spinscale.dev/min-replicas: "0": 0 needs a Prometheus metric`}},
		{"min-replicas negative", valid("min-replicas", "-1"), []string{`spinscale.dev/min-replicas: "-1": must be an integer from 0 to 100000 (0 only with a Prometheus or an HTTP metric)`}},
		{"activation-threshold without min-replicas 0", valid("activation-threshold", "5"), []string{`spinscale.dev/activation-threshold: "5": requires spinscale.dev/min-replicas: "0"`}},
		{"activation-threshold negative", valid("activation-threshold", "-5"), []string{`spinscale.dev/activation-threshold: "-5": must be a quantity >= 0`}},
		{"scale-to-zero-after without min-replicas 0", valid("scale-to-zero-after", "5m"), []string{`spinscale.dev/scale-to-zero-after: "5m": requires spinscale.dev/min-replicas: "0"`}},
		{"fallback-behavior unknown", valid("fallback-behavior", "always"), []string{`spinscale.dev/fallback-behavior: "always": must be one of static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower`}},
		{"metric fallbackReplicas zero", valid("metrics", "- {name: q, query: x, targetValue: 1, fallbackReplicas: 0}"),
			[]string{`spinscale.dev/metrics: [0].fallbackReplicas: "0": must be an integer from 1 to 100000`}},
		{"metric fallbackAfter without fallbackReplicas", valid("metrics", "- {name: q, query: x, targetValue: 1, fallbackAfter: 1m}"),
			[]string{`spinscale.dev/metrics: [0].fallbackAfter: "1m": requires fallbackReplicas`}},
		{"metric fallbackAfter not a duration", valid("metrics", "- {name: q, query: x, targetValue: 1, fallbackReplicas: 2, fallbackAfter: 60}"),
			[]string{`spinscale.dev/metrics: [0].fallbackAfter: "60": must be a Go duration > 0s and <= 24h`}},
		{"metric server not configured", valid("metrics", "- {name: q, query: x, targetValue: 1, server: thanos}"),
			[]string{`spinscale.dev/metrics: [0].server: "thanos": must name a server of the controller's prometheus.servers (none is configured)`}},
		{"metric queryParameters not a map", valid("metrics", "- {name: q, query: x, targetValue: 1, queryParameters: [a]}"),
			[]string{`spinscale.dev/metrics: [0].queryParameters: "[\"a\"]": must be a non-empty map of strings`}},
		{"metric queryParameters overriding time", valid("metrics", "- {name: q, query: x, targetValue: 1, queryParameters: {time: \"1\"}}"),
			[]string{`spinscale.dev/metrics: [0].queryParameters.time: "1": is a parameter Spinscale sets itself`}},
		{"metric ignoreNullValues not a boolean", valid("metrics", "- {name: q, query: x, targetValue: 1, ignoreNullValues: maybe}"),
			[]string{`spinscale.dev/metrics: [0].ignoreNullValues: "\"maybe\"": must be true or false`}},
		{"interval below 1s", valid("interval", "500ms"), []string{`spinscale.dev/interval: "500ms": must be a Go duration from 1s to 10m`}},
		{"interval above 10m", valid("interval", "11m"), []string{`spinscale.dev/interval: "11m": must be a Go duration from 1s to 10m`}},
		{"interval not a duration", valid("interval", "5"), []string{`spinscale.dev/interval: "5": must be a Go duration`}},
		{"scale-to-zero-after zero", valid("scale-to-zero-after", "0s"), []string{`spinscale.dev/scale-to-zero-after: "0s": must be a Go duration > 0s and <= 24h`}},
		{"min-replicas decimal", valid("min-replicas", "1.5"), []string{`spinscale.dev/min-replicas: "1.5"`}},
		{"cpu utilization zero", valid("target-cpu-utilization", "0"),
			[]string{`spinscale.dev/target-cpu-utilization: "0": must be a whole percent of the cpu request from 1 to 100000`}},
		{"cpu utilization percent sign", valid("target-cpu-utilization", "50%"), []string{`spinscale.dev/target-cpu-utilization: "50%"`}},
		{"memory utilization negative", valid("target-memory-utilization", "-5"), []string{`spinscale.dev/target-memory-utilization: "-5"`, "memory request"}},
		{"cpu average value zero", valid("target-cpu-utilization", "", "target-cpu-average-value", "0"),
			[]string{`spinscale.dev/target-cpu-average-value: "0": must be a quantity > 0 and <= 1T`}},
		{"memory average value garbage", valid("target-memory-average-value", "lots"), []string{`spinscale.dev/target-memory-average-value: "lots"`, "128Mi"}},
		{"memory average value too large", valid("target-memory-average-value", "2Pi"), []string{`spinscale.dev/target-memory-average-value: "2Pi"`, "<= 1T"}},
		{"cpu utilization and average value", valid("target-cpu-average-value", "200m"),
			[]string{`spinscale.dev/target-cpu-average-value: "200m": contradicts spinscale.dev/target-cpu-utilization`}},
		{"memory utilization and average value", valid("target-memory-utilization", "60", "target-memory-average-value", "1Gi"),
			[]string{"spinscale.dev/target-memory-average-value", "contradicts spinscale.dev/target-memory-utilization"}},
		{"prometheus query without target", valid("prometheus-query", "sum(x)"),
			[]string{`spinscale.dev/prometheus-query: "sum(x)": requires a target`, "prometheus-target-average-value", "prometheus-target-value"}},
		{"prometheus target without query", valid("prometheus-target-value", "10"),
			[]string{`spinscale.dev/prometheus-target-value: "10": requires spinscale.dev/prometheus-query`}},
		{"prometheus empty query", valid("prometheus-query", "  ", "prometheus-target-value", "10"),
			[]string{`spinscale.dev/prometheus-query: "  ": must be a non-empty PromQL query`}},
		{"prometheus negative target", valid("prometheus-query", "q", "prometheus-target-average-value", "-1"),
			[]string{`spinscale.dev/prometheus-target-average-value: "-1": must be a quantity > 0`}},
		{"tolerance above 1", valid("tolerance", "1.5"), []string{`spinscale.dev/tolerance: "1.5": must be a decimal from 0 to 1`}},
		{"tolerance-up negative", valid("tolerance-up", "-0.1"), []string{`spinscale.dev/tolerance-up: "-0.1": must be a decimal of 0 or more`}},
		{"tolerance-up infinite", valid("tolerance-up", "+Inf"), []string{`spinscale.dev/tolerance-up: "+Inf": must be a decimal of 0 or more`}},
		{"tolerance-down above 1", valid("tolerance-down", "1.5"), []string{`spinscale.dev/tolerance-down: "1.5": must be a decimal from 0 to 1`}},
		{"tolerance-down NaN", valid("tolerance-down", "NaN"), []string{`spinscale.dev/tolerance-down: "NaN"`}},
		{"tolerance percent", valid("tolerance", "10%"), []string{`spinscale.dev/tolerance: "10%"`}},
		{"stabilization not a duration", valid("scale-down-stabilization", "300"),
			[]string{`spinscale.dev/scale-down-stabilization: "300": must be a Go duration in whole seconds from 0s to 1h`}},
		{"stabilization negative", valid("scale-up-stabilization", "-1s"), []string{`spinscale.dev/scale-up-stabilization: "-1s"`}},
		{"stabilization too long", valid("scale-down-stabilization", "61m"), []string{`spinscale.dev/scale-down-stabilization: "61m"`}},
		{"stabilization fractional", valid("scale-down-stabilization", "1500ms"), []string{`spinscale.dev/scale-down-stabilization: "1500ms"`, "whole seconds"}},
		{"stabilization contradicts behavior", valid("scale-down-stabilization", "1m", "behavior", "scaleDown: {stabilizationWindowSeconds: 60}"),
			[]string{`spinscale.dev/scale-down-stabilization: "1m": contradicts spinscale.dev/behavior scaleDown.stabilizationWindowSeconds (60)`}},
		{"behavior not YAML", valid("behavior", "scaleUp: ["), []string{`spinscale.dev/behavior: "scaleUp: ["`, "HorizontalPodAutoscalerBehavior"}},
		{"behavior unknown field", valid("behavior", "scaleUp: {stabilizationWindow: 60}"),
			[]string{`spinscale.dev/behavior: "scaleUp: {stabilizationWindow: 60}"`, `unknown field "stabilizationWindow"`}},
		{"behavior null", valid("behavior", "null"), []string{`spinscale.dev/behavior: "null"`, "use {} for the defaults"}},
		{"behavior a list", valid("behavior", "[1]"), []string{`spinscale.dev/behavior: "[1]"`}},
		{"behavior wrong type", valid("behavior", "scaleDown: {stabilizationWindowSeconds: 5m}"), []string{`spinscale.dev/behavior`, "stabilizationWindowSeconds"}},
		{"behavior window out of range", valid("behavior", "scaleDown: {stabilizationWindowSeconds: 3601}"),
			[]string{`spinscale.dev/behavior: scaleDown.stabilizationWindowSeconds: "3601": out of range: allowed 0 to 3600`}},
		{"behavior bad policy", valid("behavior", "scaleUp: {policies: [{type: Pod, value: 1, periodSeconds: 15}]}"),
			[]string{`spinscale.dev/behavior: scaleUp.policies[0].type: "Pod": not supported: allowed Pods, Percent`}},
		{"behavior tolerance and tolerance", valid("tolerance", "0.2", "behavior", "scaleDown: {tolerance: 0.05}"),
			[]string{`spinscale.dev/tolerance: "0.2": contradicts spinscale.dev/behavior scaleDown.tolerance (0.05)`}},
		{"behavior tolerance and tolerance-up", valid("tolerance-up", "0.2", "behavior", "scaleUp: {tolerance: 0.05}"),
			[]string{`spinscale.dev/tolerance-up: "0.2": contradicts spinscale.dev/behavior scaleUp.tolerance (0.05)`}},
		{"behavior scale-down tolerance above 1", valid("behavior", "scaleDown: {tolerance: 1.5}"),
			[]string{`spinscale.dev/behavior: scaleDown.tolerance: "1.5": out of range: allowed 0 to 1`}},
		{"behavior extreme exponent", valid("behavior", `scaleDown: {tolerance: "1e-2147483647"}`),
			[]string{"spinscale.dev/behavior", "exponent below 100"}},
		{"target extreme negative exponent", valid("prometheus-query", "q", "prometheus-target-value", "1e-2147483647"),
			[]string{`spinscale.dev/prometheus-target-value: "1e-2147483647": must be a quantity > 0`}},
		{"target extreme exponent", valid("target-cpu-utilization", "", "target-cpu-average-value", "1e2147483647"),
			[]string{`spinscale.dev/target-cpu-average-value: "1e2147483647"`}},
		{"target too many digits", valid("prometheus-query", "q", "prometheus-target-value", "0."+strings.Repeat("0", 40)+"1"),
			[]string{`spinscale.dev/prometheus-target-value: "0.000`}},
		{"profile unknown", valid("profile", "vpa"), []string{`spinscale.dev/profile: "vpa": must be one of: hpa, spinscale`}},
		{"burst-threshold on the hpa profile", valid("burst-threshold", "1.5"),
			[]string{`spinscale.dev/burst-threshold: "1.5": applies to the spinscale profile only; this app's profile is hpa`}},
		{"lookahead on the hpa profile", valid("profile", "hpa", "lookahead", "20s"), []string{`spinscale.dev/lookahead: "20s": applies to the spinscale profile only`}},
		{"burst-threshold at 1", valid("profile", "spinscale", "burst-threshold", "1"),
			[]string{`spinscale.dev/burst-threshold: "1": must be 0 (off) or a usage ratio above 1 and at most 100`}},
		{"burst-threshold NaN", valid("profile", "spinscale", "burst-threshold", "NaN"), []string{`spinscale.dev/burst-threshold: "NaN"`}},
		{"lookahead negative", valid("profile", "spinscale", "lookahead", "-5s"),
			[]string{`spinscale.dev/lookahead: "-5s": must be a Go duration from 0s (off) to 10m`}},
		{"lookahead too long", valid("profile", "spinscale", "lookahead", "11m"), []string{`spinscale.dev/lookahead: "11m"`}},
		{"drop-window fractional", valid("profile", "spinscale", "drop-window", "1.5s"),
			[]string{`spinscale.dev/drop-window: "1.5s": must be a Go duration in whole seconds from 0s to 1h`}},
		{"drop-threshold at 1", valid("profile", "spinscale", "drop-threshold", "1"),
			[]string{`spinscale.dev/drop-threshold: "1": must be a fraction above 0 and below 1`}},
		{"drop-threshold on the hpa profile", valid("drop-threshold", "0.5"), []string{`spinscale.dev/drop-threshold: "0.5": applies to the spinscale profile only`}},
		{"dry-run not a boolean", valid("dry-run", "yes"), []string{`spinscale.dev/dry-run: "yes": must be true or false`}},
		{"paused not a boolean", valid("paused", "1"), []string{`spinscale.dev/paused: "1": must be true or false`}},
		{"fallback-replicas above max", valid("fallback-replicas", "11"),
			[]string{`spinscale.dev/fallback-replicas: "11": must be an integer from min-replicas (1) to max-replicas (10)`}},
		{"fallback-replicas below min", valid("min-replicas", "3", "fallback-replicas", "2"), []string{`spinscale.dev/fallback-replicas: "2"`, "min-replicas (3)"}},
		{"fallback-replicas zero", valid("fallback-replicas", "0"), []string{`spinscale.dev/fallback-replicas: "0"`}},
		{"fallback-after without fallback-replicas", valid("fallback-after", "2m"),
			[]string{`spinscale.dev/fallback-after: "2m": requires spinscale.dev/fallback-replicas`}},
		{"fallback-after zero", valid("fallback-replicas", "3", "fallback-after", "0s"),
			[]string{`spinscale.dev/fallback-after: "0s": must be a Go duration > 0s and <= 24h`}},
		{"fallback-after too long", valid("fallback-replicas", "3", "fallback-after", "25h"), []string{`spinscale.dev/fallback-after: "25h"`}},
		{"no target", ann("enabled", "true", "max-replicas", "3"),
			[]string{`spinscale.dev/enabled: "true": at least one target is required`, "spinscale.dev/target-cpu-utilization", "spinscale.dev/metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An empty value in valid() means "remove the key".
			for k, v := range tt.ann {
				if v == "" && k != KeyMaxReplicas {
					delete(tt.ann, k)
				}
			}
			app, err := Parse(tt.ann, defaults)
			require.Error(t, err)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Len(t, perr.Fields, 1, "exactly one problem expected, got %v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.True(t, strings.HasPrefix(perr.Fields[0].Key, Prefix))
			assert.True(t, app.Enabled)
			assert.Equal(t, recommender.Spec{}, app.Spec, "a failed parse gives no spec")
		})
	}
}

func TestParseMetricsListErrors(t *testing.T) {
	tests := []struct {
		name    string
		metrics string
		want    []string
	}{
		{"not a list", "name: rps", []string{`spinscale.dev/metrics: "name: rps": must be a YAML list of {name, query, targetValue | targetAverageValue}`}},
		{"empty", " ", []string{`spinscale.dev/metrics: " ": must be a YAML list`}},
		{"not YAML", "- {name: [", []string{`spinscale.dev/metrics: "- {name: ["`}},
		{"entry not an object", "- rps", []string{"spinscale.dev/metrics: [0]: must be an object"}},
		{"name missing", "- {query: q, targetValue: 1}", []string{"spinscale.dev/metrics: [0].name: required: must be a DNS-1123 label"}},
		{"name not a label", "- {name: Queue_Depth, query: q, targetValue: 1}", []string{`spinscale.dev/metrics: [0].name: "Queue_Depth": must be a DNS-1123 label`}},
		{"name not a string", "- {name: 7, query: q, targetValue: 1}", []string{`spinscale.dev/metrics: [0].name: "7": must be a DNS-1123 label`}},
		{"name reserved", "- {name: default, query: q, targetValue: 1}", []string{`spinscale.dev/metrics: [0].name: "default"`, "not cpu, memory, default, http-concurrency or http-rps"}},
		{"name duplicate", "- {name: a, query: q, targetValue: 1}\n- {name: a, query: r, targetValue: 2}",
			[]string{`spinscale.dev/metrics: [1].name: "a": duplicate of [0].name`}},
		{"query missing", "- {name: a, targetValue: 1}", []string{"spinscale.dev/metrics: [0].query: required: must be a non-empty PromQL query"}},
		{"query empty", "- {name: a, query: ' ', targetValue: 1}", []string{`spinscale.dev/metrics: [0].query: " ": must be a non-empty PromQL query`}},
		{"no target", "- {name: a, query: q}", []string{"spinscale.dev/metrics: [0]: requires a target: set targetValue or targetAverageValue"}},
		{"both targets", "- {name: a, query: q, targetValue: 1, targetAverageValue: 2}",
			[]string{"spinscale.dev/metrics: [0]: set exactly one of targetValue or targetAverageValue, not both"}},
		{"target zero", "- {name: a, query: q, targetValue: 0}", []string{`spinscale.dev/metrics: [0].targetValue: "0": must be a quantity > 0`}},
		{"target not a quantity", "- {name: a, query: q}\n- {name: b, query: q, targetAverageValue: fast}",
			[]string{`spinscale.dev/metrics: [1].targetAverageValue: "fast": must be a quantity > 0 and <= 1T`}},
		{"target an object", "- {name: a, query: q, targetValue: {v: 1}}", []string{`spinscale.dev/metrics: [0].targetValue: "{\"v\":1}"`}},
		{"unknown field", "- {name: a, query: q, target: 1, targetValue: 1}",
			[]string{`spinscale.dev/metrics: [0]: unknown field "target": allowed name, query, targetValue, targetAverageValue`}},
		{"duplicate field", "- {name: a, name: b, query: q, targetValue: 1}", []string{`spinscale.dev/metrics: "- {name: a, name: b`}},
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

func TestParseMetricsList(t *testing.T) {
	tests := []struct {
		name    string
		metrics string
		want    []recommender.MetricSpec
	}{
		{
			name:    "numbers and strings as targets",
			metrics: "- {name: rps, query: ' sum(rps) ', targetAverageValue: 400}\n- {name: lag, query: max(lag), targetValue: \"1k\"}\n- {name: err, query: q, targetValue: 0.25}",
			want: []recommender.MetricSpec{
				{Name: "rps", Source: recommender.SourcePrometheus, Query: "sum(rps)", Annotation: KeyMetrics + "[rps]", Target: recommender.TargetAverageValue, TargetMilli: 400000},
				{Name: "lag", Source: recommender.SourcePrometheus, Query: "max(lag)", Annotation: KeyMetrics + "[lag]", Target: recommender.TargetValue, TargetMilli: 1000000},
				{Name: "err", Source: recommender.SourcePrometheus, Query: "q", Annotation: KeyMetrics + "[err]", Target: recommender.TargetValue, TargetMilli: 250},
			},
		},
		{
			name:    "JSON flow style",
			metrics: `[{"name": "rps", "query": "sum(rps)", "targetValue": "10"}]`,
			want: []recommender.MetricSpec{
				{Name: "rps", Source: recommender.SourcePrometheus, Query: "sum(rps)", Annotation: KeyMetrics + "[rps]", Target: recommender.TargetValue, TargetMilli: 10000},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ann("enabled", "true", "max-replicas", "5", "metrics", tt.metrics)
			app, err := Parse(a, defaults)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.Spec.Metrics)
		})
	}
}

func TestParseMetricOrder(t *testing.T) {
	// Declared in any order, the metrics come out as cpu, memory, the
	// prometheus-query metric (named after its query's metric, q), then the
	// list in its order.
	app, err := Parse(ann(
		"enabled", "true",
		"max-replicas", "5",
		"metrics", "- {name: zeta, query: z, targetValue: 1}\n- {name: alpha, query: a, targetValue: 1}",
		"prometheus-query", "q",
		"prometheus-target-value", "1",
		"target-memory-utilization", "80",
		"target-cpu-utilization", "50",
	), defaults)
	require.NoError(t, err)
	var names []string
	for _, m := range app.Spec.Metrics {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"cpu", "memory", "q", "zeta", "alpha"}, names)
}

// A metric's own fallback (KEP-5679), 3m by default, and the app's
// fallback behavior (KEDA's).
func TestParseMetricFallback(t *testing.T) {
	app, err := Parse(valid("metrics", "- {name: q, query: x, targetValue: 1, fallbackReplicas: 4}\n- {name: r, query: up, targetValue: 1, fallbackReplicas: 2, fallbackAfter: 90s}",
		"fallback-behavior", "static"), defaults)
	require.NoError(t, err)
	require.Len(t, app.Spec.Metrics, 3)
	assert.Equal(t, int32(4), app.Spec.Metrics[1].FallbackReplicas)
	assert.Equal(t, 3*time.Minute, app.Spec.Metrics[1].FallbackAfter)
	assert.Equal(t, 90*time.Second, app.Spec.Metrics[2].FallbackAfter)
	assert.Equal(t, recommender.FallbackStatic, app.Spec.FallbackBehavior)
}

// A metric may name a configured server, add query parameters and read an
// empty result as 0.
func TestParseQueryOptions(t *testing.T) {
	d := defaults
	d.PrometheusServers = []string{"thanos"}
	app, err := Parse(valid("metrics", "- {name: q, query: x, targetValue: 1, server: thanos, queryParameters: {dedup: \"false\", partial_response: \"true\"}, ignoreNullValues: true}"), d)
	require.NoError(t, err)
	m := app.Spec.Metrics[1]
	assert.Equal(t, "thanos", m.Server)
	assert.Equal(t, "dedup=false&partial_response=true", m.Params)
	assert.True(t, m.IgnoreNull)
}

func TestParseInterval(t *testing.T) {
	app, err := Parse(valid("interval", "5s"), defaults)
	require.NoError(t, err)
	assert.Equal(t, 5*time.Second, app.Interval)
	app, err = Parse(valid(), defaults)
	require.NoError(t, err)
	assert.Zero(t, app.Interval, "unset: the controller's interval")
}

// min-replicas 0 with a Prometheus metric, and KEDA's options on top.
func TestParseScaleToZero(t *testing.T) {
	app, err := Parse(ann("enabled", "true", "min-replicas", "0", "max-replicas", "5",
		"prometheus-query", "sum(queue_length)", "prometheus-target-value", "10",
		"activation-threshold", "0.5", "scale-to-zero-after", "2m"), defaults)
	require.NoError(t, err)
	assert.Equal(t, int32(0), app.Spec.MinReplicas)
	require.NotNil(t, app.Spec.ActivationMilli)
	assert.Equal(t, int64(500), *app.Spec.ActivationMilli)
	assert.Equal(t, 2*time.Minute, app.Spec.ScaleToZeroAfter)

	app, err = Parse(ann("enabled", "true", "min-replicas", "0", "max-replicas", "5",
		"prometheus-query", "sum(queue_length)", "prometheus-target-value", "10", "activation-threshold", "0"), defaults)
	require.NoError(t, err)
	require.NotNil(t, app.Spec.ActivationMilli)
	assert.Zero(t, *app.Spec.ActivationMilli)
	assert.Zero(t, app.Spec.ScaleToZeroAfter, "unset: HPA's rule")

	_, err = Parse(ann("enabled", "true", "min-replicas", "0", "max-replicas", "0",
		"prometheus-query", "q", "prometheus-target-value", "10"), defaults)
	assert.ErrorContains(t, err, `spinscale.dev/max-replicas: "0": must be an integer >= 1 and <= 100000`)
}

func TestParseReportsEveryError(t *testing.T) {
	a := ann(
		"enabled", "true",
		"min-replicas", "-1",
		"max-replicas", "many",
		"target-cpu-utilization", "fifty",
		"prometheus-target-value", "10",
		"metrics", "- {name: A, query: q, targetValue: -1}",
		"tolerance", "2",
		"behavior", "scaleUp: {policies: []}",
		"profile", "fast",
		"paused", "maybe",
		"fallback-after", "1m",
		"max-replica", "3",
	)
	app, err := Parse(a, defaults)
	var perr *Error
	require.ErrorAs(t, err, &perr)
	var keys []string
	for _, f := range perr.Fields {
		keys = append(keys, f.Key)
	}
	assert.Equal(t, []string{
		KeyMinReplicas,
		KeyMaxReplicas,
		KeyTargetCPUUtilization,
		KeyPrometheusTargetValue,
		KeyMetrics, // [0].name
		KeyMetrics, // [0].targetValue
		KeyTolerance,
		KeyBehavior,
		KeyProfile,
		KeyPaused,
		KeyFallbackAfter,
	}, keys)
	assert.Len(t, strings.Split(err.Error(), "; "), len(perr.Fields))
	assert.Equal(t, []string{"spinscale.dev/max-replica: unknown annotation (did you mean spinscale.dev/max-replicas?)"}, app.Warnings,
		"warnings are reported even when the annotations are invalid")

	// Each field error is reachable with errors.As.
	var fe FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, KeyMinReplicas, fe.Key)
	assert.Equal(t, "-1", fe.Value)
}

func TestParseUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want []string
	}{
		{"typo", valid("max-replica", "3"), []string{"spinscale.dev/max-replica: unknown annotation (did you mean spinscale.dev/max-replicas?)"}},
		{"two typos", valid("target-cpu-utilisation", "50", "tolerence", "0.1"), []string{
			"spinscale.dev/target-cpu-utilisation: unknown annotation (did you mean spinscale.dev/target-cpu-utilization?)",
			"spinscale.dev/tolerence: unknown annotation (did you mean spinscale.dev/tolerance?)",
		}},
		{"upper case", valid("Max-Replicas", "3"), []string{"spinscale.dev/Max-Replicas: unknown annotation (did you mean spinscale.dev/max-replicas?)"}},
		{"nothing close", valid("min-pods", "3"), []string{"spinscale.dev/min-pods: unknown annotation, ignored"}},
		{"control characters quoted", valid("x\nspinscale.dev/paused", "true"), []string{`"spinscale.dev/x\nspinscale.dev/paused": unknown annotation, ignored`}},
		{"other prefixes ignored", map[string]string{
			KeyEnabled: "true", KeyMaxReplicas: "3", KeyTargetCPUUtilization: "50",
			"autoscaling.spinscale.dev/max": "1", "example.com/max-replicas": "3", "max-replicas": "3",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(tt.ann, defaults)
			require.NoError(t, err, "an unknown key is never an error")
			assert.Equal(t, tt.want, app.Warnings)
		})
	}
}

func TestParseBehaviorEmptySelectsBehaviorPath(t *testing.T) {
	for _, v := range []string{"{}", " {} ", "scaleUp: {}", "scaleDown: null"} {
		t.Run(v, func(t *testing.T) {
			app, err := Parse(valid("behavior", v), defaults)
			require.NoError(t, err)
			require.NotNil(t, app.Spec.Behavior, "a present behavior selects the behavior path")
			// Unset fields stay unset: the engine applies the v2 defaults.
			if up := app.Spec.Behavior.ScaleUp; up != nil {
				assert.Equal(t, autoscalingv2.HPAScalingRules{}, *up)
			}
			assert.Nil(t, app.Spec.Behavior.ScaleDown)
		})
	}
}

func TestParseToleranceDoesNotSelectBehaviorPath(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want recommender.Tolerances
	}{
		{"tolerance", []string{"tolerance", "0.2"}, recommender.Tolerances{Up: 0.2, Down: 0.2}},
		{"tolerance zero", []string{"tolerance", "0"}, recommender.Tolerances{Up: 0, Down: 0}},
		{"tolerance-up", []string{"tolerance-up", "0.05"}, recommender.Tolerances{Up: 0.05, Down: 0.1}},
		{"tolerance-down", []string{"tolerance-down", "1"}, recommender.Tolerances{Up: 0.1, Down: 1}},
		{"tolerance-up above 1 (KEP-4951)", []string{"tolerance-up", "2.5"}, recommender.Tolerances{Up: 2.5, Down: 0.1}},
		{"more specific wins", []string{"tolerance", "0.3", "tolerance-down", "0.01"}, recommender.Tolerances{Up: 0.3, Down: 0.01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(valid(tt.kv...), defaults)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.Spec.Tolerance)
			assert.Nil(t, app.Spec.Behavior)
		})
	}
}

func TestParseStabilizationShorthandSelectsBehaviorPath(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want *autoscalingv2.HorizontalPodAutoscalerBehavior
	}{
		{"scale-up", []string{"scale-up-stabilization", "0s"}, &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0)},
		}},
		{"scale-down", []string{"scale-down-stabilization", "2m30s"}, &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](150)},
		}},
		{"maximum", []string{"scale-down-stabilization", "1h"}, &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](3600)},
		}},
		{"merged into behavior", []string{"scale-down-stabilization", "1m", "behavior", "scaleUp: {stabilizationWindowSeconds: 30}\nscaleDown: {selectPolicy: Min}"},
			&autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp:   &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](30)},
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](60), SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect)},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(valid(tt.kv...), defaults)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.Spec.Behavior)
			assert.Equal(t, recommender.Tolerances{Up: 0.1, Down: 0.1}, app.Spec.Tolerance)
		})
	}
}

func TestParseIsolatesCalls(t *testing.T) {
	// Each call decodes its own behavior: a spec handed to the engine is
	// never shared with another app's.
	a := valid("behavior", "scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 60}]}")
	first, err := Parse(a, defaults)
	require.NoError(t, err)
	second, err := Parse(a, defaults)
	require.NoError(t, err)
	first.Spec.Behavior.ScaleDown.Policies[0].Value = 99
	assert.Equal(t, int32(1), second.Spec.Behavior.ScaleDown.Policies[0].Value)
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"plain", FieldError{Key: KeyMaxReplicas, Value: "0", Message: "must be an integer >= min-replicas (1)"},
			`spinscale.dev/max-replicas: "0": must be an integer >= min-replicas (1)`},
		{"empty value", FieldError{Key: KeyPaused, Value: "", Message: "must be true or false"},
			`spinscale.dev/paused: "": must be true or false`},
		{"absent", FieldError{Key: KeyMaxReplicas, Message: "required", absent: true}, `spinscale.dev/max-replicas: required`},
		{"path", FieldError{Key: KeyMetrics, Path: "[1].targetValue", Value: "x", Message: "must be a quantity"},
			`spinscale.dev/metrics: [1].targetValue: "x": must be a quantity`},
		{"path without value", FieldError{Key: KeyMetrics, Path: "[1]", Message: "requires a target"},
			`spinscale.dev/metrics: [1]: requires a target`},
		{"control characters", FieldError{Key: KeyProfile, Value: "a\nb\xff", Message: "m"}, `spinscale.dev/profile: "a\nb\xff": m`},
		{"long value shortened", FieldError{Key: KeyProfile, Value: strings.Repeat("é", 100), Message: "m"},
			`spinscale.dev/profile: "` + strings.Repeat("é", 60) + `…" (200 bytes): m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorJoinsFields(t *testing.T) {
	err := &Error{Fields: []FieldError{
		{Key: KeyMinReplicas, Value: "0", Message: "a"},
		{Key: KeyMaxReplicas, Value: "x", Message: "b"},
	}}
	assert.Equal(t, `spinscale.dev/min-replicas: "0": a; spinscale.dev/max-replicas: "x": b`, err.Error())
	assert.True(t, errors.Is(err, err.Fields[1]))
}

func TestEnabled(t *testing.T) {
	assert.True(t, Enabled(ann("enabled", "true")))
	assert.True(t, Enabled(ann("enabled", " true ")))
	assert.False(t, Enabled(ann("enabled", "TRUE")))
	assert.False(t, Enabled(nil))
}

func TestKeys(t *testing.T) {
	ks := Keys()
	require.Len(t, ks, 46)
	seen := map[string]bool{}
	for _, k := range ks {
		assert.True(t, strings.HasPrefix(k, Prefix), k)
		assert.False(t, seen[k], "duplicate %s", k)
		seen[k] = true
	}
	ks[0] = "changed"
	assert.Equal(t, KeyEnabled, Keys()[0], "Keys returns a copy")
}

func TestKeysAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/annotations.md")
	require.NoError(t, err)
	for _, k := range Keys() {
		assert.Contains(t, string(doc), "`"+strings.TrimPrefix(k, Prefix)+"`", "docs/annotations.md must document %s", k)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"max-replicas", "max-replicas", 0},
		{"max-replica", "max-replicas", 1},
		{"tolerence", "tolerance", 1},
		{"pasued", "paused", 2},
		{"abc", "xyz", 3},
		{"", "paused", 3},
	}
	for _, tt := range tests {
		t.Run(tt.a+"/"+tt.b, func(t *testing.T) {
			assert.Equal(t, tt.want, editDistance(tt.a, tt.b, 3))
		})
	}
}

func mustQuantity(t *testing.T, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	require.NoError(t, err)
	return q
}

// TestParseBehaviorErrorsAreStructured: a problem inside the behavior is
// reported with its path and its value as fields of the FieldError, not only
// as text.
func TestParseBehaviorErrorsAreStructured(t *testing.T) {
	tests := []struct {
		name     string
		behavior string
		want     FieldError
	}{
		{"window out of range", "scaleDown: {stabilizationWindowSeconds: 3601}",
			FieldError{Key: KeyBehavior, Path: "scaleDown.stabilizationWindowSeconds", Value: "3601", Message: "out of range: allowed 0 to 3600"}},
		{"unknown select policy", "scaleDown: {selectPolicy: Fastest}",
			FieldError{Key: KeyBehavior, Path: "scaleDown.selectPolicy", Value: "Fastest", Message: "not supported: allowed Max, Min, Disabled"}},
		{"policy value zero", "scaleUp: {policies: [{type: Pods, value: 0, periodSeconds: 15}]}",
			FieldError{Key: KeyBehavior, Path: "scaleUp.policies[0].value", Value: "0", Message: "must be greater than zero"}},
		{"no policy: nothing to quote", "scaleUp: {policies: []}",
			FieldError{Key: KeyBehavior, Path: "scaleUp.policies", Message: "must specify at least one policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(valid("behavior", tt.behavior), defaults)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			assert.Equal(t, []FieldError{tt.want}, perr.Fields)
		})
	}
}

func TestIsKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{KeyEnabled, true},
		{KeyFallbackAfter, true},
		{"spinscale.dev/max-replica", false},
		{"max-replicas", false},
		{"example.com/max-replicas", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, tt.want, IsKey(tt.key))
		})
	}
	for _, k := range Keys() {
		assert.True(t, IsKey(k), k)
	}
}

func TestUsesResourceMetrics(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want bool
	}{
		{"cpu utilization", valid(), true},
		{"memory average value", valid("target-cpu-utilization", "", "target-memory-average-value", "128Mi"), true},
		{"prometheus only", valid("target-cpu-utilization", "", "prometheus-query", "sum(rate(x[1m]))", "prometheus-target-value", "10"), false},
		{"cpu and prometheus", valid("prometheus-query", "sum(rate(x[1m]))", "prometheus-target-value", "10"), true},
		{"invalid: not decided", valid("max-replicas", "none"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// An empty value in valid() means "remove the key".
			for k, v := range tt.ann {
				if v == "" {
					delete(tt.ann, k)
				}
			}
			app, _ := Parse(tt.ann, defaults)
			assert.Equal(t, tt.want, app.UsesResourceMetrics())
		})
	}
}

// TestParseToleranceUpAboveOne: HPA's scale-up tolerance is any
// non-negative quantity (KEP-4951), set by tolerance-up or by the
// behavior's scaleUp.tolerance; the scale-down side stays at most 1.
func TestParseToleranceUpAboveOne(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want recommender.Tolerances
	}{
		{"tolerance-up", []string{"tolerance-up", "1.5"}, recommender.Tolerances{Up: 1.5, Down: 0.1}},
		{"behavior scaleUp.tolerance", []string{"behavior", "scaleUp: {tolerance: 1.5}"}, recommender.Tolerances{Up: 1.5, Down: 0.1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(valid(tt.kv...), defaults)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.Spec.Tolerance)

			// 2 pods at 120% of a 50% target: a ratio of 2.4, inside
			// [0.9, 2.5], so the app holds where tolerance 0.1 doubles it.
			in := recommender.Input{SpecReplicas: 2, StatusReplicas: 2, Metrics: []recommender.Observation{{PerPod: true}}}
			for _, name := range []string{"a", "b"} {
				in.Pods = append(in.Pods, recommender.Pod{Name: name, Phase: corev1.PodRunning, HasReadyCondition: true, Ready: true,
					StartTime: time.Unix(0, 0), ReadyTransition: time.Unix(0, 0), CPU: recommender.Request{Milli: 1000}})
				in.Metrics[0].Samples = append(in.Metrics[0].Samples, recommender.Sample{Pod: name, Value: 1200})
			}
			d, _ := recommender.Decide(&app.Spec, &in, recommender.State{Initialized: true}, time.Unix(3600, 0))
			assert.Equal(t, int32(2), d.DesiredReplicas)
			assert.Equal(t, recommender.StageTolerance, d.LimitedBy)
		})
	}
}
