package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/bench/internal/localcluster"
	"github.com/spinscale/spinscale/internal/podserve"
)

// startCluster runs up.sh without metrics-server (the activator and the
// HTTP metrics need none) in state. The caller calls Stop, also on error.
func startCluster(ctx context.Context, root, state string, portBase int) (*localcluster.Cluster, error) {
	return localcluster.Start(ctx, root, state, localcluster.Options{
		PortBase: portBase, Env: []string{"METRICS_SERVER=0"},
		QPS: 50, Burst: 100, UserAgent: "spinscale-bench-activator",
	})
}

// backendPort is the port podserve answers on for every pod.
const backendPort = 8080

// app is one HTTP app of the bench: a Deployment as spin-operator makes
// one, routed by the activator under host, and its Service.
type app struct {
	ns, name, host string
}

// createApp creates the Deployment (its pods taking startup to turn
// Ready) and its Service, with the port named http.
func createApp(ctx context.Context, c kubernetes.Interface, ns, name string, replicas int32, startup time.Duration, ann map[string]string) (app, error) {
	a := app{ns: ns, name: name, host: name + "." + ns + ".bench"}
	labels := map[string]string{"core.spinkube.dev/app-name": name}
	all := map[string]string{"spinscale.dev/enabled": "true", "spinscale.dev/http-hosts": a.host}
	for k, v := range ann {
		all[k] = v
	}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: name, Image: "ghcr.io/spinkube/containerd-shim-spin/examples/spin-rust-hello:v0.13.0",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
	}}}}
	if startup > 0 {
		tmpl.Annotations = map[string]string{"pod-ready.stage.kwok.x-k8s.io/delay": startup.String()}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: all, Labels: labels},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return a, fmt.Errorf("create deployment %s/%s: %w", ns, name, err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(backendPort)}}}}
	if _, err := c.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return a, fmt.Errorf("create service %s/%s: %w", ns, name, err)
	}
	return a, nil
}

func createNamespace(ctx context.Context, c kubernetes.Interface, ns string) error {
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// servePods runs podserve for the app's pods until ctx ends.
func servePods(ctx context.Context, c kubernetes.Interface, a app, m podserve.AddressMap, latency time.Duration) (*podserve.Server, error) {
	s, err := podserve.New(c, podserve.Config{Namespace: a.ns, Selector: "core.spinkube.dev/app-name=" + a.name,
		Map: m, Port: backendPort, Latency: latency})
	if err != nil {
		return nil, err
	}
	go func() { _ = s.Run(ctx) }()
	return s, nil
}

// waitServed waits until cond holds for the app's served pods.
func waitServed(ctx context.Context, s *podserve.Server, timeout time.Duration, cond func([]podserve.Pod) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.WaitFor(ctx, cond)
}

// process is a child process (the activator or the controller) with its
// output kept in a file.
type process struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string

	mu  sync.Mutex
	err error
}

func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &process{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{}), log: logPath}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		_ = f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL after 20 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// failed describes an early exit, with the end of the process's log.
func (p *process) failed() error {
	select {
	case <-p.exited:
	default:
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	data, _ := os.ReadFile(p.log)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, data)
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(ctx context.Context, p *process, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := p.failed(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s did not answer 200 within %s", p.name, url, timeout)
}
