package recommender

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDecide measures decisions per second and allocations per
// decision for a typical app: cpu utilization over a few pods with a
// populated history, with the hpa profile (plain path) and the spinscale
// profile. Run with
// `go test -run '^$' -bench Decide -benchmem ./internal/recommender/`.
func BenchmarkDecide(b *testing.B) {
	for _, c := range []struct {
		profile string
		pods    int
	}{{"hpa", 3}, {"hpa", 10}, {"hpa", 100}, {"spinscale", 3}, {"spinscale", 10}, {"spinscale", 100}} {
		n := c.pods
		b.Run(fmt.Sprintf("profile=%s/pods=%d", c.profile, n), func(b *testing.B) {
			spec := baseSpec(cpuUtil(50))
			if c.profile == "spinscale" {
				spec = tunedSpec(cpuUtil(50))
			}
			in := cpuInput(int32(n), 700)
			st := State{Initialized: true}
			for i := range 20 {
				st.Recommendations = append(st.Recommendations, TimedRecommendation{Replicas: int32(n), At: ago(time.Duration(i) * 15 * time.Second)})
			}
			// Feed the state back as the controller does, one tick every
			// 15s, so the history stays at its steady size.
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now = now.Add(15 * time.Second)
				_, st = Decide(&spec, &in, st, now)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
