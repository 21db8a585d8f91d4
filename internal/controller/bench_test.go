package controller

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

// nopScaler accepts every decision without I/O, so that the benchmark
// measures the controller, not an API server.
type nopScaler struct{}

func (nopScaler) Apply(_ context.Context, _ types.NamespacedName, _ *recommender.Spec, d *recommender.Decision) (bool, error) {
	return d.DesiredReplicas != d.CurrentReplicas, nil
}
func (nopScaler) Hold(types.NamespacedName, int32, string) {}
func (nopScaler) Flush() error                             { return nil }

// benchGroupLabel is a label every app of the benchmark shares.
const benchGroupLabel = "app.kubernetes.io/part-of"

// tickHeapProfile, when set, is where BenchmarkTick writes a heap profile
// of the controller with every app and pod cached, after two ticks:
// `go test -run '^$' -bench 'Tick/apps=5000' -benchtime 1x ./internal/controller/
// -args -tick-heap-profile /tmp/heap.prof`, then `go tool pprof -top
// -sample_index=inuse_space /tmp/heap.prof.apps-5000` (one file per size,
// the size appended; the fake clientset's own copies of the objects show
// under k8s.io/client-go/testing).
var tickHeapProfile = flag.String("tick-heap-profile", "", "BenchmarkTick: write a heap profile of the warm controller to this file, .apps-N appended")

// BenchmarkTick measures one tick that decides for every app, from warm
// caches: 5 pods per app, cpu utilization, a shared usage snapshot. It reports the tick time
// and the heap in use with every Deployment and Pod cached. Run with
// `go test -run '^$' -bench Tick -benchtime 5x ./internal/controller/`.
func BenchmarkTick(b *testing.B) {
	for _, apps := range []int{500, 5000} {
		b.Run(fmt.Sprintf("apps=%d/pods=%d", apps, apps*5), func(b *testing.B) {
			var objs []k8sruntime.Object
			usage := &fakeUsage{cpuMilli: 60}
			for a := range apps {
				name := fmt.Sprintf("app-%d", a)
				// Like many users' Deployments, the selector holds a pair
				// every app shares beside the app's own, and it sorts
				// first: the lookup must not check every pod for it.
				dep := deployment(name, 5, cpuApp)
				dep.Spec.Selector.MatchLabels[benchGroupLabel] = "bench"
				objs = append(objs, dep)
				for p := range 5 {
					pod := fmt.Sprintf("%s-%d", name, p)
					usage.pods = append(usage.pods, pod)
					objs = append(objs, &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: "apps", Labels: map[string]string{"core.spinkube.dev/app-name": name, benchGroupLabel: "bench"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app",
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
						Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: t0.Add(-time.Hour)},
							Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
					})
				}
			}
			cfg := config.Default()
			cfg.LeaderElection.Enabled = false
			clock := clocktesting.NewFakeClock(t0)
			ctl, err := New(Options{
				Config: cfg, Logger: zap.NewNop(), Client: fake.NewClientset(objs...), Resources: usage,
				Scaler: nopScaler{}, Printer: nopScaler{}, Events: &actuator.Events{}, Instruments: NewInstruments(prometheus.NewRegistry()),
				Clock: clock, Identity: "bench",
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := ctl.Start(ctx, time.Minute); err != nil {
				b.Fatal(err)
			}
			objs, usage.pods = nil, nil // only the caches hold the objects now
			usage.pods = make([]string, 0, apps*5)
			for a := range apps {
				for p := range 5 {
					usage.pods = append(usage.pods, fmt.Sprintf("app-%d-%d", a, p))
				}
			}
			ctl.Once(ctx) // first sight: parse every spec
			if *tickHeapProfile != "" {
				ctl.Once(ctx)
				writeHeapProfile(b, fmt.Sprintf("%s.apps-%d", *tickHeapProfile, apps))
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				// An interval later every app is due: a tick that decides
				// for all of them, not a poll that finds nothing new.
				b.StopTimer()
				clock.Step(cfg.Interval)
				b.StartTimer()
				ctl.Once(ctx)
			}
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		})
	}
}

// writeHeapProfile writes the heap profile after a GC.
func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
