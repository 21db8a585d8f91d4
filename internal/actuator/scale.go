package actuator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/spinscale/spinscale/internal/annotations"
	"github.com/spinscale/spinscale/internal/recommender"
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

// Scaler is the Actuator that writes: it patches deployments/<name>/scale,
// or the Deployment itself when the write also changes the scaled-to-zero
// record.
type Scaler struct {
	Client kubernetes.Interface
	// Now stamps the scaled-to-zero record; nil means time.Now.
	Now func() time.Time
}

// Apply writes the desired replica count when the decision changes it.
func (k Scaler) Apply(ctx context.Context, app types.NamespacedName, _ *recommender.Spec, d *recommender.Decision) (bool, error) {
	if d.DesiredReplicas == d.CurrentReplicas {
		return false, nil
	}
	var err error
	if d.Zero == recommender.ZeroKeep {
		err = k.scale(ctx, app.Namespace, app.Name, d.CurrentReplicas, d.DesiredReplicas)
	} else {
		err = k.scaleRecordingZero(ctx, app.Namespace, app.Name, d)
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// scaleRecordingZero writes the replica count and Spinscale's record that
// it scaled the app to zero (the scaled-to-zero annotation) in one JSON
// patch of the Deployment, so that a restart or a new leader never sees
// one without the other. The "test" operation makes it conditional on the
// replica count the decision saw, as scale does.
func (k Scaler) scaleRecordingZero(ctx context.Context, namespace, name string, d *recommender.Decision) error {
	from, to := d.CurrentReplicas, d.DesiredReplicas
	ops := []map[string]any{
		{"op": "test", "path": "/spec/replicas", "value": from},
		{"op": "replace", "path": "/spec/replicas", "value": to},
	}
	path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(annotations.KeyScaledToZero, "~", "~0"), "/", "~1")
	switch d.Zero {
	case recommender.ZeroSet:
		now := time.Now
		if k.Now != nil {
			now = k.Now
		}
		ops = append(ops, map[string]any{"op": "add", "path": path, "value": now().UTC().Format(time.RFC3339)})
	case recommender.ZeroClear:
		ops = append(ops, map[string]any{"op": "remove", "path": path})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("scale %s/%s: encode patch: %w", namespace, name, err)
	}
	_, err = k.Client.AppsV1().Deployments(namespace).Patch(ctx, name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	return k.classify(ctx, err, namespace, name, from, to)
}

// Hold does nothing: an app without a decision is left as it is.
func (Scaler) Hold(types.NamespacedName, int32, string) {}

// Flush does nothing: every write is made by Apply.
func (Scaler) Flush() error { return nil }

// scale sets spec.replicas from `from` to `to` with a JSON patch whose "test"
// operation makes the write conditional on the replica count the decision
// saw: concurrent status updates do not conflict, a concurrent change of
// replicas fails with ErrConflict.
func (k Scaler) scale(ctx context.Context, namespace, name string, from, to int32) error {
	patch := fmt.Appendf(nil, `[{"op":"test","path":"/spec/replicas","value":%d},{"op":"replace","path":"/spec/replicas","value":%d}]`, from, to)
	_, err := k.Client.AppsV1().Deployments(namespace).Patch(ctx, name, types.JSONPatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}, "scale")
	return k.classify(ctx, err, namespace, name, from, to)
}

// classify wraps a failed write: ErrNotFound, ErrConflict when somebody else
// changed the replica count, the API server's error otherwise.
func (k Scaler) classify(ctx context.Context, err error, namespace, name string, from, to int32) error {
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
func (k Scaler) replicasChanged(ctx context.Context, err error, namespace, name string, from int32) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	scale, getErr := k.Client.AppsV1().Deployments(namespace).GetScale(ctx, name, metav1.GetOptions{})
	return getErr == nil && scale.Spec.Replicas != from
}
