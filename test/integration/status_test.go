package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// startWithStatus runs the autoscaler serving /apps on a free loopback
// port, and returns its address for --url.
func startWithStatus(t *testing.T, ns string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// The last --set wins over startAutoscaler's server.metricsAddress=0.
	startAutoscaler(t, ns, "--set", "server.metricsAddress="+addr)
	return "http://" + addr
}

// statusCommand runs the built binary (under the name given, as kubectl
// runs a plugin) and returns its stdout; stderr is in the error.
func statusCommand(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", cmd, err, stderr.String())
	}
	return string(out), nil
}

// waitOutput runs the command until its output has a line starting with
// prefix, and returns that line's fields.
func waitOutput(t *testing.T, prefix string, bin string, args ...string) (fields []string, out string) {
	t.Helper()
	var last string
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 25*time.Second, true, func(context.Context) (bool, error) {
		last, lastErr = statusCommand(bin, args...)
		for _, line := range strings.Split(last, "\n") {
			if strings.HasPrefix(line, prefix) {
				fields = strings.Fields(line)
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "waiting for a line %q from %v: last output:\n%s\nlast error: %v", prefix, args, last, lastErr)
	return fields, last
}

// `autoscaler status` shows what the running controller decided, read from
// its /apps; the same binary named kubectl-spinscale is the kubectl plugin.
func TestStatusShowsTheRunningController(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "web", 2, cpuAnnotations(1, 5, 50)))
	url := startWithStatus(t, ns)

	row, out := waitOutput(t, "web ", cluster.autoscaler, "status", "--url", url, "-n", ns)
	assert.True(t, strings.HasPrefix(out, "NAME "), out)
	n := len(row)
	require.GreaterOrEqual(t, n, 9, out)
	assert.Equal(t, "Deployment/web", row[1])
	// From the end: MINPODS MAXPODS REPLICAS DESIRED STATE LAST SCALE
	// (TARGETS, in between, has spaces).
	assert.Equal(t, []string{"1", "5", "2"}, row[n-6:n-3], out)
	assert.Equal(t, "<none>", row[n-1], "never scaled")

	describe, err := statusCommand(cluster.autoscaler, "status", "--url", url, "-n", ns, "web")
	require.NoError(t, err)
	assert.Contains(t, describe, "Reference:      Deployment/web")
	assert.Contains(t, describe, "Conditions:")
	assert.Contains(t, describe, "AbleToScale")

	plugin := filepath.Join(t.TempDir(), "kubectl-spinscale")
	require.NoError(t, os.Symlink(cluster.autoscaler, plugin))
	out, err = statusCommand(plugin, "status", "--url", url, "-A")
	require.NoError(t, err)
	assert.Contains(t, out, ns+"   web    Deployment/web")
	_, err = statusCommand(plugin, "run")
	assert.ErrorContains(t, err, `kubectl spinscale: unknown command "run"`)
}

// An app in shadow mode beside a live HPA: Spinscale decides, writes
// nothing, and shadow-report lists the comparison. The HPA is pinned
// (min = max = the current count), so the live count stays put.
func TestShadowReportListsAppsInShadowMode(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createDeployment(t, spinDeployment(ns, "live", 2, cpuAnnotations(1, 5, 50, "spinscale.dev/shadow", "true")))
	createDeployment(t, spinDeployment(ns, "plain", 1, cpuAnnotations(1, 5, 50)))
	createHPA(t, ns, "live", 2, 2, 50)
	url := startWithStatus(t, ns)

	var row []string
	var out string
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 25*time.Second, true, func(context.Context) (bool, error) {
		row, out = waitOutput(t, "live ", cluster.autoscaler, "shadow-report", "--url", url, "-n", ns)
		decisions, err := strconv.Atoi(row[1])
		return err == nil && decisions >= 2, nil
	}), "waiting for two shadow decisions:\n%s", out)
	assert.True(t, strings.HasPrefix(out, "NAME   DECISIONS   AGREE %"), out)
	assert.NotContains(t, out, "plain", "an app not in shadow mode is left out")
	assert.Contains(t, out, "\nlive: agrees with the live count in ")
	assert.Equal(t, int32(2), replicas(t, ns, "live"), "shadow mode writes nothing")

	status, err := statusCommand(cluster.autoscaler, "status", "--url", url, "-n", ns)
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^live .* shadow +<none>$`, status)
}

// Through the API server, as a user holding only the chart's status-reader
// Role: the command says which permission is missing, then that no
// controller runs, then finds the leader by its Lease and reads /apps
// through the pod proxy. The "controller pod" is a stand-in bound to no
// node, on a loopback IP: kube-apiserver refuses to proxy to loopback
// addresses, and this project's tests use no other, so the test proves the
// discovery (Lease → pod → port) and the proxied request reaching the API
// server with the user's permissions; reading /apps itself is
// TestStatusShowsTheRunningController's, with --url.
func TestStatusThroughTheAPIServer(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	ctx := context.Background()
	_, err := cluster.client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "viewer"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	kubeconfig := serviceAccountKubeconfig(t, ns, "viewer")
	status := func(args ...string) (string, error) {
		return statusCommand(cluster.autoscaler, append([]string{"status", "--kubeconfig", kubeconfig, "--controller-namespace", ns}, args...)...)
	}

	_, err = status()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "forbidden: reading the status needs get leases (coordination.k8s.io) in namespace "+ns)

	role := command(t, helmBinary(t), "template", "spinscale", "deploy/helm/spinscale", "--namespace", ns,
		"--show-only", "templates/status-reader-rbac.yaml", "--set", "rbac.statusReader.create=true",
		"--set", "rbac.statusReader.subjects[0].kind=ServiceAccount,rbac.statusReader.subjects[0].name=viewer,rbac.statusReader.subjects[0].namespace="+ns)
	file := filepath.Join(t.TempDir(), "role.yaml")
	require.NoError(t, os.WriteFile(file, []byte(role), 0o600))
	command(t, clusterBin(t, "kubectl"), "apply", "-f", file)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, err = status()
		return err != nil && strings.Contains(err.Error(), "no controller found"), nil
	}), "once allowed, the command says no controller runs: %v", err)
	assert.Contains(t, err.Error(), `no Lease "spinscale" and no Running pod labelled app.kubernetes.io/name=spinscale`)

	const port = 8080
	_, err = cluster.client.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "spinscale"}, Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("spinscale-0_x7k2p")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := cluster.client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "spinscale-0"},
		Spec: corev1.PodSpec{NodeName: "no-such-node", Containers: []corev1.Container{{Name: "autoscaler", Image: "spinscale",
			Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: port}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	_, err = cluster.client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	// The Lease names the pod, the pod names the port, and the request goes
	// to the pod proxy with the viewer's permissions (not forbidden).
	_, err = status()
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("status from pod %s/spinscale-0 port %d through the API server", ns, port))
	assert.NotContains(t, err.Error(), "forbidden")
}
