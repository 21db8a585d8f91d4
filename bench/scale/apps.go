package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/ptr"
)

// Labels of the bench's objects.
const (
	groupLabel = "bench.spinscale.dev/group" // spinscale or hpa
	appLabel   = "core.spinkube.dev/app-name"
	usageKey   = "kwok.x-k8s.io/usage-cpu"
)

// The two groups of apps.
const (
	groupSpinscale = "spinscale"
	groupHPA       = "hpa"
)

// appSpec is what every app of both groups shares.
type appSpec struct {
	pods           int32 // replicas before the step, also minReplicas
	maxReplicas    int32
	targetPercent  int32 // cpu utilization target
	requestMilli   int64 // cpu request per pod
	beforePercent  int64 // usage per pod before the step, percent of the request
	afterPercent   int64 // after the step
	expectReplicas int32 // the count both rules give after the step
}

// appRef names one app.
type appRef struct {
	namespace, name, group string
}

func (a appRef) key() string { return a.namespace + "/" + a.name }

// appsFor lays out n apps of each group over the namespaces, round robin.
func appsFor(n int, namespaces []string) []appRef {
	out := make([]appRef, 0, 2*n)
	for i := range n {
		ns := namespaces[i%len(namespaces)]
		out = append(out, appRef{ns, fmt.Sprintf("ss-%d", i), groupSpinscale}, appRef{ns, fmt.Sprintf("hpa-%d", i), groupHPA})
	}
	return out
}

// deployment is an app as spin-operator would create it; Spinscale's apps
// carry its annotations, with the hpa profile so that both groups follow
// the same rules.
func deployment(a appRef, s appSpec) *appsv1.Deployment {
	labels := map[string]string{appLabel: a.name, groupLabel: a.group}
	var ann map[string]string
	if a.group == groupSpinscale {
		ann = map[string]string{
			"spinscale.dev/enabled":                "true",
			"spinscale.dev/profile":                "hpa",
			"spinscale.dev/min-replicas":           fmt.Sprint(s.pods),
			"spinscale.dev/max-replicas":           fmt.Sprint(s.maxReplicas),
			"spinscale.dev/target-cpu-utilization": fmt.Sprint(s.targetPercent),
		}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.namespace, Labels: labels, Annotations: ann},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(s.pods),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    *resource.NewMilliQuantity(s.requestMilli, resource.DecimalSI),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
				}}},
			},
		},
	}
}

// hpa is the autoscaling/v2 object equivalent to the annotations.
func hpa(a appRef, s appSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: a.name},
			MinReplicas:    ptr.To(s.pods), MaxReplicas: s.maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name:   corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(s.targetPercent)},
			}}},
		},
	}
}

// parallel runs fn for 0..n-1 on workers goroutines; it stops early when
// ctx ends and returns the first error (the others are counted).
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("%d of %d failed, first: %w", failed.Load(), n, first)
	}
	return ctx.Err()
}

// createApps creates the namespaces, every Deployment and, for the hpa
// group, its HorizontalPodAutoscaler.
func createApps(ctx context.Context, client kubernetes.Interface, namespaces []string, apps []appRef, s appSpec) error {
	for _, ns := range namespaces {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	return parallel(ctx, len(apps), 16, func(ctx context.Context, i int) error {
		a := apps[i]
		if _, err := client.AppsV1().Deployments(a.namespace).Create(ctx, deployment(a, s), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment %s: %w", a.key(), err)
		}
		if a.group == groupHPA {
			if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(a.namespace).Create(ctx, hpa(a, s), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create hpa %s: %w", a.key(), err)
			}
		}
		return nil
	})
}

// podRef names one pod.
type podRef struct{ namespace, name string }

// runningPods lists the Running, Ready pods of the bench's apps.
func runningPods(ctx context.Context, client kubernetes.Interface, namespaces []string) ([]podRef, error) {
	return runningPodsMatching(ctx, client, namespaces, groupLabel)
}

// runningPodsMatching lists the Running and Ready pods of the namespaces
// that match a label selector.
func runningPodsMatching(ctx context.Context, client kubernetes.Interface, namespaces []string, selector string) ([]podRef, error) {
	var out []podRef
	for _, ns := range namespaces {
		list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", ns, err)
		}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
				out = append(out, podRef{p.Namespace, p.Name})
			}
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitPods polls until want pods are Running and Ready, for at most timeout.
func waitPods(ctx context.Context, client kubernetes.Interface, namespaces []string, want int, timeout time.Duration) ([]podRef, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := 0
	for {
		pods, err := runningPods(ctx, client, namespaces)
		if err == nil {
			last = len(pods)
			if last >= want {
				return pods, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d pods Running and Ready after %s", last, want, timeout)
		case <-time.After(3 * time.Second):
		}
	}
}

// waitUsage polls metrics.k8s.io until every listed pod reports a cpu
// usage in [lo, hi] millicores, for at most timeout.
func waitUsage(ctx context.Context, mc metricsclient.Interface, namespaces []string, pods []podRef, lo, hi int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := map[podRef]bool{}
	for _, p := range pods {
		want[p] = true
	}
	ok := 0
	for {
		ok = 0
		for _, ns := range namespaces {
			list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: groupLabel})
			if err != nil {
				continue
			}
			for _, pm := range list.Items {
				var sum int64
				for _, c := range pm.Containers {
					sum += c.Usage.Cpu().MilliValue()
				}
				if want[podRef{pm.Namespace, pm.Name}] && sum >= lo && sum <= hi {
					ok++
				}
			}
		}
		if ok >= len(want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metrics.k8s.io: %d of %d pods at %d-%dm after %s", ok, len(want), lo, hi, timeout)
		case <-time.After(5 * time.Second):
		}
	}
}
