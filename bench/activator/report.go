package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// The figures to reach (DESIGN.md §10).
const (
	goalPerCPUSecond = 20000
	goalAddedP99     = time.Millisecond
	goalAfterReady   = 100 * time.Millisecond
	goalMiBPer1000   = 10.0
	goalStepToWrite  = 2 * time.Second
)

type report struct {
	opts       options
	revision   string // the code measured
	latency    []latencyResult
	throughput []throughputResult
	memory     *memoryResult
	zero       *zeroResult
	step       *stepResult
	failed     []string
}

type latencyResult struct {
	direct, proxied latencies
	rate            int
	for_            time.Duration
	cpu             time.Duration // the activator's, warm-up included
	// relayDirect and relayed are the same run's floor: straight to the
	// pod, and through the relay (relay.go).
	relayDirect, relayed latencies
}

type throughputResult struct {
	ok, failed    int64
	wall          time.Duration
	cpu, benchCPU time.Duration
	workers       int
}

// perCPU is the requests proxied per CPU-second of the activator.
func (t throughputResult) perCPU() float64 {
	if t.cpu <= 0 {
		return 0
	}
	return float64(t.ok) / t.cpu.Seconds()
}

// median is the middle of xs (the mean of the two middle ones for an even
// count); xs is sorted in place.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

type memoryResult struct {
	held          int64
	before, after int64 // bytes
}

type zeroRun struct {
	total, ready, afterReady time.Duration
	failure                  string // the answer when it was not 200
}

type zeroResult struct {
	startup time.Duration
	runs    []zeroRun
}

type stepRun struct {
	write, full time.Duration
	reached     int32
}

type stepResult struct {
	low, high int
	latency   time.Duration
	runs      []stepRun
}

// anyFailure reports whether a part or a run failed: the logs are then kept.
func (r *report) anyFailure() bool {
	if len(r.failed) > 0 {
		return true
	}
	if r.zero != nil {
		for _, run := range r.zero.runs {
			if run.failure != "" {
				return true
			}
		}
	}
	return false
}

func selfPid() int { return os.Getpid() }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "within"
	}
	return "MISSED"
}

// write prints the report as Markdown.
func (r *report) write(w io.Writer) {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(w, "# Activator bench\n\n%s, at %s, %d CPUs, load average %s, Go %s, every socket on loopback.\n\n",
		time.Now().UTC().Format(time.RFC3339), r.revision, runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "), runtime.Version())
	if len(r.latency) > 0 {
		l0 := r.latency[0]
		fmt.Fprintf(w, "## a. Added latency at %d req/s (%d runs of %s, each after %s of warm-up)\n\n", l0.rate, len(r.latency), l0.for_, r.opts.warm)
		fmt.Fprintf(w, "| run | path | requests | errors | p50 | p90 | p99 | p99.9 |\n|---|---|---|---|---|---|---|---|\n")
		var added50, added99, floor50, floor99 []float64
		errs := 0
		for i, l := range r.latency {
			for _, p := range []struct {
				name string
				l    latencies
			}{{"straight to the pod", l.direct}, {"through the activator", l.proxied}, {"straight to the pod (floor's pair)", l.relayDirect}, {"through the relay (floor)", l.relayed}} {
				if len(p.l.d) == 0 && p.l.errors == 0 {
					continue
				}
				fmt.Fprintf(w, "| %d | %s | %d | %d | %s | %s | %s | %s |\n", i+1, p.name, len(p.l.d), p.l.errors,
					ms(quantile(p.l.d, .5)), ms(quantile(p.l.d, .9)), ms(quantile(p.l.d, .99)), ms(quantile(p.l.d, .999)))
			}
			errs += l.proxied.errors
			added50 = append(added50, float64(quantile(l.proxied.d, .5)-quantile(l.direct.d, .5)))
			added99 = append(added99, float64(quantile(l.proxied.d, .99)-quantile(l.direct.d, .99)))
			fmt.Fprintf(w, "| %d | added by the activator | | | %s | | %s | |\n", i+1, ms(quantile(l.proxied.d, .5)-quantile(l.direct.d, .5)), ms(quantile(l.proxied.d, .99)-quantile(l.direct.d, .99)))
			if len(l.relayed.d) > 0 {
				floor50 = append(floor50, float64(quantile(l.relayed.d, .5)-quantile(l.relayDirect.d, .5)))
				floor99 = append(floor99, float64(quantile(l.relayed.d, .99)-quantile(l.relayDirect.d, .99)))
				fmt.Fprintf(w, "| %d | added by the relay (floor) | | | %s | | %s | |\n", i+1, ms(time.Duration(floor50[len(floor50)-1])), ms(time.Duration(floor99[len(floor99)-1])))
			}
		}
		m50, m99 := time.Duration(median(added50)), time.Duration(median(added99))
		cpus := make([]string, len(r.latency))
		for i, l := range r.latency {
			cpus[i] = l.cpu.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "\nAdded by the activator, median of the runs: p50 %s, **p99 %s** (goal: p99 at most %s: %s). The activator used %s of CPU in the runs.\n\n",
			ms(m50), ms(m99), goalAddedP99, verdict(m99 <= goalAddedP99 && errs == 0), strings.Join(cpus, ", "))
		if len(floor99) > 0 {
			fmt.Fprintf(w, "The floor, measured the same way in the same runs: a relay in its own process that only copies bytes between the two connections (a goroutine each way, nothing parsed) adds, median of the runs, p50 %s, **p99 %s**: what one more process on the path costs on this machine, whatever it does.\n\n",
				ms(time.Duration(median(floor50))), ms(time.Duration(median(floor99))))
		}
	}
	if len(r.throughput) > 0 {
		t0 := r.throughput[0]
		fmt.Fprintf(w, "## b. Throughput (%d clients, closed loop, %d runs of %s)\n\n", t0.workers, len(r.throughput), r.opts.throughputFor)
		fmt.Fprintf(w, "| run | proxied | failed | req/s | activator CPU | share of a core | proxied per CPU-second | load generator and pod CPU |\n|---|---|---|---|---|---|---|---|\n")
		var perCPU []float64
		failed := int64(0)
		for i, t := range r.throughput {
			p := t.perCPU()
			perCPU = append(perCPU, p)
			failed += t.failed
			fmt.Fprintf(w, "| %d | %d | %d | %.0f | %s | %.0f%% | %.0f | %s |\n", i+1, t.ok, t.failed,
				float64(t.ok)/t.wall.Seconds(), t.cpu.Round(time.Millisecond), 100*t.cpu.Seconds()/t.wall.Seconds(), p, t.benchCPU.Round(time.Millisecond))
		}
		med := median(perCPU)
		fmt.Fprintf(w, "\nMedian of the runs: **%.0f proxied requests per CPU-second** (goal: at least %d: %s). The load generator and the pod's server run in the bench's process on the same two cores.\n\n",
			med, goalPerCPUSecond, verdict(med >= goalPerCPUSecond && failed == 0))
	}
	if m := r.memory; m != nil {
		per := mib(m.after-m.before) / float64(m.held) * 1000
		fmt.Fprintf(w, "## c. Memory of held requests\n\n%d requests held for an app with no pod: RSS %.1f MiB → %.1f MiB, **%.2f MiB per 1,000 held requests** (goal: at most %.0f MiB: %s).\n\n",
			m.held, mib(m.before), mib(m.after), per, goalMiBPer1000, verdict(per <= goalMiBPer1000))
	}
	if z := r.zero; z != nil && len(z.runs) > 0 {
		fmt.Fprintf(w, "## d. First request at zero (pod start-up %s)\n\n| run | request → answer | request → pod Ready | pod Ready → answer |\n|---|---|---|---|\n", z.startup)
		var after []time.Duration
		failures := 0
		for i, run := range z.runs {
			if run.failure != "" {
				failures++
				fmt.Fprintf(w, "| %d | failed after %s: %s | | |\n", i+1, ms(run.total), strings.ReplaceAll(run.failure, "|", "\\|"))
				continue
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s |\n", i+1, ms(run.total), ms(run.ready), ms(run.afterReady))
			after = append(after, run.afterReady)
		}
		worst := time.Duration(0)
		if len(after) > 0 {
			worst = slices.Max(after)
		}
		fmt.Fprintf(w, "\nWorst pod Ready → answer: %s over %d answered runs, %d failed (goal: at most %s: %s). Ready is when the bench's own pod watch saw it.\n\n",
			ms(worst), len(after), failures, goalAfterReady, verdict(worst <= goalAfterReady && failures == 0 && len(after) > 0))
	}
	if s := r.step; s != nil && len(s.runs) > 0 {
		fmt.Fprintf(w, "## e. Load step → /scale write (%d → %d clients, %s per request, target 2 in flight per pod)\n\n| run | step → first write | step → full count | replicas |\n|---|---|---|---|\n",
			s.low, s.high, s.latency)
		var writes []time.Duration
		for i, run := range s.runs {
			full := "not within the timeout"
			if run.full > 0 {
				full = ms(run.full)
			}
			fmt.Fprintf(w, "| %d | %s | %s | %d |\n", i+1, ms(run.write), full, run.reached)
			writes = append(writes, run.write)
		}
		worst := slices.Max(writes)
		fmt.Fprintf(w, "\nWorst step → write: %s (goal: at most %s: %s). A write is seen on a watch of the Deployment.\n\n",
			ms(worst), goalStepToWrite, verdict(worst <= goalStepToWrite))
	}
	for _, f := range r.failed {
		fmt.Fprintf(w, "Part %s\n\n", f)
	}
}
