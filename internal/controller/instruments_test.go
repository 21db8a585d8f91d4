package controller

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stretchr/testify/assert"
)

func TestAPIResource(t *testing.T) {
	cases := []struct {
		name, path, group, resource string
	}{
		{"core, namespaced list", "/api/v1/namespaces/{namespace}/pods", "", "pods"},
		{"core, cluster-wide list", "/api/v1/pods", "", "pods"},
		{"named group, one object", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}", "apps", "deployments"},
		{"subresource", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "apps", "deployments/scale"},
		{"metrics", "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", "metrics.k8s.io", "pods"},
		{"events", "/api/v1/namespaces/{namespace}/events", "", "events"},
		{"lease", "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}", "coordination.k8s.io", "leases"},
		{"a namespace itself", "/api/v1/namespaces/{name}", "", "namespaces"},
		{"namespace status", "/api/v1/namespaces/{name}/status", "", "namespaces/status"},
		{"cluster-scoped subresource", "/api/v1/nodes/{name}/status", "", "nodes/status"},
		{"base path in front", "/prefix/apis/apps/v1/deployments", "apps", "deployments"},
		{"group discovery", "/apis/apps/v1", "apps", "other"},
		{"core discovery", "/api", "", "other"},
		{"version", "/version", "", "other"},
		{"empty", "", "", "other"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			group, resource := apiResource(tc.path)
			assert.Equal(t, tc.group, group)
			assert.Equal(t, tc.resource, resource)
		})
	}
}

func TestEachPassTimesItsPhases(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods = names
	h.usage.cpuMilli = 50
	h.ctl.Once(context.Background())
	h.clock.Step(15 * time.Second)
	h.ctl.Once(context.Background())
	for _, phase := range []string{"prepare", "reads", "decisions"} {
		assert.Equal(t, uint64(2), histogramCount(t, h.inst.TickPhase.WithLabelValues(phase).(prometheus.Histogram)), phase)
	}
}
