package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// memoryResult is what -memory measures: the controller's memory with n
// Spinscale apps of pods pods each, every app decided on each tick.
type memoryResult struct {
	apps, podsPerApp int
	selector         string
	podsCached       int
	setup            time.Duration
	window           time.Duration
	ticks            []time.Duration
	rss              []int64 // sampled every second over the window, bytes
	rssPeak          int64   // over the whole run, from the autoscaler's start
	heapInuse        float64 // go_memstats_heap_inuse_bytes at the window's end
	decisions        float64 // decisions made over the window
	// cpu is the controller's CPU seconds over the window: its passes and
	// everything else it does (informers, the collector, serving the
	// bench's /metrics reads), so per tick it bounds a pass's cost.
	cpu    float64
	phases map[string]float64
}

// measureMemory runs n Spinscale apps of pods pods each (no HPA twins, no
// step: their usage stays at the spec's before value) on a control plane
// of its own and samples the controller's RSS over window once every pod
// has metrics: the goal's 5,000 apps × 5 pods measured rather than
// extrapolated. Every tick decides for every app (the hpa profile decides
// on the interval), so the window holds the metrics LISTs and decisions
// for all of them, not an idle cache.
func measureMemory(ctx context.Context, n, pods int, window time.Duration, o options) (res memoryResult, err error) {
	res.apps, res.podsPerApp, res.window, res.selector = n, pods, window, o.podSelector
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[memory N=%d %s] %s\n", n, time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	spec := o.spec
	spec.pods = int32(pods)
	spec.expectReplicas = spec.pods // no step: the count stays
	namespaces := namespacesFor(o.namespaces)
	var apps []appRef
	for _, a := range appsFor(n, namespaces) {
		if a.group == groupSpinscale {
			apps = append(apps, a)
		}
	}
	total := spec.requestMilli * spec.beforePercent / 100 * int64(pods)
	// Any sample will do: nothing is stepped, and with tens of thousands of
	// kwok pods on two cores their emulated usage, as metrics-server
	// derives it, strays further from its share than the step bench's 5m.
	b, err := setUpBed(ctx, logf, apps, namespaces, spec, total, n*pods, -1, o)
	defer func() { err = b.tearDown(err) }()
	if err != nil {
		return res, err
	}
	c, a := b.c, b.a
	res.setup, res.podsCached = b.setup, len(b.pods)
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
	res.cpu = s1.spinscale.sum("process_cpu_seconds_total", nil) - s0.spinscale.sum("process_cpu_seconds_total", nil)
	res.phases = phaseMeans(s0, s1)
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
	fmt.Fprintf(w, "\nmemory: %d Spinscale apps × %d pods (%d pods Running and Ready; podSelector %q), setup %s\n",
		r.apps, r.podsPerApp, r.podsCached, r.selector, r.setup.Round(time.Second))
	fmt.Fprintf(w, "  over %s of ticks deciding for every app (%d ticks, %.0f decisions): RSS median %.0f MiB, highest %.0f MiB; peak since start %.0f MiB; Go heap in use at the end %.0f MiB\n",
		r.window, len(r.ticks), r.decisions, mib(median), mib(high), mib(r.rssPeak), r.heapInuse/(1<<20))
	fmt.Fprintf(w, "  tick p50 %s, p99 %s; pass phases, mean: %s; CPU %.1f s over the window (%s per tick)\n",
		fmtSeconds(p50.Seconds()), fmtSeconds(p99.Seconds()), formatPhases(r.phases), r.cpu, fmtSeconds(perUnit(r.cpu, float64(len(r.ticks)))))
}
