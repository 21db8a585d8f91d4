package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// queueExporter serves one gauge, queue_length{queue="orders"}, the length
// of a work queue outside the app's pods: the kind of metric an app at
// zero can be woken by.
type queueExporter struct {
	length atomic.Int64
	srv    *httptest.Server
}

func startQueueExporter(t *testing.T, length int64) *queueExporter {
	t.Helper()
	q := &queueExporter{}
	q.length.Store(length)
	q.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE queue_length gauge\nqueue_length{queue=\"orders\"} %d\n", q.length.Load())
	}))
	t.Cleanup(q.srv.Close)
	return q
}

func (q *queueExporter) target() string { return strings.TrimPrefix(q.srv.URL, "http://") }

const queueQuery = `sum(queue_length{queue="orders"})`

// waitValue waits until query returns value.
func (p *promProcess) waitValue(t *testing.T, query string, value float64, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		n, sum, err := p.sum(query)
		return err == nil && n > 0 && sum == value, nil
	})
	require.NoError(t, err, "Prometheus never read %s = %v", query, value)
}

func scaledToZeroRecord(t *testing.T, ns, name string) string {
	t.Helper()
	d, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Annotations["spinscale.dev/scaled-to-zero"]
}

// A worker with min-replicas 0 goes to zero when its queue empties, and the
// record of that zero is on the Deployment, so a new controller process
// wakes it when work arrives: ceil(25 / 10) = 3 pods, HPA's rule at zero.
// A zero set by hand is not woken.
func TestScaleToZeroAndBackAcrossARestart(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	ann := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/min-replicas": "0", "spinscale.dev/max-replicas": "5",
		"spinscale.dev/prometheus-query": queueQuery, "spinscale.dev/prometheus-target-average-value": "10",
		"spinscale.dev/scale-down-stabilization": "4s",
	}
	createDeployment(t, spinDeployment(ns, "worker", 2, ann))
	queue := startQueueExporter(t, 0)
	prom := startPrometheus(t, queue.target())
	prom.waitValue(t, queueQuery, 0, time.Minute)

	p := startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url())
	took := waitReplicas(t, ns, "worker", 2*time.Minute, "to zero on an empty queue", func(r int32) bool { return r == 0 })
	t.Logf("2 → 0 in %s", took.Round(time.Second))
	record := scaledToZeroRecord(t, ns, "worker")
	_, err := time.Parse(time.RFC3339, record)
	require.NoError(t, err, "the record is the time of the scale to zero: %q", record)
	ev := waitEvent(t, ns, "worker", "SpinscaleRescaled", "→ 0", 30*time.Second)
	assert.Contains(t, ev.Message, "scaled to zero")
	t.Logf("Event: %s", ev.Message)
	holdReplicas(t, ns, "worker", 0, 6*time.Second, "an empty queue keeps the app at zero")

	// A new process (a restart, a new leader) knows the zero is its own.
	p.stop()
	queue.length.Store(25)
	prom.waitValue(t, queueQuery, 25, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url())
	took = waitReplicas(t, ns, "worker", 2*time.Minute, "woken: ceil(25/10) = 3", func(r int32) bool { return r == 3 })
	t.Logf("0 → 3 in %s after the restart", took.Round(time.Second))
	assert.Empty(t, scaledToZeroRecord(t, ns, "worker"), "waking clears the record")
	assert.Contains(t, waitEvent(t, ns, "worker", "SpinscaleRescaled", "0 → 3", 30*time.Second).Message, "woken from zero")
	holdReplicas(t, ns, "worker", 3, 6*time.Second, "25 waiting at 10 per pod is 3 pods")

	// Scaled to zero by hand: paused, though the queue asks for 3.
	scale, err := cluster.client.AppsV1().Deployments(ns).GetScale(context.Background(), "worker", metav1.GetOptions{})
	require.NoError(t, err)
	scale.Spec.Replicas = 0
	_, err = cluster.client.AppsV1().Deployments(ns).UpdateScale(context.Background(), "worker", scale, metav1.UpdateOptions{})
	require.NoError(t, err)
	holdReplicas(t, ns, "worker", 0, 8*time.Second, "a zero set by hand pauses scaling")
	assert.Empty(t, scaledToZeroRecord(t, ns, "worker"))
}

// min-replicas 0 on an app without a Prometheus metric is refused with a
// Warning naming the key, and the app is left as it is.
func TestScaleToZeroNeedsAPrometheusMetric(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "web", 2, cpuAnnotations(0, 5, 50)))
	startAutoscaler(t, ns)
	ev := waitEvent(t, ns, "web", "SpinscaleInvalidAnnotations", `spinscale.dev/min-replicas: "0": 0 needs a Prometheus metric`, time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	holdReplicas(t, ns, "web", 2, 4*time.Second, "an invalid app is left untouched")
}

// A metric with its own fallback (KEP-5679): while it fails, the app holds;
// once it has failed for fallbackAfter, its proposal is the fallback count
// and the app scales to it, the working metric still counting. The
// Warning says the fallback is active.
func TestMetricFallbackOnARealPrometheus(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	ann := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "6",
		"spinscale.dev/metrics": "- name: queue\n  query: " + queueQuery + "\n  targetAverageValue: 10\n" +
			"- name: backlog\n  query: sum(no_such_metric)\n  targetValue: 5\n  fallbackReplicas: 4\n  fallbackAfter: 6s\n",
	}
	createDeployment(t, spinDeployment(ns, "worker", 2, ann))
	queue := startQueueExporter(t, 15) // ceil(15/10) = 2: on target
	prom := startPrometheus(t, queue.target())
	prom.waitValue(t, queueQuery, 15, time.Minute)
	start := time.Now()
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url())
	waitEvent(t, ns, "worker", "SpinscaleMetricsDegraded", "spinscale.dev/metrics[backlog]: no data", time.Minute)
	took := waitReplicas(t, ns, "worker", 2*time.Minute, "up to the backlog metric's fallback", func(r int32) bool { return r == 4 })
	assert.GreaterOrEqual(t, time.Since(start), 6*time.Second, "not before fallbackAfter")
	t.Logf("2 → 4 %s after start (fallbackAfter 6s)", took.Round(time.Second))
	ev := waitEvent(t, ns, "worker", "SpinscaleMetricsDegraded", "(fallback 4 active)", 30*time.Second)
	t.Logf("Warning: %s", ev.Message)
	holdReplicas(t, ns, "worker", 4, 6*time.Second, "the fallback keeps proposing 4")
}
