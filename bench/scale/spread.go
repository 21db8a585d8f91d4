package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// spreader keeps every app's total emulated cpu usage spread evenly over
// its running pods, as a fixed amount of traffic spreads over however many
// pods serve it: each change of an app's pods re-annotates them. So the
// right count is the same whatever path an autoscaler takes to it (a pod
// added without load would pull the average down, and a count inside
// HPA's 10 % tolerance would then hold). Apps are handled by a fixed pool
// of workers from a deduplicating queue; the patches go through the
// client's rate limit.
type spreader struct {
	client  kubernetes.Interface
	indexer cache.Indexer
	queue   workqueue.TypedRateLimitingInterface[string]
	total   atomic.Int64 // millicores per app

	mu       sync.Mutex
	epoch    int64           // bumped by setTotal
	done     map[string]bool // apps spread at the current total
	apps     int             // apps expected (for allSpread)
	doneAt   time.Time       // when every app was first spread at the current total
	patches  atomic.Int64
	failures atomic.Int64
}

const appIndex = "app"

// startSpreader starts the pod informer and workers; they stop when ctx
// ends. apps is how many apps there are.
func startSpreader(ctx context.Context, client kubernetes.Interface, apps, workers int) (*spreader, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = groupLabel
	}))
	inf := f.Core().V1().Pods().Informer()
	if err := inf.AddIndexers(cache.Indexers{appIndex: func(obj any) ([]string, error) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		return []string{p.Namespace + "/" + p.Labels[appLabel]}, nil
	}}); err != nil {
		return nil, err
	}
	s := &spreader{client: client, indexer: inf.GetIndexer(), apps: apps, done: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())}
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			s.queue.Add(p.Namespace + "/" + p.Labels[appLabel])
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		s.queue.ShutDown()
		return nil, fmt.Errorf("pod informer did not sync")
	}
	go func() { <-ctx.Done(); s.queue.ShutDown() }()
	for range workers {
		go func() {
			for s.next(ctx) {
			}
		}()
	}
	return s, nil
}

// setTotal sets every app's total usage and queues the apps, in order.
func (s *spreader) setTotal(milli int64, apps []appRef) {
	s.mu.Lock()
	s.epoch++
	s.done, s.doneAt = map[string]bool{}, time.Time{}
	s.total.Store(milli)
	s.mu.Unlock()
	for _, a := range apps {
		s.queue.Add(a.namespace + "/" + a.name)
	}
}

// spreadAt returns when every app was first spread at the current total;
// zero until then.
func (s *spreader) spreadAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doneAt
}

func (s *spreader) next(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	if err := s.spread(ctx, key); err != nil {
		s.failures.Add(1)
		s.queue.AddRateLimited(key)
		return true
	}
	s.queue.Forget(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch == epoch && !s.done[key] {
		s.done[key] = true
		if len(s.done) == s.apps && s.doneAt.IsZero() {
			s.doneAt = time.Now()
		}
	}
	return true
}

// spread annotates the app's running pods with total / pods, lowering
// pods first so that the app's usage never shows above its total.
func (s *spreader) spread(ctx context.Context, key string) error {
	objs, err := s.indexer.ByIndex(appIndex, key)
	if err != nil {
		return err
	}
	var running []*corev1.Pod
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			running = append(running, p)
		}
	}
	if len(running) == 0 {
		return nil
	}
	share := max(1, s.total.Load()/int64(len(running)))
	want := fmt.Sprintf("%dm", share)
	type change struct {
		pod *corev1.Pod
		up  bool
	}
	var changes []change
	for _, p := range running {
		cur, ok := p.Annotations[usageKey]
		if ok && cur == want {
			continue
		}
		changes = append(changes, change{p, !ok || milliOf(cur) < share})
	}
	slices.SortStableFunc(changes, func(a, b change) int {
		switch {
		case a.up == b.up:
			return 0
		case !a.up:
			return -1
		default:
			return 1
		}
	})
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, usageKey, want)
	for _, c := range changes {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.client.CoreV1().Pods(c.pod.Namespace).Patch(pctx, c.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		cancel()
		if err != nil {
			return fmt.Errorf("patch pod %s/%s: %w", c.pod.Namespace, c.pod.Name, err)
		}
		s.patches.Add(1)
	}
	return nil
}

// milliOf reads "40m"; anything else counts as 0.
func milliOf(v string) int64 {
	var m int64
	if _, err := fmt.Sscanf(v, "%dm", &m); err != nil {
		return 0
	}
	return m
}
