package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The upstream HPA controller (in kube-controller-manager) and Spinscale
// each scale their own copy of the same app under the same steady load,
// the HPA through an autoscaling/v2 object equivalent to the annotations.
// They must settle on the same replica count.
func TestSettlesLikeTheRealHPA(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "by-spinscale", 1, cpuAnnotations(1, 10, 50)))
	createDeployment(t, spinDeployment(ns, "by-hpa", 1, nil))
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "by-hpa"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "by-hpa"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)},
			}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	startLoad(t, ns, "by-spinscale", 330)
	startLoad(t, ns, "by-hpa", 330)
	startAutoscaler(t, ns)

	// ceil(330 / 50) = 7 for both: 1 → 4 (capped), 82.5% on 4 → ceil(6.6) = 7.
	tSpin := waitReplicas(t, ns, "by-spinscale", 4*time.Minute, "spinscale settles", func(r int32) bool { return r == 7 })
	tHPA := waitReplicas(t, ns, "by-hpa", 4*time.Minute, "the HPA settles", func(r int32) bool { return r == 7 })
	t.Logf("reached 7 replicas: spinscale after %s, HPA %s later", tSpin.Round(time.Second), tHPA.Round(time.Second))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		require.Equal(t, replicas(t, ns, "by-hpa"), replicas(t, ns, "by-spinscale"), "both hold the same count under steady load")
		time.Sleep(2 * time.Second)
	}
}
