package activator

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// serviceIndex indexes EndpointSlices by namespace/Service.
const serviceIndex = "service"

func indexByService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}

// stripManagedFields drops what the activator never reads from cached
// objects.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}

// Start fills the table from informers on Deployments and EndpointSlices
// of namespaces (empty: all) and returns once their caches synced, within
// syncTimeout. The informers run until ctx ends: let it outlive Serve's, so
// that requests held during the drain are still released.
func (x *Activator) Start(ctx context.Context, client kubernetes.Interface, namespaces []string, syncTimeout time.Duration) error {
	watched := namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	indexers := map[string]cache.Indexer{}
	var synced []cache.InformerSynced
	var factories []informers.SharedInformerFactory
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0,
			informers.WithNamespace(ns), informers.WithTransform(stripManagedFields))
		deps := f.Apps().V1().Deployments().Informer()
		eps := f.Discovery().V1().EndpointSlices().Informer()
		if err := eps.AddIndexers(cache.Indexers{serviceIndex: indexByService}); err != nil {
			return fmt.Errorf("index EndpointSlices by Service: %w", err)
		}
		indexers[ns] = eps.GetIndexer()
		if _, err := deps.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { x.deploymentChanged(obj) },
			UpdateFunc: func(_, obj any) { x.deploymentChanged(obj) },
			DeleteFunc: x.deploymentDeleted,
		}); err != nil {
			return fmt.Errorf("watch Deployments: %w", err)
		}
		if _, err := eps.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: x.sliceChanged,
			UpdateFunc: func(old, obj any) {
				x.sliceChanged(old)
				x.sliceChanged(obj)
			},
			DeleteFunc: x.sliceChanged,
		}); err != nil {
			return fmt.Errorf("watch EndpointSlices: %w", err)
		}
		synced = append(synced, deps.HasSynced, eps.HasSynced)
		factories = append(factories, f)
	}
	// The handlers read the indexes: set them up before any event.
	x.table.slices = func(namespace, service string) []*discoveryv1.EndpointSlice {
		idx := indexers[namespace]
		if idx == nil {
			idx = indexers[metav1.NamespaceAll]
		}
		if idx == nil {
			return nil
		}
		objs, err := idx.ByIndex(serviceIndex, namespace+"/"+service)
		if err != nil {
			x.log.Error("list EndpointSlices from the cache", zap.String("namespace", namespace), zap.String("service", service), zap.Error(err))
			return nil
		}
		out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
		for _, o := range objs {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				out = append(out, s)
			}
		}
		return out
	}
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), synced...) {
		return fmt.Errorf("informer caches of Deployments and EndpointSlices not synced within %s", syncTimeout)
	}
	// Slices that arrived before their Deployment found no app: refresh all.
	for _, a := range x.table.appList() {
		x.table.refresh(a)
	}
	x.synced.Store(true)
	x.log.Info("informer caches synced", zap.Strings("namespaces", watched), zap.Int("apps", len(x.table.appList())))
	return nil
}

func (x *Activator) deploymentChanged(obj any) {
	if d, ok := obj.(*appsv1.Deployment); ok {
		x.table.SetDeployment(d)
	}
}

func (x *Activator) deploymentDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if d, ok := obj.(*appsv1.Deployment); ok {
		x.table.DeleteDeployment(d.Namespace, d.Name)
	}
}

func (x *Activator) sliceChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
		x.table.SyncService(s.Namespace, svc)
	}
}
