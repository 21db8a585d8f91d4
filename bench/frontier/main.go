// Command frontier measures decision profiles against HPA's whole
// cost/safety curve, on windows of real traffic that the profiles were not
// tuned on.
//
// It draws windows of one to two hours, with a fixed seed, from the two real
// per-second traces (NASA-HTTP 1995 and the Twitter stream 2021; calm and
// busy ones alike, none overlapping the standard traces of bench/traces),
// scales each to a stated mean load, and splits them into a tuning split and
// a held-out split. On every window it runs the load-trace simulator
// (internal/simulate, the controller's own decision engine) for the `hpa`
// profile at a sweep of targets — HPA's frontier: what a user gets by
// retuning HPA — and for each Spinscale policy at the same targets, with 15 s
// metrics (cpu utilization, as from metrics-server) and 5 s metrics (a
// request rate, as from Prometheus). It prints, per split, the summed
// pod-seconds, under-provisioned pod-seconds and reversals, each policy's
// under-provisioning as a multiple of HPA's frontier at equal cost, and the
// goals. Tune on `-split tuning`; quote `-split heldout`.
//
// Usage, from the repository root (make bench-frontier):
//
//	go run ./bench/frontier [-data ../shared/traces] [-seed 1] [-windows 48]
//	    [-split heldout|tuning|all] [-plot bench/images/frontier.png]
//	    [-try key=value,...] [-list]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"k8s.io/client-go/util/workqueue"

	"github.com/spinscale/spinscale/internal/simulate"
)

// policy is one row family: a profile and annotations on top of it.
type policy struct {
	name        string
	profile     string
	annotations map[string]string
}

// metricSetup is one metric pipeline the policies are measured with.
type metricSetup struct {
	name string
	// resolution is the metric window and refresh, in seconds.
	resolution int
	// prometheus selects a request-rate query; otherwise cpu utilization.
	prometheus bool
}

var setups = []metricSetup{
	{name: "15 s metrics (cpu utilization, as metrics-server)", resolution: 15},
	{name: "5 s metrics (request rate, as Prometheus)", resolution: 5, prometheus: true},
}

// The app every window is played with: a pod serves at most capacity
// requests/s, using 1m of cpu per request/s against a 500m request, so a
// target of T% is T% of what a pod can serve.
const (
	capacityPerPod  = 500
	cpuRequestMilli = 500
	maxReplicas     = 200
	tickSeconds     = 15
)

// Goals for a policy on the held-out split, against the hpa profile:
// under-provisioning at most underGoal × HPA's frontier at equal cost, cost
// at most costGoal × hpa's at the same target, reversals at most
// reversalFactor × hpa's + reversalSlack.
const (
	underGoal      = 0.7
	underMoonshot  = 0.5
	costGoal       = 1.10
	reversalFactor = 1.5
	reversalSlack  = 4
)

type options struct {
	data        string
	seed        uint64
	windows     int
	tuneEvery   int
	split       string
	hpaTargets  []int
	targets     []int
	plot        string
	list        bool
	policies    []policy
	parallelism int
}

func main() {
	o := options{
		policies: []policy{{name: "spinscale", profile: "spinscale"}},
	}
	flag.StringVar(&o.data, "data", "../shared/traces", "directory holding nasa-1995-per-second.tbz2 and twitter-stream-per-second.tbz2")
	flag.Uint64Var(&o.seed, "seed", 1, "seed that draws the windows and the split")
	flag.IntVar(&o.windows, "windows", 48, "number of windows, half from each trace")
	flag.IntVar(&o.tuneEvery, "tune-every", 3, "one window in this many goes to the tuning split; the rest are held out")
	flag.StringVar(&o.split, "split", "heldout", "which split to report: heldout, tuning or all")
	hpaTargets := flag.String("hpa-targets", "30,35,40,45,50,55,60,65,70,75,80", "targets (percent of what a pod serves) that trace HPA's frontier")
	targets := flag.String("targets", "40,45,50,55,60,65,70,75", "targets the policies run at")
	flag.StringVar(&o.plot, "plot", "", "write the frontiers as a PNG to this file")
	flag.BoolVar(&o.list, "list", false, "also list the windows")
	flag.IntVar(&o.parallelism, "parallel", runtime.GOMAXPROCS(0), "simulations run at once")
	flag.Func("try", "add a spinscale policy with these annotations, as key=value[,key=value] without the prefix; repeatable", func(s string) error {
		p, err := tryPolicy(s)
		if err == nil {
			o.policies = append(o.policies, p)
		}
		return err
	})
	flag.Parse()
	var err error
	if o.hpaTargets, err = percents(*hpaTargets); err == nil {
		o.targets, err = percents(*targets)
	}
	if err == nil && !slices.Contains([]string{"heldout", "tuning", "all"}, o.split) {
		err = fmt.Errorf("-split %q: want heldout, tuning or all", o.split)
	}
	if err == nil && (o.windows < 2 || o.tuneEvery < 0) {
		err = fmt.Errorf("-windows must be at least 2 and -tune-every at least 0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-frontier:", err)
		os.Exit(2)
	}
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-frontier:", err)
		os.Exit(1)
	}
}

func tryPolicy(s string) (policy, error) {
	ann := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return policy{}, fmt.Errorf("-try %q: want key=value", kv)
		}
		ann["spinscale.dev/"+strings.TrimPrefix(k, "spinscale.dev/")] = v
	}
	return policy{name: "spinscale, " + s, profile: "spinscale", annotations: ann}, nil
}

func percents(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 5 || n > 100 {
			return nil, fmt.Errorf("target %q: want a whole percent from 5 to 100", f)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// job is one simulation: a window, a setup, a policy (-1 = hpa) and a
// target.
type job struct {
	window, setup, policy, target int
}

// results holds every simulation's summary, by job.
type results map[job]simulate.Summary

func run(w io.Writer, o options) error {
	ws, err := drawWindows(o.data, o.windows, o.seed, o.tuneEvery)
	if err != nil {
		return err
	}
	var jobs []job
	for wi := range ws {
		for si := range setups {
			for _, t := range o.hpaTargets {
				jobs = append(jobs, job{wi, si, -1, t})
			}
			for pi := range o.policies {
				for _, t := range o.targets {
					jobs = append(jobs, job{wi, si, pi, t})
				}
			}
		}
	}
	res, err := simulateAll(ws, o, jobs)
	if err != nil {
		return err
	}

	tuning := 0
	for _, win := range ws {
		if win.Tuning {
			tuning++
		}
	}
	fmt.Fprintf(w, "%d windows of 1-2 h drawn with seed %d from the NASA 1995 and Twitter 2021 traces (none overlapping the standard traces): %d in the tuning split, %d held out. ",
		len(ws), o.seed, tuning, len(ws)-tuning)
	fmt.Fprintf(w, "Each window is scaled to a mean of %s requests/s; a pod serves at most %d; %d s interval, samples at a phase drawn per window; targets are percent of what a pod serves. ", joinFloats(meanLoads), capacityPerPod, tickSeconds)
	fmt.Fprintf(w, "Produced by `go run ./bench/frontier -seed %d -windows %d -split %s`.\n", o.seed, len(ws), o.split)
	if o.list {
		listWindows(w, ws)
	}
	var plots []plotPanel
	for _, split := range []struct {
		name   string
		tuning bool
	}{{"Held-out split", false}, {"Tuning split (for tuning only: never quote these figures)", true}} {
		if o.split == "heldout" && split.tuning || o.split == "tuning" && !split.tuning {
			continue
		}
		in := func(wi int) bool { return ws[wi].Tuning == split.tuning }
		var goals []goalRow
		for si, s := range setups {
			hpa := sum(res, in, si, -1, o.hpaTargets)
			f := newFrontier(hpa)
			fmt.Fprintf(w, "\n### %s: %s\n\n", split.name, s.name)
			fmt.Fprintln(w, "| policy | target | pod-seconds | under-provisioned pod-s | reversals | cost vs hpa, same target | under-provisioning vs HPA's frontier, equal cost |")
			fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|")
			for _, p := range hpa {
				fmt.Fprintf(w, "| hpa | %d%% | %.0f | %.0f | %d | 1.000 | 1.00 |\n", p.Target, p.PodSeconds, p.Under, p.Reversals)
			}
			panel := plotPanel{title: split.name + ": " + s.name, hpa: hpa}
			for pi, pol := range o.policies {
				pts := sum(res, in, si, pi, o.targets)
				panel.policies = append(panel.policies, plotLine{name: pol.name, points: pts})
				g := goalRow{policy: pol.name, setup: s.name, geo: 1}
				n := 0
				for _, p := range pts {
					h := byTarget(hpa, p.Target)
					m, outside := f.multiple(p)
					mark := ""
					if outside {
						mark = " (outside HPA's sweep)"
					}
					cost := ratio(p.PodSeconds, h.PodSeconds)
					fmt.Fprintf(w, "| %s | %d%% | %.0f | %.0f | %d | %.3f | %s%s |\n", pol.name, p.Target, p.PodSeconds, p.Under, p.Reversals, cost, fmtMultiple(m), mark)
					g.add(p, h, m, outside)
					if !outside && !math.IsInf(m, 0) && m > 0 {
						g.geo *= m
						n++
					}
				}
				if n > 0 {
					g.geo = math.Pow(g.geo, 1/float64(n))
				} else {
					g.geo = math.NaN()
				}
				goals = append(goals, g)
			}
			plots = append(plots, panel)
		}
		printGoals(w, split.name, goals)
	}
	if o.plot != "" {
		f, err := os.Create(o.plot)
		if err != nil {
			return err
		}
		if err := writePlot(f, plots); err != nil {
			f.Close()
			return fmt.Errorf("plot %s: %w", o.plot, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// simulateAll runs every job, o.parallelism at a time.
func simulateAll(ws []window, o options, jobs []job) (results, error) {
	sums := make([]simulate.Summary, len(jobs))
	errs := make([]error, len(jobs))
	workqueue.ParallelizeUntil(context.Background(), max(1, o.parallelism), len(jobs), func(i int) {
		j := jobs[i]
		sums[i], errs[i] = simulateOne(&ws[j.window], setups[j.setup], o.policyOf(j.policy), j.target)
		if errs[i] != nil {
			errs[i] = fmt.Errorf("window %s, %s, target %d%%: %w", ws[j.window].ID, setups[j.setup].name, j.target, errs[i])
		}
	})
	out := make(results, len(jobs))
	for i, j := range jobs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[j] = sums[i]
	}
	return out, nil
}

func (o options) policyOf(i int) policy {
	if i < 0 {
		return policy{name: "hpa", profile: "hpa"}
	}
	return o.policies[i]
}

// simulateOne plays one window through the load-trace simulator.
func simulateOne(win *window, s metricSetup, p policy, target int) (simulate.Summary, error) {
	doc, csv := scenarioFor(win, s, p, target)
	sc, err := simulate.LoadWith(doc, simulate.Options{ReadFile: func(string) ([]byte, error) { return csv, nil }})
	if err != nil {
		return simulate.Summary{}, err
	}
	if sc.Trace == nil {
		return simulate.Summary{}, fmt.Errorf("not a load-trace scenario")
	}
	r := sc.Trace.Simulate()
	if p.profile == "hpa" && len(r.Ticks) > 0 && r.Ticks[0].Decision.Behavior {
		return simulate.Summary{}, fmt.Errorf("the hpa profile ran on the behavior path")
	}
	return r.Summary, nil
}

// scenarioFor writes the load-trace scenario of one run, and its trace as
// CSV.
func scenarioFor(win *window, s metricSetup, p policy, target int) (doc, csv []byte) {
	targetLoad := float64(capacityPerPod*target) / 100
	var b strings.Builder
	fmt.Fprintf(&b, "annotations:\n  spinscale.dev/enabled: \"true\"\n  spinscale.dev/max-replicas: \"%d\"\n  spinscale.dev/profile: %q\n", maxReplicas, p.profile)
	if s.prometheus {
		fmt.Fprintf(&b, "  spinscale.dev/prometheus-query: 'sum(rate(requests_total[%ds]))'\n  spinscale.dev/prometheus-target-average-value: %q\n",
			s.resolution, strconv.FormatFloat(targetLoad, 'f', -1, 64))
	} else {
		fmt.Fprintf(&b, "  spinscale.dev/target-cpu-utilization: \"%d\"\n", target)
	}
	keys := make([]string, 0, len(p.annotations))
	for k := range p.annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %q\n", k, p.annotations[k])
	}
	initial := max(1, int(math.Ceil(win.Loads[0]/targetLoad)))
	fmt.Fprintf(&b, "workload:\n  targetLoadPerPod: %s\n  capacityPerPod: %d\n  cpuPerUnit: %dm\n  requests: {cpu: %dm}\n  startupSeconds: %d\n  readinessDelaySeconds: 0\n  initialReplicas: %d\n",
		strconv.FormatFloat(targetLoad, 'f', -1, 64), capacityPerPod, cpuRequestMilli/capacityPerPod, cpuRequestMilli, win.StartupSeconds, initial)
	fmt.Fprintf(&b, "sim:\n  tickSeconds: %d\n  metricResolutionSeconds: %d\n  metricPhaseSeconds: %d\n  durationSeconds: %d\n  prometheusResult: scalar\n",
		tickSeconds, s.resolution, int(win.Phase*float64(s.resolution)), win.Length)
	b.WriteString("traceFile: window.csv\n")

	var c strings.Builder
	c.WriteString("at,load\n")
	for i, l := range win.Loads {
		fmt.Fprintf(&c, "%d,%s\n", i*win.Bucket, strconv.FormatFloat(l, 'f', -1, 64))
	}
	return []byte(b.String()), []byte(c.String())
}

// sum adds up one policy's runs over a split's windows, per target.
func sum(res results, in func(int) bool, setup, pol int, targets []int) []point {
	out := make([]point, len(targets))
	for i, t := range targets {
		out[i].Target = t
		for j, s := range res {
			if j.setup != setup || j.policy != pol || j.target != t || !in(j.window) {
				continue
			}
			out[i].PodSeconds += s.PodSeconds
			out[i].Under += s.UnderProvisionedPodSeconds
			out[i].Reversals += s.Reversals
		}
	}
	return out
}

func byTarget(pts []point, t int) point {
	for _, p := range pts {
		if p.Target == t {
			return p
		}
	}
	return point{Target: t, PodSeconds: math.NaN(), Under: math.NaN()}
}

// goalRow is one policy's verdict with one metric setup.
type goalRow struct {
	policy, setup string
	// worst is the largest multiple inside HPA's sweep, at worstTarget.
	worst       float64
	worstTarget int
	geo         float64
	// cost is the largest cost ratio to hpa at the same target.
	cost       float64
	costTarget int
	// reversals over its limit, by target.
	reversalMisses []string
	outside        []int
}

func (g *goalRow) add(p, hpa point, m float64, outside bool) {
	if outside {
		g.outside = append(g.outside, p.Target)
	} else if m > g.worst || g.worstTarget == 0 {
		g.worst, g.worstTarget = m, p.Target
	}
	if c := ratio(p.PodSeconds, hpa.PodSeconds); c > g.cost || g.costTarget == 0 {
		g.cost, g.costTarget = c, p.Target
	}
	if limit := reversalFactor*float64(hpa.Reversals) + reversalSlack; float64(p.Reversals) > limit {
		g.reversalMisses = append(g.reversalMisses, fmt.Sprintf("%d%%: %d > %.0f", p.Target, p.Reversals, limit))
	}
}

func printGoals(w io.Writer, split string, goals []goalRow) {
	fmt.Fprintf(w, "\n### Goals, %s\n\n", strings.ToLower(split[:1])+split[1:])
	fmt.Fprintf(w, "Under-provisioning ≤ %.1f× HPA's frontier at equal cost (moonshot %.1f×) at every target inside HPA's sweep; cost ≤ %.2f× hpa at the same target; reversals ≤ %.1f× hpa's + %d, per target, summed over the windows.\n\n",
		underGoal, underMoonshot, costGoal, reversalFactor, reversalSlack)
	fmt.Fprintln(w, "| policy | metrics | worst multiple of HPA's frontier | geometric mean | worst cost vs hpa | reversals over the limit | goals missed |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|---|---|")
	for _, g := range goals {
		var missed []string
		if g.worst > underGoal {
			missed = append(missed, fmt.Sprintf("under-provisioning %s > %.1f× at %d%%", fmtMultiple(g.worst), underGoal, g.worstTarget))
		}
		if g.cost > costGoal {
			missed = append(missed, fmt.Sprintf("cost %.3f× > %.2f× at %d%%", g.cost, costGoal, g.costTarget))
		}
		if len(g.reversalMisses) > 0 {
			missed = append(missed, "reversals")
		}
		verdict := "none"
		if len(missed) > 0 {
			verdict = strings.Join(missed, "; ")
		}
		rev := "none"
		if len(g.reversalMisses) > 0 {
			rev = strings.Join(g.reversalMisses, ", ")
		}
		setup, _, _ := strings.Cut(g.setup, " (")
		fmt.Fprintf(w, "| %s | %s | %s at %d%% | %s | %.3f× at %d%% | %s | %s |\n", g.policy, setup, fmtMultiple(g.worst), g.worstTarget, fmtMultiple(g.geo), g.cost, g.costTarget, rev, verdict)
	}
}

func listWindows(w io.Writer, ws []window) {
	fmt.Fprintln(w, "\n### Windows\n\n| window | trace | seconds of the trace | length | kind | mean (req/s) | scale | averaged over | start-up | sample phase | split |")
	fmt.Fprintln(w, "|---|---|--:|--:|---|--:|--:|--:|--:|--:|---|")
	for _, win := range ws {
		kind, split := "calm", "held out"
		if win.Busy {
			kind = "busy"
		}
		if win.Tuning {
			split = "tuning"
		}
		fmt.Fprintf(w, "| %s | %s | %d-%d | %d min | %s | %.0f | ×%.2f | %d s | %d s | %.2f | %s |\n",
			win.ID, win.Trace, win.Start, win.Start+win.Length, win.Length/60, kind, win.Mean, win.Scale, win.Bucket, win.StartupSeconds, win.Phase, split)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func fmtMultiple(m float64) string {
	if math.IsInf(m, 1) {
		return "∞"
	}
	if math.IsNaN(m) {
		return "-"
	}
	return strconv.FormatFloat(m, 'f', 2, 64) + "×"
}

func joinFloats(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strings.Join(s, ", ")
}
