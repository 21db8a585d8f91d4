package simulate

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/metrics"
	"github.com/spinscale/spinscale/internal/recommender"
)

// TraceResult is the outcome of a load-trace simulation.
type TraceResult struct {
	// Ticks holds one decision per controller tick, in time order.
	Ticks []Tick
	// Timeline holds every simulated second.
	Timeline []Second
	// Summary scores the run against the oracle.
	Summary Summary
	// Oracle is how the oracle itself moved, for comparison with the
	// summary's scaleActions, reversals and firstScaleUpSeconds.
	Oracle OracleFigures
}

// Tick is one decision of the engine, with what the app looked like when it
// was taken.
type Tick struct {
	// At is the tick's time in seconds since the start; Time is Epoch + At.
	At   float64
	Time time.Time
	// Load is the trace's load at the tick; Pods and Ready are the app's pods
	// (all, and Ready) before the decision; Oracle is the oracle's count.
	Load   float64
	Pods   int32
	Ready  int32
	Oracle int32
	// Decision was applied at once.
	Decision recommender.Decision
}

// Second is the state of the app during one simulated second [T, T+1),
// after the decision of a tick at T.
type Second struct {
	T int64
	// Load is the demand; Served is the part Ready pods served.
	Load   float64
	Served float64
	// Replicas is spec.replicas: every pod that exists, starting or not.
	// Running pods have started; Ready pods serve load.
	Replicas int32
	Running  int32
	Ready    int32
	// Oracle is max(min, ceil(load / targetLoadPerPod)).
	Oracle int32
}

// Summary scores a simulation against the oracle. Its JSON form is the
// `{"summary":{...}}` line of `simulate --output json`: the field names are
// part of the product contract (DESIGN.md §7).
type Summary struct {
	// PodSeconds counts every pod from the decision that created it
	// (start-up included) until the decision that removed it.
	PodSeconds float64 `json:"podSeconds"`
	// OraclePodSeconds is what the oracle spends: max(min, ceil(load /
	// targetLoadPerPod)) pods at every second.
	OraclePodSeconds float64 `json:"oraclePodSeconds"`
	// CostRatio is PodSeconds / OraclePodSeconds.
	CostRatio float64 `json:"costRatio"`
	// UnderProvisionedPodSeconds is the missing capacity, in pods, summed
	// over seconds: max(0, load − ready × capacityPerPod) / capacityPerPod.
	UnderProvisionedPodSeconds float64 `json:"underProvisionedPodSeconds"`
	// UnderProvisionedSeconds counts the seconds with load above ready ×
	// capacityPerPod (some demand unserved).
	UnderProvisionedSeconds float64 `json:"underProvisionedSeconds"`
	// OverProvisionedPodSeconds sums max(0, ready − oracle) over seconds.
	OverProvisionedPodSeconds float64 `json:"overProvisionedPodSeconds"`
	// ScaleActions counts decisions that changed the replica count.
	ScaleActions int `json:"scaleActions"`
	// Reversals counts scale actions in the direction opposite to the
	// previous scale action.
	Reversals int `json:"reversals"`
	// FirstScaleUpSeconds is the time of the first scale-up decision; nil
	// (null) when the app never scaled up.
	FirstScaleUpSeconds *float64 `json:"firstScaleUpSeconds"`
}

// OracleFigures describe the oracle's own moves: a change of its count is a
// scale action.
type OracleFigures struct {
	ScaleActions int
	Reversals    int
	// FirstScaleUpSeconds is the first second its count rose; nil if never.
	FirstScaleUpSeconds *float64
}

// simPod is one simulated pod; times are seconds since the start.
type simPod struct {
	name                    string
	created, running, ready int64
}

// longAgoSeconds places the initial pods far in the past, where no start-up
// rule applies.
const longAgoSeconds = int64(longAgo / time.Second)

// Simulate runs the load-trace scenario: in one-second steps from t = 0, the
// load is spread over the Ready pods, metric samples are refreshed every
// metricResolutionSeconds, and the engine decides (Decide, then Commit) on
// what it can see when the controller would; the decision is applied at once. Simulate
// is deterministic and does not modify ts.
//
// The model, second by second (second t is the interval [t, t+1)):
//   - Load: the trace's value at t.
//   - A pod created by a decision at t is Pending until t + startupSeconds,
//     then Running, and Ready from t + startupSeconds + readinessDelaySeconds.
//     The initial pods have been Ready for long.
//   - Ready pods share the load evenly; each serves at most capacityPerPod.
//     A Ready pod uses max(1m, served × cpuPerUnit) of CPU.
//   - Before t = 0 the initial pods served the trace's first load forever.
//   - Samples are produced at every s = metricPhaseSeconds + k × R (R the
//     resolution): a pod's sample is its average over [s−R, s), and exists
//     only if the pod was Ready all that window. A decision at t sees the
//     samples produced at the latest s <= t − metricLagSeconds.
//   - Decisions: the hpa profile decides every tickSeconds, as HPA's sync
//     does. A profile that reacts to fresh data (spinscale) decides at the
//     first second a new sample is visible, and otherwise when tickSeconds
//     passed since its last decision, as the controller does. CPU samples are whole millicores,
//     rounded up as Kubernetes' MilliValue does.
//   - Prometheus queries report served load: the app's total (scalar) or
//     each pod's own (perPod), averaged over the same windows.
//   - A scale-down removes not-Ready pods first (Pending before Running),
//     then the Ready pods that became Ready last; removed pods vanish at
//     once.
func (ts *TraceScenario) Simulate() *TraceResult {
	w, sim := &ts.Workload, &ts.Sim
	dur, res, tick, lag, phase := sim.DurationSeconds, sim.MetricResolutionSeconds, sim.TickSeconds, sim.MetricLagSeconds, sim.MetricPhaseSeconds
	cpuPerUnit, capacity := w.CPUPerUnitMilli, w.CapacityPerPod

	// share is the load one Ready pod serves out of n; usage its CPU.
	share := func(load float64, n int32) float64 {
		if n <= 0 {
			return 0
		}
		return min(load/float64(n), capacity)
	}
	usage := func(s float64) float64 { return max(1, s*cpuPerUnit) }

	// Before t = 0: the initial pods at the first load, for ever.
	n0 := w.InitialReplicas
	load0 := ts.loadAt(0)
	pre := series{share: share(load0, n0)}
	pre.usage, pre.total = usage(pre.share), pre.share*float64(n0)
	// cum holds prefix sums of the per-second series from t = 0, so that a
	// window's average costs O(1).
	cum := make([]series, dur+1)

	pods := make([]simPod, n0)
	for i := range pods {
		pods[i] = simPod{name: podName(i), created: -longAgoSeconds, running: -longAgoSeconds, ready: -longAgoSeconds}
	}
	nextPod := int(n0)
	replicas := n0

	out := &TraceResult{
		Ticks:    make([]Tick, 0, dur/tick+1),
		Timeline: make([]Second, dur),
	}
	var st recommender.State
	var sum Summary
	var underLoad float64
	prevDir := 0
	fresh := ts.Spec.ReactsToFreshData()
	last := int64(math.MinInt64 / 2) // the last decision's second
	for t := int64(0); t < dur; t++ {
		load := ts.loadAt(float64(t))
		oracle := ts.oracleAt(load)
		// The newest samples the engine can see.
		s := floorDiv(t-lag-phase, res)*res + phase
		due := t%tick == 0
		if fresh {
			// At the first second a new sample is visible, or when a whole
			// interval passed without one.
			due = t-last >= tick || s == t-lag && t > 0
		}
		if due {
			last = t
			now := Epoch.Add(time.Duration(t) * time.Second)
			in := recommender.Input{
				SpecReplicas:   replicas,
				StatusReplicas: int32(len(pods)),
				Pods:           ts.observePods(pods, t),
			}
			in.Metrics = ts.observeMetrics(pods, in.Pods, s, res, windowOf(cum, pre, s-res, s))
			d, next := recommender.Decide(&ts.Spec, &in, st, now)
			st = recommender.Commit(&ts.Spec, next, &d, now)
			out.Ticks = append(out.Ticks, Tick{
				At: float64(t), Time: now, Load: load,
				Pods: int32(len(pods)), Ready: countReady(pods, t), Oracle: oracle,
				Decision: d,
			})
			if d.Action != recommender.ActionNone {
				sum.ScaleActions++
				dir := 1
				if d.Action == recommender.ActionScaleDown {
					dir = -1
				}
				if prevDir != 0 && dir != prevDir {
					sum.Reversals++
				}
				prevDir = dir
				if dir > 0 && sum.FirstScaleUpSeconds == nil {
					sum.FirstScaleUpSeconds = ptr.To(float64(t))
				}
			}
			pods, nextPod = ts.apply(pods, nextPod, d.DesiredReplicas, t)
			replicas = d.DesiredReplicas
		}

		ready, running := countReady(pods, t), int32(0)
		for i := range pods {
			if pods[i].running <= t {
				running++
			}
		}
		sh := share(load, ready)
		served := sh * float64(ready)
		cur := series{share: sh, total: served}
		if ready > 0 {
			cur.usage = usage(sh)
		}
		cum[t+1] = cum[t].plus(cur)
		out.Timeline[t] = Second{T: t, Load: load, Served: served,
			Replicas: int32(len(pods)), Running: running, Ready: ready, Oracle: oracle}

		sum.PodSeconds += float64(len(pods))
		sum.OraclePodSeconds += float64(oracle)
		if c := float64(ready) * capacity; load > c*(1+1e-12)+1e-9 {
			sum.UnderProvisionedSeconds++
			underLoad += load - c
		}
		if ready > oracle {
			sum.OverProvisionedPodSeconds += float64(ready - oracle)
		}
	}
	sum.UnderProvisionedPodSeconds = underLoad / capacity
	if sum.OraclePodSeconds > 0 {
		sum.CostRatio = sum.PodSeconds / sum.OraclePodSeconds
	}
	sum.CostRatio = round6(sum.CostRatio)
	sum.UnderProvisionedPodSeconds = round6(sum.UnderProvisionedPodSeconds)
	out.Summary = sum
	out.Oracle = oracleFigures(out.Timeline)
	return out
}

// series is the per-second quantities samples average: the load one Ready
// pod serves, its CPU in millicores, and the app's total served load.
type series struct {
	share, usage, total float64
}

func (a series) plus(b series) series {
	return series{share: a.share + b.share, usage: a.usage + b.usage, total: a.total + b.total}
}

// windowOf averages the series over the seconds [a, b); seconds before 0
// take the pre-history's values.
func windowOf(cum []series, pre series, a, b int64) series {
	var s series
	if a < 0 {
		n := float64(min(b, 0) - a)
		s = series{share: pre.share * n, usage: pre.usage * n, total: pre.total * n}
	}
	lo, hi := max(a, 0), max(b, 0)
	s.share += cum[hi].share - cum[lo].share
	s.usage += cum[hi].usage - cum[lo].usage
	s.total += cum[hi].total - cum[lo].total
	n := float64(b - a)
	return series{share: s.share / n, usage: s.usage / n, total: s.total / n}
}

// observePods is the pods as the controller's informer sees them at t.
func (ts *TraceScenario) observePods(pods []simPod, t int64) []recommender.Pod {
	out := make([]recommender.Pod, len(pods))
	for i := range pods {
		p := &pods[i]
		rp := recommender.Pod{
			Name:              p.name,
			Phase:             corev1.PodPending,
			HasReadyCondition: true,
			CPU:               ts.Workload.CPURequest,
			Memory:            ts.Workload.MemoryRequest,
		}
		if p.running <= t {
			// status.startTime: the pod started when it turned Running;
			// its Ready condition last changed then, or when it turned
			// Ready.
			rp.Phase = corev1.PodRunning
			rp.StartTime = at(p.running)
			rp.ReadyTransition = at(p.running)
			if p.ready <= t {
				rp.Ready = true
				rp.ReadyTransition = at(p.ready)
			}
		}
		out[i] = rp
	}
	return out
}

// observeMetrics is what the metric sources return from the samples
// produced at s (window [s−res, s) averaged into avg), mapped by the
// controller's own code: each existing pod Ready all that window has a
// sample in metrics.k8s.io's snapshot and a series in a per-pod query
// result.
func (ts *TraceScenario) observeMetrics(pods []simPod, observed []recommender.Pod, s, res int64, avg series) []recommender.Observation {
	stamp := at(s)
	var sampled []string
	for i := range pods {
		if pods[i].ready <= s-res {
			sampled = append(sampled, pods[i].name)
		}
	}
	ts0 := model.TimeFromUnixNano(stamp.UnixNano())
	out := make([]recommender.Observation, len(ts.Spec.Metrics))
	for i, ms := range ts.Spec.Metrics {
		switch {
		case ms.Source == recommender.SourceResource:
			// Only cpu passes validation. Whole millicores, rounded up.
			cpu := int64(math.Ceil(avg.usage - 1e-9))
			usage := make(map[types.NamespacedName]metrics.PodUsage, len(sampled))
			for _, name := range sampled {
				usage[types.NamespacedName{Name: name}] = metrics.PodUsage{CPU: cpu, HasCPU: true, Timestamp: stamp, Window: time.Duration(res) * time.Second}
			}
			out[i] = metrics.NewResourceSnapshot(usage, nil).Observation("", observed, ms.Resource)
		case ts.Sim.PrometheusResult == PrometheusPerPod:
			v := make(model.Vector, len(sampled))
			for j, name := range sampled {
				v[j] = &model.Sample{Metric: model.Metric{ts.podLabel: model.LabelValue(name)}, Value: model.SampleValue(avg.share), Timestamp: ts0}
			}
			out[i] = metrics.QueryObservation(ms.Query, ts.podLabel, v, nil)
		default:
			v := model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(avg.total), Timestamp: ts0}}
			out[i] = metrics.QueryObservation(ms.Query, ts.podLabel, v, nil)
		}
	}
	return out
}

// apply carries out a decision at t: new pods start now; a scale-down
// removes not-Ready pods first (Pending before Running, the most recently
// created first), then the pods that became Ready last.
func (ts *TraceScenario) apply(pods []simPod, next int, desired int32, t int64) ([]simPod, int) {
	n := int32(len(pods))
	switch {
	case desired > n:
		running := t + ts.Workload.StartupSeconds
		for range desired - n {
			pods = append(pods, simPod{name: podName(next), created: t, running: running, ready: running + ts.Workload.ReadinessDelaySeconds})
			next++
		}
	case desired < n:
		order := make([]int, len(pods))
		for i := range order {
			order[i] = i
		}
		rank := func(p *simPod) int {
			switch {
			case p.running > t:
				return 0
			case p.ready > t:
				return 1
			}
			return 2
		}
		slices.SortStableFunc(order, func(a, b int) int {
			pa, pb := &pods[a], &pods[b]
			if ra, rb := rank(pa), rank(pb); ra != rb {
				return ra - rb
			}
			ka, kb := pa.created, pb.created
			if rank(pa) == 2 {
				ka, kb = pa.ready, pb.ready
			}
			if ka != kb {
				return int(kb - ka) // latest first
			}
			return b - a
		})
		remove := make([]bool, len(pods))
		for _, i := range order[:n-desired] {
			remove[i] = true
		}
		kept := pods[:0:0]
		for i := range pods {
			if !remove[i] {
				kept = append(kept, pods[i])
			}
		}
		pods = kept
	}
	return pods, next
}

// oracleFigures counts the oracle's own moves over the timeline.
func oracleFigures(tl []Second) OracleFigures {
	var f OracleFigures
	prevDir := 0
	for i := 1; i < len(tl); i++ {
		a, b := tl[i-1].Oracle, tl[i].Oracle
		if a == b {
			continue
		}
		f.ScaleActions++
		dir := 1
		if b < a {
			dir = -1
		}
		if prevDir != 0 && dir != prevDir {
			f.Reversals++
		}
		prevDir = dir
		if dir > 0 && f.FirstScaleUpSeconds == nil {
			f.FirstScaleUpSeconds = ptr.To(float64(tl[i].T))
		}
	}
	return f
}

func countReady(pods []simPod, t int64) int32 {
	var n int32
	for i := range pods {
		if pods[i].ready <= t {
			n++
		}
	}
	return n
}

func podName(i int) string { return "app-" + strconv.Itoa(i) }

func at(s int64) time.Time { return Epoch.Add(time.Duration(s) * time.Second) }

// floorDiv divides rounding toward minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }
