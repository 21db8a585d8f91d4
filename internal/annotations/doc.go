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
// it. It must not import client-go, internal/config, a logger or the clock;
// the wiring code fills Defaults from the global configuration.
package annotations
