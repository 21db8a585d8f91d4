// Package spinemu emulates a Spin app's request counter as a real source
// exposes it, for the RPS demo (hack/demo-exporter) and the Prometheus
// integration tests. It spreads a total request rate evenly over the app's
// Running, Ready, not terminating pods, as a load balancer would, and serves
// the count in one of two shapes (Shape):
//
//   - Traefik: traefik_service_requests_total{service="<ns>-<app>-80@kubernetes",
//     code="200", method="GET", protocol="http"}, one counter for the app, as
//     the ingress in front of it counts the requests it forwards. It has no
//     pod label: queries over it are whole-app sums.
//   - Collector: spin_request_count_total{k8s_pod_name, k8s_namespace_name,
//     app_id, component_id, trigger_type="http"}, one counter per pod, as
//     Spin's spin.request_count reaches Prometheus through an OpenTelemetry
//     Collector with the k8sattributes processor and the prometheus exporter.
//
// Every sample carries its own timestamp (the scrape time, to the
// millisecond) and each counter grows by its share of the rate times the
// time since its previous sample, so Prometheus' rate() reads the configured
// rate exactly rather than with the jitter between Prometheus' clock and the
// exporter's.
package spinemu

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// Shape is the form in which an Exporter serves the request count.
type Shape string

const (
	// Traefik serves one counter for the whole app, labelled with the
	// Service Traefik forwards to (spin-operator's Service: the app's name,
	// port 80), as Traefik's Kubernetes Ingress provider names it.
	Traefik Shape = "traefik"
	// Collector serves one counter per pod, as the OpenTelemetry
	// Collector's prometheus exporter turns Spin's spin.request_count into
	// with resource_to_telemetry_conversion on.
	Collector Shape = "collector"
)

// Metric names of the shapes.
const (
	TraefikMetric   = "traefik_service_requests_total"
	CollectorMetric = "spin_request_count_total"
)

// ParseShape returns the shape named s.
func ParseShape(s string) (Shape, error) {
	switch Shape(s) {
	case Traefik, Collector:
		return Shape(s), nil
	}
	return "", fmt.Errorf("unknown shape %q: allowed %s, %s", s, Traefik, Collector)
}

// TraefikService is the service label Traefik's Kubernetes Ingress provider
// gives the requests it forwards to the app's Service on port 80.
func TraefikService(ns, app string) string {
	return fmt.Sprintf("%s-%s-80@kubernetes", ns, app)
}

// appCounter is the key of the one counter of the Traefik shape.
const appCounter = ""

// Exporter is an http.Handler serving /metrics.
type Exporter struct {
	ns, app string
	shape   Shape
	// Clock stamps the samples; New sets the real clock.
	Clock clock.PassiveClock

	mu       sync.Mutex
	total    float64 // requests per second over all pods
	pods     []string
	counters map[string]float64 // by pod, or appCounter
	last     map[string]time.Time
}

// New returns an exporter for the pods of app in namespace ns at a total
// rate of rps, serving the given shape.
func New(ns, app string, shape Shape, rps float64) *Exporter {
	return &Exporter{ns: ns, app: app, shape: shape, Clock: clock.RealClock{}, total: rps,
		counters: map[string]float64{}, last: map[string]time.Time{}}
}

// SetRate sets the total requests per second.
func (e *Exporter) SetRate(rps float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total = rps
}

// Refresh lists the app's pods that get traffic: Running, Ready and not
// terminating. On an error the previous list stays.
func (e *Exporter) Refresh(ctx context.Context, client kubernetes.Interface) error {
	list, err := client.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + e.app})
	if err != nil {
		return fmt.Errorf("list the pods of %s/%s: %w", e.ns, e.app, err)
	}
	var pods []string
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				pods = append(pods, p.Name)
			}
		}
	}
	sort.Strings(pods)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pods = pods
	return nil
}

// ServeHTTP serves the counters in Prometheus' text format.
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	now := e.Clock.Now().Truncate(time.Millisecond)
	var b strings.Builder
	e.mu.Lock()
	switch e.shape {
	case Collector:
		b.WriteString("# HELP " + CollectorMetric + " Number of requests handled by a Spin component.\n# TYPE " + CollectorMetric + " counter\n")
		for _, pod := range e.pods {
			v := e.advance(pod, e.total/float64(len(e.pods)), now)
			fmt.Fprintf(&b, "%s{app_id=%q,component_id=%q,k8s_namespace_name=%q,k8s_pod_name=%q,trigger_type=\"http\"} %s %d\n",
				CollectorMetric, e.app, e.app, e.ns, pod, v, now.UnixMilli())
		}
	default:
		// Only served requests count: none while the app has no ready
		// pod. The series appears with the first pod and stays.
		rate := e.total
		if len(e.pods) == 0 {
			rate = 0
		}
		_, seen := e.last[appCounter]
		if len(e.pods) > 0 || seen {
			b.WriteString("# HELP " + TraefikMetric + " How many HTTP requests processed on a service, partitioned by status code, protocol, and method.\n# TYPE " + TraefikMetric + " counter\n")
			v := e.advance(appCounter, rate, now)
			fmt.Fprintf(&b, "%s{code=\"200\",method=\"GET\",protocol=\"http\",service=%q} %s %d\n",
				TraefikMetric, TraefikService(e.ns, e.app), v, now.UnixMilli())
		}
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// advance grows counter key by rate times the time since its previous
// sample and returns it as text; a new counter starts at 0. e.mu is held.
func (e *Exporter) advance(key string, rate float64, now time.Time) string {
	if last, ok := e.last[key]; ok {
		e.counters[key] += rate * now.Sub(last).Seconds()
	}
	e.last[key] = now
	return strconv.FormatFloat(e.counters[key], 'f', -1, 64)
}
