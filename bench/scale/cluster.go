package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	"github.com/spinscale/spinscale/bench/internal/localcluster"
)

// cluster is one local control plane, with an HTTP client holding the
// admin client certificate and the cluster CA for the components' /metrics.
type cluster struct {
	*localcluster.Cluster
	http *http.Client
}

// clusterOptions size the fake nodes and set the metrics-server resolution.
type clusterOptions struct {
	portBase         int
	nodes, nodePods  int
	nodeCPU          string
	metricResolution string
}

// startCluster runs up.sh in a fresh state directory under dir. The caller
// must call Stop, also when startCluster fails.
func startCluster(ctx context.Context, root, dir string, o clusterOptions) (*cluster, error) {
	lc, err := localcluster.Start(ctx, root, filepath.Join(dir, "cluster"), localcluster.Options{
		PortBase: o.portBase,
		Env: []string{"NODES=" + strconv.Itoa(o.nodes), "NODE_PODS=" + strconv.Itoa(o.nodePods),
			"NODE_CPU=" + o.nodeCPU, "NODE_MEMORY=4Ti",
			"METRIC_RESOLUTION=" + o.metricResolution, "CUSTOM_METRICS_ADAPTER=0"},
		// The bench's own client: bounded, but fast enough to set thousands
		// of pods' usage in seconds.
		QPS: 400, Burst: 400, UserAgent: "spinscale-bench-scale",
	})
	c := &cluster{Cluster: lc}
	if err != nil {
		return c, err
	}
	if c.http, err = rest.HTTPClientFor(c.Rest); err != nil {
		return c, err
	}
	c.http.Timeout = 30 * time.Second
	return c, nil
}

// scrape reads and parses a /metrics endpoint.
func scrape(ctx context.Context, client *http.Client, url string) (scrapeData, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: gzip would cost the scraped process CPU for a
	// loopback transfer.
	req.Header.Set("Accept-Encoding", "identity")
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
