package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

// TestScaledObjectPauseAnnotations: KEDA's pause annotations become
// Spinscale's, which the controller then accepts.
func TestScaledObjectPauseAnnotations(t *testing.T) {
	so := func(annotations string) []byte {
		return []byte("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: a\n  annotations:\n" + annotations +
			"spec:\n  scaleTargetRef: {name: app}\n  minReplicaCount: 2\n  maxReplicaCount: 10\n  triggers: [{type: cpu, metricType: Utilization, metadata: {value: '50'}}]\n")
	}
	three := int32(3)
	for _, tc := range []struct {
		name     string
		input    []byte
		want     map[string]string
		pause    recommender.Pause
		paused   bool
		warnings []string
		notes    []string
	}{
		{
			name:  "paused-replicas",
			input: so("    autoscaling.keda.sh/paused-replicas: \"3\"\n"),
			want:  map[string]string{"spinscale.dev/paused-replicas": "3"},
			pause: recommender.Pause{Replicas: &three},
		},
		{
			name:  "paused-scale-in and paused-scale-out",
			input: so("    autoscaling.keda.sh/paused-scale-in: \"true\"\n    autoscaling.keda.sh/paused-scale-out: \"True\"\n"),
			want:  map[string]string{"spinscale.dev/paused-scale-in": "true", "spinscale.dev/paused-scale-out": "true"},
			pause: recommender.Pause{ScaleIn: true, ScaleOut: true},
		},
		{
			name:   "paused, and false values left out",
			input:  so("    autoscaling.keda.sh/paused: \"true\"\n    autoscaling.keda.sh/paused-scale-in: \"false\"\n"),
			want:   map[string]string{"spinscale.dev/paused": "true"},
			paused: true,
		},
		{
			name:   "paused with a value KEDA reads as true",
			input:  so("    autoscaling.keda.sh/paused: \"yes\"\n"),
			want:   map[string]string{"spinscale.dev/paused": "true"},
			paused: true,
			notes:  []string{`metadata.annotations.autoscaling.keda.sh/paused: "yes" is not a boolean, which KEDA reads as true`},
		},
		{
			name:  "bad values are named, not converted",
			input: so("    autoscaling.keda.sh/paused-replicas: \"-1\"\n    autoscaling.keda.sh/paused-scale-out: \"maybe\"\n"),
			warnings: []string{
				`metadata.annotations.autoscaling.keda.sh/paused-replicas: "-1": Spinscale takes a replica count from 0 to 100000, not converted`,
				`metadata.annotations.autoscaling.keda.sh/paused-scale-out: "maybe" is not a boolean, not converted`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := convertOne(t, tc.input)
			for k, v := range tc.want {
				assert.Equal(t, v, r.Annotations[k], k)
			}
			for _, k := range []string{"spinscale.dev/paused", "spinscale.dev/paused-replicas", "spinscale.dev/paused-scale-in", "spinscale.dev/paused-scale-out"} {
				if _, ok := tc.want[k]; !ok {
					assert.NotContains(t, r.Annotations, k)
				}
			}
			assertMessages(t, tc.warnings, r.Warnings)
			assertMessages(t, tc.notes, r.Notes)
			require.NoError(t, r.Invalid)
			app := parse(t, r.Annotations)
			assert.Equal(t, tc.pause, app.Spec.Pause)
			assert.Equal(t, tc.paused, app.Spec.Paused)
		})
	}
}
