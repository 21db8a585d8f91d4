package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// The cluster's custom-metrics-adapter (hack/cluster/metrics-adapter) serves
// custom.metrics.k8s.io and external.metrics.k8s.io through kube-apiserver;
// the tests write its values over its own HTTPS port on 127.0.0.1.

// Its port is PORT_BASE + 7 (hack/cluster/lib.sh).
const adapterPortOffset = 7

var adapterConn struct {
	once   sync.Once
	base   string
	client *http.Client
	err    error
}

// adapter returns the adapter's base URL and a client that presents the
// cluster's admin certificate.
func adapter(t *testing.T) (string, *http.Client) {
	t.Helper()
	adapterConn.once.Do(func() {
		raw, err := os.ReadFile(filepath.Join(cluster.state, "port-base"))
		if err != nil {
			adapterConn.err = fmt.Errorf("read the cluster's port base: %w", err)
			return
		}
		base, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			adapterConn.err = fmt.Errorf("port base %q: %w", raw, err)
			return
		}
		tlsConfig, err := rest.TLSConfigFor(cluster.rest)
		if err != nil {
			adapterConn.err = fmt.Errorf("TLS config of the kubeconfig: %w", err)
			return
		}
		adapterConn.base = fmt.Sprintf("https://127.0.0.1:%d", base+adapterPortOffset)
		adapterConn.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	})
	require.NoError(t, adapterConn.err)
	return adapterConn.base, adapterConn.client
}

// writeMetric POSTs one value (a quantity such as "250m") to a write path
// of the adapter.
func writeMetric(ctx context.Context, t *testing.T, path, value string) error {
	base, client := adapter(t)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(strconv.AppendQuote(nil, value)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("write %s = %s: %w", path, value, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("write %s = %s: %s: %s", path, value, resp.Status, body)
	}
	return nil
}

func podMetricPath(ns, pod, metric string) string {
	return "/write-metrics/namespaces/" + ns + "/pods/" + pod + "/" + metric
}

// objectMetricPath: resource as the API names it, e.g. "deployments.apps", "services".
func objectMetricPath(ns, resource, name, metric string) string {
	return "/write-metrics/namespaces/" + ns + "/" + resource + "/" + name + "/" + metric
}

// externalMetricPath: labels as "k=v,k2=v2" (may be empty).
func externalMetricPath(ns, metric, labels string) string {
	p := "/write-external-metrics/namespaces/" + ns + "/" + metric
	if labels != "" {
		p += "?labels=" + url.QueryEscape(labels)
	}
	return p
}

// feed keeps writing a metric value to the adapter, every second, as an
// exporter would; writes that fail (the adapter is down) are retried on the
// next round. The value is in milli-units.
type feed struct {
	milli  atomic.Int64
	writes atomic.Int64 // rounds in which every write succeeded
}

func (f *feed) set(milli int64) { f.milli.Store(milli) }

// feedFor bounds every feed in time; no test runs this long.
const feedFor = 10 * time.Minute

// startFeed runs write every second until the test ends (or feedFor).
func startFeed(t *testing.T, milli int64, write func(ctx context.Context, milli int64) error) *feed {
	t.Helper()
	f := &feed{}
	f.set(milli)
	ctx, cancel := context.WithTimeout(context.Background(), feedFor)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			if write(ctx, f.milli.Load()) == nil {
				f.writes.Add(1)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return f
}

// feedPodMetric spreads a total over the app's running pods, each pod
// getting total / pods of the Pods metric, as a fixed amount of traffic
// spreads over however many pods serve it.
func feedPodMetric(t *testing.T, ns, app, metric string, totalMilli int64) *feed {
	t.Helper()
	return startFeed(t, totalMilli, func(ctx context.Context, total int64) error {
		pods, err := cluster.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + app})
		if err != nil {
			return err
		}
		var running []string
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p.Name)
			}
		}
		if len(running) == 0 {
			return fmt.Errorf("no running pods of %s/%s", ns, app)
		}
		per := fmt.Sprintf("%dm", total/int64(len(running)))
		for _, pod := range running {
			if err := writeMetric(ctx, t, podMetricPath(ns, pod, metric), per); err != nil {
				return err
			}
		}
		return nil
	})
}

// feedObjectMetric writes one object's metric.
func feedObjectMetric(t *testing.T, ns, resource, name, metric string, milli int64) *feed {
	t.Helper()
	return startFeed(t, milli, func(ctx context.Context, v int64) error {
		return writeMetric(ctx, t, objectMetricPath(ns, resource, name, metric), fmt.Sprintf("%dm", v))
	})
}

// feedExternalMetric writes one series of an external metric.
func feedExternalMetric(t *testing.T, ns, metric, labels string, milli int64) *feed {
	t.Helper()
	return startFeed(t, milli, func(ctx context.Context, v int64) error {
		return writeMetric(ctx, t, externalMetricPath(ns, metric, labels), fmt.Sprintf("%dm", v))
	})
}

// createMetricsHPA makes an autoscaling/v2 HPA scale the Deployment of the
// same name on the given metrics, with HPA's default behavior unless one
// is given.
func createMetricsHPA(t *testing.T, ns, name string, minR, maxR int32, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior, metrics ...autoscalingv2.MetricSpec) {
	t.Helper()
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To(minR), MaxReplicas: maxR, Behavior: behavior, Metrics: metrics,
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func podsMetric(metric string, averageValue string) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: metric},
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse(averageValue))},
	}}
}

func objectMetric(apiVersion, kind, name, metric string, target autoscalingv2.MetricTarget) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
		DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: name},
		Metric:          autoscalingv2.MetricIdentifier{Name: metric},
		Target:          target,
	}}
}

func externalMetric(metric string, matchLabels map[string]string, target autoscalingv2.MetricTarget) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Metric: autoscalingv2.MetricIdentifier{Name: metric, Selector: &metav1.LabelSelector{MatchLabels: matchLabels}},
		Target: target,
	}}
}

func averageValue(q string) autoscalingv2.MetricTarget {
	return autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse(q))}
}

func value(q string) autoscalingv2.MetricTarget {
	return autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: ptr.To(resource.MustParse(q))}
}

// The real HPA controller reads Pods, Object and External metrics from the
// adapter through kube-apiserver's aggregation layer: the cluster serves
// what the side-by-side tests compare against.
func TestCustomMetricsReachTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "web", 1, nil))
	feedPodMetric(t, ns, "web", "requests_per_second", 2000)
	feedObjectMetric(t, ns, "deployments.apps", "web", "queue_depth", 3000)
	feedExternalMetric(t, ns, "queue_messages", "queue=orders", 30000)
	// Proposals: pods ceil(2000m / 500m) = 4; object 1 * 3 / 6 → 1;
	// external ceil(30 / 10) = 3. The largest, 4, wins.
	createMetricsHPA(t, ns, "web", 1, 10, nil,
		podsMetric("requests_per_second", "500m"),
		objectMetric("apps/v1", "Deployment", "web", "queue_depth", value("6")),
		externalMetric("queue_messages", map[string]string{"queue": "orders"}, averageValue("10")))
	waitReplicas(t, ns, "web", 2*time.Minute, "the HPA scales to 4 on the Pods metric", func(r int32) bool { return r == 4 })

	// Every metric is read: the status reports all three current values.
	var last *autoscalingv2.HorizontalPodAutoscalerStatus
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		hpa, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = &hpa.Status
		got := map[autoscalingv2.MetricSourceType]string{}
		for _, m := range hpa.Status.CurrentMetrics {
			switch m.Type {
			case autoscalingv2.PodsMetricSourceType:
				got[m.Type] = m.Pods.Current.AverageValue.String()
			case autoscalingv2.ObjectMetricSourceType:
				got[m.Type] = m.Object.Current.Value.String()
			case autoscalingv2.ExternalMetricSourceType:
				got[m.Type] = m.External.Current.AverageValue.String()
			}
		}
		// 2000m over 4 pods; 3; 30 over 4 pods.
		return got[autoscalingv2.PodsMetricSourceType] == "500m" && got[autoscalingv2.ObjectMetricSourceType] == "3" &&
			got[autoscalingv2.ExternalMetricSourceType] == "7500m", nil
	})
	require.NoError(t, err, "HPA status: %+v", last)
}
