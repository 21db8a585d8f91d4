package annotations

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirstMetricName(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{`traefik_service_requests_total`, "traefik_service_requests_total"},
		{`sum(rate(traefik_service_requests_total{service=~"apps-shop-80@kubernetes(crd)?"}[1m]))`, "traefik_service_requests_total"},
		{`sum by (k8s_pod_name) (rate(spin_request_count_total{app_id="shop"}[1m]))`, "spin_request_count_total"},
		{`sum(rate(spin_request_count_total[1m])) by (k8s_pod_name)`, "spin_request_count_total"},
		{`sum without(instance, job)(rate(x[5m] offset 1h))`, "x"},
		{`histogram_quantile(0.99, sum by (le) (rate(latency_bucket[1m])))`, "latency_bucket"},
		{`max_over_time(queue:depth:sum[5m:30s]) * on(app) group_left(team) app_info`, "queue:depth:sum"},
		{`sum(rate(nginx_ingress_controller_requests{ingress="shop", path="/{x}"}[1m])) or vector(0)`, "nginx_ingress_controller_requests"},
		{`label_replace(up, "a", "$1", "b", "(.*)")`, "up"},
		{"# a comment naming nothing\nsum(requests)", "requests"},
		{`1e3 * Inf + NaN`, ""},
		{`vector(1)`, ""},
		{`{__name__=~"spin_.*"}`, ""},
		{`sum(rate({"spin.request_count"}[1m]))`, ""},
		{`sum(rate(x{a="unclosed`, "x"},
		{``, ""},
	} {
		assert.Equal(t, tc.want, firstMetricName(tc.query), "%s", tc.query)
	}
}

// A single query's metric is named after its metric, unless it has none or
// the name is another metric's: then after the annotation.
func TestPrometheusQueryMetricName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"the query's metric", []string{"prometheus-query", "sum(rate(spin_request_count_total[1m]))"}, "spin_request_count_total"},
		{"no metric selected by name", []string{"prometheus-query", "vector(1)"}, KeyPrometheusQuery},
		{"a resource metric's name", []string{"prometheus-query", "max(cpu)"}, KeyPrometheusQuery},
		{"the name of a list entry", []string{"prometheus-query", "sum(rps)",
			"metrics", "- {name: rps, query: sum(other), targetValue: 1}"}, KeyPrometheusQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, err := Parse(ann(append([]string{"enabled", "true", "max-replicas", "5", "prometheus-target-value", "1"}, tc.extra...)...), defaults)
			require.NoError(t, err)
			require.NotEmpty(t, app.Spec.Metrics)
			assert.Equal(t, tc.want, app.Spec.Metrics[0].Name)
			assert.Equal(t, KeyPrometheusQuery, app.Spec.Metrics[0].Annotation)
		})
	}
}
