package activator

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the activator's Prometheus instruments.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inFlight      *prometheus.GaugeVec
	held          *prometheus.GaugeVec
	heldRejected  *prometheus.CounterVec
	streamReaders prometheus.Gauge
	handedOver    *prometheus.CounterVec
}

// NewMetrics registers the activator's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spinscale_activator_requests_total",
			Help: "Requests answered, by app and HTTP status code (namespace and app empty for an unknown host).",
		}, []string{"namespace", "app", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spinscale_activator_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, time held included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"namespace", "app"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spinscale_activator_in_flight",
			Help: "Requests in flight, held ones included.",
		}, []string{"namespace", "app"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spinscale_activator_held",
			Help: "Requests waiting for a ready pod.",
		}, []string{"namespace", "app"}),
		heldRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spinscale_activator_held_rejected_total",
			Help: "Requests answered 503 while waiting for a ready pod: the queue was full (overflow), the wait timed out (timeout), or the activator shut down (shutdown).",
		}, []string{"namespace", "app", "reason"}),
		streamReaders: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spinscale_activator_stream_readers",
			Help: "Readers of the stats stream.",
		}),
	}
	m.handedOver = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spinscale_activator_handed_over_total",
		Help: "Client connections the fast loop handed to Go's HTTP server, by reason: head (a request it does not take: h2c, a body, an upgrade, HTTP/1.0, an unusual form), route (no app for the host: 404), pod (the pod failed before answering, or answered in a form it does not pass on).",
	}, []string{"reason"})
	for _, why := range []string{handedHead, handedRoute, handedPod} {
		m.handedOver.WithLabelValues(why)
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.held, m.heldRejected, m.streamReaders, m.handedOver)
	return m
}

// appMetrics are an app's series, looked up once: a label lookup per
// request costs more than the rest of the counting.
type appMetrics struct {
	vecs     *Metrics
	app      *app
	inFlight prometheus.Gauge
	held     prometheus.Gauge
	duration prometheus.Observer
	// codes holds the requests counter of each status code from 100 to
	// 599, made at its first use.
	codes [500]atomic.Pointer[codeCounter]
}

type codeCounter struct{ prometheus.Counter }

// of returns a's series, made at the first request.
func (m *Metrics) of(a *app) *appMetrics {
	if am := a.metrics.Load(); am != nil {
		return am
	}
	am := &appMetrics{
		vecs: m, app: a,
		inFlight: m.inFlight.WithLabelValues(a.key.Namespace, a.key.Name),
		held:     m.held.WithLabelValues(a.key.Namespace, a.key.Name),
		duration: m.duration.WithLabelValues(a.key.Namespace, a.key.Name),
	}
	if !a.metrics.CompareAndSwap(nil, am) {
		return a.metrics.Load()
	}
	return am
}

// requests is the app's counter of answers with this status code.
func (am *appMetrics) requests(code int) prometheus.Counter {
	i := code - 100
	if i < 0 || i >= len(am.codes) {
		return am.vecs.requests.WithLabelValues(am.app.key.Namespace, am.app.key.Name, strconv.Itoa(code))
	}
	if c := am.codes[i].Load(); c != nil {
		return c.Counter
	}
	c := &codeCounter{am.vecs.requests.WithLabelValues(am.app.key.Namespace, am.app.key.Name, strconv.Itoa(code))}
	am.codes[i].Store(c)
	return c.Counter
}

// forget deletes the series of an app no longer routed.
func (m *Metrics) forget(a *app) {
	m.inFlight.DeleteLabelValues(a.key.Namespace, a.key.Name)
	m.held.DeleteLabelValues(a.key.Namespace, a.key.Name)
}
