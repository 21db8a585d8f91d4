package recommender

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// reader turns fuzz bytes into bounded values.
type reader struct{ b []byte }

func (r *reader) u8() uint8 {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) i64() int64 {
	if len(r.b) < 8 {
		return int64(r.u8())
	}
	v := int64(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// FuzzDecide feeds arbitrary pods, samples, targets and histories to the
// engine: it must never panic, and its safety invariants must hold.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{3, 1, 50, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add([]byte{5, 2, 1, 7, 9, 200, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{b: data}
		replicas := int32(r.u8() % 40)
		spec := baseSpec()
		spec.MinReplicas = int32(r.u8()%5) + 1
		spec.MaxReplicas = spec.MinReplicas + int32(r.u8()%50)
		spec.Tolerance = Tolerances{Up: float64(r.u8()) / 100, Down: float64(r.u8()%100) / 100} // up may exceed 1
		if r.u8()%2 == 1 {
			spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: rulesOf(int32(r.u8()%5), int32(r.u8()%60), int32(r.u8()%120), int32(r.u8()%60), int32(r.u8()%120))}
		}
		spec.FallbackReplicas = int32(r.u8() % 60)
		nMetrics := int(r.u8() % 4)
		in := Input{SpecReplicas: replicas, StatusReplicas: int32(r.u8() % 40)}
		nPods := int(r.u8() % 12)
		phases := []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodFailed, corev1.PodSucceeded}
		for i := range nPods {
			p := pod(fmt.Sprintf("pod-%d", i))
			p.Phase = phases[r.u8()%4]
			p.Ready = r.u8()%3 != 0
			p.HasReadyCondition = r.u8()%5 != 0
			p.Deleting = r.u8()%7 == 0
			p.StartTime = ago(time.Duration(r.u8()) * 5 * time.Second)
			p.ReadyTransition = ago(time.Duration(r.u8()) * 5 * time.Second)
			p.CPU = Request{Milli: r.i64() % 100000}
			if r.u8()%9 == 0 {
				p.CPU.MissingIn = "app"
			}
			in.Pods = append(in.Pods, p)
		}
		for m := range nMetrics {
			kind := r.u8() % 4
			target := r.i64()
			switch kind {
			case 0:
				spec.Metrics = append(spec.Metrics, cpuUtil(int32(target%300)))
			case 1:
				spec.Metrics = append(spec.Metrics, cpuAverage(target))
			case 2:
				spec.Metrics = append(spec.Metrics, prom(fmt.Sprint(m), TargetValue, target))
			default:
				spec.Metrics = append(spec.Metrics, prom(fmt.Sprint(m), TargetAverageValue, target))
			}
			obs := Observation{PerPod: r.u8()%2 == 0, Value: r.i64()}
			if r.u8()%6 == 0 {
				obs.Err = errors.New("boom")
			}
			for i := range int(r.u8() % 14) {
				obs.Samples = append(obs.Samples, Sample{Pod: fmt.Sprintf("pod-%d", i), Value: r.i64() % math.MaxInt32, Timestamp: ago(time.Duration(r.u8()) * time.Second), Window: time.Duration(r.u8()) * time.Second})
			}
			in.Metrics = append(in.Metrics, obs)
		}
		st := State{Initialized: r.u8()%2 == 0}
		for range int(r.u8() % 6) {
			st.Recommendations = append(st.Recommendations, TimedRecommendation{Replicas: int32(r.u8()), At: ago(time.Duration(r.u8()) * 3 * time.Second)})
			st.ScaleUpEvents = append(st.ScaleUpEvents, ScaleEvent{Change: int32(r.u8() % 10), At: ago(time.Duration(r.u8()) * time.Second)})
			st.ScaleDownEvents = append(st.ScaleDownEvents, ScaleEvent{Change: int32(r.u8() % 10), At: ago(time.Duration(r.u8()) * time.Second)})
		}

		// Last, so that older corpus entries keep their meaning.
		if r.u8()%2 == 1 {
			spec.Profile = ProfileSpinscale
			spec.Tuning = Tuning{
				BurstThreshold: float64(r.u8()) / 50, Lookahead: time.Duration(r.u8()) * time.Second,
				DropWindow: time.Duration(r.u8()) * time.Second, DropThreshold: float64(r.u8()) / 256,
			}
			for range int(r.u8() % 6) {
				st.Loads = append(st.Loads, TimedLoad{Pods: math.Float64frombits(uint64(r.i64())), At: ago(time.Duration(r.u8()) * time.Second)})
			}
		}

		d, next := Decide(&spec, &in, st, t0)
		_ = Commit(&spec, next, &d, t0)
		_ = d.Reason()

		anyFailed := false
		for i := range d.Metrics {
			if d.Metrics[i].Err != nil {
				anyFailed = true
			}
		}
		if anyFailed && d.DesiredReplicas < replicas && replicas <= spec.MaxReplicas {
			t.Fatalf("scaled down %d → %d with a failed metric", replicas, d.DesiredReplicas)
		}
		if replicas > 0 && !spec.Paused && d.LimitedBy != StageMissingMetrics && (d.DesiredReplicas < spec.MinReplicas || d.DesiredReplicas > spec.MaxReplicas) {
			t.Fatalf("desired %d outside [%d, %d] (limitedBy %s)", d.DesiredReplicas, spec.MinReplicas, spec.MaxReplicas, d.LimitedBy)
		}
	})
}
