package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spinscale/spinscale/internal/config"
)

// goal is one of the scale goals with its verdict.
type goal struct {
	name, verdict string
	met           bool
	known         bool // false: not decidable from these runs
}

// goals reads the four scale goals off the results (sorted by N).
func goals(rs []result) []goal {
	if len(rs) == 0 {
		return nil // no size ran: nothing to judge
	}
	last := rs[len(rs)-1]
	var out []goal

	// (a) every Spinscale app no later than HPA's median app, at the largest N.
	a := goal{name: fmt.Sprintf("(a) at the largest N (%d), every Spinscale app reaches its count no later than HPA's median app", last.n)}
	s100, h50 := last.reach[groupSpinscale][2], last.reach[groupHPA][0]
	switch {
	case !h50.ok:
		a.verdict = "undecided: fewer than half the HPA apps reached their count within the step timeout"
	case !s100.ok:
		a.known, a.verdict = true, fmt.Sprintf("not met: %d of %d Spinscale apps reached their count within the step timeout; HPA's median app took %s", last.reached[groupSpinscale], last.n, h50)
	default:
		a.known, a.met = true, s100.d <= h50.d
		a.verdict = fmt.Sprintf("%s: Spinscale's last app %s, HPA's median app %s", metWord(a.met), s100, h50)
	}
	out = append(out, a)

	// (b) tick p99 ≤ 2 s.
	b := goal{name: "(b) tick p99 ≤ 2 s", known: true, met: true}
	var worst float64
	for _, r := range rs {
		if !math.IsNaN(r.tickP99) {
			worst = math.Max(worst, r.tickP99)
		}
	}
	b.met = worst <= 2
	b.verdict = fmt.Sprintf("%s: the largest p99 measured is %s (each tick timed from the histogram's count and sum, sampled every %s; with fewer than 100 ticks per size, p99 is the longest tick)", metWord(b.met), fmtSeconds(worst), scrapeEvery)
	out = append(out, b)

	// (c) RSS ≤ 300 MiB at 5,000 apps × 5 pods, extrapolated.
	c := goal{name: "(c) RSS ≤ 300 MiB at 5,000 apps × 5 pods (25,000 pods)"}
	var xs, ys []float64
	for _, r := range rs {
		if r.podsCached > 0 && r.rssPeak > 0 {
			xs = append(xs, float64(r.podsCached))
			ys = append(ys, mib(r.rssPeak))
		}
	}
	if ia, ib, ok := linearFit(xs, ys); ok && len(xs) >= 2 {
		at := ia + ib*25000
		c.known, c.met = true, at <= 300
		c.verdict = fmt.Sprintf("%s, by extrapolation: a straight line through the peak RSS against the pods Spinscale's podSelector takes in (%.0f MiB + %.2f KiB per pod) gives %.0f MiB at 25,000 pods. Extrapolated, not measured here: `make bench-scale-memory` measures that size (below, \"5,000 apps × 5 pods, measured\")",
			metWord(c.met), ia, ib*1024, at)
	} else {
		c.verdict = "undecided: at least two sizes are needed to extrapolate"
	}
	out = append(out, c)

	// (d) API calls per tick independent of N, apart from the scale writes.
	d := goal{name: "(d) Kubernetes API calls per tick independent of N, apart from the scale writes"}
	lo, hi := math.Inf(1), 0.0
	var per []string
	for _, r := range rs {
		v := sumValues(r.steadyCalls)
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		per = append(per, fmt.Sprintf("%.1f at N=%d", v, r.n))
	}
	if len(rs) >= 2 {
		d.known = true
		// Within one call per tick (the odd Lease or Event) or 20 %.
		d.met = hi-lo <= math.Max(1, 0.2*lo)
		d.verdict = fmt.Sprintf("%s: with no app changing, %s (one metrics.k8s.io LIST per namespace, nothing per app; every read of Deployments and Pods comes from the informer caches)", metWord(d.met), strings.Join(per, ", "))
	} else {
		d.verdict = "undecided: one size only (" + strings.Join(per, ", ") + ")"
	}
	out = append(out, d)
	return out
}

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}

// writeDocFile writes docs/scale.md: how it was measured, the table, the
// plot, the goals, and the calls in detail.
func writeDocFile(path, plot, cmdline string, o options, rs []result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Spinscale at scale, beside the real HPA\n\n")
	fmt.Fprintf(&b, "Measured by `make bench-scale` (bench/scale.sh, which runs `bench/scale`) on %s, %s.\n\n", machine(), time.Now().UTC().Format("2006-01-02"))
	b.WriteString("```\n" + cmdline + "\n```\n\n")
	fmt.Fprintf(&b, "Each size N runs on a control plane of its own ([hack/cluster](../hack/cluster/README.md): etcd, kube-apiserver, kube-controller-manager with the real HPA controller at its defaults and a %s sync, kube-scheduler, kwok fake nodes, metrics-server at a %s resolution), torn down afterwards. ", hpaSync, o.resolution)
	fmt.Fprintf(&b, "It creates N apps for Spinscale (annotations: `spinscale.dev/profile: hpa`, cpu target %d %%, min %d, max %d) and N identical apps each under an autoscaling/v2 HorizontalPodAutoscaler with the same bounds and target, spread over %d namespaces, %d pods each (%d m cpu request). ",
		o.spec.targetPercent, o.spec.pods, o.spec.maxReplicas, o.namespaces, o.spec.pods, o.spec.requestMilli)
	fmt.Fprintf(&b, "Each app carries a total emulated cpu usage of %d m, kept spread evenly over its running pods (as a fixed amount of traffic spreads over however many pods serve it: each change of an app's pods re-annotates them), %d %% of the request per pod. ",
		o.spec.requestMilli*o.spec.beforePercent/100*int64(o.spec.pods), o.spec.beforePercent)
	fmt.Fprintf(&b, "The real `autoscaler` binary runs with the `hpa` profile, a %s interval and `poll=0` (one pass per interval, so that a tick is an interval's work; the hpa profile decides on the interval only), leader election off, and its shipped client-side rate limit (`kube.qps` %v, `kube.burst` %d, per API group client); a pass decides for every app and queues the scale writes, which its workers make beside the passes, scale-ups first (the tick is the pass: reads and decisions). ",
		o.interval, config.Default().Kube.QPS, config.Default().Kube.Burst)
	if o.podSelector != "" {
		fmt.Fprintf(&b, "Its `podSelector` is `%s`, the Spinscale apps' pods only, as the chart's default keeps the controller to SpinKube's pods: neither its pod cache nor its metrics.k8s.io reads hold the HPA twins' pods. ", o.podSelector)
	} else {
		b.WriteString("It runs without a `podSelector`: its pod cache and metrics.k8s.io reads hold every pod of the namespaces, the HPA twins' too. ")
	}
	fmt.Fprintf(&b, "After %s of steady state every app's total is raised to %d m at once (the apps one after another, interleaved Spinscale and HPA, by 32 workers through a 400 QPS client), so that both rules give ceil(%d × %d / %d) = %d replicas, within the scale-up limit of one sync, max(2 × %d, 4); every count on the way leads there too, and %d holds (within the 10 %% tolerance). ",
		o.steady, o.spec.requestMilli*o.spec.afterPercent/100*int64(o.spec.pods), o.spec.pods, o.spec.afterPercent, o.spec.targetPercent, o.spec.expectReplicas, o.spec.pods, o.spec.expectReplicas)
	b.WriteString("Times run from the moment the last app's new usage was set until an app's `spec.replicas` first equals that count (seen through an informer). One step per size: where each controller's 15 s clock falls relative to the step and to metrics-server's scrape moves both groups' times by up to an interval, so a few seconds between the groups' medians is phase, not speed.\n\n")

	b.WriteString("## Results\n\n")
	b.WriteString(growthTable(rs))
	b.WriteString("\nCPU per tick is `process_cpu_seconds_total` over the ticks from the steady window's start to the end of the step. RSS is `VmRSS` sampled every second. API calls per tick come from `spinscale_kube_resource_requests_total` (by verb, group and resource); client-go counts a request as it issues it, so during the step they include the writes its rate limiter turned away at a tick's deadline; the scale writes kube-apiserver served (`apiserver_request_total`, `PATCH deployments/scale`) are the next column.\n\n")
	if plot != "" {
		rel, err := filepath.Rel(filepath.Dir(path), plot)
		if err != nil {
			rel = plot
		}
		fmt.Fprintf(&b, "![time to the right count, tick duration and RSS against N](%s)\n\n", filepath.ToSlash(rel))
	}

	b.WriteString("## Goals\n\n")
	for _, g := range goals(rs) {
		fmt.Fprintf(&b, "- **%s**: %s.\n", g.name, g.verdict)
	}

	b.WriteString("\n## API calls in detail\n\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "**N = %d.** Setup (apps created until every pod ran) %s; the step took %.1f s to set; apps at another count than %d when the bench stopped: Spinscale %d (%s), HPA %d (%s); Spinscale's passes, mean by phase: %s; %.0f `PATCH deployments/scale` served by kube-apiserver during the step (Spinscale's writes). ",
			r.n, r.setup.Round(time.Second), r.stepWindow.Seconds(), o.spec.expectReplicas, r.offAtEnd[groupSpinscale], formatCounts(r.countsAtEnd[groupSpinscale]), r.offAtEnd[groupHPA], formatCounts(r.countsAtEnd[groupHPA]), formatPhases(r.phases), r.serverScaleWrites)
		fmt.Fprintf(&b, "Spinscale per tick, steady (%.0f ticks): %s. During the step (%.0f ticks): %s. ", r.steadyTicks, formatCalls(r.steadyCalls), r.stepTicks, formatCalls(r.stepCalls))
		fmt.Fprintf(&b, "kube-controller-manager, every controller, per HPA sync (steady): %s. ", formatCalls(r.kcmCalls))
		fmt.Fprintf(&b, "metrics.k8s.io: Spinscale %.1f per tick, the HPA %.1f per sync.\n\n", r.ssMetrics, r.hpaMetrics)
	}
	if len(rs) > 0 {
		fmt.Fprintf(&b, "The HPA's metrics.k8s.io requests are counted as %s. kube-controller-manager's `rest_client_requests_total` carries only the method, so its figure covers all of its controllers, the HPA's among them.\n", rs[0].metricsCounts)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	kept, err := keptSections(path)
	if err != nil {
		return err
	}
	if kept != "" {
		b.WriteString("\n" + kept)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// keepMarker starts the part of docs/scale.md this bench does not write
// (other benches' sections): a new report keeps it.
const keepMarker = "<!-- bench/scale writes the file above this line; what follows is kept -->"

// keptSections is what follows keepMarker in the file at path, the marker
// included, or "" when the file or the marker is absent.
func keptSections(path string) (string, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s for the sections to keep: %w", path, err)
	}
	i := strings.Index(string(old), keepMarker)
	if i < 0 {
		return "", nil
	}
	return string(old[i:]), nil
}
