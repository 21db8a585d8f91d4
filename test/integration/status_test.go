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
	"k8s.io/apimachinery/pkg/util/wait"
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
