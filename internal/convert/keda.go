package convert

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/duration"
)

// ScaledObject is the part of a KEDA keda.sh/v1alpha1 ScaledObject that
// matters for conversion (KEDA v2.x).
type ScaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       ScaledObjectSpec  `json:"spec"`
}

// ScaledObjectSpec is a ScaledObject's spec.
type ScaledObjectSpec struct {
	ScaleTargetRef        *ScaleTarget `json:"scaleTargetRef,omitempty"`
	PollingInterval       *int32       `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32       `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32       `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32       `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32       `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32       `json:"maxReplicaCount,omitempty"`
	Advanced              *Advanced    `json:"advanced,omitempty"`
	Triggers              []Trigger    `json:"triggers"`
	Fallback              *Fallback    `json:"fallback,omitempty"`
}

// ScaleTarget is spec.scaleTargetRef.
type ScaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// Advanced is spec.advanced.
type Advanced struct {
	RestoreToOriginalReplicaCount *bool          `json:"restoreToOriginalReplicaCount,omitempty"`
	HorizontalPodAutoscalerConfig *HPAConfig     `json:"horizontalPodAutoscalerConfig,omitempty"`
	ScalingModifiers              map[string]any `json:"scalingModifiers,omitempty"`
}

// HPAConfig is spec.advanced.horizontalPodAutoscalerConfig.
type HPAConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// Trigger is one of spec.triggers.
type Trigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	MetricType        string            `json:"metricType,omitempty"`
	UseCachedMetrics  *bool             `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef map[string]any    `json:"authenticationRef,omitempty"`
}

// Fallback is spec.fallback.
type Fallback struct {
	FailureThreshold int32  `json:"failureThreshold"`
	Replicas         int32  `json:"replicas"`
	Behavior         string `json:"behavior,omitempty"`
}

// KEDA's defaults.
const (
	kedaDefaultMax             = 100
	kedaDefaultPollingInterval = 30 * time.Second
)

// FromScaledObject converts a KEDA ScaledObject: bounds, cpu and memory
// triggers, prometheus triggers, the HPA behavior, the fallback and the
// pause annotations.
func FromScaledObject(so *ScaledObject) Result {
	spec := so.Spec
	name := ""
	kind, apiVersion := "", ""
	if spec.ScaleTargetRef != nil {
		name, kind, apiVersion = spec.ScaleTargetRef.Name, spec.ScaleTargetRef.Kind, spec.ScaleTargetRef.APIVersion
	}
	r := newResult("ScaledObject "+qualified(so.Metadata.Namespace, so.Metadata.Name), so.Metadata.Namespace, name)
	checkTarget(&r, "spec.scaleTargetRef", kind, apiVersion, name)
	bounds(&r, spec.MinReplicaCount, "spec.minReplicaCount", 0, spec.MaxReplicaCount, "spec.maxReplicaCount", kedaDefaultMax)

	if spec.IdleReplicaCount != nil {
		r.warnf("spec.idleReplicaCount: %d: Spinscale has no idle count between zero and min-replicas; with min-replicas 0 an idle app goes to zero, not converted", *spec.IdleReplicaCount)
	}
	if spec.PollingInterval != nil {
		r.warnf("spec.pollingInterval: %ds: KEDA polls triggers for activation (0 <-> 1 replicas) at it; Spinscale decides every config interval (15s) for every app, not converted", *spec.PollingInterval)
	}
	if spec.InitialCooldownPeriod != nil {
		r.warnf("spec.initialCooldownPeriod: %ds: Spinscale does not scale a new app to zero before a first scale-down window has passed (5m by default), not converted", *spec.InitialCooldownPeriod)
	}
	if a := spec.Advanced; a != nil {
		if a.RestoreToOriginalReplicaCount != nil && *a.RestoreToOriginalReplicaCount {
			r.warnf("spec.advanced.restoreToOriginalReplicaCount: true: removing Spinscale's annotations leaves the replica count as it is, not converted")
		}
		if len(a.ScalingModifiers) > 0 {
			r.warnf("spec.advanced.scalingModifiers: a formula over triggers has no equivalent; Spinscale takes the largest proposal of its metrics, as HPA does; write the formula in one PromQL query instead, not converted")
		}
		if c := a.HorizontalPodAutoscalerConfig; c != nil && c.Behavior != nil {
			behavior(&r, "spec.advanced.horizontalPodAutoscalerConfig.behavior", c.Behavior)
		}
	}

	var prom []promTrigger
	addresses := map[string]bool{}
	for i, t := range spec.Triggers {
		path := fmt.Sprintf("spec.triggers[%d]", i)
		if t.AuthenticationRef != nil {
			r.warnf("%s.authenticationRef: credentials are global in Spinscale (config prometheus.bearerTokenFile, basicAuth, tls), not converted", path)
		}
		if t.UseCachedMetrics != nil && *t.UseCachedMetrics {
			r.warnf("%s.useCachedMetrics: Spinscale queries each metric once per tick, not converted", path)
		}
		switch t.Type {
		case "cpu", "memory":
			kedaResource(&r, path, t)
		case "prometheus":
			if p, ok := kedaPrometheus(&r, path, t); ok {
				prom = append(prom, p)
				addresses[p.server] = true
			}
		default:
			r.warnf("%s: trigger type %q has no Spinscale equivalent: if Prometheus has the metric, use %s, not converted",
				path, t.Type, annotations.KeyPrometheusQuery)
		}
	}
	prometheusAnnotations(&r, prom)
	if settleZero(&r) {
		kedaZero(&r, spec, prom)
	} else {
		if spec.CooldownPeriod != nil {
			r.warnf("spec.cooldownPeriod: %ds applies to scaling to zero, which the converted app does not do, not converted", *spec.CooldownPeriod)
		}
		for _, p := range prom {
			if p.activation != "" {
				r.notef("%s.metadata.activationThreshold: %s applies only to an app that scales to zero (minReplicaCount 0); KEDA ignores it here, and so does the conversion", p.path, p.activation)
			}
		}
	}
	if len(addresses) > 0 {
		var list []string
		for a := range addresses {
			if a != "" {
				list = append(list, a)
			}
		}
		sort.Strings(list)
		switch len(list) {
		case 0:
		case 1:
			r.notef("the queries go to the controller's Prometheus: set prometheus.address: %s in its config.yaml (or SPINSCALE_PROMETHEUS_ADDRESS)", list[0])
		default:
			r.warnf("the prometheus triggers use several servers (%s): Spinscale queries the one Prometheus of its config (prometheus.address)", strings.Join(list, ", "))
		}
	}
	if spec.Fallback != nil {
		kedaFallback(&r, spec)
	}
	kedaPause(&r, so.Metadata.Annotations)
	return r
}

// kedaDefaultCooldown is KEDA's cooldownPeriod when unset.
const kedaDefaultCooldown = 300

// kedaZero converts what KEDA does around zero for an app that keeps
// min-replicas 0: the triggers' activation thresholds and the cooldown.
func kedaZero(r *Result, spec ScaledObjectSpec, prom []promTrigger) {
	cooldown := int32(kedaDefaultCooldown)
	if spec.CooldownPeriod != nil {
		cooldown = *spec.CooldownPeriod
	} else {
		r.notef("spec.cooldownPeriod is unset: KEDA's default, %ds, is made explicit as %s", kedaDefaultCooldown, annotations.KeyScaleToZeroAfter)
	}
	if cooldown > 0 {
		r.Annotations[annotations.KeyScaleToZeroAfter] = (time.Duration(cooldown) * time.Second).String()
	}
	// KEDA wakes on any trigger above its own threshold; Spinscale has one
	// threshold for all Prometheus metrics: the lowest wakes as early.
	var lowest string
	lowestValue := 0.0
	distinct := map[string]bool{}
	for _, p := range prom {
		activation := p.activation
		if activation == "" {
			activation = "0" // KEDA's default
		}
		q, err := annotations.ParseQuantity(activation)
		if err != nil {
			r.warnf("%s.metadata.activationThreshold: %q: not a quantity, not converted", p.path, p.activation)
			continue
		}
		f := q.AsApproximateFloat64()
		distinct[activation] = true
		if lowest == "" || f < lowestValue {
			lowest, lowestValue = activation, f
		}
	}
	if lowest == "" {
		lowest = "0"
	}
	r.Annotations[annotations.KeyActivationThreshold] = lowest
	if len(distinct) > 1 {
		r.warnf("the prometheus triggers have different activationThresholds: Spinscale has one for every Prometheus metric, the lowest (%s) kept", lowest)
	}
}

// kedaResource converts a cpu or memory trigger.
func kedaResource(r *Result, path string, t Trigger) {
	metricType := t.MetricType
	if metricType == "" {
		// KEDA before 2.10 read the type from metadata.
		metricType = t.Metadata["type"]
	}
	if c := t.Metadata["containerName"]; c != "" {
		r.warnf("%s.metadata.containerName: %q: Spinscale measures the whole pod, summed over its containers: the same for SpinKube's one-container pods, different for pods with sidecars or pod-level requests", path, c)
	}
	value := strings.TrimSpace(t.Metadata["value"])
	key := map[string]map[string]string{
		"cpu":    {"Utilization": annotations.KeyTargetCPUUtilization, "AverageValue": annotations.KeyTargetCPUAverageValue},
		"memory": {"Utilization": annotations.KeyTargetMemoryUtilization, "AverageValue": annotations.KeyTargetMemoryAverageValue},
	}[t.Type][metricType]
	if key == "" {
		r.warnf("%s.metricType: %q: a %s trigger is Utilization or AverageValue, not converted", path, metricType, t.Type)
		return
	}
	for _, k := range []string{key, sibling[key]} {
		if v, ok := r.Annotations[k]; ok {
			r.warnf("%s: a second %s trigger: Spinscale takes one target per resource, %s: %q kept, this one not converted", path, t.Type, k, v)
			return
		}
	}
	if metricType == "Utilization" {
		if n, err := strconv.Atoi(value); err != nil || n < 1 {
			r.warnf("%s.metadata.value: %q: a utilization target is a whole percent, not converted", path, value)
			return
		}
	} else if _, err := annotations.ParseQuantity(value); err != nil {
		r.warnf("%s.metadata.value: %q: not a quantity, not converted", path, value)
		return
	}
	r.Annotations[key] = value
}

// sibling pairs the two targets of one resource: Spinscale takes one.
var sibling = map[string]string{
	annotations.KeyTargetCPUUtilization:     annotations.KeyTargetCPUAverageValue,
	annotations.KeyTargetCPUAverageValue:    annotations.KeyTargetCPUUtilization,
	annotations.KeyTargetMemoryUtilization:  annotations.KeyTargetMemoryAverageValue,
	annotations.KeyTargetMemoryAverageValue: annotations.KeyTargetMemoryUtilization,
}

// promTrigger is a converted prometheus trigger.
type promTrigger struct {
	name, query, server string
	average             bool
	threshold           string
	// activation is metadata.activationThreshold, empty when unset.
	activation string
	// path locates the trigger in the source, for messages.
	path string
	// params are metadata.queryParameters.
	params map[string]string
}

// Metadata of a prometheus trigger that has a meaning Spinscale keeps in its
// global config or does not have; everything else is unknown.
var promMetadata = map[string]string{
	"serverAddress":       "",
	"query":               "",
	"threshold":           "",
	"ignoreNullValues":    "",
	"activationThreshold": "",
	"namespace":           "a tenant of Thanos or Cortex: set it in the query's URL or a header in config prometheus.headers",
	"customHeaders":       "headers are global: config prometheus.headers",
	"unsafeSsl":           "TLS is global: config prometheus.tls.insecureSkipVerify",
	"authModes":           "credentials are global: config prometheus.bearerTokenFile, basicAuth, tls",
	"queryParameters":     "",
	"cortexOrgID":         "a tenant header: config prometheus.headers (X-Scope-OrgID)",
	"timeout":             "the timeout is global: config prometheus.timeout",
}

// kedaPrometheus converts a prometheus trigger.
func kedaPrometheus(r *Result, path string, t Trigger) (promTrigger, bool) {
	keys := make([]string, 0, len(t.Metadata))
	for k := range t.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		why, known := promMetadata[k]
		switch {
		case !known:
			r.warnf("%s.metadata.%s: unknown prometheus trigger field, not converted", path, k)
		case why != "":
			r.warnf("%s.metadata.%s: %s, not converted", path, k, why)
		}
	}
	// KEDA's ignoreNullValues (default true) turns an empty result into 0;
	// Spinscale treats it as a failed metric, which holds scale-down.
	if v, ok := t.Metadata["ignoreNullValues"]; !ok || v == "true" {
		r.notef("%s: an empty query result is 0 for KEDA (ignoreNullValues) but a failed metric for Spinscale, which then holds instead of scaling down; wrap the query in `... or vector(0)`, or set ignoreNullValues: true on its entry of %s, to keep KEDA's behaviour", path, annotations.KeyMetrics)
	}
	params := map[string]string{}
	if v := strings.TrimSpace(t.Metadata["queryParameters"]); v != "" {
		// KEDA writes them as key=value pairs separated by commas.
		for _, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || k == "" {
				r.warnf("%s.metadata.queryParameters: %q: not key=value pairs, not converted", path, v)
				params = map[string]string{}
				break
			}
			params[k] = val
		}
	}
	p := promTrigger{name: t.Name, params: params, query: strings.TrimSpace(t.Metadata["query"]), server: strings.TrimSpace(t.Metadata["serverAddress"]),
		threshold: strings.TrimSpace(t.Metadata["threshold"]), activation: strings.TrimSpace(t.Metadata["activationThreshold"]), path: path}
	if p.query == "" {
		r.warnf("%s.metadata.query is empty, not converted", path)
		return p, false
	}
	if _, err := annotations.ParseQuantity(p.threshold); err != nil || p.threshold == "" {
		r.warnf("%s.metadata.threshold: %q: not a number, not converted", path, p.threshold)
		return p, false
	}
	switch t.MetricType {
	case "", "AverageValue":
		p.average = true
	case "Value":
	default:
		r.warnf("%s.metricType: %q: a prometheus trigger is AverageValue or Value, not converted", path, t.MetricType)
		return p, false
	}
	return p, true
}

// prometheusAnnotations writes one trigger as prometheus-query and its
// target; several as the metrics list.
func prometheusAnnotations(r *Result, prom []promTrigger) {
	withParams := false
	for _, p := range prom {
		withParams = withParams || len(p.params) > 0
	}
	switch {
	case len(prom) == 0:
		return
	case len(prom) == 1 && !withParams:
		p := prom[0]
		r.Annotations[annotations.KeyPrometheusQuery] = p.query
		if p.average {
			r.Annotations[annotations.KeyPrometheusTargetAverageValue] = p.threshold
		} else {
			r.Annotations[annotations.KeyPrometheusTargetValue] = p.threshold
		}
		return
	}
	type entry struct {
		Name               string            `json:"name"`
		Query              string            `json:"query"`
		TargetValue        string            `json:"targetValue,omitempty"`
		TargetAverageValue string            `json:"targetAverageValue,omitempty"`
		QueryParameters    map[string]string `json:"queryParameters,omitempty"`
	}
	used := map[string]bool{"cpu": true, "memory": true, "default": true}
	var list []entry
	for i, p := range prom {
		name := strings.ToLower(p.name)
		if len(validation.IsDNS1123Label(name)) > 0 || used[name] {
			name = fmt.Sprintf("prometheus-%d", i+1)
			for used[name] {
				name += "-x"
			}
		}
		used[name] = true
		e := entry{Name: name, Query: p.query}
		if len(p.params) > 0 {
			e.QueryParameters = p.params
		}
		if p.average {
			e.TargetAverageValue = p.threshold
		} else {
			e.TargetValue = p.threshold
		}
		list = append(list, e)
	}
	data, err := yaml.Marshal(list)
	if err != nil {
		r.warnf("prometheus triggers: %v, not converted", err)
		return
	}
	r.Annotations[annotations.KeyMetrics] = strings.TrimSpace(string(data))
}

// kedaFallback converts spec.fallback. KEDA's fallback (behavior static, the
// default) sets the count in both directions; Spinscale's only ever raises
// it, which is KEDA's currentReplicasIfHigher.
func kedaFallback(r *Result, spec ScaledObjectSpec) {
	f := spec.Fallback
	switch f.Behavior {
	case "currentReplicas":
		r.notef("spec.fallback.behavior currentReplicas holds the count while metrics fail: Spinscale does that without fallback-replicas")
		return
	case "currentReplicasIfLower":
		r.warnf("spec.fallback.behavior currentReplicasIfLower (only ever lower the count) has no equivalent: Spinscale never scales down on failing metrics, not converted")
		return
	case "", "static":
		r.warnf("spec.fallback: KEDA goes to %d replicas in either direction while metrics fail; Spinscale's fallback-replicas only scales up to it, and holds a higher count (KEDA's behavior currentReplicasIfHigher)", f.Replicas)
	case "currentReplicasIfHigher":
	default:
		r.warnf("spec.fallback.behavior %q is unknown, not converted", f.Behavior)
		return
	}
	min, _ := strconv.Atoi(r.Annotations[annotations.KeyMinReplicas])
	max, _ := strconv.Atoi(r.Annotations[annotations.KeyMaxReplicas])
	if int(f.Replicas) < min || int(f.Replicas) > max {
		r.warnf("spec.fallback.replicas: %d is outside min-replicas %d and max-replicas %d, not converted", f.Replicas, min, max)
		return
	}
	r.Annotations[annotations.KeyFallbackReplicas] = strconv.Itoa(int(f.Replicas))
	interval := kedaDefaultPollingInterval
	if spec.PollingInterval != nil {
		interval = time.Duration(*spec.PollingInterval) * time.Second
	}
	threshold := max32(f.FailureThreshold, 1)
	after := time.Duration(threshold) * interval
	r.Annotations[annotations.KeyFallbackAfter] = duration.Format(after)
	r.notef("spec.fallback: failureThreshold %d × pollingInterval %s is fallback-after %s (Spinscale counts time, not failed polls)",
		threshold, duration.Format(interval), duration.Format(after))
}

func max32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}
