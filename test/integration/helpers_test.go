package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

var (
	crdGVR     = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	spinAppGVR = schema.GroupVersionResource{Group: "core.spinkube.dev", Version: "v1alpha1", Resource: "spinapps"}
)

// applyYAMLFile creates the CRDs in a multi-document file and waits until
// they are served.
func applyYAMLFile(ctx context.Context, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s: only CRDs are supported, got %s", path, u.GetKind())
		}
		if _, err := cluster.dynamic.Resource(crdGVR).Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", u.GetName(), err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := cluster.dynamic.Resource(spinAppGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	name := "it-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + utilrand.String(4)
	_, err := cluster.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cluster.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// spinDeployment is a Deployment as spin-operator creates one for a SpinApp:
// named like the app, labelled core.spinkube.dev/app-name, selecting on two
// labels, with the app's deploymentAnnotations copied on.
func spinDeployment(ns, app string, replicas int32, ann map[string]string) *appsv1.Deployment {
	labels := map[string]string{"core.spinkube.dev/app-name": app, "core.spinkube.dev/app." + app + ".status": "ready"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: ns, Annotations: ann,
			Labels: map[string]string{"core.spinkube.dev/app-name": app}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: app, Image: "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
					}},
				},
			},
		},
	}
}

func createDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	_, err := cluster.client.AppsV1().Deployments(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)
}

func cpuAnnotations(minR, maxR, target int, extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/enabled":                "true",
		"spinscale.dev/min-replicas":           fmt.Sprint(minR),
		"spinscale.dev/max-replicas":           fmt.Sprint(maxR),
		"spinscale.dev/target-cpu-utilization": fmt.Sprint(target),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// load keeps a total emulated cpu usage spread evenly over an app's running
// pods, re-annotating them every two seconds, as a fixed amount of traffic
// would spread over however many pods there are.
type load struct {
	total atomic.Int64 // millicores
}

func startLoad(t *testing.T, ns, app string, milli int64) *load {
	t.Helper()
	l := &load{}
	l.total.Store(milli)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for {
			l.spread(ctx, ns, app)
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return l
}

func (l *load) set(milli int64) { l.total.Store(milli) }

func (l *load) spread(ctx context.Context, ns, app string) {
	pods, err := cluster.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + app})
	if err != nil {
		return
	}
	var running []corev1.Pod
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return
	}
	per := fmt.Sprintf("%dm", max(1, l.total.Load()/int64(len(running))))
	for _, p := range running {
		if p.Annotations["kwok.x-k8s.io/usage-cpu"] == per {
			continue
		}
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{"kwok.x-k8s.io/usage-cpu":%q}}}`, per)
		_, _ = cluster.client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	}
}

// proc is a running autoscaler process.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startAutoscaler runs `autoscaler run` against the test cluster, limited to
// the namespace, ticking every 2s, without leader election unless args
// turn it on. Its output is logged if the test fails. The tests hold the
// controller to HPA's rules, so the profile is hpa unless args set one
// (profile=default keeps the shipped default).
func startAutoscaler(t *testing.T, ns string, args ...string) *proc {
	t.Helper()
	base := []string{"run", "--kubeconfig", cluster.kubeconfig,
		"--set", "namespaces=" + ns, "--set", "interval=2s", "--set", "leaderElection.enabled=false",
		"--set", "server.metricsAddress=0", "--set", "server.healthAddress=0", "--set", "log.level=debug"}
	profile := "hpa"
	for i := 0; i+1 < len(args); i++ {
		if v, ok := strings.CutPrefix(args[i+1], "profile="); ok && args[i] == "--set" {
			profile = v
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	if profile != "default" {
		base = append(base, "--set", "profile="+profile)
	}
	p := &proc{cmd: exec.Command(cluster.autoscaler, append(base, args...)...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("autoscaler %v output:\n%s", args, p.output())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// kill ends the process without letting it clean up.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func replicas(t *testing.T, ns, name string) int32 {
	t.Helper()
	d, err := cluster.client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return *d.Spec.Replicas
}

// waitReplicas polls spec.replicas until cond holds, and returns when it did.
func waitReplicas(t *testing.T, ns, name string, timeout time.Duration, what string, cond func(int32) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last int32
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cluster.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = *d.Spec.Replicas
		return cond(last), nil
	})
	require.NoError(t, err, "waiting for %s/%s: %s (last replicas %d)", ns, name, what, last)
	return time.Since(start)
}

// holdReplicas asserts spec.replicas stays equal to want for the duration.
func holdReplicas(t *testing.T, ns, name string, want int32, d time.Duration, why string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		require.Equal(t, want, replicas(t, ns, name), why)
		time.Sleep(time.Second)
	}
}

// spinscaleEvents lists the Events Spinscale recorded on a Deployment.
func spinscaleEvents(t *testing.T, ns, name string) []corev1.Event {
	t.Helper()
	list, err := cluster.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Deployment,involvedObject.name=" + name,
	})
	require.NoError(t, err)
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Source.Component == "spinscale" || e.ReportingController == "spinscale" {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for a Spinscale Event with the reason whose message
// contains text.
func waitEvent(t *testing.T, ns, name, reason, text string, timeout time.Duration) corev1.Event {
	t.Helper()
	var found corev1.Event
	err := wait.PollUntilContextTimeout(context.Background(), time.Second, timeout, true, func(context.Context) (bool, error) {
		for _, e := range spinscaleEvents(t, ns, name) {
			if e.Reason == reason && strings.Contains(e.Message, text) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "waiting for event %s containing %q on %s/%s", reason, text, ns, name)
	return found
}

// createHPA makes an autoscaling/v2 HPA scale the Deployment of the same
// name on cpu utilization, between minR and maxR.
func createHPA(t *testing.T, ns, name string, minR, maxR, target int32) {
	t.Helper()
	_, err := cluster.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(context.Background(), &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			MinReplicas:    ptr.To(minR), MaxReplicas: maxR,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)},
			}}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}
