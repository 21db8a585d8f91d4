package actuator

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/spinscale/spinscale/internal/recommender"
)

// apiServerTestFailure is what kube-apiserver answers to a JSON patch whose
// "test" operation failed: a bare 422 naming no operation.
var apiServerTestFailure = apierrors.NewGenericServerResponse(422, "", schema.GroupResource{}, "", "testing value /spec/replicas failed", 0, false)

func TestScale(t *testing.T) {
	cases := []struct {
		name      string
		patchErr  error
		nowScaled int32 // spec.replicas read back after a 422
		wantErr   error
		wantOther bool
	}{
		{name: "success"},
		{name: "replicas changed by somebody else: conflict", patchErr: apiServerTestFailure, nowScaled: 5, wantErr: ErrConflict},
		{name: "a 422 for another reason stays an error", patchErr: apiServerTestFailure, nowScaled: 3, wantOther: true},
		{name: "optimistic-lock conflict", patchErr: apierrors.NewConflict(schema.GroupResource{Resource: "deployments"}, "shop", nil), wantErr: ErrConflict},
		{name: "deployment gone", patchErr: apierrors.NewNotFound(schema.GroupResource{Resource: "deployments"}, "shop"), wantErr: ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			var patch string
			client.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				patch = string(a.(k8stesting.PatchAction).GetPatch())
				return true, &appsv1.Deployment{}, tc.patchErr
			})
			client.PrependReactor("get", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				require.Equal(t, "scale", a.GetSubresource())
				return true, &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: tc.nowScaled}}, nil
			})
			err := Scaler{Client: client}.scale(context.Background(), "apps", "shop", 3, 6)
			assert.JSONEq(t, `[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":6}]`, patch)
			switch {
			case tc.wantErr != nil:
				assert.ErrorIs(t, err, tc.wantErr)
			case tc.wantOther:
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrConflict)
			default:
				assert.NoError(t, err)
			}
		})
	}
}

// The Scaler writes only a decision that changes the replica count, and
// reports whether it did.
func TestScalerApply(t *testing.T) {
	cases := []struct {
		name        string
		from, to    int32
		wantScaled  bool
		wantPatches int
	}{
		{name: "a hold writes nothing", from: 3, to: 3},
		{name: "a scale-up is written", from: 3, to: 6, wantScaled: true, wantPatches: 1},
		{name: "a scale-down is written", from: 3, to: 2, wantScaled: true, wantPatches: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, &appsv1.Deployment{}, nil
			})
			d := recommender.Decision{CurrentReplicas: tc.from, DesiredReplicas: tc.to}
			scaled, err := Scaler{Client: client}.Apply(context.Background(), types.NamespacedName{Namespace: "apps", Name: "shop"}, &recommender.Spec{}, &d)
			require.NoError(t, err)
			assert.Equal(t, tc.wantScaled, scaled)
			assert.Len(t, client.Actions(), tc.wantPatches)
		})
	}
}
