// Package spinemu emulates the request counter of a Spin app's pods, for the
// RPS demo (hack/demo-exporter) and the Prometheus integration tests: it
// serves spin_http_requests_total{app, pod} for every Running, Ready, not
// terminating pod of the app, and spreads a total request rate evenly over
// them, as a load balancer would.
//
// Every sample carries its own timestamp (the scrape time, to the
// millisecond) and each counter grows by its pod's share of the rate times
// the time since that pod's previous sample, so Prometheus' rate() reads the
// configured rate exactly rather than with the jitter between Prometheus'
// clock and the exporter's.
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

// Exporter is an http.Handler serving /metrics.
type Exporter struct {
	app string
	// Clock stamps the samples; New sets the real clock.
	Clock clock.PassiveClock

	mu       sync.Mutex
	total    float64 // requests per second over all pods
	pods     []string
	counters map[string]float64
	last     map[string]time.Time
}

// New returns an exporter for the app's pods at a total rate of rps.
func New(app string, rps float64) *Exporter {
	return &Exporter{app: app, Clock: clock.RealClock{}, total: rps, counters: map[string]float64{}, last: map[string]time.Time{}}
}

// SetRate sets the total requests per second.
func (e *Exporter) SetRate(rps float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.total = rps
}

// Refresh lists the app's pods that get traffic: Running, Ready and not
// terminating. On an error the previous list stays.
func (e *Exporter) Refresh(ctx context.Context, client kubernetes.Interface, ns string) error {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + e.app})
	if err != nil {
		return fmt.Errorf("list the pods of %s/%s: %w", ns, e.app, err)
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
	b.WriteString("# HELP spin_http_requests_total Requests handled by the Spin app.\n# TYPE spin_http_requests_total counter\n")
	e.mu.Lock()
	for _, pod := range e.pods {
		if last, ok := e.last[pod]; ok {
			e.counters[pod] += e.total / float64(len(e.pods)) * now.Sub(last).Seconds()
		}
		e.last[pod] = now
		fmt.Fprintf(&b, "spin_http_requests_total{app=%q,pod=%q} %s %d\n", e.app, pod,
			strconv.FormatFloat(e.counters[pod], 'f', -1, 64), now.UnixMilli())
	}
	e.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}
