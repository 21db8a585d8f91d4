package recommender

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// t0 is the fixed "now" of every test: no test reads the clock.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return t0.Add(-d) }

// pod builds a Running, Ready pod started an hour ago with 1 cpu and 1Gi of
// memory requested; options adjust it.
func pod(name string, opts ...func(*Pod)) Pod {
	p := Pod{
		Name: name, Phase: corev1.PodRunning,
		HasReadyCondition: true, Ready: true,
		StartTime: ago(time.Hour), ReadyTransition: ago(time.Hour),
		CPU: Request{Milli: 1000}, Memory: Request{Milli: 1 << 30 * 1000},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// neverReady: unready since start (HPA ignores such a pod's cpu).
func neverReady(p *Pod) { p.Ready = false; p.ReadyTransition = p.StartTime }

// hot: started and became ready moments ago, inside cpu initialization.
func hot(p *Pod) { p.StartTime = ago(30 * time.Second); p.ReadyTransition = ago(10 * time.Second) }

func phase(ph corev1.PodPhase) func(*Pod) { return func(p *Pod) { p.Phase = ph } }
func deleting(p *Pod)                     { p.Deleting = true }

// pods builds n default pods named pod-0..pod-n-1, with per-index options.
func pods(n int, opts map[int][]func(*Pod)) []Pod {
	out := make([]Pod, n)
	for i := range out {
		out[i] = pod(fmt.Sprintf("pod-%d", i), opts[i]...)
	}
	return out
}

// samples builds a per-pod observation for pod-0.. with the given values,
// over a 30s window, timestamped "now" (zero) so that it stays fresh across
// decisions at later times.
func samples(values ...int64) Observation {
	o := Observation{PerPod: true}
	for i, v := range values {
		o.Samples = append(o.Samples, Sample{Pod: fmt.Sprintf("pod-%d", i), Value: v, Window: 30 * time.Second})
	}
	return o
}

func scalar(milli int64) Observation { return Observation{Value: milli} }

func cpuUtil(pct int32) MetricSpec {
	return MetricSpec{Name: "cpu", Source: SourceResource, Resource: corev1.ResourceCPU, Target: TargetUtilization, TargetUtilization: pct}
}

func memUtil(pct int32) MetricSpec {
	return MetricSpec{Name: "memory", Source: SourceResource, Resource: corev1.ResourceMemory, Target: TargetUtilization, TargetUtilization: pct}
}

func cpuAverage(milli int64) MetricSpec {
	return MetricSpec{Name: "cpu", Source: SourceResource, Resource: corev1.ResourceCPU, Target: TargetAverageValue, TargetMilli: milli}
}

func prom(name string, target TargetType, milli int64) MetricSpec {
	return MetricSpec{Name: name, Source: SourcePrometheus, Query: "q", Target: target, TargetMilli: milli}
}

// baseSpec is HPA's defaults with bounds 1..100.
func baseSpec(metrics ...MetricSpec) Spec {
	return Spec{
		Profile: ProfileHPA, MinReplicas: 1, MaxReplicas: 100, Metrics: metrics,
		Tolerance:              Tolerances{Up: 0.1, Down: 0.1},
		DownscaleStabilization: 5 * time.Minute, ScaleUpLimitFactor: 2, ScaleUpLimitMinimum: 4,
		CPUInitializationPeriod: 5 * time.Minute, InitialReadinessDelay: 30 * time.Second,
		MaxSampleAge: 2 * time.Minute,
	}
}

// settled is a state whose history allows any move: initialized, empty.
func settled() State { return State{Initialized: true} }
