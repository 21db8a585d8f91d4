package controller

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/spinscale/spinscale/internal/annotations"
)

// Resources of other autoscalers and of SpinKube that decide whether
// Spinscale may scale a Deployment.
var (
	scaledObjectGVR = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}
	spinAppGVR      = schema.GroupVersionResource{Group: "core.spinkube.dev", Version: "v1alpha1", Resource: "spinapps"}
)

const targetIndex = "scaleTarget"

// conflictChecker finds reasons not to scale a Deployment: another
// autoscaler (an HPA or a KEDA ScaledObject) targeting it, or an owning
// SpinApp without enableAutoscaling, whose operator would write replicas
// back on every reconcile.
type conflictChecker struct {
	hpas          []cache.Indexer
	scaledObjects []cache.Indexer
	spinApps      []cache.Indexer
	start         func(ctx context.Context)
	synced        []cache.InformerSynced
}

func newConflictChecker(client kubernetes.Interface, dyn dynamic.Interface, namespaces []string, log *zap.Logger) (*conflictChecker, error) {
	cc := &conflictChecker{}
	var starters []func(<-chan struct{})
	hasSO, hasSpinApp := false, false
	if dyn != nil {
		hasSO = served(client, scaledObjectGVR)
		hasSpinApp = served(client, spinAppGVR)
	}
	log.Info("conflict checks", zap.Bool("keda", hasSO), zap.Bool("spinkube", hasSpinApp))
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		hpa := f.Autoscaling().V2().HorizontalPodAutoscalers().Informer()
		if err := hpa.SetTransform(trimHPA); err != nil {
			return nil, fmt.Errorf("hpa informer transform: %w", err)
		}
		if err := hpa.AddIndexers(cache.Indexers{targetIndex: hpaTarget}); err != nil {
			return nil, fmt.Errorf("hpa informer index: %w", err)
		}
		cc.hpas = append(cc.hpas, hpa.GetIndexer())
		cc.synced = append(cc.synced, hpa.HasSynced)
		starters = append(starters, f.Start)
		if hasSO || hasSpinApp {
			df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
			if hasSO {
				inf := df.ForResource(scaledObjectGVR).Informer()
				if err := inf.AddIndexers(cache.Indexers{targetIndex: scaledObjectTarget}); err != nil {
					return nil, fmt.Errorf("scaledobject informer index: %w", err)
				}
				cc.scaledObjects = append(cc.scaledObjects, inf.GetIndexer())
				cc.synced = append(cc.synced, inf.HasSynced)
			}
			if hasSpinApp {
				inf := df.ForResource(spinAppGVR).Informer()
				cc.spinApps = append(cc.spinApps, inf.GetIndexer())
				cc.synced = append(cc.synced, inf.HasSynced)
			}
			starters = append(starters, df.Start)
		}
	}
	cc.start = func(ctx context.Context) {
		for _, s := range starters {
			s(ctx.Done())
		}
	}
	return cc, nil
}

// served reports whether the API server serves the resource (its CRD is
// installed). Checked once at start.
func served(client kubernetes.Interface, gvr schema.GroupVersionResource) bool {
	list, err := client.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

func hpaTarget(obj any) ([]string, error) {
	h, ok := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	if !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
		return nil, nil
	}
	return []string{h.Namespace + "/" + h.Spec.ScaleTargetRef.Name}, nil
}

func scaledObjectTarget(obj any) ([]string, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, nil
	}
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
	if name == "" || (kind != "" && kind != "Deployment") {
		return nil, nil
	}
	return []string{u.GetNamespace() + "/" + name}, nil
}

// refusal returns why the Deployment must not be scaled, or "".
func (cc *conflictChecker) refusal(d *appsv1.Deployment) string {
	key := d.Namespace + "/" + d.Name
	for _, idx := range cc.hpas {
		if objs, _ := idx.ByIndex(targetIndex, key); len(objs) > 0 {
			h := objs[0].(*autoscalingv2.HorizontalPodAutoscaler)
			return fmt.Sprintf("HorizontalPodAutoscaler %s also targets this Deployment; delete it or remove %s", h.Name, annotations.KeyEnabled)
		}
	}
	for _, idx := range cc.scaledObjects {
		if objs, _ := idx.ByIndex(targetIndex, key); len(objs) > 0 {
			so := objs[0].(*unstructured.Unstructured)
			return fmt.Sprintf("KEDA ScaledObject %s also targets this Deployment; delete it or remove %s", so.GetName(), annotations.KeyEnabled)
		}
	}
	for _, ref := range d.OwnerReferences {
		if ref.Kind != "SpinApp" || ref.APIVersion != spinAppGVR.GroupVersion().String() {
			continue
		}
		app, found := cc.spinApp(d.Namespace, ref.Name)
		if !found {
			return fmt.Sprintf("the owning SpinApp %s is not known (yet); not scaling until it is", ref.Name)
		}
		enabled, _, _ := unstructured.NestedBool(app.Object, "spec", "enableAutoscaling")
		if !enabled {
			return fmt.Sprintf("the owning SpinApp %s has spec.enableAutoscaling false, so spin-operator writes replicas back on every reconcile; set it to true", ref.Name)
		}
	}
	return ""
}

func (cc *conflictChecker) spinApp(namespace, name string) (*unstructured.Unstructured, bool) {
	for _, idx := range cc.spinApps {
		obj, exists, err := idx.GetByKey(namespace + "/" + name)
		if err == nil && exists {
			return obj.(*unstructured.Unstructured), true
		}
	}
	return nil, false
}

func metaFor(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
