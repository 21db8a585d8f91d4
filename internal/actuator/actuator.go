package actuator

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/spinscale/spinscale/internal/recommender"
)

// Actuator carries out the decisions of one tick. The controller calls it the
// same way for every app: the Scaler writes the replica count, the Printer
// shows the decision (dry-run), so that the decision path is identical in
// both modes.
type Actuator interface {
	// Apply carries out an app's decision and reports whether it changed
	// the replica count. An error wrapping ErrConflict or ErrNotFound means
	// that the next tick decides again.
	Apply(ctx context.Context, app types.NamespacedName, spec *recommender.Spec, d *recommender.Decision) (scaled bool, err error)
	// Hold records an app left as it is without a decision (invalid
	// annotations, another autoscaler owns it), with its replica count and
	// the reason.
	Hold(app types.NamespacedName, replicas int32, reason string)
	// Flush completes the tick.
	Flush() error
}

var (
	_ Actuator = Scaler{}
	_ Actuator = (*Printer)(nil)
)
