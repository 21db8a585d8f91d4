// Command quality scores decision profiles on the standard load traces: it
// runs every scenario of bench/scenarios through the load-trace simulator
// (internal/simulate) once per variant, and prints one Markdown table per
// trace comparing each variant with the oracle. docs/quality.md explains
// the figures and holds the latest tables.
//
// Usage, from the repository root (make bench-quality):
//
//	go run ./bench/quality [-scenarios bench/scenarios] [-try key=value,...]
//
// Every run has a 15 s tick and, unless its row says otherwise, a 15 s
// metric resolution, whatever the scenario says; the hpa rows run on HPA's
// plain path (no behavior annotation). -try adds a spinscale row with other
// settings, to see what a change of the profile's tuning does.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/spinscale/spinscale/internal/simulate"
)

// variant is one row of every table: a decision profile, and optionally the
// scenario's target lowered to buy headroom.
type variant struct {
	name    string
	profile string
	// targetPercent replaces the scenario's target: a cpu utilization
	// target becomes this percent, a per-pod Prometheus target this
	// percent of capacityPerPod. 0 keeps the scenario's target.
	targetPercent int
	// resolution is the metric resolution in seconds; 0 is the bench's
	// standard 15 s.
	resolution int
	// annotations are set on the app on top of the scenario's.
	annotations map[string]string
}

// variants are the rows, the oracle's last; the first is the yardstick the
// targets are measured against. To compare another setting, add its line,
// e.g. {name: "spinscale, lookahead 60s", profile: "spinscale",
// annotations: map[string]string{"spinscale.dev/lookahead": "60s"}}.
var variants = []variant{
	{name: "hpa", profile: "hpa"},
	{name: "hpa, target 55%", profile: "hpa", targetPercent: 55},
	{name: "hpa, target 50%", profile: "hpa", targetPercent: 50},
	{name: "spinscale", profile: "spinscale"},
	{name: "spinscale, 5 s metrics", profile: "spinscale", resolution: 5},
}

// The bench's fixed simulation settings.
const (
	tickSeconds             = 15
	metricResolutionSeconds = 15
)

// Annotation keys the bench reads or sets.
const (
	keyProfile       = "spinscale.dev/profile"
	keyCPUTarget     = "spinscale.dev/target-cpu-utilization"
	keyPromAvgTarget = "spinscale.dev/prometheus-target-average-value"
)

// pathKeys select HPA's behavior path; the bench measures the plain path.
var pathKeys = []string{"spinscale.dev/behavior", "spinscale.dev/scale-up-stabilization", "spinscale.dev/scale-down-stabilization"}

func main() {
	dir := flag.String("scenarios", "bench/scenarios", "directory of load-trace scenarios (*.yaml)")
	flag.Func("try", "add a spinscale row with these annotations, as key=value[,key=value] without the prefix (e.g. lookahead=60s,drop-threshold=0.5); repeatable", func(s string) error {
		ann := map[string]string{}
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("%q: want key=value", kv)
			}
			ann["spinscale.dev/"+strings.TrimPrefix(k, "spinscale.dev/")] = v
		}
		variants = append(variants, variant{name: "spinscale, " + s, profile: "spinscale", annotations: ann})
		return nil
	})
	flag.Parse()
	if err := run(os.Stdout, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench-quality:", err)
		os.Exit(1)
	}
}

// result is one scenario's runs, one per variant.
type result struct {
	name, title string
	runs        []*simulate.TraceResult
	err         error
}

func run(w io.Writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no scenarios in %s", dir)
	}
	slices.Sort(files)
	results := make([]result, len(files))
	// Scenarios are independent: run them side by side.
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = scenario(f)
		}()
	}
	wg.Wait()

	fmt.Fprintf(w, "Every standard trace; profiles: %s; %d s tick, %d s metric resolution unless the row says otherwise; hpa on HPA's plain path. ", profiles(), tickSeconds, metricResolutionSeconds)
	fmt.Fprintln(w, "Produced by `make bench-quality` (`go run ./bench/quality`).")
	for i := range results {
		r := &results[i]
		if r.err != nil {
			return r.err
		}
		fmt.Fprintf(w, "\n### %s\n\n%s\n\n", r.name, r.title)
		table(w, r.runs)
	}
	targets(w, results)
	return nil
}

// The targets every variant is held to, against the first (hpa) in the
// same run. Summed over the traces: under-provisioned pod-seconds at most
// sumUnder × hpa's, pod-seconds at most sumCost × hpa's. Per trace: cost
// ratio at most hpa's + traceCost, under-provisioned pod-seconds at most
// traceUnder × hpa's, reversals at most traceReversals × hpa's + 2.
const (
	sumUnder       = 0.8
	sumCost        = 1.05
	traceCost      = 0.15
	traceUnder     = 1.5
	traceReversals = 2.5
)

// targets prints, per variant, its totals against the first variant's and
// every target it misses.
func targets(w io.Writer, results []result) {
	fmt.Fprintf(w, "\n### Targets\n\nAgainst `%s`, summed over the traces: under-provisioned pod-seconds ≤ %.1f×, pod-seconds ≤ %.2f×. ", variants[0].name, sumUnder, sumCost)
	fmt.Fprintf(w, "Per trace: cost ratio ≤ %s's + %.2f, under-provisioned pod-seconds ≤ %.1f×, reversals ≤ %.1f× + 2.\n\n", variants[0].name, traceCost, traceUnder, traceReversals)
	fmt.Fprintln(w, "| profile | pod-seconds | under-provisioned pod-s | reversals | targets missed |")
	fmt.Fprintln(w, "|---|--:|--:|--:|---|")
	var base [3]float64
	for vi, v := range variants {
		var tot [3]float64
		var missed []string
		for _, r := range results {
			s, h := &r.runs[vi].Summary, &r.runs[0].Summary
			tot[0] += s.PodSeconds
			tot[1] += s.UnderProvisionedPodSeconds
			tot[2] += float64(s.Reversals)
			if vi == 0 {
				continue
			}
			if s.CostRatio > h.CostRatio+traceCost+1e-9 {
				missed = append(missed, fmt.Sprintf("%s: cost ratio %.2f > %.2f", r.name, s.CostRatio, h.CostRatio+traceCost))
			}
			if s.UnderProvisionedPodSeconds > traceUnder*h.UnderProvisionedPodSeconds+1e-6 {
				missed = append(missed, fmt.Sprintf("%s: under-provisioned %s pod-s > %s", r.name, fig(s.UnderProvisionedPodSeconds), fig(traceUnder*h.UnderProvisionedPodSeconds)))
			}
			if float64(s.Reversals) > traceReversals*float64(h.Reversals)+2 {
				missed = append(missed, fmt.Sprintf("%s: %d reversals > %s", r.name, s.Reversals, fig(traceReversals*float64(h.Reversals)+2)))
			}
		}
		if vi == 0 {
			base = tot
			fmt.Fprintf(w, "| %s | %s | %s | %s | (the yardstick) |\n", v.name, fig(tot[0]), fig(tot[1]), fig(tot[2]))
			continue
		}
		if tot[1] > sumUnder*base[1]+1e-6 {
			missed = append(missed, fmt.Sprintf("total under-provisioned %.2f× > %.1f×", tot[1]/base[1], sumUnder))
		}
		if tot[0] > sumCost*base[0]+1e-6 {
			missed = append(missed, fmt.Sprintf("total pod-seconds %.3f× > %.2f×", tot[0]/base[0], sumCost))
		}
		verdict := "none"
		if len(missed) > 0 {
			verdict = strings.Join(missed, "; ")
		}
		fmt.Fprintf(w, "| %s | %s (%.3f×) | %s (%.2f×) | %s | %s |\n", v.name, fig(tot[0]), tot[0]/base[0], fig(tot[1]), ratio(tot[1], base[1]), fig(tot[2]), verdict)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func profiles() string {
	var names []string
	for _, v := range variants {
		if !slices.Contains(names, v.profile) {
			names = append(names, v.profile)
		}
	}
	return strings.Join(names, ", ")
}

// scenario runs one scenario file once per variant.
func scenario(path string) result {
	name := strings.TrimSuffix(filepath.Base(path), ".yaml")
	r := result{name: name}
	data, err := os.ReadFile(path)
	if err != nil {
		r.err = err
		return r
	}
	r.title = title(data)
	readFile := func(n string) ([]byte, error) {
		if !filepath.IsAbs(n) {
			n = filepath.Join(filepath.Dir(path), n)
		}
		return os.ReadFile(n)
	}
	for _, v := range variants {
		doc, err := variantOf(data, v)
		if err != nil {
			r.err = fmt.Errorf("%s: %s: %w", path, v.name, err)
			return r
		}
		sc, err := simulate.LoadWith(doc, simulate.Options{ReadFile: readFile})
		if err != nil {
			r.err = fmt.Errorf("%s: %s: %w", path, v.name, err)
			return r
		}
		if sc.Trace == nil {
			r.err = fmt.Errorf("%s: not a load-trace scenario", path)
			return r
		}
		res := sc.Trace.Simulate()
		if v.profile == "hpa" && len(res.Ticks) > 0 && res.Ticks[0].Decision.Behavior {
			r.err = fmt.Errorf("%s: %s: ran on the behavior path", path, v.name)
			return r
		}
		r.runs = append(r.runs, res)
	}
	return r
}

// variantOf rewrites a scenario for a variant: the profile, the target, and
// the bench's simulation settings.
func variantOf(data []byte, v variant) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	ann, _ := doc["annotations"].(map[string]any)
	if ann == nil {
		return nil, fmt.Errorf("no annotations")
	}
	for _, k := range pathKeys {
		if _, ok := ann[k]; ok {
			return nil, fmt.Errorf("%s selects HPA's behavior path; the bench measures the plain path", k)
		}
	}
	ann[keyProfile] = v.profile
	for k, val := range v.annotations {
		ann[k] = val
	}
	if v.targetPercent > 0 {
		switch {
		case ann[keyCPUTarget] != nil:
			ann[keyCPUTarget] = strconv.Itoa(v.targetPercent)
		case ann[keyPromAvgTarget] != nil:
			wl, _ := doc["workload"].(map[string]any)
			capacity, ok := number(wl["capacityPerPod"])
			if !ok {
				return nil, fmt.Errorf("workload.capacityPerPod: want a number")
			}
			ann[keyPromAvgTarget] = strconv.FormatFloat(capacity*float64(v.targetPercent)/100, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("no %s or %s to lower", keyCPUTarget, keyPromAvgTarget)
		}
	}
	sim, _ := doc["sim"].(map[string]any)
	if sim == nil {
		sim = map[string]any{}
		doc["sim"] = sim
	}
	sim["tickSeconds"] = tickSeconds
	sim["metricResolutionSeconds"] = metricResolutionSeconds
	if v.resolution > 0 {
		sim["metricResolutionSeconds"] = v.resolution
	}
	return yaml.Marshal(doc)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// title is the scenario's first comment line.
func title(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// table prints one row per variant, then the oracle.
func table(w io.Writer, runs []*simulate.TraceResult) {
	fmt.Fprintln(w, "| profile | pod-seconds | cost ratio | under-provisioned pod-s | under-provisioned s | over-provisioned pod-s | scale actions | reversals | first scale-up (s) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
	for i, res := range runs {
		s := &res.Summary
		fmt.Fprintf(w, "| %s | %s | %.2f | %s (%s) | %s | %s | %d | %d | %s |\n", variants[i].name,
			fig(s.PodSeconds), s.CostRatio, fig(s.UnderProvisionedPodSeconds), pct(s.UnderProvisionedPodSeconds, s.OraclePodSeconds),
			fig(s.UnderProvisionedSeconds), fig(s.OverProvisionedPodSeconds), s.ScaleActions, s.Reversals, opt(s.FirstScaleUpSeconds))
	}
	o, s := &runs[0].Oracle, &runs[0].Summary
	fmt.Fprintf(w, "| oracle | %s | 1.00 | 0 | 0 | 0 | %d | %d | %s |\n", fig(s.OraclePodSeconds), o.ScaleActions, o.Reversals, opt(o.FirstScaleUpSeconds))
}

// fig rounds a figure to a whole number, or one decimal below 10.
func fig(f float64) string {
	if f != 0 && f < 10 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}

func pct(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*a/b, 'f', 1, 64) + "%"
}

func opt(f *float64) string {
	if f == nil {
		return "never"
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}
