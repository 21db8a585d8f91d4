package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/spinscale/spinscale/internal/recommender"
)

// metricsAPIServer is an API server on loopback that serves discovery and
// the two metrics APIs; registered says whether custom.metrics.k8s.io is
// in discovery, externalStatus is what external metrics requests get.
type metricsAPIServer struct {
	mu             sync.Mutex
	registered     bool
	externalStatus int
	requests       []string
}

func (s *metricsAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.URL.RequestURI())
	w.Header().Set("Content-Type", "application/json")
	write := func(v any) { _ = json.NewEncoder(w).Encode(v) }
	switch r.URL.Path {
	case "/api":
		write(metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	case "/api/v1":
		write(metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "pods", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list"}}}})
	case "/apis/custom.metrics.k8s.io/v1beta2":
		write(metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "custom.metrics.k8s.io/v1beta2"})
	case "/apis":
		list := metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
		if s.registered {
			gv := metav1.GroupVersionForDiscovery{GroupVersion: "custom.metrics.k8s.io/v1beta2", Version: "v1beta2"}
			list.Groups = append(list.Groups, metav1.APIGroup{Name: "custom.metrics.k8s.io", Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv})
		}
		write(list)
	case "/apis/custom.metrics.k8s.io/v1beta2/namespaces/apps/pods/*/packets-per-second":
		write(map[string]any{"kind": "MetricValueList", "apiVersion": "custom.metrics.k8s.io/v1beta2", "metadata": map[string]any{},
			"items": []any{
				map[string]any{"describedObject": map[string]any{"kind": "Pod", "name": "pod-0", "namespace": "apps"},
					"metric": map[string]any{"name": "packets-per-second"}, "timestamp": "2026-05-01T11:59:50Z", "value": "1500m"},
				map[string]any{"describedObject": map[string]any{"kind": "Pod", "name": "pod-1", "namespace": "apps"},
					"metric": map[string]any{"name": "packets-per-second"}, "timestamp": "2026-05-01T11:59:50Z", "windowSeconds": 30, "value": "2"},
			}})
	case "/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/queue_messages_ready":
		if s.externalStatus != http.StatusOK {
			w.WriteHeader(s.externalStatus)
			write(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
				Code: int32(s.externalStatus), Reason: metav1.StatusReasonServiceUnavailable, Message: "service unavailable"})
			return
		}
		write(map[string]any{"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": map[string]any{},
			"items": []any{
				map[string]any{"metricName": "queue_messages_ready", "timestamp": "2026-05-01T11:59:50Z", "value": "40"},
				map[string]any{"metricName": "queue_messages_ready", "timestamp": "2026-05-01T11:59:50Z", "value": "2500m"},
			}})
	default:
		w.WriteHeader(http.StatusNotFound)
		write(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
			Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: "the server could not find the requested resource"})
	}
}

func (s *metricsAPIServer) set(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	s.requests = nil
}

// The real clients against an API on loopback: the custom metrics API is
// found by discovery once registered (after Invalidate), the requests carry
// the app's pod selector and the metric selector as written, and a 503 of
// the aggregator is an unavailable API.
func TestMetricsAPIsThroughHTTP(t *testing.T) {
	backend := &metricsAPIServer{externalStatus: http.StatusOK}
	srv := httptest.NewServer(backend)
	defer srv.Close()
	m, err := NewMetricsAPIs(&rest.Config{Host: srv.URL}, nil)
	require.NoError(t, err)

	pods := recommender.MetricSpec{Source: recommender.SourcePods, Metric: "packets-per-second", Selector: "verb=GET"}
	external := recommender.MetricSpec{Source: recommender.SourceExternal, Metric: "queue_messages_ready", Selector: "queue=worker_tasks"}
	podsRead, externalRead := APIReadOf("apps", "app=web", &pods), APIReadOf("apps", "app=web", &external)

	// Not registered: the custom metrics API is unavailable; the external
	// one is read without discovery.
	got := m.Read(context.Background(), []APIRead{podsRead, externalRead})
	var ae *APIError
	require.ErrorAs(t, got[podsRead].Err, &ae)
	assert.Equal(t, KindUnavailable, ae.Kind)
	assert.Equal(t, "custom.metrics.k8s.io unavailable: no custom metrics API (custom.metrics.k8s.io) registered", recommender.Cause(ae))
	require.NoError(t, got[externalRead].Err)
	assert.Equal(t, int64(42500), got[externalRead].Value, "40 + 2.5, in milli-units")
	assert.True(t, got[externalRead].Timestamp.Equal(apiNow.Add(-10*time.Second)))

	// Registered later: found once the discovery is invalidated.
	backend.set(func() { backend.registered = true })
	m.Invalidate()
	got = m.Read(context.Background(), []APIRead{podsRead})
	require.NoError(t, got[podsRead].Err)
	require.True(t, got[podsRead].PerPod)
	require.Len(t, got[podsRead].Samples, 2)
	s0 := got[podsRead].Samples[0]
	assert.Equal(t, "pod-0", s0.Pod)
	assert.Equal(t, int64(1500), s0.Value)
	assert.Equal(t, podMetricWindow, s0.Window)
	assert.True(t, s0.Timestamp.Equal(apiNow.Add(-10*time.Second)))
	assert.Equal(t, int64(2000), got[podsRead].Samples[1].Value)
	assert.Equal(t, "30s", got[podsRead].Samples[1].Window.String())
	backend.mu.Lock()
	assert.Contains(t, backend.requests, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/apps/pods/%2A/packets-per-second?labelSelector=app%3Dweb&metricLabelSelector=verb%3DGET&timeout=5s")
	backend.mu.Unlock()

	// The aggregator answers 503: unavailable, with a stable summary.
	backend.set(func() { backend.externalStatus = http.StatusServiceUnavailable })
	got = m.Read(context.Background(), []APIRead{externalRead})
	require.ErrorAs(t, got[externalRead].Err, &ae)
	assert.Equal(t, "external.metrics.k8s.io unavailable: the APIService answers 503 or discovery lists no version of it: is its adapter running?", recommender.Cause(ae))
	backend.mu.Lock()
	assert.Equal(t, []string{"/apis/external.metrics.k8s.io/v1beta1/namespaces/apps/queue_messages_ready?labelSelector=queue%3Dworker_tasks&timeout=5s"}, backend.requests)
	backend.mu.Unlock()

	// An object whose kind the cluster does not know cannot be asked.
	object := recommender.MetricSpec{Source: recommender.SourceObject, Metric: "rps", Object: autoscalingv2Ref("networking.k8s.io/v1", "Ingress", "main-route")}
	objectRead := APIReadOf("apps", "app=web", &object)
	got = m.Read(context.Background(), []APIRead{objectRead})
	require.ErrorAs(t, got[objectRead].Err, &ae)
	assert.Equal(t, KindInvalid, ae.Kind, ae.Error())
}

func autoscalingv2Ref(apiVersion, kind, name string) autoscalingv2.CrossVersionObjectReference {
	return autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: name}
}
