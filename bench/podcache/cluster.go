package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/bench/internal/localcluster"
)

// startCluster runs up.sh in a fresh state directory under dir: no
// metrics-server and no custom metrics adapter (the controller caches pods
// without metrics), kube-controller-manager with a client fast enough to
// create thousands of pods a minute. The caller must call Stop, also when
// startCluster fails.
func startCluster(ctx context.Context, root, dir string, portBase, nodes, perNode int) (*localcluster.Cluster, error) {
	return localcluster.Start(ctx, root, filepath.Join(dir, "cluster"), localcluster.Options{
		PortBase: portBase,
		Env: []string{
			"COMPONENTS=etcd kube-apiserver kube-controller-manager kube-scheduler kwok",
			"METRICS_SERVER=0", "CUSTOM_METRICS_ADAPTER=0",
			"KCM_CONTROLLERS=*,-horizontalpodautoscaling",
			"KCM_EXTRA_ARGS=--kube-api-qps=400 --kube-api-burst=800 --concurrent-replicaset-syncs=10",
			"NODES=" + strconv.Itoa(nodes), "NODE_PODS=" + strconv.Itoa(perNode),
			"NODE_CPU=1000", "NODE_MEMORY=4Ti"},
		QPS: 100, Burst: 200, UserAgent: "spinscale-bench-podcache",
	})
}

// createObjects creates the namespaces, the apps (as spin-operator would,
// with Spinscale's annotations) and the unrelated Deployments.
func createObjects(ctx context.Context, client kubernetes.Interface, l layout) error {
	for _, ns := range l.namespaces {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	for _, a := range l.apps {
		if _, err := client.AppsV1().Deployments(a.namespace).Create(ctx, appDeployment(a, l.appPods), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create app %s/%s: %w", a.namespace, a.name, err)
		}
	}
	for _, f := range l.fillers {
		if _, err := client.AppsV1().Deployments(f.namespace).Create(ctx, fillerDeployment(f), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Deployment %s/%s: %w", f.namespace, f.name, err)
		}
	}
	return nil
}

// appDeployment is a Spin app as spin-operator creates it (its pods carry
// SpinKube's app label), opted in with a cpu target.
func appDeployment(a appRef, pods int) *appsv1.Deployment {
	labels := map[string]string{appLabel: a.name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.namespace, Labels: labels, Annotations: map[string]string{
			"spinscale.dev/enabled":                "true",
			"spinscale.dev/min-replicas":           strconv.Itoa(pods),
			"spinscale.dev/max-replicas":           strconv.Itoa(pods * 3),
			"spinscale.dev/target-cpu-utilization": "50",
		}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(pods)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("100m"),
						corev1.ResourceMemory: resource.MustParse("64Mi"),
					}},
				}}},
			},
		},
	}
}

// fillerDeployment is an ordinary workload without SpinKube's label,
// pinned to its node, as big a pod as a typical one (labels, a container
// with requests, env and a port).
func fillerDeployment(f filler) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": f.name, "app.kubernetes.io/part-of": "unrelated"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: f.name, Namespace: f.namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(f.replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName: f.node,
					Containers: []corev1.Container{{
						Name: "main", Image: "registry.example/unrelated/" + f.name + ":1.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						Env:   []corev1.EnvVar{{Name: "MODE", Value: "serve"}},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("10m"),
							corev1.ResourceMemory: resource.MustParse("16Mi"),
						}},
					}},
				},
			},
		},
	}
}

// waitRunning polls (every 5 s, at most timeout) until the namespaces hold
// want Running pods, and returns their count.
func waitRunning(ctx context.Context, client kubernetes.Interface, namespaces []string, want int, timeout time.Duration, logf func(string, ...any)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last, lastLog := 0, time.Now()
	for {
		n, err := runningPods(ctx, client, namespaces)
		if err == nil {
			last = n
			if n >= want {
				return n, nil
			}
		}
		if time.Since(lastLog) >= 30*time.Second {
			logf("%d of %d pods Running", last, want)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("%d of %d pods Running after %s", last, want, timeout)
		case <-time.After(5 * time.Second):
		}
	}
}

// runningPods counts the Running pods of the namespaces, listing in pages.
func runningPods(ctx context.Context, client kubernetes.Interface, namespaces []string) (int, error) {
	n := 0
	err := eachPod(ctx, client, namespaces, "", func(p *corev1.Pod) {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			n++
		}
	})
	return n, err
}

// countPods counts the pods of the namespaces a label selector matches.
func countPods(ctx context.Context, client kubernetes.Interface, namespaces []string, selector string) (int, error) {
	n := 0
	err := eachPod(ctx, client, namespaces, selector, func(*corev1.Pod) { n++ })
	return n, err
}

func eachPod(ctx context.Context, client kubernetes.Interface, namespaces []string, selector string, fn func(*corev1.Pod)) error {
	for _, ns := range namespaces {
		opts := metav1.ListOptions{LabelSelector: selector, Limit: 2000}
		for page := 0; page < 1000; page++ {
			list, err := client.CoreV1().Pods(ns).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("list pods in %s: %w", ns, err)
			}
			for i := range list.Items {
				fn(&list.Items[i])
			}
			if list.Continue == "" {
				break
			}
			opts.Continue = list.Continue
		}
	}
	return nil
}
