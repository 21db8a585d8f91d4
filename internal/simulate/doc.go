// Package simulate runs Spinscale's decision engine offline over a scenario:
// a YAML or JSON file that lists, step by step, what the controller would
// observe of one app (spec and status replicas, pods, metric samples and
// Prometheus results), together with the app's annotations and the
// controller's configuration.
//
// Each step goes through exactly the code path the controller uses:
// recommender.Decide, then recommender.Commit as if the scale write had
// succeeded. Simulate never talks to a cluster and never writes anything, so
// the per-app dry-run annotation changes nothing here: every decision is
// applied to the simulated app, and the next step's replica count defaults to
// the previous step's decision.
//
// The load-trace form (top-level workload, sim, trace or traceFile) describes
// the load over time instead: TraceScenario.Simulate plays the app's pods,
// their start-up, their metric samples and the engine's ticks second by
// second, and scores the decisions against an oracle that holds
// max(min, ceil(load / targetLoadPerPod)) pods at every moment. Its outputs
// are per-tick decisions, a summary, a per-second timeline (CSV) and a PNG
// plot drawn with the standard library.
//
// The package is a pure transformation from scenario bytes to decisions and
// their rendering: it reads no clock and no environment, and no files itself
// (the caller passes the scenario's bytes, a reader for the trace files it
// names, and the writers). Its observations are built by internal/metrics'
// mappings, the ones the controller's sources use; it never uses a source
// itself, and must not import the controller.
package simulate
