package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// replicaWatch follows spec.replicas of the bench's Deployments through an
// informer and records, after arm, when each app first had the expected
// count.
type replicaWatch struct {
	mu      sync.Mutex
	expect  int32
	armed   time.Time
	reached map[string]time.Time // app key → first time at expect
	current map[string]int32
	group   map[string]string
}

// watchReplicas starts the informer; it stops when ctx ends.
func watchReplicas(ctx context.Context, client kubernetes.Interface, expect int32) (*replicaWatch, error) {
	w := &replicaWatch{expect: expect, reached: map[string]time.Time{}, current: map[string]int32{}, group: map[string]string{}}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = groupLabel
	}))
	inf := f.Apps().V1().Deployments().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.observe(obj) },
		UpdateFunc: func(_, obj any) { w.observe(obj) },
	})
	if err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("deployment informer did not sync")
	}
	return w, nil
}

func (w *replicaWatch) observe(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.Spec.Replicas == nil {
		return
	}
	now := time.Now()
	key := d.Namespace + "/" + d.Name
	w.mu.Lock()
	defer w.mu.Unlock()
	w.current[key] = *d.Spec.Replicas
	w.group[key] = d.Labels[groupLabel]
	if !w.armed.IsZero() && *d.Spec.Replicas == w.expect {
		if _, seen := w.reached[key]; !seen {
			w.reached[key] = now
		}
	}
}

// arm starts recording from now; counts seen before do not count.
func (w *replicaWatch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = time.Now()
	w.reached = map[string]time.Time{}
	for key, r := range w.current {
		if r == w.expect {
			w.reached[key] = w.armed
		}
	}
}

// countsOther returns how many apps of each group have replicas other
// than r.
func (w *replicaWatch) countsOther(r int32) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for key, c := range w.current {
		if c != r {
			out[w.group[key]]++
		}
	}
	return out
}

// countsAtEnd returns, per group, how many apps have each replica count.
func (w *replicaWatch) countsAtEnd() map[string]map[int32]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]map[int32]int{}
	for key, c := range w.current {
		g := w.group[key]
		if out[g] == nil {
			out[g] = map[int32]int{}
		}
		out[g][c]++
	}
	return out
}

// since returns, per group, how long after t each app reached the count
// (never negative), and how many reached it.
func (w *replicaWatch) since(t time.Time) map[string][]time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]time.Duration{}
	for key, at := range w.reached {
		out[w.group[key]] = append(out[w.group[key]], max(0, at.Sub(t)))
	}
	return out
}

// reachedCount is how many apps have reached the count since arm.
func (w *replicaWatch) reachedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.reached)
}
