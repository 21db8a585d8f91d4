// Command scale measures Spinscale at scale on the project's local control
// plane (hack/cluster), side by side with the real HPA: for each size N it
// creates N opted-in apps and N twins under an autoscaling/v2 HPA, steps
// every app's load at once, and reports how fast each group reaches the
// right count, the controller's tick duration, RSS, CPU and API calls per
// tick. `make bench-scale` runs it through bench/scale.sh; docs/scale.md
// holds the figures.
//
// It only talks to 127.0.0.1, and every wait and load loop is bounded.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	sizes := flag.String("sizes", "100,250,500", "app counts N to measure, comma-separated (N apps per group: 1000 and more work, given the time)")
	nsCount := flag.Int("namespaces", 10, "namespaces the apps are spread over")
	interval := flag.String("interval", "15s", "Spinscale's interval (the HPA syncs every 15 s)")
	resolution := flag.String("metric-resolution", "15s", "metrics-server's resolution")
	steady := flag.Duration("steady", 45*time.Second, "window before the step over which the steady API calls per tick are counted")
	stepTimeout := flag.Duration("step-timeout", 10*time.Minute, "how long after the step the apps may take to reach their count")
	doc := flag.String("doc", "", "write the report as Markdown to this file (bench/scale.sh: docs/scale.md)")
	plot := flag.String("plot", "", "write the plot as PNG to this file (bench/scale.sh: bench/images/scale.png)")
	root := flag.String("root", ".", "the repository root")
	podSelector := flag.String("pod-selector", groupLabel+"="+groupSpinscale, "Spinscale's podSelector (as the chart's default keeps to SpinKube's pods, this keeps the cache and the metrics reads to the Spinscale group's pods); empty: every pod of the namespaces, the HPA twins' too")
	memApps := flag.Int("memory", 0, "instead of the sizes: the controller's memory with this many Spinscale apps (no HPA twins, no step), each tick deciding for every app; prints its figures")
	memPods := flag.Int("memory-pods", 5, "-memory: pods per app")
	memWindow := flag.Duration("memory-window", 2*time.Minute, "-memory: how long RSS is sampled once every pod has metrics")
	flag.Parse()

	ns, err := parseSizes(*sizes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	o := options{namespaces: *nsCount, interval: *interval, resolution: *resolution, steady: *steady, stepTimeout: *stepTimeout, podSelector: *podSelector}
	o.spec = appSpec{pods: 3, maxReplicas: 10, targetPercent: 50, requestMilli: 100, beforePercent: 40, afterPercent: 95}
	o.spec.expectReplicas = expectedReplicas(o.spec)
	if o.root, err = filepath.Abs(*root); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	if *memApps > 0 && (*memPods < 1 || int32(*memPods) > o.spec.maxReplicas) {
		fmt.Fprintf(os.Stderr, "scale: -memory-pods %d: want 1 to %d (the apps' max-replicas)\n", *memPods, o.spec.maxReplicas)
		os.Exit(2)
	}
	if *memApps > 0 {
		r, err := measureMemory(ctx, *memApps, *memPods, *memWindow, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale: memory N=%d: %v\n", *memApps, err)
			os.Exit(1)
		}
		printMemory(os.Stdout, r)
		return
	}
	var results []result
	for _, n := range ns {
		r, err := measure(ctx, n, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale: N=%d: %v\n", n, err)
			os.Exit(1)
		}
		results = append(results, r)
		printResult(os.Stdout, r)
	}
	printGrowth(os.Stdout, results)
	cmdline := "go run ./bench/scale " + strings.Join(os.Args[1:], " ")
	if *plot != "" {
		if err := writePlotFile(*plot, results); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
	}
	if *doc != "" {
		if err := writeDocFile(*doc, *plot, cmdline, o, results); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
	}
}

type options struct {
	root        string
	namespaces  int
	interval    string
	resolution  string
	steady      time.Duration
	stepTimeout time.Duration
	podSelector string
	spec        appSpec
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 20000 {
			return nil, fmt.Errorf("-sizes: %q is not an app count from 1 to 20000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// expectedReplicas is HPA's count after the step, for both groups: the
// ratio of usage to target times the pods, rounded up, outside the
// tolerance, within the scale-up limit max(2×, 4) of one sync and the
// bounds. 3 pods from 40 % to 95 % against 50 %: ceil(3 × 1.9) = 6 ≤ 6.
// With the load spread over the pods (spreader), every count on the way
// (4: 143 %, 5: 114 %) also leads to 6, and 6 (95 %) holds. 95 %, not
// 100 %: at exactly twice the target, metrics-server's rate jitter of a
// fraction of a percent turns ceil(3 × 2.0) into 7.
func expectedReplicas(s appSpec) int32 {
	ratio := float64(s.afterPercent) / float64(s.targetPercent)
	if math.Abs(ratio-1) <= 0.1 {
		return s.pods
	}
	want := int32(math.Ceil(ratio*float64(s.pods) - 1e-9))
	limit := max(2*s.pods, 4)
	return min(want, limit, s.maxReplicas)
}

// snapshot is one scrape of the three endpoints the bench reads.
type snapshot struct {
	at        time.Time
	spinscale scrapeData
	kcm       scrapeData
	apiserver scrapeData
	ms        scrapeData // metrics-server, itself an API server
}

func takeSnapshot(ctx context.Context, c *cluster, a *autoscaler) (snapshot, error) {
	s := snapshot{at: time.Now()}
	var err error
	if s.spinscale, err = scrape(ctx, http.DefaultClient, a.metricsURL); err != nil {
		return s, err
	}
	if s.kcm, err = scrape(ctx, c.http, c.Env["SPINSCALE_CLUSTER_KCM"]+"/metrics"); err != nil {
		return s, err
	}
	if s.apiserver, err = scrape(ctx, c.http, c.Env["SPINSCALE_CLUSTER_APISERVER"]+"/metrics"); err != nil {
		return s, err
	}
	if s.ms, err = scrape(ctx, c.http, c.Env["SPINSCALE_CLUSTER_METRICS_SERVER"]+"/metrics"); err != nil {
		return s, err
	}
	return s, nil
}

// measure runs one size on a cluster of its own, torn down on return.
func measure(ctx context.Context, n int, o options) (res result, err error) {
	res.n = n
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[N=%d %s] %s\n", n, time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	namespaces := namespacesFor(o.namespaces)
	apps := appsFor(n, namespaces)
	before := o.spec.requestMilli * o.spec.beforePercent / 100 * int64(o.spec.pods)
	after := o.spec.requestMilli * o.spec.afterPercent / 100 * int64(o.spec.pods)
	b, err := setUpBed(ctx, logf, apps, namespaces, o.spec, before, len(apps)*int(o.spec.expectReplicas), 5, o)
	defer func() { err = b.tearDown(err) }()
	if err != nil {
		return res, err
	}
	c, a, watch, spread, pods := b.c, b.a, b.watch, b.spread, b.pods
	res.setup = b.setup
	if moved := watch.countsOther(o.spec.pods); len(moved) > 0 {
		return res, fmt.Errorf("apps moved off %d replicas before the step: %v", o.spec.pods, moved)
	}

	logf("steady window: %s", o.steady)
	a.resetPeak()
	s0, err := takeSnapshot(ctx, c, a)
	if err != nil {
		return res, err
	}
	if err := sleepCtx(ctx, o.steady); err != nil {
		return res, err
	}
	s1, err := takeSnapshot(ctx, c, a)
	if err != nil {
		return res, err
	}
	res.rssSteady, _ = a.rss()

	logf("step: every app to %dm, spread over its pods", after)
	stepStart := time.Now()
	watch.arm()
	spread.setTotal(after, apps)
	patchTimeout := time.Minute + time.Duration(len(pods))*20*time.Millisecond
	if err := waitUntil(ctx, patchTimeout, func() bool { return !spread.spreadAt().IsZero() }); err != nil {
		return res, fmt.Errorf("setting the new usage of %d pods: %w", len(pods), err)
	}
	step := spread.spreadAt()
	res.stepWindow = step.Sub(stepStart)
	deadline := time.NewTimer(o.stepTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for watch.reachedCount() < len(apps) {
		if !a.running() {
			return res, fmt.Errorf("the autoscaler exited")
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline.C:
			logf("step timeout: %d of %d apps at %d", watch.reachedCount(), len(apps), o.spec.expectReplicas)
			break wait
		case <-tick.C:
		}
	}
	res.stepDuration = time.Since(step)
	s2, err := takeSnapshot(ctx, c, a)
	if err != nil {
		return res, err
	}
	res.rssPeak, _ = a.rss()
	res.rssPeak = max(res.rssPeak, res.rssSteady)
	if all, err := runningPods(ctx, c.Client, namespaces); err == nil {
		res.podsAtEnd = len(all)
	}
	// The pods the controller caches: every bench pod without a selector.
	// Left 0 when they cannot be counted, so that this size stays out of
	// the RSS line rather than be drawn against the wrong pods.
	res.podsCached = res.podsAtEnd
	if o.podSelector != "" {
		res.podsCached = 0
		if mine, err := runningPodsMatching(ctx, c.Client, namespaces, o.podSelector); err == nil {
			res.podsCached = len(mine)
		}
	}
	res.fill(apps, watch.since(step), s0, s1, s2, a.ticksBetween(s0.at, s2.at))
	res.offAtEnd = watch.countsOther(o.spec.expectReplicas)
	res.countsAtEnd = watch.countsAtEnd()
	return res, nil
}

func namespacesFor(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("scale-%d", i)
	}
	return out
}

// waitUntil polls cond every 100 ms for at most timeout.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// waitTicks waits until the autoscaler has completed k more ticks.
func waitTicks(ctx context.Context, a *autoscaler, k int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := -1.0
	for {
		if d, err := scrape(ctx, http.DefaultClient, a.metricsURL); err == nil {
			c := d.sum("spinscale_tick_duration_seconds_count", nil)
			if start < 0 {
				start = c
			} else if c-start >= float64(k) {
				return nil
			}
		}
		if !a.running() {
			return fmt.Errorf("the autoscaler exited")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d ticks of the autoscaler: %w", k, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
