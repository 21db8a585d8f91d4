// Package localcluster starts and stops the project's local control plane
// (hack/cluster/up.sh, down.sh) for the benches, and gives them a client.
package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is one local control plane started by hack/cluster/up.sh.
type Cluster struct {
	Root, State string
	// Env is what up.sh exports (KUBECONFIG, SPINSCALE_CLUSTER_*).
	Env    map[string]string
	Rest   *rest.Config
	Client kubernetes.Interface
}

// Kubeconfig is the cluster's admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.Env["KUBECONFIG"] }

// Options are what differs between the benches' clusters.
type Options struct {
	PortBase int
	// Env is up.sh's further environment (COMPONENTS, NODES, …).
	Env []string
	// QPS, Burst and UserAgent are the bench's own client's.
	QPS       float32
	Burst     int
	UserAgent string
}

// Start runs up.sh in state under root. The caller must call Stop, also
// when Start fails.
func Start(ctx context.Context, root, state string, o Options) (*Cluster, error) {
	c := &Cluster{Root: root, State: state}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack/cluster/up.sh"), state)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "PORT_BASE="+strconv.Itoa(o.PortBase)), o.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return c, fmt.Errorf("hack/cluster/up.sh: %w\n%s", err, out)
	}
	env, err := ReadEnv(filepath.Join(state, "env"))
	if err != nil {
		return c, err
	}
	c.Env = env
	if c.Rest, err = clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"]); err != nil {
		return c, fmt.Errorf("kubeconfig: %w", err)
	}
	c.Rest.QPS, c.Rest.Burst, c.Rest.UserAgent = o.QPS, o.Burst, o.UserAgent
	if c.Client, err = kubernetes.NewForConfig(c.Rest); err != nil {
		return c, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// Stop runs down.sh --purge: every component is stopped and the state
// directory removed.
func (c *Cluster) Stop() error {
	if c == nil || c.State == "" {
		return nil
	}
	if _, err := os.Stat(c.State); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.Root, "hack/cluster/down.sh"), c.State, "--purge")
	cmd.Dir = c.Root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/cluster/down.sh: %w\n%s", err, out)
	}
	return nil
}

// ReadEnv reads the `export KEY=VALUE` lines up.sh writes.
func ReadEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster env: %w", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "=")
		if !ok {
			continue
		}
		env[k] = unquoteShell(v)
	}
	if env["KUBECONFIG"] == "" {
		return nil, fmt.Errorf("cluster env %s: no KUBECONFIG", path)
	}
	return env, nil
}

// unquoteShell undoes what bash's printf %q does to a path: single
// quotes around it, or a backslash before each special character.
func unquoteShell(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
