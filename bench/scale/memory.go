package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
)

// memoryResult is what -memory measures: the controller's memory with n
// Spinscale apps of pods pods each, every app decided on each tick.
type memoryResult struct {
	apps, podsPerApp int
	podsCached       int
	setup            time.Duration
	window           time.Duration
	ticks            []time.Duration
	rss              []int64 // sampled every second over the window, bytes
	rssPeak          int64   // over the whole run, from the autoscaler's start
	heapInuse        float64 // go_memstats_heap_inuse_bytes at the window's end
	decisions        float64 // decisions made over the window
}

// measureMemory runs n Spinscale apps of pods pods each (no HPA twins, no
// step: their usage stays at the spec's before value) on a control plane
// of its own and samples the controller's RSS over window once every pod
// has metrics: the goal's 5,000 apps × 5 pods measured rather than
// extrapolated. Every tick decides for every app (the hpa profile decides
// on the interval), so the window holds the metrics LISTs and decisions
// for all of them, not an idle cache.
func measureMemory(ctx context.Context, n, pods int, window time.Duration, o options) (res memoryResult, err error) {
	res.apps, res.podsPerApp, res.window = n, pods, window
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[memory N=%d %s] %s\n", n, time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	spec := o.spec
	spec.pods = int32(pods)
	dir, err := os.MkdirTemp("", "spinscale-bench-scale-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	namespaces := namespacesFor(o.namespaces)
	var apps []appRef
	for _, a := range appsFor(n, namespaces) {
		if a.group == groupSpinscale {
			apps = append(apps, a)
		}
	}
	const perNode = 500
	nodes := max(2, (n*pods*5/4+perNode-1)/perNode)
	base, err := freePortBase()
	if err != nil {
		return res, err
	}
	logf("starting the control plane: %d fake nodes, port base %d", nodes, base)
	c, err := startCluster(ctx, o.root, dir, clusterOptions{portBase: base, nodes: nodes, nodePods: perNode,
		nodeCPU: strconv.Itoa(perNode), metricResolution: o.resolution})
	defer func() {
		logf("tearing the control plane down")
		if derr := c.Stop(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	if err != nil {
		return res, err
	}
	bin, err := buildAutoscaler(ctx, o.root, dir)
	if err != nil {
		return res, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	total := spec.requestMilli * spec.beforePercent / 100 * int64(pods)
	spread, err := startSpreader(wctx, c.Client, len(apps), 32)
	if err != nil {
		return res, err
	}
	spread.setTotal(total, apps)

	t0 := time.Now()
	logf("creating %d apps of %d pods in %d namespaces", len(apps), pods, len(namespaces))
	if err := createApps(ctx, c.Client, namespaces, apps, spec); err != nil {
		return res, err
	}
	want := len(apps) * pods
	running, err := waitPods(ctx, c.Client, namespaces, want, 5*time.Minute+time.Duration(want)*50*time.Millisecond)
	if err != nil {
		return res, err
	}
	res.setup = time.Since(t0)
	res.podsCached = len(running)
	logf("%d pods Running and Ready after %s", len(running), res.setup.Round(time.Second))

	a, err := startAutoscaler(bin, dir, c.Env["KUBECONFIG"], namespaces, o.interval, o.podSelector)
	if err != nil {
		return res, err
	}
	defer func() {
		a.stop()
		if err != nil {
			err = fmt.Errorf("%w\nautoscaler log (end):\n%s", err, a.tail(30))
		}
	}()
	mc, err := metricsclient.NewForConfig(c.Rest)
	if err != nil {
		return res, err
	}
	perPod := spec.requestMilli * spec.beforePercent / 100
	logf("waiting for metrics.k8s.io to show %dm on every pod", perPod)
	if err := waitUsage(ctx, mc, namespaces, running, perPod-5, perPod+5, 10*time.Minute); err != nil {
		return res, err
	}
	if err := waitTicks(ctx, a, 2, 3*time.Minute); err != nil {
		return res, err
	}
	logf("window: %s", window)
	s0, err := takeSnapshot(ctx, c, a)
	if err != nil {
		return res, err
	}
	from := time.Now()
	for time.Since(from) < window {
		if !a.running() {
			return res, fmt.Errorf("the autoscaler exited")
		}
		_, last := a.rss()
		res.rss = append(res.rss, last)
		if err := sleepCtx(ctx, time.Second); err != nil {
			return res, err
		}
	}
	s1, err := takeSnapshot(ctx, c, a)
	if err != nil {
		return res, err
	}
	res.rssPeak, _ = a.rss()
	res.ticks = a.ticksBetween(s0.at, s1.at)
	res.heapInuse = s1.spinscale.sum("go_memstats_heap_inuse_bytes", nil)
	res.decisions = s1.spinscale.sum("spinscale_decisions_total", nil) - s0.spinscale.sum("spinscale_decisions_total", nil)
	return res, nil
}

// printMemory writes the memory run's figures.
func printMemory(w io.Writer, r memoryResult) {
	rss := append([]int64(nil), r.rss...)
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	var median, high int64
	if len(rss) > 0 {
		median, high = rss[len(rss)/2], rss[len(rss)-1]
	}
	p50, _ := percentile(r.ticks, 0.5)
	p99, _ := percentile(r.ticks, 0.99)
	fmt.Fprintf(w, "\nmemory: %d Spinscale apps × %d pods (%d pods Running and Ready, all cached: podSelector of the group), setup %s\n",
		r.apps, r.podsPerApp, r.podsCached, r.setup.Round(time.Second))
	fmt.Fprintf(w, "  over %s of ticks deciding for every app (%d ticks, %.0f decisions): RSS median %.0f MiB, highest %.0f MiB; peak since start %.0f MiB; Go heap in use at the end %.0f MiB\n",
		r.window, len(r.ticks), r.decisions, mib(median), mib(high), mib(r.rssPeak), r.heapInuse/(1<<20))
	fmt.Fprintf(w, "  tick p50 %s, p99 %s\n", fmtSeconds(p50.Seconds()), fmtSeconds(p99.Seconds()))
}
