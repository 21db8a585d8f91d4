package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hpaSync is kube-controller-manager's HPA sync period in hack/cluster
// (HPA_SYNC_PERIOD, left at its default).
const hpaSync = 15 * time.Second

// reach is how long after the step a fraction of a group's apps had the
// expected count; ok false when too few got there.
type reach struct {
	d  time.Duration
	ok bool
}

func (r reach) String() string {
	if !r.ok {
		return "-"
	}
	return fmt.Sprintf("%.0fs", r.d.Seconds())
}

// result is one size's figures.
type result struct {
	n            int
	setup        time.Duration // create the apps until every pod is Running
	stepWindow   time.Duration // setting every pod's new usage
	stepDuration time.Duration // the step until every app reached its count (or the timeout)
	podsAtEnd    int
	podsCached   int // of podsAtEnd, those Spinscale's podSelector takes in

	reached  map[string]int // per group
	offAtEnd map[string]int // per group: apps at another count at the end
	// countsAtEnd are, per group, the apps at each replica count at the end.
	countsAtEnd map[string]map[int32]int
	reach       map[string][3]reach // per group: 50 %, 90 %, 100 %

	ticks            float64 // from the steady window's start to the end
	tickP50, tickP99 float64 // seconds, NaN without ticks
	tickMax          float64
	tickN            int     // ticks timed
	cpuPerTick       float64 // seconds
	rssSteady        int64
	rssPeak          int64

	steadyTicks   float64
	steadyCalls   map[string]float64 // "VERB group/resource" per tick, steady window
	stepTicks     float64
	stepCalls     map[string]float64 // per tick, step window
	hpaSyncs      float64            // HPA syncs in the steady window
	kcmCalls      map[string]float64 // kube-controller-manager requests by method per HPA sync, steady window
	ssMetrics     float64            // Spinscale's metrics.k8s.io requests per tick, steady window
	hpaMetrics    float64            // the HPA's per sync, steady window
	metricsCounts string             // how hpaMetrics was counted
	// writes are the scale writes Spinscale made during the step, and
	// writeP50, writeP99 the upper bounds of the histogram buckets that
	// hold those quantiles of their time from decision to answer
	// (spinscale_scale_write_latency_seconds); NaN without writes.
	writes, writeP50, writeP99 float64
	// phases are the mean seconds of each phase of Spinscale's passes
	// (prepare, reads, decisions) from the steady window's start to the
	// end, from spinscale_tick_phase_seconds.
	phases map[string]float64
	// serverScaleWrites are the PATCHes of deployments/scale kube-apiserver
	// served during the step: Spinscale's writes (the HPA PUTs the scale).
	serverScaleWrites float64
}

var fractions = [3]float64{0.5, 0.9, 1}

// fill computes the figures from the scrapes: s0 and s1 bound the steady
// window, s1 and s2 the step.
func (r *result) fill(apps []appRef, since map[string][]time.Duration, s0, s1, s2 snapshot, tickTimes []time.Duration) {
	r.reached, r.reach = map[string]int{}, map[string][3]reach{}
	for _, g := range []string{groupSpinscale, groupHPA} {
		r.reached[g] = len(since[g])
		var rs [3]reach
		for i, f := range fractions {
			d, ok := timeToFraction(since[g], len(apps)/2, f)
			rs[i] = reach{d, ok}
		}
		r.reach[g] = rs
	}
	const tick = "spinscale_tick_duration_seconds"
	ticksAt := func(s snapshot) float64 { return s.spinscale.sum(tick+"_count", nil) }
	r.ticks = ticksAt(s2) - ticksAt(s0)
	r.tickN = len(tickTimes)
	r.tickP50, r.tickP99, r.tickMax = math.NaN(), math.NaN(), math.NaN()
	if p, ok := percentile(tickTimes, 0.5); ok {
		r.tickP50 = p.Seconds()
	}
	if p, ok := percentile(tickTimes, 0.99); ok {
		r.tickP99 = p.Seconds()
	}
	if p, ok := percentile(tickTimes, 1); ok {
		r.tickMax = p.Seconds()
	}
	cpu := s2.spinscale.sum("process_cpu_seconds_total", nil) - s0.spinscale.sum("process_cpu_seconds_total", nil)
	r.cpuPerTick = perUnit(cpu, r.ticks)

	const byResource = "spinscale_kube_resource_requests_total"
	calls := func(s snapshot) map[string]float64 {
		return s.spinscale.sumBy(byResource, nil, "verb", "group", "resource")
	}
	r.steadyTicks = ticksAt(s1) - ticksAt(s0)
	r.stepTicks = ticksAt(s2) - ticksAt(s1)
	r.steadyCalls = scaleMap(deltaOf(calls(s0), calls(s1)), r.steadyTicks)
	r.stepCalls = scaleMap(deltaOf(calls(s1), calls(s2)), r.stepTicks)

	r.hpaSyncs = s1.at.Sub(s0.at).Seconds() / hpaSync.Seconds()
	kcm := func(s snapshot) map[string]float64 { return s.kcm.sumBy("rest_client_requests_total", nil, "method") }
	r.kcmCalls = scaleMap(deltaOf(kcm(s0), kcm(s1)), r.hpaSyncs)

	r.phases = phaseMeans(s0, s2)

	const wl = "spinscale_scale_write_latency_seconds"
	buckets := func(s snapshot) map[string]float64 { return s.spinscale.sumBy(wl+"_bucket", nil, "le") }
	r.writes = s2.spinscale.sum(wl+"_count", nil) - s1.spinscale.sum(wl+"_count", nil)
	wb := deltaOf(buckets(s1), buckets(s2))
	r.writeP50, r.writeP99 = bucketBound(wb, r.writes, 0.5), bucketBound(wb, r.writes, 0.99)

	patchScale := map[string]string{"verb": "PATCH", "resource": "deployments", "subresource": "scale"}
	r.serverScaleWrites = s2.apiserver.sum("apiserver_request_total", patchScale) - s1.apiserver.sum("apiserver_request_total", patchScale)

	// metrics.k8s.io: metrics-server, an API server itself, counts every
	// request it serves, by resource but not by client. The bench makes
	// none in the window, so the HPA's are the total less Spinscale's own.
	metricsMatch := map[string]string{"group": "metrics.k8s.io", "resource": "pods"}
	total := s1.ms.sum("apiserver_request_total", metricsMatch) - s0.ms.sum("apiserver_request_total", metricsMatch)
	ssMatch := map[string]string{"group": "metrics.k8s.io"}
	own := s1.spinscale.sum(byResource, ssMatch) - s0.spinscale.sum(byResource, ssMatch)
	r.ssMetrics = perUnit(own, r.steadyTicks)
	if total > 0 {
		r.hpaMetrics = perUnit(total-own, r.hpaSyncs)
		r.metricsCounts = "metrics-server's own apiserver_request_total{group=\"metrics.k8s.io\",resource=\"pods\"} (every client) less Spinscale's spinscale_kube_resource_requests_total{group=\"metrics.k8s.io\"}"
	} else {
		r.hpaMetrics = math.NaN()
		r.metricsCounts = "not available: metrics-server reported no requests for pods.metrics.k8s.io"
	}
}

// bucketBound is the upper bound of the first cumulative histogram bucket
// (counts by their "le" label) that holds quantile q of count
// observations; NaN without observations.
func bucketBound(buckets map[string]float64, count, q float64) float64 {
	if count <= 0 {
		return math.NaN()
	}
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, n := range buckets {
		le, err := strconv.ParseFloat(k, 64) // "+Inf" parses as +Inf
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, b := range bs {
		if b.n >= q*count {
			return b.le
		}
	}
	return math.Inf(1)
}

func perUnit(v, units float64) float64 {
	if units <= 0 {
		return math.NaN()
	}
	return v / units
}

func scaleMap(m map[string]float64, units float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		out[k] = perUnit(v, units)
	}
	return out
}

// callKey renders "GET apps deployments/scale" as "GET apps/deployments/scale".
func callKey(k string) string {
	f := strings.Fields(k)
	switch len(f) {
	case 3:
		return f[0] + " " + f[1] + "/" + f[2]
	case 2:
		return f[0] + " " + f[1]
	}
	return k
}

// formatCalls lists per-unit calls, largest first, "-" for none.
func formatCalls(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", callKey(k), m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func sumValues(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// writeCalls are the scale writes and the Events recorded with them: the
// calls that grow with the number of apps that change.
func writeCalls(m map[string]float64) float64 {
	var t float64
	for k, v := range m {
		if strings.HasSuffix(k, "deployments/scale") && !strings.HasPrefix(k, "GET") || strings.HasSuffix(k, " events") {
			t += v
		}
	}
	return t
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func printResult(w io.Writer, r result) {
	fmt.Fprintf(w, "\nN = %d apps per group (%d pods at the end), setup %s, step applied in %.1fs, followed for %s\n",
		r.n, r.podsAtEnd, r.setup.Round(time.Second), r.stepWindow.Seconds(), r.stepDuration.Round(time.Second))
	fmt.Fprintf(w, "  %-10s %8s %8s %8s %8s %s\n", "", "50%", "90%", "100%", "reached", "at another count at the end")
	for _, g := range []string{groupSpinscale, groupHPA} {
		rs := r.reach[g]
		fmt.Fprintf(w, "  %-10s %8s %8s %8s %5d/%d %d (%s)\n", g, rs[0], rs[1], rs[2], r.reached[g], r.n, r.offAtEnd[g], formatCounts(r.countsAtEnd[g]))
	}
	fmt.Fprintf(w, "  tick p50 %.3fs p99 %.3fs of %d ticks timed (%.0f counted); CPU %.3fs/tick; RSS steady %.0f MiB, peak %.0f MiB\n",
		r.tickP50, r.tickP99, r.tickN, r.ticks, r.cpuPerTick, mib(r.rssSteady), mib(r.rssPeak))
	fmt.Fprintf(w, "  pass phases, mean: %s\n", formatPhases(r.phases))
	fmt.Fprintf(w, "  scale writes the API server saw during the step: %.0f PATCH deployments/scale\n", r.serverScaleWrites)
	fmt.Fprintf(w, "  Spinscale's scale writes during the step: %.0f, decision to answer p50 %s, p99 %s (histogram bucket bounds)\n", r.writes, fmtBound(r.writeP50), fmtBound(r.writeP99))
	fmt.Fprintf(w, "  Spinscale API calls per tick, steady (%.0f ticks): %s\n", r.steadyTicks, formatCalls(r.steadyCalls))
	fmt.Fprintf(w, "  Spinscale API calls per tick, step (%.0f ticks): %s\n", r.stepTicks, formatCalls(r.stepCalls))
	fmt.Fprintf(w, "  kube-controller-manager (all its controllers) requests per HPA sync, steady: %s\n", formatCalls(r.kcmCalls))
	fmt.Fprintf(w, "  metrics.k8s.io requests: Spinscale %.1f per tick, HPA %.1f per sync (%s)\n", r.ssMetrics, r.hpaMetrics, r.metricsCounts)
}

// printGrowth is the summary table: one row per size.
func printGrowth(w io.Writer, rs []result) {
	fmt.Fprintln(w)
	fmt.Fprint(w, growthTable(rs))
}

// growthTable is the Markdown table of the figures by N.
func growthTable(rs []result) string {
	var b strings.Builder
	b.WriteString("| N apps per group | pods at the end (Spinscale's) | Spinscale 50 / 90 / 100 % | HPA 50 / 90 / 100 % | tick p50 / p99 | CPU per tick | RSS steady / peak | Spinscale API calls per tick, steady | during the step, as issued (scale writes and Events) | scale writes served per tick | scale write, decision to answer, p50 / p99 | metrics.k8s.io calls: Spinscale per tick / HPA per sync |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		s, h := r.reach[groupSpinscale], r.reach[groupHPA]
		fmt.Fprintf(&b, "| %d | %d (%d) | %s / %s / %s | %s / %s / %s | %s / %s | %.0f ms | %.0f / %.0f MiB | %.1f | %.1f (%.1f) | %.1f | %s / %s | %.1f / %.1f |\n",
			r.n, r.podsAtEnd, r.podsCached, s[0], s[1], s[2], h[0], h[1], h[2],
			fmtSeconds(r.tickP50), fmtSeconds(r.tickP99), r.cpuPerTick*1000, mib(r.rssSteady), mib(r.rssPeak),
			sumValues(r.steadyCalls), sumValues(r.stepCalls), writeCalls(r.stepCalls), perUnit(r.serverScaleWrites, r.stepTicks), fmtBound(r.writeP50), fmtBound(r.writeP99), r.ssMetrics, r.hpaMetrics)
	}
	return b.String()
}

func fmtSeconds(s float64) string {
	if math.IsNaN(s) {
		return "-"
	}
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// fmtBound formats a histogram bucket bound as "≤ bound".
func fmtBound(s float64) string {
	switch {
	case math.IsNaN(s):
		return "-"
	case math.IsInf(s, 1):
		return "> largest bucket"
	}
	return "≤ " + fmtSeconds(s)
}

// formatCounts lists apps by replica count: "6 replicas: 480, 7: 20".
func formatCounts(m map[int32]int) string {
	if len(m) == 0 {
		return "no counts seen"
	}
	keys := make([]int32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d: %d", k, m[k])
	}
	return "apps by replicas " + strings.Join(parts, ", ")
}

// phaseMeans is the mean seconds of each phase of Spinscale's passes
// between two snapshots (spinscale_tick_phase_seconds).
func phaseMeans(from, to snapshot) map[string]float64 {
	const ph = "spinscale_tick_phase_seconds"
	sum := deltaOf(from.spinscale.sumBy(ph+"_sum", nil, "phase"), to.spinscale.sumBy(ph+"_sum", nil, "phase"))
	count := deltaOf(from.spinscale.sumBy(ph+"_count", nil, "phase"), to.spinscale.sumBy(ph+"_count", nil, "phase"))
	out := map[string]float64{}
	for p, n := range count {
		out[p] = perUnit(sum[p], n)
	}
	return out
}

// formatPhases lists the mean time of each phase of a pass, in pass order.
func formatPhases(m map[string]float64) string {
	var parts []string
	for _, p := range []string{"prepare", "reads", "decisions"} {
		if v, ok := m[p]; ok {
			parts = append(parts, p+" "+fmtSeconds(v))
		}
	}
	if len(parts) == 0 {
		return "not reported"
	}
	return strings.Join(parts, ", ")
}
