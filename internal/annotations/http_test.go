package annotations

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spinscale/spinscale/internal/recommender"
)

// httpApp is a minimal app with HTTP targets only, with extra pairs merged in.
func httpApp(kv ...string) map[string]string {
	out := ann("enabled", "true", "max-replicas", "10")
	for k, v := range ann(kv...) {
		out[k] = v
	}
	return out
}

// An HTTP target is a target: an app may have only HTTP targets, each makes
// a metric with Knative's default windows.
func TestParseHTTPTargets(t *testing.T) {
	app, err := Parse(httpApp("http-target-concurrency", "10", "http-target-rps", "0.5"), defaults)
	require.NoError(t, err)
	h := recommender.HTTPSpec{StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2}
	conc, rps := h, h
	conc.Metric, rps.Metric = recommender.HTTPConcurrency, recommender.HTTPRPS
	assert.Equal(t, []recommender.MetricSpec{
		{Name: "http-concurrency", Source: recommender.SourceHTTP, Target: recommender.TargetAverageValue, TargetMilli: 10_000,
			HTTP: conc},
		{Name: "http-rps", Source: recommender.SourceHTTP, Target: recommender.TargetAverageValue, TargetMilli: 500,
			HTTP: rps},
	}, app.Spec.Metrics)
	assert.True(t, app.Spec.UsesHTTP())

	app, err = Parse(httpApp("http-target-rps", "1k", "http-stable-window", "2m", "http-panic-window", "10s", "http-panic-threshold", "3.5"), defaults)
	require.NoError(t, err)
	require.Len(t, app.Spec.Metrics, 1)
	assert.Equal(t, recommender.HTTPSpec{Metric: recommender.HTTPRPS, StableWindow: 2 * time.Minute, PanicWindow: 10 * time.Second, PanicThreshold: 3.5},
		app.Spec.Metrics[0].HTTP)
	assert.Equal(t, int64(1_000_000), app.Spec.Metrics[0].TargetMilli)

	// Unset, the panic window is 10 % of the stable window (Knative's
	// panic-window-percentage), in whole seconds, at least 1s.
	for stable, panic := range map[string]time.Duration{"6s": time.Second, "15s": time.Second, "25s": 2 * time.Second, "10m": time.Minute} {
		app, err = Parse(httpApp("http-target-rps", "5", "http-stable-window", stable), defaults)
		require.NoError(t, err)
		assert.Equal(t, panic, app.Spec.Metrics[0].HTTP.PanicWindow, stable)
	}

	// Beside a cpu target: both decide, the larger proposal wins.
	app, err = Parse(valid("http-target-concurrency", "100"), defaults)
	require.NoError(t, err)
	require.Len(t, app.Spec.Metrics, 2)
	assert.Equal(t, recommender.SourceResource, app.Spec.Metrics[0].Source)
	assert.Equal(t, recommender.SourceHTTP, app.Spec.Metrics[1].Source)
}

// min-replicas 0 is allowed with an HTTP target, which wakes the app;
// scale-to-zero-after applies to it, activation-threshold does not.
func TestParseHTTPScaleToZero(t *testing.T) {
	app, err := Parse(httpApp("http-target-concurrency", "10", "min-replicas", "0", "scale-to-zero-after", "30s"), defaults)
	require.NoError(t, err)
	assert.Equal(t, int32(0), app.Spec.MinReplicas)
	assert.Equal(t, 30*time.Second, app.Spec.ScaleToZeroAfter)

	_, err = Parse(httpApp("http-target-concurrency", "10", "min-replicas", "0", "activation-threshold", "1"), defaults)
	assert.ErrorContains(t, err, `spinscale.dev/activation-threshold: "1": applies to Prometheus, object and external metrics, and this app has none`)

	_, err = Parse(valid("min-replicas", "0"), defaults)
	assert.ErrorContains(t, err, "or an HTTP target (spinscale.dev/http-target-concurrency or spinscale.dev/http-target-rps)")
}

func TestParseHTTPErrors(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want string
	}{
		{"concurrency zero", httpApp("http-target-concurrency", "0"), `spinscale.dev/http-target-concurrency: "0": must be a quantity > 0`},
		{"rps negative", httpApp("http-target-rps", "-5"), `spinscale.dev/http-target-rps: "-5": must be a quantity > 0`},
		{"rps text", httpApp("http-target-rps", "fast"), `spinscale.dev/http-target-rps: "fast"`},
		{"stable window short", httpApp("http-target-rps", "5", "http-stable-window", "5s"), `spinscale.dev/http-stable-window: "5s": must be a Go duration in whole seconds from 6s to 1h`},
		{"stable window long", httpApp("http-target-rps", "5", "http-stable-window", "61m"), `spinscale.dev/http-stable-window: "61m"`},
		{"stable window fraction", httpApp("http-target-rps", "5", "http-stable-window", "6.5s"), `spinscale.dev/http-stable-window: "6.5s"`},
		{"panic window above stable", httpApp("http-target-rps", "5", "http-stable-window", "10s", "http-panic-window", "11s"),
			`spinscale.dev/http-panic-window: "11s": must be a Go duration in whole seconds from 1s to the stable window (10s)`},
		{"panic window zero", httpApp("http-target-rps", "5", "http-panic-window", "0s"), `spinscale.dev/http-panic-window: "0s"`},
		{"threshold 1", httpApp("http-target-rps", "5", "http-panic-threshold", "1"), `spinscale.dev/http-panic-threshold: "1": must be a decimal above 1 and at most 10`},
		{"threshold NaN", httpApp("http-target-rps", "5", "http-panic-threshold", "NaN"), `spinscale.dev/http-panic-threshold: "NaN"`},
		{"threshold 11", httpApp("http-target-rps", "5", "http-panic-threshold", "11"), `spinscale.dev/http-panic-threshold: "11"`},
		{"stable window without target", valid("http-stable-window", "60s"), `spinscale.dev/http-stable-window: "60s": requires an HTTP target`},
		{"panic window without target", valid("http-panic-window", "6s"), `spinscale.dev/http-panic-window: "6s": requires an HTTP target`},
		{"threshold without target", valid("http-panic-threshold", "2"), `spinscale.dev/http-panic-threshold: "2": requires an HTTP target`},
		{"no target at all", ann("enabled", "true", "max-replicas", "10"), "spinscale.dev/http-target-rps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.ann, defaults)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
