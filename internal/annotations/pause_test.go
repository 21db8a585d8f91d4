package annotations

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

func TestParsePause(t *testing.T) {
	replicas := func(n int32) *int32 { return &n }
	tests := []struct {
		name string
		ann  map[string]string
		want recommender.Pause
	}{
		{"none", valid(), recommender.Pause{}},
		{"paused-replicas", valid("paused-replicas", "4"), recommender.Pause{Replicas: replicas(4)}},
		{"paused-replicas 0", valid("paused-replicas", " 0 "), recommender.Pause{Replicas: replicas(0)}},
		{"paused-replicas above max-replicas, as KEDA allows", valid("paused-replicas", "50"), recommender.Pause{Replicas: replicas(50)}},
		{"paused-replicas below min-replicas", valid("min-replicas", "3", "paused-replicas", "1"), recommender.Pause{Replicas: replicas(1)}},
		{"paused-scale-in", valid("paused-scale-in", "true"), recommender.Pause{ScaleIn: true}},
		{"paused-scale-out", valid("paused-scale-out", "true", "paused-scale-in", "false"), recommender.Pause{ScaleOut: true}},
		{"every pause at once", valid("paused-replicas", "2", "paused-scale-in", "true", "paused-scale-out", "true", "paused", "true"),
			recommender.Pause{Replicas: replicas(2), ScaleIn: true, ScaleOut: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(tt.ann, defaults)
			require.NoError(t, err)
			assert.Equal(t, tt.want, app.Spec.Pause)
			assert.Empty(t, app.Warnings)
		})
	}
}

// TestParsePauseErrors: a bad value is an error naming the key and the
// value, so that the app is left as it is; never a silent "not paused".
func TestParsePauseErrors(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"paused-replicas negative", valid("paused-replicas", "-1"),
			`spinscale.dev/paused-replicas: "-1": must be an integer from 0 to 100000: the replica count to go to and hold`},
		{"paused-replicas too many", valid("paused-replicas", "100001"), `spinscale.dev/paused-replicas: "100001"`},
		{"paused-replicas not a number", valid("paused-replicas", "true"), `spinscale.dev/paused-replicas: "true"`},
		{"paused-replicas empty", valid("paused-replicas", " "), `spinscale.dev/paused-replicas: " "`},
		{"paused-scale-in not a boolean", valid("paused-scale-in", "yes"), `spinscale.dev/paused-scale-in: "yes": must be true or false`},
		{"paused-scale-out not a boolean", valid("paused-scale-out", "1"), `spinscale.dev/paused-scale-out: "1": must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := Parse(tt.ann, defaults)
			var perr *Error
			require.ErrorAs(t, err, &perr)
			require.Len(t, perr.Fields, 1, "exactly one problem expected, got %v", err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, recommender.Spec{}, app.Spec, "a failed parse gives no spec")
		})
	}
}
