package integration

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/spinscale/spinscale/internal/spinemu"
)

// latencyRuns is how many apps of each kind TestReactionLatency steps, one
// after the other; bench/latency.sh sets more to report medians.
var latencyRuns = flag.Int("latency-runs", 1, "apps of each kind TestReactionLatency steps (bench/latency.sh: 5)")

// reaction is one load step and what followed: when the source first showed
// it, and when the app's replicas were written.
type reaction struct {
	step, visible, write time.Time
}

func (r reaction) l1() time.Duration { return r.write.Sub(r.visible) }
func (r reaction) l2() time.Duration { return r.write.Sub(r.step) }

// TestReactionLatency steps the load of apps at rest and measures, for
// Spinscale with its shipped defaults (the spinscale profile, a 15 s
// interval) and for the real HPA beside it:
//   - L1, the metric visible in its source → the /scale write;
//   - L2, the load step → the /scale write.
//
// Prometheus scrapes every 5 s, as in the docs' recommended setup;
// metrics-server resolves every 10 s (the test cluster's setting). The
// apps are stepped a few seconds apart so that their steps fall at
// different points of the scrape and decision clocks. The test checks that
// every app scaled up after its step; bench/latency.sh prints the medians.
func TestReactionLatency(t *testing.T) {
	t.Parallel()
	runs := *latencyRuns
	require.Positive(t, runs)
	ns := namespace(t)
	mc := metricsclient.NewForConfigOrDie(cluster.rest)

	// Prometheus apps: 80 requests/s against 100 per pod, then 300.
	var exporters []*rpsExporter
	var targets []string
	for i := range runs {
		app := fmt.Sprintf("rps-%d", i)
		createDeployment(t, spinDeployment(ns, app, 1, rpsAnnotations(1, 10, appRPS(ns, app),
			"spinscale.dev/prometheus-target-average-value", "100")))
		e := startExporter(t, ns, app, spinemu.Traefik, 80)
		exporters = append(exporters, e)
		targets = append(targets, e.target())
	}
	prom := startPrometheusWith(t, "5s", targets...)
	// CPU apps, each with an HPA twin: 40m of a 100m request against a
	// 50% target, then 200m.
	var loads []*load
	for i := range runs {
		for _, app := range []string{fmt.Sprintf("cpu-%d", i), fmt.Sprintf("hpa-%d", i)} {
			ann := cpuAnnotations(1, 10, 50)
			if strings.HasPrefix(app, "hpa-") {
				ann = nil
				createHPA(t, ns, app, 1, 10, 50)
			}
			createDeployment(t, spinDeployment(ns, app, 1, ann))
			loads = append(loads, startLoad(t, ns, app, 40))
		}
	}
	for i := range runs {
		prom.waitRate(t, appRPS(ns, fmt.Sprintf("rps-%d", i)), 80, 2*time.Minute)
	}
	for i := range runs {
		for _, app := range []string{fmt.Sprintf("cpu-%d", i), fmt.Sprintf("hpa-%d", i)} {
			waitUsage(t, mc, ns, app, func(m int64) bool { return m >= 35 && m <= 45 })
		}
	}
	p := startAutoscaler(t, ns, "--set", "profile=default", "--set", "interval=15s", "--set", "prometheus.address="+prom.url())
	// Spinscale has decided on every app at rest before any step.
	for i := range runs {
		for _, app := range []string{fmt.Sprintf("rps-%d", i), fmt.Sprintf("cpu-%d", i)} {
			waitDecided(t, p, app)
		}
	}

	var mu sync.Mutex
	got := map[string]reaction{}
	var wg sync.WaitGroup
	watch := func(app string, step time.Time, visible func(ctx context.Context) bool) {
		defer wg.Done()
		r := reaction{step: step}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			now := time.Now()
			if r.visible.IsZero() && visible(ctx) {
				r.visible = now
			}
			d, err := cluster.client.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
			if err == nil && r.write.IsZero() && *d.Spec.Replicas > 1 {
				r.write = now
			}
			return !r.visible.IsZero() && !r.write.IsZero(), nil
		})
		assert.NoError(t, err, "%s: the step should be visible and the app scaled up", app)
		mu.Lock()
		got[app] = r
		mu.Unlock()
	}
	for i := range runs {
		if i > 0 {
			// Steps 3.7 s apart fall at different points of 5, 10 and 15 s
			// clocks.
			time.Sleep(3700 * time.Millisecond)
		}
		rps := fmt.Sprintf("rps-%d", i)
		exporters[i].SetRate(300)
		step := time.Now()
		wg.Add(1)
		go watch(rps, step, func(context.Context) bool {
			_, v, err := prom.sum(appRPS(ns, rps))
			return err == nil && v > 110 // outside the 10% band of 100
		})
		for j, app := range []string{fmt.Sprintf("cpu-%d", i), fmt.Sprintf("hpa-%d", i)} {
			l := loads[2*i+j]
			l.set(200)
			l.spread(context.Background(), ns, app)
		}
		step = time.Now()
		for _, app := range []string{fmt.Sprintf("cpu-%d", i), fmt.Sprintf("hpa-%d", i)} {
			wg.Add(1)
			go watch(app, step, func(ctx context.Context) bool {
				return podUsage(ctx, mc, ns, app) > 55 // above 50% of 100m by more than 10%
			})
		}
	}
	wg.Wait()

	rows := []struct{ name, prefix string }{
		{"spinscale, Prometheus (5 s scrape)", "rps-"},
		{"spinscale, metrics.k8s.io (10 s resolution)", "cpu-"},
		{"HPA, metrics.k8s.io (10 s resolution, 15 s sync)", "hpa-"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "reaction latency, median of %d steps each (spinscale: shipped defaults, 15 s interval):\n", runs)
	fmt.Fprintf(&b, "%-50s %-28s %s\n", "", "L1 metric visible → write", "L2 load step → write")
	for _, row := range rows {
		var l1, l2 []time.Duration
		for app, r := range got {
			if !strings.HasPrefix(app, row.prefix) || r.write.IsZero() {
				continue
			}
			assert.False(t, r.write.Before(r.step), "%s was scaled before its step", app)
			l1, l2 = append(l1, r.l1()), append(l2, r.l2())
		}
		fmt.Fprintf(&b, "%-50s %-28s %s\n", row.name, median(l1), median(l2))
	}
	t.Log(b.String())
}

// median of the durations, to 0.1 s; "-" when there are none.
func median(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	slices.Sort(d)
	m := d[len(d)/2]
	if len(d)%2 == 0 {
		m = (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return m.Round(100 * time.Millisecond).String()
}

// podUsage is the largest cpu usage, in millicores, metrics.k8s.io reports
// for one of the app's pods; -1 when it reports none.
func podUsage(ctx context.Context, mc metricsclient.Interface, ns, app string) int64 {
	list, err := mc.MetricsV1beta1().PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: "core.spinkube.dev/app-name=" + app})
	if err != nil {
		return -1
	}
	most := int64(-1)
	for _, pm := range list.Items {
		var sum int64
		for _, c := range pm.Containers {
			sum += c.Usage.Cpu().MilliValue()
		}
		most = max(most, sum)
	}
	return most
}

// waitUsage waits until metrics.k8s.io reports a usage for the app's pods
// that cond accepts.
func waitUsage(t *testing.T, mc metricsclient.Interface, ns, app string, cond func(int64) bool) {
	t.Helper()
	var last int64
	err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		last = podUsage(ctx, mc, ns, app)
		return last >= 0 && cond(last), nil
	})
	require.NoError(t, err, "metrics.k8s.io usage of %s/%s (last %dm)", ns, app, last)
}

// waitDecided waits until the autoscaler's log has a decision for the app.
func waitDecided(t *testing.T, p *proc, app string) {
	t.Helper()
	name := fmt.Sprintf(`"deployment":%q`, app)
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		for _, line := range strings.Split(p.output(), "\n") {
			if strings.Contains(line, `"msg":"decided"`) && strings.Contains(line, name) {
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "waiting for a decision on %s in the autoscaler's log", app)
}
