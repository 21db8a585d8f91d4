package controller

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/spinscale/spinscale/internal/actuator"
	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/config"
	"github.com/spinscale/spinscale/internal/recommender"
)

func TestScheduleKeepsHPAsFixedSync(t *testing.T) {
	var s schedule
	require.True(t, s.due(t0), "an app never decided on is due")
	s.decided(t0, 15*time.Second, true, 1)
	assert.False(t, s.due(t0.Add(14*time.Second)))
	assert.True(t, s.due(t0.Add(15*time.Second)))
	// A decision that came 1.5 s late keeps the phase of the sync.
	s.decided(t0.Add(16500*time.Millisecond), 15*time.Second, true, 1)
	assert.False(t, s.due(t0.Add(29*time.Second)))
	assert.True(t, s.due(t0.Add(30*time.Second)))
}

func TestScheduleOfFreshDataCountsFromTheLastDecision(t *testing.T) {
	var s schedule
	s.decided(t0, 15*time.Second, false, 1)
	s.decided(t0.Add(4*time.Second), 15*time.Second, false, 2)
	assert.False(t, s.due(t0.Add(18*time.Second)), "at most an interval since the last decision, not since the first")
	assert.True(t, s.due(t0.Add(19*time.Second)))
}

func TestAnEditIsDueAtOnce(t *testing.T) {
	a := &app{}
	a.ensureParsed(cpuApp, annotations.Defaults{})
	a.sched.decided(t0, 15*time.Second, true, 0)
	a.ensureParsed(cpuApp, annotations.Defaults{})
	assert.False(t, a.sched.due(t0.Add(time.Second)), "the same annotations are no edit")
	edited := map[string]string{"spinscale.dev/max-replicas": "20"}
	for k, v := range cpuApp {
		if _, ok := edited[k]; !ok {
			edited[k] = v
		}
	}
	a.ensureParsed(edited, annotations.Defaults{})
	assert.True(t, a.sched.due(t0.Add(time.Second)), "an edit is decided on at once")
	a.sched.decided(t0.Add(time.Second), 15*time.Second, true, 0)
	assert.False(t, a.sched.due(t0.Add(2*time.Second)))
}

// A new pod template (a new generation with the same replica count) is an
// edit; a new replica count is not (Spinscale's own writes change it).
func TestASpecChangeIsDueAtOnce(t *testing.T) {
	a := &app{}
	d := deployment("shop", 2, cpuApp)
	d.Generation = 3
	a.noteSpec(d)
	a.sched.decided(t0, 15*time.Second, true, 0)
	d.Generation, d.Spec.Replicas = 4, ptr.To(int32(4))
	a.noteSpec(d)
	assert.False(t, a.sched.due(t0.Add(time.Second)), "a scale is no edit")
	d.Generation = 5
	a.noteSpec(d)
	assert.True(t, a.sched.due(t0.Add(time.Second)), "a new pod template is decided on at once")
}

// The interval annotation sets the app's own decision interval.
func TestTheIntervalAnnotationSetsTheAppsSync(t *testing.T) {
	fast := maps.Clone(cpuApp)
	fast["spinscale.dev/interval"] = "5s"
	pods, names := podsFor("shop", 2)
	podsB, namesB := podsFor("cart", 2)
	h := newHarness(t, nil, append(append(pods, podsB...), deployment("shop", 2, fast), deployment("cart", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = append(names, namesB...), 50 // on target
	decisions := func() float64 {
		return counterValue(t, h.ctl.opts.Instruments.Decisions.WithLabelValues("none", "none"))
	}
	h.ctl.Once(context.Background())
	require.Equal(t, 2.0, decisions(), "both apps at first sight")
	h.clock.Step(5 * time.Second)
	h.ctl.Once(context.Background())
	assert.Equal(t, 3.0, decisions(), "shop again after its 5s; cart waits for the 15s interval")
	h.clock.Step(10 * time.Second)
	h.ctl.Once(context.Background())
	assert.Equal(t, 5.0, decisions(), "both at 15s")
}

func TestFingerprintChangesWithNewSamplesOnly(t *testing.T) {
	resource := []recommender.MetricSpec{{Source: recommender.SourceResource}}
	prom := []recommender.MetricSpec{{Source: recommender.SourcePrometheus}}
	perPod := func(stamp time.Time, pods ...string) []recommender.Observation {
		o := recommender.Observation{PerPod: true}
		for _, p := range pods {
			o.Samples = append(o.Samples, recommender.Sample{Pod: p, Value: 50, Timestamp: stamp})
		}
		return []recommender.Observation{o}
	}
	base := fingerprint(resource, perPod(t0, "a", "b"))
	assert.Equal(t, base, fingerprint(resource, perPod(t0, "b", "a")), "the order of the pods does not matter")
	assert.NotEqual(t, base, fingerprint(resource, perPod(t0.Add(15*time.Second), "a", "b")), "a newer scrape is new data")
	assert.NotEqual(t, base, fingerprint(resource, perPod(t0, "a", "b", "c")), "a new pod's first sample is new data")
	assert.Equal(t, fingerprint(prom, perPod(t0, "a", "b")), fingerprint(prom, perPod(t0.Add(time.Second), "a", "b")),
		"a per-pod query result is stamped with the query's time: only its values tell new data")

	scalar := func(v int64, stamp time.Time) []recommender.Observation {
		return []recommender.Observation{{Value: v, Timestamp: stamp}}
	}
	assert.Equal(t, fingerprint(prom, scalar(1200, t0)), fingerprint(prom, scalar(1200, t0.Add(time.Second))),
		"a query result is stamped with the query's time: only its value tells new data")
	assert.NotEqual(t, fingerprint(prom, scalar(1200, t0)), fingerprint(prom, scalar(1300, t0)))

	two := append(prom, resource...)
	failed := func(msg string) []recommender.Observation {
		return []recommender.Observation{{Err: errors.New(msg)}, {Err: recommender.ErrNoData}}
	}
	assert.Equal(t, fingerprint(two, failed("timeout after 5s (3 pods)")), fingerprint(two, failed("timeout after 5s (4 pods)")), "a failure that persists is no new data")
	assert.NotEqual(t, fingerprint(two, failed("timeout")), fingerprint(two, append(scalar(0, t0), recommender.Observation{Err: recommender.ErrNoData})))
}

func TestDecisionsFollowFreshData(t *testing.T) {
	for _, tc := range []struct {
		profile string
		// decided says whether each pass decided on the app; reads how many
		// metrics.k8s.io snapshots were taken by then.
		decided []bool
		reads   []int
	}{
		{config.ProfileSpinscale, []bool{true, false, true, false, true}, []int{1, 2, 3, 4, 5}},
		{config.ProfileHPA, []bool{true, false, false, false, true}, []int{1, 1, 1, 1, 2}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			pods, names := podsFor("shop", 2)
			h := newHarness(t, func(c *config.Config) { c.Profile = tc.profile }, append(pods, deployment("shop", 2, cpuApp))...)
			h.usage.pods, h.usage.cpuMilli = names, 50 // at the target: hold
			steps := []struct {
				after time.Duration
				stamp time.Time
			}{
				{0, t0},                                     // first sight
				{time.Second, t0},                           // nothing new
				{time.Second, t0.Add(2 * time.Second)},      // a new scrape
				{time.Second, t0.Add(2 * time.Second)},      // nothing new
				{15 * time.Second, t0.Add(2 * time.Second)}, // nothing new for an interval
			}
			for i, st := range steps {
				h.clock.Step(st.after)
				h.usage.stamp = st.stamp
				now := h.clock.Now()
				h.ctl.tick(context.Background(), now)
				a := h.ctl.apps[types.NamespacedName{Namespace: "apps", Name: "shop"}]
				require.NotNil(t, a)
				assert.Equal(t, tc.decided[i], a.sched.last.Equal(now), "pass %d decided", i)
				assert.Equal(t, tc.reads[i], h.usage.calls, "snapshots after pass %d", i)
			}
			assert.Empty(t, h.writes(), "at the target, nothing to write")
		})
	}
}

// TestALateTickSkipsItsAppsQuietly: apps still queued when the tick's
// deadline has passed are left for the next tick: no write that would fail,
// no RescaleFailed Warning, counted as skipped.
func TestALateTickSkipsItsAppsQuietly(t *testing.T) {
	pods, names := podsFor("shop", 2)
	h := newHarness(t, nil, append(pods, deployment("shop", 2, cpuApp))...)
	h.usage.pods, h.usage.cpuMilli = names, 100 // 2 → 4 is due
	ctx, cancel := context.WithDeadline(context.Background(), t0.Add(-time.Second))
	defer cancel()
	h.ctl.tick(ctx, h.clock.Now())
	assert.Empty(t, h.writes())
	for _, e := range h.events() {
		assert.NotContains(t, e, actuator.ReasonRescaleFailed)
	}
	assert.Equal(t, 1.0, counterValue(t, h.ctl.opts.Instruments.AppsSkipped.WithLabelValues("tick_deadline")))

	// The next tick, in time, scales the app.
	h.ctl.tick(context.Background(), h.clock.Now())
	assert.Len(t, h.writes(), 1)
}

// podSelector narrows the pod cache: pods without the label are not cached.
func TestPodSelectorNarrowsThePodCache(t *testing.T) {
	pods, _ := podsFor("shop", 2)
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "batch-job", Namespace: "apps", Labels: map[string]string{"job": "x"}}}
	h := newHarness(t, func(c *config.Config) { c.PodSelector = "core.spinkube.dev/app-name" }, append(pods, deployment("shop", 2, cpuApp), other)...)
	var names []string
	for _, idx := range h.ctl.pods {
		for _, obj := range idx.List() {
			names = append(names, obj.(*cachedPod).pod.Name)
		}
	}
	assert.ElementsMatch(t, []string{"shop-a", "shop-b"}, names)
}
