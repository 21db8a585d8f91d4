package integration

import (
	"bytes"
	"context"
	"encoding/json"
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
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
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
	milli   atomic.Int64
	lastErr atomic.Pointer[string] // the last failed round, logged if the test fails
}

func (f *feed) set(milli int64) { f.milli.Store(milli) }

// feedFor bounds every feed in time (at most 600 rounds); no test runs
// this long.
const feedFor = 10 * time.Minute

// startFeed runs write every second until the test ends (or feedFor).
func startFeed(t *testing.T, milli int64, write func(ctx context.Context, milli int64) error) *feed {
	t.Helper()
	f := &feed{}
	f.set(milli)
	ctx, cancel := context.WithTimeout(context.Background(), feedFor)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		if e := f.lastErr.Load(); e != nil && t.Failed() {
			t.Logf("last failed write to the metrics adapter: %s", *e)
		}
	})
	go func() {
		defer close(done)
		for {
			if err := write(ctx, f.milli.Load()); err != nil && ctx.Err() == nil {
				msg := time.Now().Format(time.TimeOnly) + " " + err.Error()
				f.lastErr.Store(&msg)
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
		running, err := runningPods(ctx, ns, app)
		if err != nil {
			return err
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

// runningPods names the app's running pods; none is an error.
func runningPods(ctx context.Context, ns, app string) ([]string, error) {
	pods, err := cluster.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + app})
	if err != nil {
		return nil, err
	}
	var running []string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p.Name)
		}
	}
	if len(running) == 0 {
		return nil, fmt.Errorf("no running pods of %s/%s", ns, app)
	}
	return running, nil
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

// The scale-down window of the side-by-side tests, for both autoscalers:
// HPA's default 5 minutes would make the tests wait for nothing.
const parityDownWindow = 10

func parityBehavior() *autoscalingv2.HorizontalPodAutoscalerBehavior {
	return &autoscalingv2.HorizontalPodAutoscalerBehavior{
		ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](parityDownWindow)},
	}
}

// metricAnnotations enables Spinscale on an app with one entry of the
// metrics list and the side-by-side tests' behavior.
func metricAnnotations(minR, maxR int, entry string) map[string]string {
	return map[string]string{
		"spinscale.dev/enabled":      "true",
		"spinscale.dev/min-replicas": strconv.Itoa(minR),
		"spinscale.dev/max-replicas": strconv.Itoa(maxR),
		"spinscale.dev/behavior":     fmt.Sprintf("scaleDown: {stabilizationWindowSeconds: %d}", parityDownWindow),
		"spinscale.dev/metrics":      entry,
	}
}

// parityStep sets the metric values, then both apps must settle on want.
type parityStep struct {
	what string
	set  func()
	want int32
}

// sideBySide runs Spinscale (hpa profile) on the app by-spinscale while the
// real HPA scales its twin by-hpa on the same metric values, and checks
// after each step that both settle on the step's count and agree.
func sideBySide(t *testing.T, ns string, steps ...parityStep) {
	t.Helper()
	startAutoscaler(t, ns)
	apps := []string{"by-spinscale", "by-hpa"}
	for _, s := range steps {
		s.set()
		start := time.Now()
		took := map[string]time.Duration{}
		last := map[string]int32{}
		// The HPA syncs every 15s and each step may need two of its syncs
		// (new pods, then their values); the bound leaves room for a loaded
		// machine.
		err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
			for _, app := range apps {
				r := replicas(t, ns, app)
				last[app] = r
				if _, ok := took[app]; !ok && r == s.want {
					took[app] = time.Since(start)
				}
				if r != s.want {
					delete(took, app)
				}
			}
			return len(took) == len(apps), nil
		})
		require.NoError(t, err, "%s: both should settle on %d (replicas %v)", s.what, s.want, last)
		// Both agree a little later too: neither is still on its way elsewhere.
		time.Sleep(3 * time.Second)
		require.Equal(t, s.want, replicas(t, ns, "by-spinscale"), "%s: Spinscale holds", s.what)
		require.Equal(t, s.want, replicas(t, ns, "by-hpa"), "%s: the HPA holds", s.what)
		t.Logf("%s: both at %d (spinscale after %s, HPA after %s)", s.what, s.want,
			took["by-spinscale"].Round(time.Second), took["by-hpa"].Round(time.Second))
	}
}

// The three load steps of every side-by-side test, as totals against a
// target of 500m per pod: 2000m → 4 (1 → 4 in one step, within the
// default max(4 pods, 100 %) per 15s), 3500m → 7, 1000m → 2.
var parityTotals = []struct {
	milli int64
	want  int32
}{{2000, 4}, {3500, 7}, {1000, 2}}

// totalSteps are the parity steps of parityTotals, each setting the total
// of every feed.
func totalSteps(feeds ...*feed) []parityStep {
	var steps []parityStep
	for _, p := range parityTotals {
		steps = append(steps, parityStep{what: fmt.Sprintf("%dm in total", p.milli), want: p.want, set: func() {
			for _, f := range feeds {
				f.set(p.milli)
			}
		}})
	}
	return steps
}

// A Pods metric, requests per second of each pod, against an average of
// 500m per pod: each app's pods share the same total.
func TestCustomPodsMetricScalesLikeTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "by-spinscale", 1, metricAnnotations(1, 10,
		"- name: rps\n  type: pods\n  metric: requests_per_second\n  targetAverageValue: 500m\n")))
	createDeployment(t, spinDeployment(ns, "by-hpa", 1, nil))
	createMetricsHPA(t, ns, "by-hpa", 1, 10, parityBehavior(), podsMetric("requests_per_second", "500m"))
	feeds := []*feed{
		feedPodMetric(t, ns, "by-spinscale", "requests_per_second", 0),
		feedPodMetric(t, ns, "by-hpa", "requests_per_second", 0),
	}
	sideBySide(t, ns, totalSteps(feeds...)...)
}

// An Object metric against a Value target: each app's Deployment carries a
// gauge that is the total over the app's running pods (as an ingress
// reports requests per replica), so the HPA's rule, current × value /
// target, gives total / 500m as with the Pods metric.
func TestObjectMetricScalesLikeTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "by-spinscale", 1, metricAnnotations(1, 10,
		"- name: per-replica\n  type: object\n  metric: requests_per_replica\n"+
			"  describedObject: {apiVersion: apps/v1, kind: Deployment, name: by-spinscale}\n  targetValue: 500m\n")))
	createDeployment(t, spinDeployment(ns, "by-hpa", 1, nil))
	createMetricsHPA(t, ns, "by-hpa", 1, 10, parityBehavior(),
		objectMetric("apps/v1", "Deployment", "by-hpa", "requests_per_replica", value("500m")))
	var feeds []*feed
	for _, app := range []string{"by-spinscale", "by-hpa"} {
		feeds = append(feeds, startFeed(t, 0, func(ctx context.Context, total int64) error {
			running, err := runningPods(ctx, ns, app)
			if err != nil {
				return err
			}
			per := fmt.Sprintf("%dm", total/int64(len(running)))
			return writeMetric(ctx, t, objectMetricPath(ns, "deployments.apps", app, "requests_per_replica"), per)
		}))
	}
	sideBySide(t, ns, totalSteps(feeds...)...)
}

// An External metric against an AverageValue target: both apps read the
// very same series, messages in one queue, at 10 per pod: 40 → 4, 70 → 7,
// 20 → 2. A second series of the same metric (another queue) is left out
// by the selector.
func TestExternalMetricScalesLikeTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "by-spinscale", 1, metricAnnotations(1, 10,
		"- name: backlog\n  type: external\n  metric: queue_messages\n"+
			"  selector: queue=orders\n  targetAverageValue: \"10\"\n")))
	createDeployment(t, spinDeployment(ns, "by-hpa", 1, nil))
	createMetricsHPA(t, ns, "by-hpa", 1, 10, parityBehavior(),
		externalMetric("queue_messages", map[string]string{"queue": "orders"}, averageValue("10")))
	orders := feedExternalMetric(t, ns, "queue_messages", "queue=orders", 0)
	feedExternalMetric(t, ns, "queue_messages", "queue=returns", 90_000)
	var steps []parityStep
	for _, p := range parityTotals {
		milli := p.milli * 20 // 2000m → 40
		steps = append(steps, parityStep{what: fmt.Sprintf("%d messages", milli/1000), want: p.want, set: func() { orders.set(milli) }})
	}
	sideBySide(t, ns, steps...)
}

// With the adapter down, an app on a custom metric holds however its load
// drops and says so with one Warning; when the adapter is back (and is
// written to again) the app follows its metric. The test stops a cluster
// component, so it does not run in parallel.
func TestCustomMetricsAdapterDownHoldsThenRecovers(t *testing.T) {
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "shop", 2, metricAnnotations(1, 10,
		"- name: rps\n  type: pods\n  metric: requests_per_second\n  targetAverageValue: 500m\n")))
	f := feedPodMetric(t, ns, "shop", "requests_per_second", 2000)
	waitPodsMetricServed(t, ns, "shop", "requests_per_second", 2)
	startAutoscaler(t, ns)
	waitReplicas(t, ns, "shop", time.Minute, "scale up to 2000m / 500m = 4 while the adapter serves", func(r int32) bool { return r == 4 })
	require.Empty(t, warningMessages(t, ns, "shop"), "no Warning while the adapter serves")

	stopComponent(t, "custom-metrics-adapter")
	t.Cleanup(func() { startComponents(t) })
	f.set(500) // 1 pod's worth, unseen while the adapter is down
	ev := waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "spinscale.dev/metrics[rps]: custom.metrics.k8s.io unavailable", time.Minute)
	require.Equal(t, corev1.EventTypeWarning, ev.Type)
	t.Logf("Warning: %s", ev.Message)
	holdReplicas(t, ns, "shop", 4, 25*time.Second, fmt.Sprintf("no scale-down while the adapter is down (window %ds)", parityDownWindow))
	require.Equal(t, []string{ev.Message}, warningMessages(t, ns, "shop"), "one Warning for the outage, once")

	startComponents(t)
	took := waitReplicas(t, ns, "shop", 2*time.Minute, "scale down to 1 once the adapter serves again", func(r int32) bool { return r == 1 })
	t.Logf("adapter back: 4 → 1 after %s", took.Round(time.Second))
	require.Equal(t, []string{ev.Message}, warningMessages(t, ns, "shop"), "still the one Warning: none on the way back")
}

// waitPodsMetricServed waits until kube-apiserver serves a Pods metric of
// the app for n pods.
func waitPodsMetricServed(t *testing.T, ns, app, metric string, n int) {
	t.Helper()
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/" + metric
	var got int
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var list cmv1beta2.MetricValueList
		raw, err := cluster.client.CoreV1().RESTClient().Get().AbsPath(path).
			Param("labelSelector", "core.spinkube.dev/app-name="+app).DoRaw(ctx)
		if err != nil || json.Unmarshal(raw, &list) != nil {
			return false, nil
		}
		got = len(list.Items)
		return got == n, nil
	})
	require.NoError(t, err, "%s of %s/%s served for %d pods (last %d)", metric, ns, app, n, got)
}

// warningMessages lists the messages of Spinscale's Warning Events on a
// Deployment, each as many times as it was counted.
func warningMessages(t *testing.T, ns, name string) []string {
	t.Helper()
	var out []string
	for _, e := range spinscaleEvents(t, ns, name) {
		if e.Type != corev1.EventTypeWarning {
			continue
		}
		for range max(e.Count, 1) {
			out = append(out, e.Message)
		}
	}
	return out
}
