package recommender

import (
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Profile names a decision profile.
type Profile string

const (
	// ProfileHPA decides exactly as the Kubernetes v1.37 HPA controller.
	ProfileHPA Profile = "hpa"
	// ProfileSpinscale is the tuned profile: HPA's ratio and rules, plus
	// burst reaction, a projection of the load's rise, start-up-aware
	// scale-up, a gradual scale-down rate and an early release of sharp
	// drops (tuned.go).
	ProfileSpinscale Profile = "spinscale"
)

// SourceType says where a metric's samples come from.
type SourceType string

const (
	// SourceResource is a pod resource metric (cpu, memory) from metrics.k8s.io.
	SourceResource SourceType = "resource"
	// SourcePrometheus is a PromQL query result.
	SourcePrometheus SourceType = "prometheus"
	// SourcePods is a per-pod metric from custom.metrics.k8s.io (HPA Pods).
	SourcePods SourceType = "pods"
	// SourceObject is one object's metric from custom.metrics.k8s.io (HPA
	// Object).
	SourceObject SourceType = "object"
	// SourceExternal is a metric from external.metrics.k8s.io, summed over
	// the series its selector matches (HPA External).
	SourceExternal SourceType = "external"
	// SourceHTTP is the activators' per-second request counts (http.go).
	SourceHTTP SourceType = "http"
)

// Thresholded reports whether a source's values are held to
// activation-threshold (KEDA's activationThreshold): Prometheus, and HPA's
// Object and External metrics.
func (t SourceType) Thresholded() bool {
	return t == SourcePrometheus || t == SourceObject || t == SourceExternal
}

// Wakes reports whether a source measures outside the app's pods, so that
// it can wake an app at zero: the thresholded sources and the activators'
// HTTP counts.
func (t SourceType) Wakes() bool { return t.Thresholded() || t == SourceHTTP }

// TargetType is the kind of target a metric is held to.
type TargetType string

const (
	// TargetUtilization is a whole percent of the pods' summed requests
	// (HPA Resource/Utilization).
	TargetUtilization TargetType = "Utilization"
	// TargetAverageValue is a quantity per pod (HPA Resource/AverageValue,
	// Pods metrics, External/AverageValue).
	TargetAverageValue TargetType = "AverageValue"
	// TargetValue is a quantity for the metric as a whole (HPA External/Value).
	TargetValue TargetType = "Value"
)

// MetricSpec is one metric an app scales on.
type MetricSpec struct {
	// Name identifies the metric in decisions: "cpu", "memory", the metric
	// the prometheus-query annotation's query selects (or the annotation's
	// key), or the name given in the metrics list.
	Name     string
	Source   SourceType
	Resource corev1.ResourceName // for SourceResource
	Query    string              // for SourcePrometheus
	// Annotation is the annotation that holds a Prometheus metric's query,
	// as Warnings name it: spinscale.dev/prometheus-query, or
	// spinscale.dev/metrics[<name>] for an entry of the list.
	Annotation string
	// Server names the Prometheus server of the query (config
	// prometheus.servers); empty is the default one. Params are extra
	// query parameters, URL-encoded (Thanos' dedup, partial_response).
	// IgnoreNull reads an empty result as 0, as KEDA's ignoreNullValues.
	Server     string
	Params     string
	IgnoreNull bool
	Target     TargetType
	// TargetUtilization is the percent for TargetUtilization.
	TargetUtilization int32
	// TargetMilli is the target in milli-units for TargetAverageValue and
	// TargetValue, as HPA compares integer milli-values.
	TargetMilli int64
	// FallbackReplicas (0 = none) is the metric's proposal once it has
	// failed continuously for FallbackAfter (fallback.go).
	FallbackReplicas int32
	FallbackAfter    time.Duration

	// Metric, Selector and Object describe a metric of the metrics APIs
	// (SourcePods, SourceObject, SourceExternal): the metric's name, its
	// label selector as written (empty selects every series), and for
	// SourceObject the object it describes, in the app's namespace.
	Metric   string
	Selector string
	Object   autoscalingv2.CrossVersionObjectReference
	// HTTP holds an HTTP metric's KPA parameters (SourceHTTP); its target
	// is TargetAverageValue: TargetMilli per pod.
	HTTP HTTPSpec
}

// Tolerances is the dead band around a usage ratio of 1 inside which nothing
// changes: [1-Down, 1+Up], inclusive at both ends as in HPA.
type Tolerances struct {
	Up   float64
	Down float64
}

// within reports whether ratio is inside the inclusive band.
func (t Tolerances) within(ratio float64) bool {
	return 1-t.Down <= ratio && ratio <= 1+t.Up
}

// Spec is everything the engine needs to know about one app's policy, fully
// resolved: annotations already merged with the global configuration.
type Spec struct {
	Profile     Profile
	MinReplicas int32
	MaxReplicas int32
	Metrics     []MetricSpec
	Tolerance   Tolerances

	// Behavior selects HPA's behavior path when non-nil. Unset fields take
	// the autoscaling/v2 defaults (behavior.go); the engine also
	// tolerates nil fields by using those defaults.
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior

	// DownscaleStabilization is the plain path's scale-down window, and the
	// behavior path's default scale-down window.
	DownscaleStabilization time.Duration
	// ScaleUpLimitFactor and ScaleUpLimitMinimum cap a plain-path scale-up per
	// decision at max(factor × current, minimum).
	ScaleUpLimitFactor  float64
	ScaleUpLimitMinimum int32

	// CPUInitializationPeriod and InitialReadinessDelay are HPA's start-up
	// rules, applied to cpu samples only.
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration

	// MaxSampleAge: a sample older than this is stale and counts as missing.
	// Zero disables the check.
	MaxSampleAge time.Duration

	// Tuning holds the spinscale profile's parameters; the hpa profile
	// ignores it.
	Tuning Tuning

	// Paused holds the replica count as it is.
	Paused bool
	// Pause holds the replica count at a given value or in one direction
	// (pause.go).
	Pause Pause
	// FallbackReplicas (0 = none) is applied, by FallbackBehavior, once every metric
	// has failed continuously for FallbackAfter.
	FallbackReplicas int32
	FallbackAfter    time.Duration
	// FallbackBehavior is how a fallback count meets the current count;
	// empty means the profile's default (fallback.go).
	FallbackBehavior FallbackBehavior

	// ActivationMilli and ScaleToZeroAfter are KEDA's options on top of
	// HPA's scale to zero (MinReplicas 0; zero.go). With either set, the
	// Prometheus and HTTP metrics decide between zero and running: the app
	// runs while any Prometheus metric is above ActivationMilli or any HTTP
	// metric is not idle, and goes to zero once none has been for
	// ScaleToZeroAfter. Unset (nil, 0), the app goes to and from zero by
	// HPA's rule alone.
	ActivationMilli  *int64
	ScaleToZeroAfter time.Duration
}

// ReactsToFreshData reports whether the app is decided on as soon as a
// metric has a sample newer than its last decision used, rather than only
// on the controller's interval. The hpa profile keeps HPA's fixed sync, as
// its decisions (a plain-path scale-up cap per decision, for one) assume.
func (s *Spec) ReactsToFreshData() bool { return s.Profile == ProfileSpinscale }
