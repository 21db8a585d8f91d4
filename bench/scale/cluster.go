package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

// cluster is one local control plane started by hack/cluster/up.sh.
type cluster struct {
	root, state string
	env         map[string]string
	rest        *rest.Config
	client      kubernetes.Interface
	http        *http.Client // admin client certificate, the cluster CA
}

// clusterOptions size the fake nodes and set the metrics-server resolution.
type clusterOptions struct {
	portBase         int
	nodes, nodePods  int
	nodeCPU          string
	metricResolution string
}

// startCluster runs up.sh in a fresh state directory under dir. The caller
// must call stop, also when startCluster fails.
func startCluster(ctx context.Context, root, dir string, o clusterOptions) (*cluster, error) {
	c := &cluster{root: root, state: filepath.Join(dir, "cluster")}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack/cluster/up.sh"), c.state)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"PORT_BASE="+strconv.Itoa(o.portBase),
		"NODES="+strconv.Itoa(o.nodes), "NODE_PODS="+strconv.Itoa(o.nodePods),
		"NODE_CPU="+o.nodeCPU, "NODE_MEMORY=4Ti",
		"METRIC_RESOLUTION="+o.metricResolution, "CUSTOM_METRICS_ADAPTER=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return c, fmt.Errorf("hack/cluster/up.sh: %w\n%s", err, out)
	}
	env, err := readEnv(filepath.Join(c.state, "env"))
	if err != nil {
		return c, err
	}
	c.env = env
	c.rest, err = clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		return c, fmt.Errorf("kubeconfig: %w", err)
	}
	// The bench's own client: bounded, but fast enough to set thousands of
	// pods' usage in seconds.
	c.rest.QPS, c.rest.Burst = 400, 400
	c.rest.UserAgent = "spinscale-bench-scale"
	if c.client, err = kubernetes.NewForConfig(c.rest); err != nil {
		return c, err
	}
	if c.http, err = rest.HTTPClientFor(c.rest); err != nil {
		return c, err
	}
	c.http.Timeout = 30 * time.Second
	return c, nil
}

// stop runs down.sh --purge: every component is stopped and the state
// directory removed.
func (c *cluster) stop() error {
	if c == nil || c.state == "" {
		return nil
	}
	if _, err := os.Stat(c.state); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.root, "hack/cluster/down.sh"), c.state, "--purge")
	cmd.Dir = c.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/cluster/down.sh: %w\n%s", err, out)
	}
	return nil
}

// readEnv reads the `export KEY=VALUE` lines up.sh writes.
func readEnv(path string) (map[string]string, error) {
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
		v = unquoteShell(v)
		env[k] = v
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

// scrape reads and parses a /metrics endpoint.
func scrape(ctx context.Context, client *http.Client, url string) (scrapeData, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return parseText(string(body))
}

// freePortBase finds a base for hack/cluster's seven ports (base .. base+6)
// that are all free on 127.0.0.1, starting from a pid-derived guess.
func freePortBase() (int, error) {
	start := 21000 + (os.Getpid()%300)*10
	for tries := 0; tries < 50; tries++ {
		base := start + tries*10
		if base+6 > 29999 {
			base -= 8000
		}
		if portsFree(base, 7) {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no free port base for the cluster")
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = ln.Close()
	}
	return true
}

// freePort is a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
