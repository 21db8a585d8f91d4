package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/spinscale/spinscale/internal/recommender"
)

// TestTrimPodKeepsWhatRequestsAreReadFrom: the informer's cached pod holds
// the requests HPA reads from the full pod, with and without pod-level
// requests (which make HPA read the overhead and plain init containers too).
func TestTrimPodKeepsWhatRequestsAreReadFrom(t *testing.T) {
	req := func(cpu, mem string) corev1.ResourceRequirements {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return corev1.ResourceRequirements{Requests: l, Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}}
	}
	spec := func(podLevel *corev1.ResourceRequirements) corev1.PodSpec {
		return corev1.PodSpec{
			Resources:      podLevel,
			Overhead:       corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")},
			Containers:     []corev1.Container{{Name: "app", Image: "ghcr.io/spinscale/app:1", Resources: req("", "64Mi")}},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "ghcr.io/spinscale/migrate:1", Resources: req("", "256Mi")}},
		}
	}
	podLevel := req("1", "")
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		cpu, mem recommender.Request
	}{
		{
			name: "containers only",
			spec: spec(nil),
			cpu:  recommender.Request{MissingIn: "app"},
			mem:  recommender.Request{Milli: 64 << 20 * 1000},
		},
		{
			name: "pod-level cpu: memory from the init phase's peak plus the overhead",
			spec: spec(&podLevel),
			cpu:  recommender.Request{Milli: 1000, PodLevel: true},
			mem:  recommender.Request{Milli: (256 + 16) << 20 * 1000, PodLevel: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "apps"}, Spec: tt.spec}
			got := enginePod(full)
			assert.Equal(t, tt.cpu, got.CPU, "cpu")
			assert.Equal(t, tt.mem, got.Memory, "memory")
			obj, err := trimPod(full)
			require.NoError(t, err)
			assert.Equal(t, got, obj.(*cachedPod).pod, "the cache holds the engine's view of the full pod")
		})
	}
}

// TestTrimPodIsWhatTheStoreNeeds: the cached pod keys, indexes and versions
// as the pod did, keeps its engine view, and the transform lets pods already
// transformed and tombstones through untouched.
func TestTrimPodIsWhatTheStoreNeeds(t *testing.T) {
	start := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	ready := metav1.NewTime(start.Add(3 * time.Second))
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "apps", ResourceVersion: "812", UID: "u1",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"big": strings.Repeat("x", 4096)},
			DeletionTimestamp: &ready},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "ghcr.io/spinscale/app:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ready}}},
	}
	obj, err := trimPod(full)
	require.NoError(t, err)
	cp := obj.(*cachedPod)
	assert.Equal(t, recommender.Pod{Name: "web-0", Phase: corev1.PodRunning, Deleting: true, HasReadyCondition: true, Ready: true,
		ReadyTransition: ready.Time, StartTime: start.Time,
		CPU: recommender.Request{Milli: 250}, Memory: recommender.Request{MissingIn: "app"}}, cp.pod)

	key, err := cache.MetaNamespaceKeyFunc(cp)
	require.NoError(t, err)
	assert.Equal(t, "apps/web-0", key)
	ns, err := cache.MetaNamespaceIndexFunc(cp)
	require.NoError(t, err)
	assert.Equal(t, []string{"apps"}, ns)
	m, err := meta.Accessor(cp)
	require.NoError(t, err)
	assert.Equal(t, "812", m.GetResourceVersion())
	keys, err := podLabelKeys(cp)
	require.NoError(t, err)
	assert.Equal(t, []string{"apps/app=web"}, keys)

	again, err := trimPod(cp)
	require.NoError(t, err)
	assert.Same(t, cp, again, "a transformed pod passes through")
	tomb := cache.DeletedFinalStateUnknown{Key: "apps/web-0", Obj: cp}
	passed, err := trimPod(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, passed, "a tombstone passes through")
}

// An app's pods are looked up by its selector's most selective pair: with a
// selector that also holds a pair every app shares (sorted first), podsOf
// still finds exactly its pods and looks at its own bucket only; a selector
// without the picked pair, or a bucket grown past the pick, picks again.
func TestPodsAreLookedUpByTheMostSelectivePair(t *testing.T) {
	var objs []runtime.Object
	group := map[string]string{"app.kubernetes.io/part-of": "shop"} // sorts before the app label
	for _, app := range []string{"cart", "web", "search", "auth", "feed", "mail"} {
		pods, _ := podsFor(app, 5)
		for _, o := range pods {
			p := o.(*corev1.Pod)
			p.Labels["app.kubernetes.io/part-of"] = group["app.kubernetes.io/part-of"]
			objs = append(objs, p)
		}
	}
	d := deployment("web", 5, cpuApp)
	d.Spec.Selector.MatchLabels["app.kubernetes.io/part-of"] = "shop"
	h := newHarness(t, nil, append(objs, d)...)

	var key podKey
	names := func(ps []recommender.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"web-a", "web-b", "web-c", "web-d", "web-e"}, names(h.ctl.podsOf(d, &key)))
	assert.Equal(t, podKey{label: "core.spinkube.dev/app-name", value: "web", size: 5}, key, "the app's own pair, not the shared one (30 pods)")
	assert.Len(t, h.ctl.candidates(d, &key), 5, "only the app's pods are looked at")

	// The selector loses the picked pair: the other is picked.
	d2 := d.DeepCopy()
	delete(d2.Spec.Selector.MatchLabels, "core.spinkube.dev/app-name")
	assert.Len(t, h.ctl.podsOf(d2, &key), 30, "every pod of the group matches")
	assert.Equal(t, podKey{label: "app.kubernetes.io/part-of", value: "shop", size: 30}, key)

	// A bucket far larger than at its pick is picked again on the next look.
	key = podKey{label: "app.kubernetes.io/part-of", value: "shop", size: 0}
	assert.Len(t, h.ctl.podsOf(d, &key), 5)
	assert.Empty(t, key.label, "30 candidates against 0 at the pick: marked to pick again")
	assert.Len(t, h.ctl.podsOf(d, &key), 5)
	assert.Equal(t, "core.spinkube.dev/app-name", key.label)
}
