package spinemu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

func pod(name string, phase corev1.PodPhase, ready bool, deleting bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"core.spinkube.dev/app-name": "web"}},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		p.Finalizers = []string{"x"}
	}
	return p
}

// The series of each shape, keyed by pod (Collector) or by the service
// label (Traefik).
var samples = map[Shape]*regexp.Regexp{
	Collector: regexp.MustCompile(`(?m)^spin_request_count_total\{app_id="web",component_id="web",k8s_namespace_name="ns",k8s_pod_name="([^"]+)",trigger_type="http"\} ([0-9.e+]+) ([0-9]+)$`),
	Traefik:   regexp.MustCompile(`(?m)^traefik_service_requests_total\{code="200",method="GET",protocol="http",service="([^"]+)"\} ([0-9.e+]+) ([0-9]+)$`),
}

func scrape(t *testing.T, e *Exporter) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	out := map[string]float64{}
	for _, m := range samples[e.shape].FindAllStringSubmatch(rec.Body.String(), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		require.NoError(t, err)
		out[m[1]] = v
	}
	return out
}

// Five pods of which only web-a and web-b are Running, Ready and not
// terminating.
func mixedPods() *fake.Clientset {
	return fake.NewClientset(
		pod("web-a", corev1.PodRunning, true, false),
		pod("web-b", corev1.PodRunning, true, false),
		pod("web-c", corev1.PodRunning, false, false),
		pod("web-d", corev1.PodPending, false, false),
		pod("web-e", corev1.PodRunning, true, true),
	)
}

// Only Running, Ready, not terminating pods get traffic, and the total rate
// is split evenly between them: at 100 requests/s, each of two pods counts
// 50 per second between its samples.
func TestCollectorSpreadsTheRateOverReadyPods(t *testing.T) {
	e := New("ns", "web", Collector, 100)
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	e.Clock = clk
	require.NoError(t, e.Refresh(context.Background(), mixedPods()))
	first := scrape(t, e)
	assert.Equal(t, map[string]float64{"web-a": 0, "web-b": 0}, first, "counters start at 0 for the ready pods only")
	clk.SetTime(clk.Now().Add(200 * time.Millisecond))
	second := scrape(t, e)
	assert.Equal(t, map[string]float64{"web-a": 10, "web-b": 10}, second, "50/s each for 0.2 s")
	e.SetRate(0)
	third := scrape(t, e)
	assert.Equal(t, second, third, "at rate 0 the counters stand still")

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/other", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}

// Traefik's shape is one counter for the app, named by its Service, that
// grows at the total rate however many pods serve it, and stands still
// while none does.
func TestTraefikCountsTheAppAsAWhole(t *testing.T) {
	e := New("ns", "web", Traefik, 100)
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	e.Clock = clk
	assert.Empty(t, scrape(t, e), "no series before the app has a ready pod")

	client := mixedPods()
	require.NoError(t, e.Refresh(context.Background(), client))
	const svc = "ns-web-80@kubernetes"
	assert.Equal(t, map[string]float64{svc: 0}, scrape(t, e))
	clk.SetTime(clk.Now().Add(200 * time.Millisecond))
	assert.Equal(t, map[string]float64{svc: 20}, scrape(t, e), "100/s for 0.2 s, over both pods")

	for _, name := range []string{"web-a", "web-b"} {
		require.NoError(t, client.CoreV1().Pods("ns").Delete(context.Background(), name, metav1.DeleteOptions{}))
	}
	require.NoError(t, e.Refresh(context.Background(), client))
	clk.SetTime(clk.Now().Add(time.Second))
	assert.Equal(t, map[string]float64{svc: 20}, scrape(t, e), "no ready pod: nothing served, the series stays")
}

func TestParseShape(t *testing.T) {
	for _, s := range []Shape{Traefik, Collector} {
		got, err := ParseShape(string(s))
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	_, err := ParseShape("nginx")
	assert.EqualError(t, err, `unknown shape "nginx": allowed traefik, collector`)
}
