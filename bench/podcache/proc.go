package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spinscale/spinscale/bench/internal/procstat"
)

// measureRun runs `autoscaler run` with the pod selector, dry-run and
// without leader election, until hold has passed after its caches synced
// (or syncTimeout without a sync), sampling VmRSS and the heap in use
// every second from its start.
func measureRun(ctx context.Context, o options, dir, kubeconfig string, namespaces []string, selector string) (r runResult, err error) {
	r.selector = selector
	r.cached = "not reported"
	mp, err := procstat.FreePort()
	if err != nil {
		return r, err
	}
	hp, err := procstat.FreePort()
	if err != nil {
		return r, err
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", mp)
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/readyz", hp)
	logPath := filepath.Join(dir, fmt.Sprintf("autoscaler-%d.log", len(selector)))
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	cmd := exec.Command(o.bin, "run", "--kubeconfig", kubeconfig,
		"--set", "namespaces="+strings.Join(namespaces, ","),
		"--set", "podSelector="+selector,
		"--set", "dryRun=true",
		"--set", "leaderElection.enabled=false",
		"--set", fmt.Sprintf("server.metricsAddress=127.0.0.1:%d", mp),
		"--set", fmt.Sprintf("server.healthAddress=127.0.0.1:%d", hp))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return r, fmt.Errorf("start %s: %w", o.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if err != nil {
			err = fmt.Errorf("%w\nautoscaler log (end):\n%s", err, tail(logPath, 20))
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	var rss, heap []sampleAt
	var synced time.Time
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	syncDeadline := start.Add(o.syncTimeout)
	for i := 0; ; i++ {
		now := time.Now()
		if b, err := procstat.RSS(cmd.Process.Pid); err == nil {
			rss = append(rss, sampleAt{now, b})
		}
		if v, err := scrapeValue(ctx, client, metricsURL, "go_memstats_heap_inuse_bytes"); err == nil {
			heap = append(heap, sampleAt{now, int64(v)})
		}
		if synced.IsZero() {
			if ready(ctx, client, readyURL) {
				synced = time.Now()
				r.sync = synced.Sub(start)
			} else if now.After(syncDeadline) {
				return r, fmt.Errorf("podSelector=%q: caches not synced after %s", selector, o.syncTimeout)
			}
		} else if now.Sub(synced) >= o.hold {
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-exited:
			return r, fmt.Errorf("podSelector=%q: the autoscaler exited", selector)
		case <-tick.C:
		}
	}
	if v, err := scrapeValue(ctx, client, metricsURL, "spinscale_apps"); err == nil {
		r.appsSeen = int(v)
	}
	from := time.Now().Add(-o.window)
	r.rssSteady, r.rssSamples = medianSince(rss, from)
	r.heapSteady, r.heapSamples = medianSince(heap, from)
	r.rssPeak, r.heapPeak = peak(rss), peak(heap)
	r.windowSeconds = o.window.Seconds()
	if r.rssSamples == 0 || r.heapSamples == 0 {
		return r, fmt.Errorf("podSelector=%q: no samples in the last %s (VmRSS %d, heap %d)", selector, o.window, r.rssSamples, r.heapSamples)
	}
	return r, nil
}

// sampleAt is one sampled value.
type sampleAt struct {
	at    time.Time
	value int64
}

// medianSince is the median of the samples taken at or after from, and
// how many there were.
func medianSince(s []sampleAt, from time.Time) (int64, int) {
	var vs []int64
	for _, x := range s {
		if !x.at.Before(from) {
			vs = append(vs, x.value)
		}
	}
	if len(vs) == 0 {
		return 0, 0
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], len(vs)
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, len(vs)
}

func peak(s []sampleAt) int64 {
	var p int64
	for _, x := range s {
		p = max(p, x.value)
	}
	return p
}

// ready is true when the health server's /readyz answers 200 (caches
// synced).
func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// scrapeValue reads one unlabelled sample from a /metrics endpoint.
func scrapeValue(ctx context.Context, client *http.Client, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return findValue(io.LimitReader(resp.Body, 64<<20), name)
}

// findValue finds the line "NAME VALUE" (no labels) of the Prometheus text
// format and parses its value.
func findValue(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == name {
			v, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s: value %q: %w", name, fields[1], err)
			}
			return v, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metric %s: %w", name, err)
	}
	return 0, fmt.Errorf("metric %s: not exposed", name)
}

// tail is the end of a log file, for error reports.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
