package controller

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
)

// Instruments are the controller's own Prometheus metrics (not the metrics
// apps scale on, which come from the metric sources).
type Instruments struct {
	TickDuration prometheus.Histogram
	// TickPhase splits a pass: prepare (the managed apps, their
	// annotations, which are due), reads (the metric sources, side by
	// side) and decisions.
	TickPhase      *prometheus.HistogramVec
	TickLag        prometheus.Gauge
	LastTick       prometheus.Gauge
	Apps           prometheus.Gauge
	Leader         prometheus.Gauge
	Decisions      *prometheus.CounterVec
	ScaleWrites    *prometheus.CounterVec
	AppsSkipped    *prometheus.CounterVec
	SourceErrors   *prometheus.CounterVec
	MetricErrors   *prometheus.CounterVec
	AppReplicas    *prometheus.GaugeVec
	AppDesired     *prometheus.GaugeVec
	AppMetricValue *prometheus.GaugeVec
	AppTarget      *prometheus.GaugeVec
	AppLimitedBy   *prometheus.GaugeVec
	AppState       *prometheus.GaugeVec
	// ShadowDecisions and ShadowLead compare the decisions of apps in
	// shadow mode with their live autoscaler (internal/shadow).
	ShadowDecisions *prometheus.CounterVec
	ShadowLead      *prometheus.HistogramVec
	// ColdStart is the time from a scale-up write to its pods being Ready.
	ColdStart *prometheus.HistogramVec
	// WritesQueued, WritesDeferred, WritesSuperseded and WriteLatency
	// follow the scale writes' queue (writes.go).
	WritesQueued     prometheus.Gauge
	WritesDeferred   prometheus.Counter
	WritesSuperseded prometheus.Counter
	WriteLatency     prometheus.Histogram
}

// NewInstruments creates the controller's metrics and registers them on reg.
func NewInstruments(reg prometheus.Registerer) *Instruments {
	app := []string{"namespace", "deployment"}
	m := &Instruments{
		TickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spinscale_tick_duration_seconds",
			Help: "Time of one pass: the metric reads and the decisions for every app due (the scale writes are made beside the passes, except in a single pass, run --once, which makes its own).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}),
		TickPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spinscale_tick_phase_seconds",
			Help: "Time of each phase of a pass: prepare (the managed apps from the cache, their annotations, which are due), reads (metrics.k8s.io, Prometheus and the metrics APIs, read side by side) and decisions (every app due, on the workers).", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"phase"}),
		TickLag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spinscale_tick_lag_seconds",
			Help: "How late the last tick started relative to its schedule."}),
		LastTick: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spinscale_last_tick_timestamp_seconds",
			Help: "Unix time the last tick completed."}),
		Apps: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spinscale_apps", Help: "Opted-in Deployments seen in the last tick."}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spinscale_leader",
			Help: "1 while this replica is the leader (or runs without leader election)."}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_decisions_total",
			Help: "Decisions by action and by the rule that limited them."}, []string{"action", "limited_by"}),
		ScaleWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_scale_writes_total",
			Help: "Writes to deployments/scale by result (ok, conflict, error)."}, []string{"result"}),
		AppsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_apps_skipped_total",
			Help: "Apps left undecided or unwritten in a tick, by reason (tick_deadline: the tick ran out of time; they are decided on in the next)."}, []string{"reason"}),
		SourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_source_errors_total",
			Help: "Failed reads of a metric source, by source: a metrics.k8s.io LIST (metrics-server), a distinct PromQL query (prometheus), once per pass each."}, []string{"source"}),
		MetricErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_metric_errors_total",
			Help: "Failed metrics of the apps decided on, by source (metrics-server, prometheus, activator): one per app and metric per decision."}, []string{"source"}),
		AppReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_replicas",
			Help: "spec.replicas of the app when last decided."}, app),
		AppDesired: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_desired_replicas",
			Help: "The replica count the last decision asked for."}, app),
		AppMetricValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_metric_value",
			Help: "Current value of each metric (percent for utilization targets, else the metric's unit); absent while it fails."},
			append(app, "metric")),
		AppTarget: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_metric_target",
			Help: "Target of each metric, in the unit of spinscale_app_metric_value."}, append(app, "metric")),
		AppLimitedBy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_limited_by",
			Help: "1 for the rule that limited the app's last decision."}, append(app, "limited_by")),
		AppState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spinscale_app_state",
			Help: "1 for the app's state: ok, degraded (a metric failed), invalid (bad annotations), refused (another autoscaler owns it), dry_run, fallback (a fallback count stands in for a failed metric), shadow (decided beside a live autoscaler, never written), zero (scaled to zero by Spinscale, waiting for a metric to wake it)."},
			append(app, "state")),
		ShadowDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_shadow_decisions_total",
			Help: "Decisions of apps in shadow mode, by how they compare with the live replica count: agree, higher, lower."},
			append(app, "comparison")),
		ShadowLead: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spinscale_shadow_lead_seconds",
			Help:    "For apps in shadow mode, each move of the live replica count: how long before it (lead=sooner) or after it (lead=later) Spinscale asked for it.",
			Buckets: []float64{0, 5, 15, 30, 60, 120, 300, 600, 1800}},
			append(app, "lead", "direction")),
		ColdStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spinscale_cold_start_seconds",
			Help:    "Time from a scale-up write to the new pods being Ready (their Ready transition), per app that scaled up.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300}}, app),
		WritesQueued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "spinscale_scale_writes_queued",
			Help: "Scale writes decided and waiting for a worker, made most urgent first (scale-ups, the most under-provisioned first)."}),
		WritesDeferred: prometheus.NewCounter(prometheus.CounterOpts{Name: "spinscale_scale_writes_deferred_total",
			Help: "Scale writes not made: past the deadline of a pass that makes its own writes (run --once), or queued when the loop stopped (leadership lost); their apps are decided on again, on fresh data."}),
		WritesSuperseded: prometheus.NewCounter(prometheus.CounterOpts{Name: "spinscale_scale_writes_superseded_total",
			Help: "Queued scale writes replaced, before they were made, by a newer decision for their app."}),
		WriteLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "spinscale_scale_write_latency_seconds",
			Help:    "Time from a scale write's queueing (its decision's pass) to the API server's answer: queue wait, rate limit and the request.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	reg.MustRegister(m.WritesQueued, m.WritesDeferred, m.WritesSuperseded, m.WriteLatency, m.ColdStart, m.TickDuration, m.TickPhase, m.TickLag, m.LastTick, m.Apps, m.Leader, m.Decisions, m.ScaleWrites, m.AppsSkipped, m.SourceErrors, m.MetricErrors,
		m.AppReplicas, m.AppDesired, m.AppMetricValue, m.AppTarget, m.AppLimitedBy, m.AppState, m.ShadowDecisions, m.ShadowLead)
	return m
}

// forget removes every per-app series of an app that is gone.
func (m *Instruments) forget(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "deployment": name}
	for _, v := range []*prometheus.GaugeVec{m.AppReplicas, m.AppDesired, m.AppMetricValue, m.AppTarget, m.AppLimitedBy, m.AppState} {
		v.DeletePartialMatch(labels)
	}
	m.ShadowDecisions.DeletePartialMatch(labels)
	m.ShadowLead.DeletePartialMatch(labels)
	m.ColdStart.DeletePartialMatch(labels)
}

// setOne marks exactly one value of a per-app enum gauge (state,
// limited_by), deleting the previous one by its labels: a partial-match
// delete would scan every series, once per app, on every tick.
func setOne(v *prometheus.GaugeVec, namespace, name string, previous *string, value string) {
	if *previous == value {
		return
	}
	if *previous != "" {
		v.DeleteLabelValues(namespace, name, *previous)
	}
	v.WithLabelValues(namespace, name, value).Set(1)
	*previous = value
}

var registerClientMetrics sync.Once

// RegisterClientGoMetrics exports client-go's request latency and results
// on reg, and counts the requests by verb and API resource. Only the first
// call registers (client-go accepts one adapter).
func RegisterClientGoMetrics(reg prometheus.Registerer) {
	registerClientMetrics.Do(func() {
		latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spinscale_kube_request_duration_seconds",
			Help: "Kubernetes API request latency by verb and host.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)},
			[]string{"verb", "host"})
		results := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_kube_requests_total",
			Help: "Kubernetes API requests by status code, method and host."}, []string{"code", "method", "host"})
		throttled := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spinscale_kube_rate_limiter_wait_seconds",
			Help:    "Time Kubernetes API requests waited for the client's rate limit (config kube.qps, kube.burst), by verb and host.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"verb", "host"})
		byResource := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spinscale_kube_resource_requests_total",
			Help: "Kubernetes API requests (not watches) by verb, API group and resource (with its subresource: deployments/scale)."},
			[]string{"verb", "group", "resource"})
		reg.MustRegister(latency, results, throttled, byResource)
		clientmetrics.Register(clientmetrics.RegisterOpts{
			RequestLatency:     latencyAdapter{latency, byResource},
			RequestResult:      resultAdapter{results},
			RateLimiterLatency: latencyAdapter{throttled, nil},
		})
	})
}

// latencyAdapter also counts by resource: client-go hands the URL, as a
// template with {namespace} and {name} in place of the values, to the
// latency observer only.
// It feeds the latency into v; the rate limiter's hook has no byResource.
type latencyAdapter struct {
	v          *prometheus.HistogramVec
	byResource *prometheus.CounterVec
}

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.v.WithLabelValues(verb, u.Host).Observe(latency.Seconds())
	if a.byResource == nil {
		return
	}
	group, resource := apiResource(u.Path)
	a.byResource.WithLabelValues(verb, group, resource).Inc()
}

// apiResource reads the API group and resource from a request path:
// /api/v1/namespaces/{namespace}/pods → ("", "pods"),
// /apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale →
// ("apps", "deployments/scale"). Any other path (discovery, /version)
// gives ("", "other"). A base path in front of /api or /apis is skipped.
func apiResource(path string) (group, resource string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	i := 0
	for i < len(segs) && segs[i] != "api" && segs[i] != "apis" {
		i++
	}
	switch {
	case i+1 < len(segs) && segs[i] == "api":
		segs = segs[i+2:] // api, version
	case i+2 < len(segs) && segs[i] == "apis":
		group, segs = segs[i+1], segs[i+3:] // apis, group, version
	default:
		return "", "other"
	}
	// A namespaced path: namespaces/{namespace}/resource[/name[/subresource]].
	// Just namespaces/{name}, or with status or finalize, is the namespace
	// itself.
	if len(segs) >= 3 && segs[0] == "namespaces" && !(len(segs) == 3 && (segs[2] == "status" || segs[2] == "finalize")) {
		segs = segs[2:]
	}
	switch {
	case len(segs) == 0 || segs[0] == "":
		return group, "other"
	case len(segs) >= 3:
		return group, segs[0] + "/" + segs[2]
	default:
		return group, segs[0]
	}
}

type resultAdapter struct{ v *prometheus.CounterVec }

func (a resultAdapter) Increment(_ context.Context, code, method, host string) {
	a.v.WithLabelValues(code, method, host).Inc()
}
