// Package statusclient is the client side of the status document a running
// controller serves (internal/status): it finds the leader, fetches the
// document, and renders it for people the way kubectl renders HPAs, for
// `autoscaler status` and `autoscaler shadow-report` (also run as `kubectl
// spinscale`). It knows the controller only through that document and the
// objects the chart creates: it must not import internal/controller or the
// decision engine.
package statusclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/spinscale/spinscale/internal/status"
)

// Source fetches the status document.
type Source interface {
	Fetch(ctx context.Context) (status.List, error)
}

// URL fetches the document straight from a controller's metrics address,
// e.g. through `kubectl port-forward`.
type URL struct {
	// Base is the address without the path, e.g. http://127.0.0.1:8080.
	Base   string
	Client *http.Client
}

// Fetch GETs Base + /apps.
func (u URL) Fetch(ctx context.Context) (status.List, error) {
	url := strings.TrimRight(u.Base, "/") + status.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return status.List{}, fmt.Errorf("status from %s: %w", url, err)
	}
	client := u.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return status.List{}, fmt.Errorf("status from %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return status.List{}, fmt.Errorf("status from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return status.List{}, fmt.Errorf("status from %s: %s: %s", url, resp.Status, firstLine(body))
	}
	return decode(body, url)
}

// maxDocument bounds what is read: 5,000 apps are a few MiB.
const maxDocument = 64 << 20

func decode(body []byte, from string) (status.List, error) {
	var l status.List
	if err := json.Unmarshal(body, &l); err != nil {
		return status.List{}, fmt.Errorf("status from %s: not a status document (%w): %s", from, err, firstLine(body))
	}
	return l, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Defaults of the chart: where the controller runs and how its pods and
// Lease are named.
const (
	DefaultNamespace = "spinscale-system"
	DefaultLeaseName = "spinscale"
	// DefaultSelector is the chart's selector label that does not depend
	// on the release name.
	DefaultSelector = "app.kubernetes.io/name=spinscale"
	// MetricsPort is the name of the container port serving /metrics and
	// /apps.
	MetricsPort = "metrics"
)

// Leader fetches the document from the leading controller through the API
// server's pod proxy, so nothing but a kubeconfig is needed: the Lease names
// the leader's pod, the pod's spec its metrics port. Without a Lease (leader
// election off, one replica) it takes the first Running pod of the
// controller. The pod found is kept for the next Fetch and looked up again
// after a failure.
type Leader struct {
	Client    kubernetes.Interface
	Namespace string
	LeaseName string
	Selector  string

	found *Endpoint
}

// Endpoint is the pod and port the document is read from.
type Endpoint struct {
	Pod  string
	Port string
	// Via says how the pod was found: "lease" or "pods".
	Via string
}

// ErrNoController is returned when neither a Lease nor a Running pod of
// the controller is found.
var ErrNoController = errors.New("no controller found")

// Fetch finds the leader (unless known) and GETs /apps through its pod's
// proxy.
func (l *Leader) Fetch(ctx context.Context) (status.List, error) {
	if l.found == nil {
		ep, err := l.Find(ctx)
		if err != nil {
			return status.List{}, err
		}
		l.found = &ep
	}
	ep := *l.found
	body, err := l.Client.CoreV1().Pods(l.Namespace).ProxyGet("http", ep.Pod, ep.Port, status.Path, nil).DoRaw(ctx)
	if err != nil {
		l.found = nil
		if apierrors.IsForbidden(err) {
			return status.List{}, l.forbidden("get", "pods/proxy", err)
		}
		return status.List{}, fmt.Errorf("status from pod %s/%s port %s through the API server: %w", l.Namespace, ep.Pod, ep.Port, err)
	}
	list, err := decode(body, "pod "+l.Namespace+"/"+ep.Pod)
	if err == nil && !list.Leading {
		// A standby (say, the old leader restarted after a failover)
		// decides nothing: look for the leader again next time.
		l.found = nil
	}
	return list, err
}

// Find names the pod and port to read: the Lease holder's, else the first
// Running pod matching the selector.
func (l *Leader) Find(ctx context.Context) (Endpoint, error) {
	lease, err := l.Client.CoordinationV1().Leases(l.Namespace).Get(ctx, l.LeaseName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return l.firstRunningPod(ctx)
	case apierrors.IsForbidden(err):
		return Endpoint{}, l.forbidden("get", "leases (coordination.k8s.io)", err)
	case err != nil:
		return Endpoint{}, fmt.Errorf("get Lease %s/%s: %w", l.Namespace, l.LeaseName, err)
	}
	pod := holderPod(lease)
	if pod == "" {
		return Endpoint{}, fmt.Errorf("%w: Lease %s/%s has no holder: no controller is leading (starting, or stopped)", ErrNoController, l.Namespace, l.LeaseName)
	}
	p, err := l.Client.CoreV1().Pods(l.Namespace).Get(ctx, pod, metav1.GetOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return Endpoint{}, l.forbidden("get", "pods", err)
	case apierrors.IsNotFound(err):
		return Endpoint{}, fmt.Errorf("%w: Lease %s/%s is held by %q, but pod %s/%s does not exist (the leader is gone; its Lease expires soon)",
			ErrNoController, l.Namespace, l.LeaseName, *lease.Spec.HolderIdentity, l.Namespace, pod)
	case err != nil:
		return Endpoint{}, fmt.Errorf("get leader pod %s/%s: %w", l.Namespace, pod, err)
	}
	port, err := metricsPort(p)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{Pod: pod, Port: port, Via: "lease"}, nil
}

// holderPod is the pod name in a holder identity: the controller names
// itself <hostname>_<random>, and a pod's hostname is its name.
func holderPod(lease *coordinationv1.Lease) string {
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	id := *lease.Spec.HolderIdentity
	if i := strings.LastIndex(id, "_"); i >= 0 {
		return id[:i]
	}
	return id
}

func (l *Leader) firstRunningPod(ctx context.Context) (Endpoint, error) {
	pods, err := l.Client.CoreV1().Pods(l.Namespace).List(ctx, metav1.ListOptions{LabelSelector: l.Selector})
	if apierrors.IsForbidden(err) {
		return Endpoint{}, l.forbidden("list", "pods", err)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("list controller pods in %s (%s): %w", l.Namespace, l.Selector, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		port, err := metricsPort(p)
		if err != nil {
			return Endpoint{}, err
		}
		return Endpoint{Pod: p.Name, Port: port, Via: "pods"}, nil
	}
	return Endpoint{}, fmt.Errorf("%w in namespace %s: no Lease %q and no Running pod labelled %s (is Spinscale installed there? see --controller-namespace)",
		ErrNoController, l.Namespace, l.LeaseName, l.Selector)
}

// metricsPort is the number of the container port named metrics: the pod
// proxy dials the pod's IP at the port given, so it needs the number.
func metricsPort(p *corev1.Pod) (string, error) {
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.Name == MetricsPort {
				return fmt.Sprint(port.ContainerPort), nil
			}
		}
	}
	return "", fmt.Errorf("pod %s/%s has no container port named %q (server.metricsAddress off?)", p.Namespace, p.Name, MetricsPort)
}

// forbidden says which permission is missing, in the controller namespace.
func (l *Leader) forbidden(verb, resource string, err error) error {
	return fmt.Errorf("forbidden: reading the status needs %s %s in namespace %s (get leases, get and list pods, get pods/proxy; docs/operating.md#status): %w",
		verb, resource, l.Namespace, err)
}
