package annotations

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

// FuzzParse feeds an enabled app up to four annotations under the prefix
// (key without the prefix, value) and checks that Parse never panics, that
// a failure is a well-formed *Error, and that a success is a spec the engine
// can run: bounds in order, at least one metric, every target positive.
func FuzzParse(f *testing.F) {
	f.Add("max-replicas", "10", "target-cpu-utilization", "50", "", "", "", "")
	f.Add("max-replicas", "3", "min-replicas", "2", "target-cpu-utilization", "60", "target-memory-utilization", "60")
	f.Add("max-replicas", "5", "metrics", "- {name: rps, query: sum(rps), targetAverageValue: 400}", "behavior", "{}", "tolerance", "0")
	f.Add("max-replicas", "0", "target-cpu-average-value", "1e400", "behavior", "scaleUp: [", "max-replica", "3")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, k4, v4 string) {
		a := map[string]string{KeyEnabled: "true"}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k3, v3}, {k4, v4}} {
			if kv[0] != "" {
				a[Prefix+kv[0]] = kv[1]
			}
		}
		app, err := Parse(a, defaults)
		if !Enabled(a) {
			require.NoError(t, err)
			require.False(t, app.Enabled)
			return
		}
		require.True(t, app.Enabled)
		for _, w := range app.Warnings {
			require.NotEmpty(t, w)
		}
		if err != nil {
			var perr *Error
			require.True(t, errors.As(err, &perr), "error is an *Error: %v", err)
			require.NotEmpty(t, perr.Fields)
			for _, fe := range perr.Fields {
				require.True(t, strings.HasPrefix(fe.Key, Prefix), fe.Key)
				require.NotEmpty(t, fe.Message)
			}
			require.NotEmpty(t, err.Error())
			require.Equal(t, recommender.Spec{}, app.Spec)
			return
		}
		checkSpec(t, app.Spec)

		// Parsing is deterministic.
		again, err := Parse(a, defaults)
		require.NoError(t, err)
		assert.Equal(t, app, again)
	})
}

// checkSpec asserts the invariants of a successfully parsed spec.
func checkSpec(t *testing.T, s recommender.Spec) {
	t.Helper()
	require.GreaterOrEqual(t, s.MinReplicas, int32(1))
	require.LessOrEqual(t, s.MinReplicas, s.MaxReplicas)
	require.LessOrEqual(t, s.MaxReplicas, int32(maxReplicas))
	require.NotEmpty(t, s.Metrics)
	names := map[string]bool{}
	for _, m := range s.Metrics {
		require.False(t, names[m.Name], "duplicate metric %q", m.Name)
		names[m.Name] = true
		switch m.Target {
		case recommender.TargetUtilization:
			require.Equal(t, recommender.SourceResource, m.Source)
			require.Positive(t, m.TargetUtilization)
		case recommender.TargetAverageValue, recommender.TargetValue:
			require.Positive(t, m.TargetMilli)
			require.LessOrEqual(t, m.TargetMilli, maxTargetMilli)
		default:
			t.Fatalf("metric %q has no target type", m.Name)
		}
		if m.Source == recommender.SourcePrometheus {
			require.NotEmpty(t, m.Query)
			require.Equal(t, strings.TrimSpace(m.Query), m.Query)
		}
	}
	// The scale-up tolerance has no upper bound, as in HPA; the scale-down
	// one is at most 1.
	require.GreaterOrEqual(t, s.Tolerance.Up, 0.0)
	require.False(t, math.IsInf(s.Tolerance.Up, 0))
	require.GreaterOrEqual(t, s.Tolerance.Down, 0.0)
	require.LessOrEqual(t, s.Tolerance.Down, 1.0)
	require.Empty(t, recommender.ValidateBehavior(s.Behavior))
	if s.FallbackReplicas != 0 {
		require.GreaterOrEqual(t, s.FallbackReplicas, s.MinReplicas)
		require.LessOrEqual(t, s.FallbackReplicas, s.MaxReplicas)
		require.Positive(t, s.FallbackAfter)
	} else {
		require.Zero(t, s.FallbackAfter)
	}
}
