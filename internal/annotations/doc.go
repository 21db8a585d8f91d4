// Package annotations turns a Deployment's `spinscale.dev/` annotations into
// the recommender's fully resolved Spec: it is the per-app half of
// Spinscale's configuration contract (the global half is internal/config).
//
// Parse validates every key, reports every problem at once (each naming the
// annotation key, the offending value and what is allowed) and never falls
// back silently to a default for an invalid value: an app whose annotations
// are invalid is left exactly as it is by the controller. Unknown keys under
// the prefix become warnings with a "did you mean" suggestion.
//
// The package is pure data in, data out: it works on a map of strings and a
// Defaults value, so the controller, `autoscaler simulate` and the tests share
// it. It imports only the engine (internal/recommender, whose Spec it
// builds) and the leaf internal/duration. It must not import client-go, a
// logger, the clock or internal/config: the global configuration depends on
// this package (config.Config.AppDefaults fills Defaults), not the other way
// round, so that parsing is a function of the annotations and a handful of
// defaults, which tests and fuzzing supply without a configuration.
//
// The key registry (Prefix, the Key constants, Keys, IsKey) is the one place
// that knows the keys; callers use it, or the parsed App
// (App.UsesResourceMetrics), instead of reading raw keys themselves.
package annotations
