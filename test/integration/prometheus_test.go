package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spinscale/spinscale/internal/spinemu"
)

// The tests in this file run a real Prometheus (Debian's package) per test,
// scraping every second an exporter the test serves itself (spinemu) at a
// total request rate the test sets, spread evenly over the app's ready pods
// as a load balancer would. The exporter serves the series of a real
// source: Traefik's traefik_service_requests_total for the app as a whole,
// or, where a test needs one value per pod, spin_request_count_total per
// pod as an OpenTelemetry Collector exports Spin's own counter.

// appRPS is the app's request rate as Traefik counts it: one value.
func appRPS(ns, app string) string {
	return fmt.Sprintf(`sum(rate(%s{service=%q}[10s]))`, spinemu.TraefikMetric, spinemu.TraefikService(ns, app))
}

// podRPS is the request rate of each pod of the app, from Spin's counter
// through the Collector: one series per pod, labelled k8s_pod_name.
func podRPS(ns, app string) string {
	return fmt.Sprintf(`sum by (k8s_pod_name) (rate(%s{k8s_namespace_name=%q, app_id=%q}[10s]))`, spinemu.CollectorMetric, ns, app)
}

// podLabel is the label that names the pod in podRPS's series, for
// prometheus.podLabel.
const podLabel = "k8s_pod_name"

func rpsAnnotations(minR, maxR int, query string, extra ...string) map[string]string {
	ann := map[string]string{
		"spinscale.dev/enabled":          "true",
		"spinscale.dev/min-replicas":     strconv.Itoa(minR),
		"spinscale.dev/max-replicas":     strconv.Itoa(maxR),
		"spinscale.dev/prometheus-query": query,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

// A single value against a per-pod target (HPA External AverageValue), as
// users scale on Traefik's counter: desired = ceil(total / target) =
// ceil(2000 / 400) = 5, reached as 1 → 4 (the plain path's per-tick cap,
// max(2×1, 4)) → 5. The exporter stamps its samples and Traefik's counter
// is one series for the app, so rate() reads 2000 exactly, whatever the
// pods do: never 6.
func TestPrometheusScalarQueryScalesToTotalOverTarget(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	query := appRPS(ns, "shop")
	createDeployment(t, spinDeployment(ns, "shop", 1, rpsAnnotations(1, 10, query,
		"spinscale.dev/prometheus-target-average-value", "400")))
	exp := startExporter(t, ns, "shop", spinemu.Traefik, 2000)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, query, 2000, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url())
	took := waitReplicas(t, ns, "shop", 2*time.Minute, "scale up to ceil(2000/400) = 5", func(r int32) bool { return r == 5 })
	t.Logf("1 → 5 in %s", took.Round(time.Second))
	holdReplicas(t, ns, "shop", 5, 15*time.Second, "2000 RPS on 5 pods is exactly the target")
	ev := waitEvent(t, ns, "shop", "SpinscaleRescaled", "→ 5", 30*time.Second)
	assert.Contains(t, ev.Message, spinemu.TraefikMetric+": ", "the metric is named after the metric its query selects")
}

// One series per pod against a per-pod target (HPA Pods metric), from
// Spin's own counter through the Collector, the pod named by k8s_pod_name
// (prometheus.podLabel): the average over the pods with a sample against
// the target, times their count. 1000 RPS at 300 per pod: on 1 pod
// 1000/300 → ceil(3.33) = 4; on 4 pods 250/300 = 0.83, outside the 10 %
// band, → ceil(0.83 × 4) = 4: stays.
func TestPrometheusPerPodQueryUsesPodsMetricSemantics(t *testing.T) {
	t.Parallel()
	const total, target = 1000.0, 300.0
	want := int32(math.Ceil(total / target))
	ns := namespace(t)
	query := podRPS(ns, "shop")
	createDeployment(t, spinDeployment(ns, "shop", 1, rpsAnnotations(1, 10, query,
		"spinscale.dev/prometheus-target-average-value", fmt.Sprint(target))))
	exp := startExporter(t, ns, "shop", spinemu.Collector, total)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, query, total, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url(), "--set", "prometheus.podLabel="+podLabel)
	took := waitReplicas(t, ns, "shop", 2*time.Minute, fmt.Sprintf("scale up to %d", want), func(r int32) bool { return r == want })
	t.Logf("1 → %d in %s", want, took.Round(time.Second))
	holdReplicas(t, ns, "shop", want, 15*time.Second, "250 RPS per pod against 300 proposes the same count")

	// What the engine saw, as `autoscaler run --dry-run --once -o json` prints it.
	var dec struct {
		Name    string `json:"name"`
		Metrics []struct {
			Type         string  `json:"type"`
			AverageValue float64 `json:"averageValue"`
			ReadyPods    int     `json:"readyPods"`
			Proposal     int32   `json:"proposal"`
		} `json:"metrics"`
	}
	out, err := exec.Command(cluster.autoscaler, "run", "--kubeconfig", cluster.kubeconfig, "--dry-run", "--once", "--output", "json",
		"--set", "namespaces="+ns, "--set", "prometheus.address="+prom.url(), "--set", "prometheus.podLabel="+podLabel,
		"--set", "log.level=error").Output()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &dec), "%s", out)
	require.Len(t, dec.Metrics, 1)
	m := dec.Metrics[0]
	assert.Equal(t, "pods", m.Type, "a per-pod result is an HPA Pods metric")
	assert.Equal(t, int(want), m.ReadyPods)
	assert.InDelta(t, total/float64(want), m.AverageValue, 5, "the average per pod")
	assert.Equal(t, want, m.Proposal)
}

// Rising traffic: 500 RPS at 400 per pod is 2 replicas; 1500 is 4.
func TestPrometheusScalesUpAsRPSRises(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	query := appRPS(ns, "shop")
	createDeployment(t, spinDeployment(ns, "shop", 1, rpsAnnotations(1, 10, query,
		"spinscale.dev/prometheus-target-average-value", "400")))
	exp := startExporter(t, ns, "shop", spinemu.Traefik, 500)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, query, 500, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url())
	waitReplicas(t, ns, "shop", 2*time.Minute, "scale up to ceil(500/400) = 2", func(r int32) bool { return r == 2 })
	holdReplicas(t, ns, "shop", 2, 6*time.Second, "500 RPS on 2 pods")
	exp.SetRate(1500)
	took := waitReplicas(t, ns, "shop", 2*time.Minute, "scale up to ceil(1500/400) = 4", func(r int32) bool { return r == 4 })
	t.Logf("RPS 500 → 1500: 2 → 4 replicas %s after the change (10s rate window, 1s scrape, 2s tick)", took.Round(time.Second))
	holdReplicas(t, ns, "shop", 4, 10*time.Second, "1500 RPS on 4 pods is inside the band")
}

// Prometheus stops while the data asks for a scale-down that the window
// (20s) still holds back: the app holds through the outage, well past the
// window, with one Warning; when Prometheus is back (same port, same
// storage), the scale-down happens within a tick or two of the data.
func TestPrometheusOutageHoldsThenRecovers(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	query := appRPS(ns, "shop")
	createDeployment(t, spinDeployment(ns, "shop", 4, rpsAnnotations(1, 10, query,
		"spinscale.dev/prometheus-target-average-value", "400")))
	exp := startExporter(t, ns, "shop", spinemu.Traefik, 300)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, query, 300, time.Minute)
	p := startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url(), "--set", "downscaleStabilization=20s")
	waitLog(t, p, "recommendation 1 held at 4", time.Minute, "a decision asking for 1 replica, held by the window")
	require.Equal(t, int32(4), replicas(t, ns, "shop"), "the 20s window still holds the seeded count")

	prom.stop(t)
	ev := waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "spinscale.dev/prometheus-query: prometheus unavailable", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	t.Logf("Warning: %s", ev.Message)
	holdReplicas(t, ns, "shop", 4, 30*time.Second, "no scale-down while Prometheus is down, though the window has passed")

	prom.start(t)
	var back, scaled time.Time
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		if back.IsZero() {
			if n, _, err := prom.sum(query); err == nil && n > 0 {
				back = time.Now()
			}
		}
		if scaled.IsZero() && replicas(t, ns, "shop") == 1 {
			scaled = time.Now()
		}
		return !back.IsZero() && !scaled.IsZero(), nil
	})
	require.NoError(t, err, "data back at %v, scaled down at %v", back, scaled)
	t.Logf("scaled down %s after Prometheus had data again", scaled.Sub(back).Round(100*time.Millisecond))
	// Right after the gap rate() reads over a window spanning it, so the
	// engine treats the app as newly seen: decisions resume at once, but
	// the scale-down waits one window (20s) of fresh data, a tick or two
	// more. The upper bound is twice the window, for a loaded machine.
	assert.GreaterOrEqual(t, scaled.Sub(back), 17*time.Second, "no scale-down on the first readings after the outage")
	assert.LessOrEqual(t, scaled.Sub(back), 40*time.Second, "scaled down once a window of fresh data had passed")
	ev = waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "spinscale.dev/prometheus-query", time.Second)
	assert.Equal(t, int32(1), ev.Count, "the outage is reported once, not on every tick")
}

// An empty result is no data: hold (never scale down on it) and warn.
func TestPrometheusEmptyResultHolds(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	nothing := appRPS(ns, "no-such-app")
	createDeployment(t, spinDeployment(ns, "shop", 3, rpsAnnotations(1, 10, nothing,
		"spinscale.dev/prometheus-target-average-value", "400")))
	exp := startExporter(t, ns, "shop", spinemu.Traefik, 100)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, appRPS(ns, "shop"), 100, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url(), "--set", "downscaleStabilization=5s")
	ev := waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "spinscale.dev/prometheus-query: no data: empty result", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	holdReplicas(t, ns, "shop", 3, 20*time.Second, "an empty result never scales down (window 5s)")
}

// A PromQL syntax error is a failed metric, reported with the annotation
// that holds the query, once; the app is left as it is.
func TestPrometheusSyntaxErrorWarnsWithTheAnnotationKey(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	broken := strings.TrimSuffix(appRPS(ns, "shop"), ")") // one parenthesis short
	createDeployment(t, spinDeployment(ns, "shop", 2, rpsAnnotations(1, 10, broken,
		"spinscale.dev/prometheus-target-average-value", "400")))
	list := map[string]string{
		"spinscale.dev/enabled": "true", "spinscale.dev/max-replicas": "10",
		"spinscale.dev/metrics": "- name: rps\n  query: " + broken + "\n  targetAverageValue: 400\n",
	}
	createDeployment(t, spinDeployment(ns, "cart", 2, list))
	exp := startExporter(t, ns, "shop", spinemu.Traefik, 5000)
	prom := startPrometheus(t, exp.target())
	prom.waitRate(t, appRPS(ns, "shop"), 5000, time.Minute)
	startAutoscaler(t, ns, "--set", "prometheus.address="+prom.url(), "--set", "downscaleStabilization=5s")
	ev := waitEvent(t, ns, "shop", "SpinscaleMetricsDegraded", "spinscale.dev/prometheus-query: invalid PromQL", time.Minute)
	assert.Equal(t, "Warning", ev.Type)
	t.Logf("Warning: %s", ev.Message)
	assert.Contains(t, ev.Message, "parse error")
	ev2 := waitEvent(t, ns, "cart", "SpinscaleMetricsDegraded", "spinscale.dev/metrics[rps]: invalid PromQL", time.Minute)
	assert.Contains(t, ev2.Message, "parse error")
	holdReplicas(t, ns, "shop", 2, 12*time.Second, "a broken query leaves the app untouched")
	assert.Equal(t, int32(2), replicas(t, ns, "cart"))
	for _, app := range []string{"shop", "cart"} {
		ev := waitEvent(t, ns, app, "SpinscaleMetricsDegraded", "invalid PromQL", time.Second)
		assert.Equal(t, int32(1), ev.Count, "%s: reported once, not on every tick", app)
	}
}

// With Prometheus down, fallback-replicas applies once every metric has
// failed for fallback-after, and only upwards: an app below it goes up to
// it, an app above it stays.
func TestPrometheusDownFallbackReplicas(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	fallback := []string{"spinscale.dev/prometheus-target-average-value", "400",
		"spinscale.dev/fallback-replicas", "3", "spinscale.dev/fallback-after", "6s"}
	createDeployment(t, spinDeployment(ns, "low", 1, rpsAnnotations(1, 10, appRPS(ns, "low"), fallback...)))
	createDeployment(t, spinDeployment(ns, "high", 5, rpsAnnotations(1, 10, appRPS(ns, "high"), fallback...)))
	start := time.Now()
	startAutoscaler(t, ns, "--set", "prometheus.address=http://"+closedAddress(t), "--set", "downscaleStabilization=5s")
	waitEvent(t, ns, "low", "SpinscaleMetricsDegraded", "prometheus unavailable", time.Minute)
	waitReplicas(t, ns, "low", 2*time.Minute, "up to fallback-replicas", func(r int32) bool { return r == 3 })
	assert.GreaterOrEqual(t, time.Since(start), 6*time.Second, "not before fallback-after")
	t.Logf("low: 1 → 3 after %s of failure", time.Since(start).Round(time.Second))
	holdReplicas(t, ns, "high", 5, 10*time.Second, "fallback-replicas never scales down")
	assert.Equal(t, int32(3), replicas(t, ns, "low"))
}

// ---------------------------------------------------------------- helpers

// waitLog waits for text in the autoscaler's output.
func waitLog(t *testing.T, p *proc, text string, timeout time.Duration, what string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return strings.Contains(p.output(), text), nil
	})
	require.NoError(t, err, "waiting for %s (%q in the autoscaler's log)", what, text)
}

// closedAddress is a 127.0.0.1 address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

var prometheusBin struct {
	once sync.Once
	path string
	err  error
}

// prometheusBinary finds Prometheus, installing Debian's package when it is
// missing (refreshing the package lists if the first try fails).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	prometheusBin.once.Do(func() {
		if p, err := exec.LookPath("prometheus"); err == nil {
			prometheusBin.path = p
			return
		}
		apt := func(args ...string) error {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return runCmd(cmd)
		}
		install := []string{"install", "-y", "--no-install-recommends", "prometheus"}
		if err := apt(install...); err != nil {
			if err := apt("update"); err != nil {
				prometheusBin.err = fmt.Errorf("apt-get update: %w", err)
				return
			}
			if err := apt(install...); err != nil {
				prometheusBin.err = fmt.Errorf("install Debian's prometheus package: %w", err)
				return
			}
		}
		prometheusBin.path, prometheusBin.err = exec.LookPath("prometheus")
	})
	require.NoError(t, prometheusBin.err, "the Prometheus tests need a prometheus binary (apt-get install prometheus)")
	return prometheusBin.path
}

// promProcess is a Prometheus server of one test, on 127.0.0.1.
type promProcess struct {
	bin, dir, addr string
	cmd            *exec.Cmd
	out            *syncBuffer
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPrometheus runs Prometheus scraping target every second, and stops
// it when the test ends.
func startPrometheus(t *testing.T, target string) *promProcess {
	t.Helper()
	return startPrometheusWith(t, "1s", target)
}

// startPrometheusWith runs Prometheus scraping the targets every scrape
// interval, and stops it when the test ends.
func startPrometheusWith(t *testing.T, scrape string, targets ...string) *promProcess {
	t.Helper()
	p := &promProcess{bin: prometheusBinary(t), dir: t.TempDir(), addr: closedAddress(t), out: &syncBuffer{}}
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: 1s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: spin
    honor_labels: true
    static_configs:
      - targets: [%[2]s]
`, scrape, strings.Join(quoted, ", "))
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "prometheus.yml"), []byte(cfg), 0o600))
	p.start(t)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *promProcess) url() string { return "http://" + p.addr }

// start runs the server (again) on the same port and storage, and waits
// until it is ready.
func (p *promProcess) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	require.NoError(t, p.cmd.Start())
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url()+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	require.NoError(t, err, "prometheus did not become ready:\n%s", p.out.String())
}

// stop ends the server (SIGTERM, then SIGKILL after 10s); a no-op when it
// is not running.
func (p *promProcess) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	cmd := p.cmd
	p.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// sum runs an instant query and returns how many series it returned and
// the sum of their values.
func (p *promProcess) sum(query string) (n int, sum float64, err error) {
	resp, err := http.Get(p.url() + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, 0, err
	}
	if body.Status != "success" {
		return 0, 0, fmt.Errorf("query %q: %s", query, body.Error)
	}
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("query %q: value %v: %w", query, r.Value[1], err)
		}
		sum += v
	}
	return len(body.Data.Result), sum, nil
}

// waitRate waits until the query's series add up to the total rate: a full
// rate window of samples has been scraped, so the autoscaler starts from
// settled data rather than the ramp of a new counter.
func (p *promProcess) waitRate(t *testing.T, query string, total float64, timeout time.Duration) {
	t.Helper()
	var last float64
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		n, sum, err := p.sum(query)
		last = sum
		return err == nil && n > 0 && math.Abs(sum-total) <= total/100, nil
	})
	require.NoError(t, err, "waiting for %s to read %v (last %v)", query, total, last)
}

// rpsExporter serves the app's request counter in the given shape
// (spinemu), at a total rate set by the test.
type rpsExporter struct {
	*spinemu.Exporter
	srv *httptest.Server
}

// startExporter serves the exporter on 127.0.0.1 and refreshes the app's
// pod list every second until the test ends.
func startExporter(t *testing.T, ns, app string, shape spinemu.Shape, rps float64) *rpsExporter {
	t.Helper()
	e := &rpsExporter{Exporter: spinemu.New(ns, app, shape, rps)}
	e.srv = httptest.NewServer(e.Exporter)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_ = e.Refresh(ctx, cluster.client)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; e.srv.Close() })
	return e
}

// target is the address Prometheus scrapes.
func (e *rpsExporter) target() string { return strings.TrimPrefix(e.srv.URL, "http://") }
