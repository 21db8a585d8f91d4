package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/status"
)

// Shadow mode beside the real HPA (kube-controller-manager's): the HPA
// scales the app, Spinscale decides for it at every interval, writes
// nothing, and reports how its decisions compare with the HPA's moves.
func TestShadowBesideTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "web", 1, cpuAnnotations(1, 10, 50, "spinscale.dev/shadow", "true")))
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)},
			}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	startLoad(t, ns, "web", 330)
	addr := closedAddress(t)
	startAutoscaler(t, ns, "--set", "server.metricsAddress="+addr)

	// The HPA takes the app to ceil(330/50) = 7; Spinscale asked for the
	// same moves in shadow.
	waitReplicas(t, ns, "web", 6*time.Minute, "the HPA scales the app", func(r int32) bool { return r == 7 })
	var list status.List
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + addr + status.Path)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		list = status.List{}
		if json.NewDecoder(res.Body).Decode(&list) != nil || len(list.Apps) != 1 || list.Apps[0].Shadow == nil {
			return false
		}
		sh := list.Apps[0].Shadow
		return sh.Sooner+sh.Later+sh.Missed > 0 && sh.LiveReplicas == 7
	}, time.Minute, time.Second, "the shadow comparison sees the HPA's moves: %+v", list)
	app := list.Apps[0]
	assert.Equal(t, "shadow", app.State)
	t.Logf("shadow beside the HPA: %+v", *app.Shadow)

	res, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), `spinscale_shadow_decisions_total{comparison=`)
	assert.Contains(t, string(body), `spinscale_shadow_lead_seconds_count{deployment="web"`)

	d, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	for _, f := range d.ManagedFields {
		assert.NotEqual(t, actuator.FieldManager, f.Manager, "Spinscale never wrote the Deployment")
	}
	for _, e := range spinscaleEvents(t, ns, "web") {
		assert.False(t, strings.Contains(e.Reason, "Refused") || strings.Contains(e.Reason, "Rescaled"), "no refusal and no scale: %s %s", e.Reason, e.Message)
	}
}
