package actuator

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// FieldManager identifies Spinscale's writes in managedFields.
const FieldManager = "spinscale"

var (
	// ErrConflict: the replica count changed between the read that the
	// decision was based on and the write. The next tick decides again.
	ErrConflict = errors.New("replicas changed since they were read")
	// ErrNotFound: the Deployment is gone.
	ErrNotFound = errors.New("deployment not found")
)

// Scaler sets a Deployment's replica count.
type Scaler interface {
	// Scale sets spec.replicas from `from` to `to`, failing with ErrConflict
	// when spec.replicas is no longer `from`.
	Scale(ctx context.Context, namespace, name string, from, to int32) error
}

// KubeScaler patches deployments/<name>/scale.
type KubeScaler struct {
	Client kubernetes.Interface
}

var _ Scaler = KubeScaler{}

// Scale implements Scaler with a JSON patch whose "test" operation makes the
// write conditional on the replica count the decision saw: concurrent status
// updates do not conflict, a concurrent change of replicas does.
func (k KubeScaler) Scale(ctx context.Context, namespace, name string, from, to int32) error {
	patch := fmt.Appendf(nil, `[{"op":"test","path":"/spec/replicas","value":%d},{"op":"replace","path":"/spec/replicas","value":%d}]`, from, to)
	_, err := k.Client.AppsV1().Deployments(namespace).Patch(ctx, name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}, "scale")
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("scale %s/%s: %w", namespace, name, ErrNotFound)
	case apierrors.IsConflict(err), k.replicasChanged(ctx, err, namespace, name, from):
		return fmt.Errorf("scale %s/%s from %d: %w", namespace, name, from, ErrConflict)
	}
	return fmt.Errorf("scale %s/%s from %d to %d: %w", namespace, name, from, to, err)
}

// replicasChanged tells a failed "test" operation from other rejections. The
// API server answers a failed test with a bare 422 that does not say which
// operation failed, so the scale is read again: if spec.replicas is no longer
// `from`, somebody else changed it and the next tick decides again.
func (k KubeScaler) replicasChanged(ctx context.Context, err error, namespace, name string, from int32) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	scale, getErr := k.Client.AppsV1().Deployments(namespace).GetScale(ctx, name, metav1.GetOptions{})
	return getErr == nil && scale.Spec.Replicas != from
}
