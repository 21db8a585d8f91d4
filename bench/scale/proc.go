package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spinscale/spinscale/bench/internal/procstat"
)

// scrapeEvery is how often the sampler reads the controller's /metrics.
const scrapeEvery = 2 * time.Second

// autoscaler is the running controller binary.
type autoscaler struct {
	cmd         *exec.Cmd
	exited      chan struct{}
	log         string
	metricsURL  string
	healthURL   string
	stopSampler context.CancelFunc
	samplerDone chan struct{}

	mu      sync.Mutex
	rssPeak int64 // bytes
	rssLast int64
	ticks   []tickSample
}

// tickSample is one completed tick: when it was seen and how long it took.
type tickSample struct {
	at       time.Time
	duration time.Duration
}

// buildAutoscaler compiles cmd/autoscaler into dir.
func buildAutoscaler(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "autoscaler")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/autoscaler")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/autoscaler: %w\n%s", err, out)
	}
	return bin, nil
}

// startAutoscaler runs `autoscaler run` against the cluster: leader
// election off, the hpa profile, limited to the namespaces, its metrics
// and health servers on free loopback ports, its log in dir; podSelector
// is set when not empty.
func startAutoscaler(bin, dir, kubeconfig string, namespaces []string, interval, podSelector string) (*autoscaler, error) {
	mp, err := procstat.FreePort()
	if err != nil {
		return nil, err
	}
	hp, err := procstat.FreePort()
	if err != nil {
		return nil, err
	}
	a := &autoscaler{exited: make(chan struct{}), log: filepath.Join(dir, "autoscaler.log"),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", mp), healthURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", hp)}
	logFile, err := os.Create(a.log)
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(bin, "run", "--kubeconfig", kubeconfig,
		"--set", "namespaces="+strings.Join(namespaces, ","),
		// poll=0: one pass per interval, so that a tick is an interval's
		// work. The hpa profile decides on the interval only; polling
		// would add empty passes, not earlier decisions.
		"--set", "profile=hpa", "--set", "interval="+interval, "--set", "poll=0",
		"--set", "leaderElection.enabled=false",
		"--set", fmt.Sprintf("server.metricsAddress=127.0.0.1:%d", mp),
		"--set", fmt.Sprintf("server.healthAddress=127.0.0.1:%d", hp))
	if podSelector != "" {
		a.cmd.Args = append(a.cmd.Args, "--set", "podSelector="+podSelector)
	}
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	if err := a.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start autoscaler: %w", err)
	}
	go func() { _ = a.cmd.Wait(); _ = logFile.Close(); close(a.exited) }()
	ctx, cancel := context.WithCancel(context.Background())
	a.stopSampler, a.samplerDone = cancel, make(chan struct{})
	go a.sample(ctx)
	return a, nil
}

// sample reads VmRSS every second and the tick histogram's count and sum
// every scrapeEvery until ctx ends or the process exits. A tick (one per
// interval, 15 s apart in the bench) adds one to the count and its
// duration to the sum, so each step of the count gives a tick's exact
// duration, finer than the histogram's buckets; two ticks ended within one
// period (a pass right after one that overran) are each given their mean.
//
// The period is a cost: at 1,000 apps a scrape of the controller's
// /metrics (every app's series, gathered, sorted and formatted) takes tens
// of milliseconds of its CPU, and scraping four times a second took half
// of its CPU during the step (perf record of the autoscaler), on the same
// two cores as the passes the bench times.
func (a *autoscaler) sample(ctx context.Context) {
	defer close(a.samplerDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	client := &http.Client{Timeout: 5 * time.Second}
	var lastCount, lastSum float64
	var scraped time.Time
	for {
		if rss, err := procstat.RSS(a.cmd.Process.Pid); err == nil {
			a.mu.Lock()
			a.rssLast = rss
			a.rssPeak = max(a.rssPeak, a.rssLast)
			a.mu.Unlock()
		}
		if time.Since(scraped) >= scrapeEvery {
			scraped = time.Now()
			lastCount, lastSum = a.recordTicks(ctx, client, lastCount, lastSum)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.exited:
			return
		case <-t.C:
		}
	}
}

// recordTicks scrapes the tick histogram and records the ticks ended
// since the count and sum last seen; it returns the new ones (the old ones
// when the scrape failed).
func (a *autoscaler) recordTicks(ctx context.Context, client *http.Client, lastCount, lastSum float64) (float64, float64) {
	d, err := scrape(ctx, client, a.metricsURL)
	if err != nil {
		return lastCount, lastSum
	}
	count := d.sum("spinscale_tick_duration_seconds_count", nil)
	sum := d.sum("spinscale_tick_duration_seconds_sum", nil)
	if k := count - lastCount; k > 0 && lastCount > 0 {
		each := time.Duration((sum - lastSum) / k * float64(time.Second))
		a.mu.Lock()
		for range int(k) {
			a.ticks = append(a.ticks, tickSample{time.Now(), each})
		}
		a.mu.Unlock()
	}
	return count, sum
}

// ticksBetween returns the durations of the ticks seen from t0 to t1.
func (a *autoscaler) ticksBetween(t0, t1 time.Time) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for _, s := range a.ticks {
		if !s.at.Before(t0) && !s.at.After(t1) {
			out = append(out, s.duration)
		}
	}
	return out
}

// rss returns the peak and the last sampled resident set size, in bytes.
func (a *autoscaler) rss() (peak, last int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rssPeak, a.rssLast
}

// resetPeak starts a new peak from the last sample.
func (a *autoscaler) resetPeak() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rssPeak = a.rssLast
}

// running is false once the process has exited.
func (a *autoscaler) running() bool {
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after 20 s, and waits for the exit and
// for the sampler.
func (a *autoscaler) stop() {
	if a == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
	a.stopSampler()
	<-a.samplerDone
}

// tail is the end of the autoscaler's log, for error reports.
func (a *autoscaler) tail(n int) string {
	data, err := os.ReadFile(a.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
